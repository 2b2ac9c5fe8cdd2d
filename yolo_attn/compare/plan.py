"""``yolo-attn compare --plan``: seeds x epochs needed to detect a stated effect, from a pilot sweep.

The pilot is an ordinary sweep (run by ``--plan`` with the same arguments, or an existing folder
given with ``--out``). From it:

* at the pilot's epochs, per model: the SD of the per-seed difference to the baseline and the
  shared validation-image variance (:func:`yolo_attn.compare.stats.paired_diff_ci`), and the seeds
  needed for 80% power at the family-wise level (:func:`yolo_attn.compare.stats.seeds_needed`);
* at fewer epochs, approximately: the seed SD from Ultralytics' per-epoch validation curve of the
  pilot, with the image variance of the final epoch (a curve point at epoch e < E comes from a run
  whose learning-rate schedule was set for E epochs, so it is a guide, not a measurement of an
  e-epoch run);
* the wall time of each option on the machine that ran the pilot: mean trial time per epoch x
  epochs x seeds x models (trials run one after another, as the local backend does).

The planned sweep must be run into a new folder with the planned seeds: adding seeds to the pilot
after looking at it is optional stopping, and the report of such a folder says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special as _sp

from . import stats
from .contract import TrialRecord
from .summary import SweepSummary


@dataclass
class ModelPlan:
    model: str
    pilot_seeds: int
    sd_seed: float  # SD over seeds of the paired difference to the baseline (mAP50-95)
    image_sd: float  # SD of the shared validation-image part
    mdd_pilot: float  # detectable at 80% power with the pilot's seeds
    seeds_needed: int | None  # None: out of reach on this validation set


@dataclass
class EpochOption:
    epochs: int
    seeds: int | None  # max over models (None: some model out of reach)
    wall_s: float | None
    source: str  # 'COCOeval at the pilot's epochs' or 'validation curve (approximate)'
    base_map: float = math.nan  # the baseline's mean mAP50-95 there (below the effect: nothing learned to compare)


@dataclass
class Plan:
    effect: float
    family_size: int
    alpha: float
    models: list[ModelPlan]
    options: list[EpochOption]
    pilot_epochs: int
    s_per_epoch: float  # mean over trials of (trial wall time / epochs)
    forecast: object = None  # a .forecast.Forecast of --until-decided's rule, when it was asked for


def make_plan(summary: SweepSummary, records: list[TrialRecord], effect: float, target: float = stats.POWER,
              rule=None) -> Plan:
    """Plan from a finished pilot's summary (report.summarize) and its ok trial records; with ``rule`` (a
    :class:`.sequential.Rule`) also the forecast of what ``--until-decided`` under it would decide."""
    rows = summary.compared
    k = max(1, len(rows))
    alpha = 0.05 / k
    E = int(summary.settings.epochs)
    ok = [r for r in records if r.ok]
    per_epoch = [r.duration_s / max(1, r.epochs_done or E) for r in ok if r.duration_s]
    s_epoch = float(np.mean(per_epoch)) if per_epoch else math.nan
    n_models = len(summary.models)
    models = []
    for r in rows:
        ci = r.diff["map"].ci
        sd, vi = ci.sd_seed, ci.var_image
        mdd = stats.min_detectable(sd, vi, ci.n_seeds, ci.n_boot, alpha, target)
        need = stats.seeds_needed(effect, sd, vi, ci.n_boot, alpha, target) if ci.n_seeds > 1 else None
        models.append(ModelPlan(r.model, ci.n_seeds, sd, math.sqrt(vi), mdd, need))
    base_row = summary.row(summary.baseline)
    options = [_option(E, [m.seeds_needed for m in models], s_epoch, n_models, "COCOeval at the pilot's epochs",
                       base_row.coco_map_mean if base_row else math.nan)]
    for e in sorted({max(1, E // 4), max(1, E // 2)} - {E}):
        needs = [_curve_need(ok, summary.baseline, r.model, e, effect, r.diff["map"].ci.var_image,
                             alpha, target) for r in rows]
        base_e = [p["map"] for r in ok if r.model == summary.baseline for p in r.curve or []
                  if p.get("epoch") == e]
        options.append(_option(e, needs, s_epoch, n_models, "validation curve at this epoch (approximate)",
                               float(np.mean(base_e)) if base_e else math.nan))
    fc = None
    if rule is not None and rows:
        from .forecast import forecast

        fc = forecast(rule, [m.model for m in models], [m.sd_seed for m in models], [m.image_sd for m in models],
                      [r.diff["map"].ci.delta for r in rows])
    return Plan(effect, k, alpha, models, sorted(options, key=lambda o: o.epochs), E, s_epoch, fc)


def _option(epochs: int, needs: list, s_epoch: float, n_models: int, source: str, base_map: float) -> EpochOption:
    seeds = None if not needs or any(n is None for n in needs) else max(needs)
    wall = seeds * n_models * epochs * s_epoch if seeds and math.isfinite(s_epoch) else None
    return EpochOption(epochs, seeds, wall, source, base_map)


def _curve_need(records: list[TrialRecord], baseline: str, model: str, epoch: int, effect: float, var_image: float,
                alpha: float, target: float) -> int | None:
    """Seeds needed from the Ultralytics validation mAP50-95 at ``epoch`` of the pilot's curves (the seed SD from
    the curves; the image variance is the pilot's at its final epoch, not re-estimated)."""
    def at(name):
        out = {}
        for r in records:
            if r.model == name:
                pts = [p for p in r.curve or [] if p.get("epoch") == epoch]
                if pts and math.isfinite(pts[0].get("map", math.nan)):
                    out[r.seed] = pts[0]["map"]
        return out

    m, b = at(model), at(baseline)
    common = sorted(set(m) & set(b))
    if len(common) < 2:
        return None
    sd = float(np.std([m[s] - b[s] for s in common], ddof=1))
    return stats.seeds_needed(effect, sd, var_image, 0, alpha, target)


def _hms(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def format_plan(plan: Plan, pilot_dir: str) -> str:
    lines = [
        f"# Plan: seeds x epochs to detect a difference of {plan.effect:g} mAP50-95 (80% power, family-wise 5% "
        f"over {plan.family_size} models, i.e. {plan.alpha:.4f} per model)",
        "",
        f"Pilot: {pilot_dir} ({plan.pilot_epochs} epochs; {_hms(plan.s_per_epoch)} per trial-epoch on the machine "
        "that ran it).",
        "",
        "| model | pilot seeds | SD of Δ over seeds | image SD | detectable with the pilot's seeds | seeds needed |",
        "|---|---|---|---|---|---|",
    ]
    for m in plan.models:
        need = str(m.seeds_needed) if m.seeds_needed else "out of reach (validation images too few)"
        lines.append(f"| {m.model} | {m.pilot_seeds} | {m.sd_seed:.4f} | {m.image_sd:.4f} | ≥ {m.mdd_pilot:.3f} "
                     f"| {need} |")
    lines += ["", "| epochs | baseline mAP50-95 | seeds per model | estimated wall time (all models, one trial at a "
              "time) | from |", "|---|---|---|---|---|"]
    for o in plan.options:
        if not o.base_map >= plan.effect:  # the baseline has not learned yet: no difference of that size to look for
            seeds, wall = "- (baseline below the effect: too early)", "-"
        else:
            seeds, wall = (o.seeds if o.seeds else "out of reach"), _hms(o.wall_s)
        lines.append(f"| {o.epochs} | {o.base_map:.3f} | {seeds} | {wall} | {o.source} |")
    small = min((m.pilot_seeds for m in plan.models), default=0)
    # chdtri(k, 0.8): the chi-square(k) value exceeded with probability 0.8, i.e. its 20% quantile
    up = math.sqrt((small - 1) / _sp.chdtri(small - 1, 0.8)) if small > 1 else math.inf
    lines += [
        "",
        f"The SDs come from {small} pilot seed(s): the 80% upper confidence bound of an SD is {up:.1f}x the estimate "
        f"(about {up ** 2:.1f}x the seeds), so treat the seed counts as lower bounds.",
        "Seeds per model: the largest over the models (each model is a comparison of the family). More epochs "
        f"usually lower the seed noise; to plan for other epochs than {plan.pilot_epochs}, run a pilot with --epochs "
        "(new --out).",
        "Run the planned seeds into a NEW folder (--out): adding seeds to the pilot after looking at it is optional "
        "stopping, and that folder's report would say so.",
    ]
    if plan.forecast is not None:
        from .forecast import format_forecast

        lines += ["", format_forecast(plan.forecast).rstrip("\n")]
    return "\n".join(lines) + "\n"


def finished_pilot(out: str | None, effect: float, n_boot: int = 1000) -> tuple[SweepSummary, list[TrialRecord]] | None:
    """(summary, ok records) of a finished sweep folder, recomputed from its store with ``effect``; None if the
    folder holds no sweep or an unfinished one (then ``--plan`` runs the pilot)."""
    from pathlib import Path

    from . import report
    from .store import Store

    if not out or not (Path(out) / "config.json").is_file():
        return None
    store = Store(out)
    config = store.read_config()
    latest = store.latest(config.settings_hash)
    done = {(r.model, r.seed) for r in latest.values() if r.ok}
    if any((m, s) not in done for m in config.model_names for s in config.seeds):
        return None
    summary = report.summarize(store, config, n_boot=n_boot, effect=effect)
    return summary, [r for r in latest.values() if r.ok]
