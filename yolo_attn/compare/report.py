"""The sweep's table (summary.json / .csv / .md) and plots, computed from the store alone (rerunnable offline)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np

from ..scoring import bootstrap, cocoeval
from . import hardware, plots, stats
from .contract import SweepConfig, TrialRecord
from .request import ModelSpec
from .store import Store, atomic_write
from ..scoring import image_replicates
from .summary import AGREEMENT_TOL, DEFAULT_EFFECT, METRICS, SOURCES, MetricDiff, ModelRow, SummarySettings, SweepSummary

# AGREEMENT_TOL: Ultralytics integrates its precision envelope with the trapezoidal rule on 101 points and keeps
# at most 300 detections per image; COCOeval sums 101 right-continuous samples and caps detections per image and
# class. On identical predictions the two differ by up to ~0.01 (measured on small, weak models, where the step
# at the end of the recall curve matters most); a larger gap means the two evaluations did not see the same
# predictions or ground truth.
LEVEL = 0.95
NO_IMAGE_DATA = "no per-image evaluation data: the interval leaves out validation-image noise"


def _diffs(mine: dict[int, TrialRecord], base: dict[int, TrialRecord], reps: dict, boot_seed: int) -> dict[str, MetricDiff]:
    """Per metric: the paired interval (stats.paired_diff_ci) over the seeds both models finished."""
    common = sorted(set(mine) & set(base))
    if not common:
        return {}
    diff = {}
    for key, idx in (("map50", 0), ("map", 1)):
        mp = [mine[s].coco[key] for s in common]
        bp = [base[s].coco[key] for s in common]
        have = all(mine[s].trial_id in reps and base[s].trial_id in reps for s in common)
        mr = [reps[mine[s].trial_id][idx] for s in common] if have else None
        br = [reps[base[s].trial_id][idx] for s in common] if have else None
        ci = stats.paired_diff_ci(mp, bp, mr, br, level=LEVEL, seed=boot_seed)
        if not have and len(common) > 1:
            ci.note = NO_IMAGE_DATA
        diff[key] = MetricDiff(ci, common)
    return diff


def _adjust_family(rows: list[ModelRow], key: str, effect: float) -> None:
    """Holm / Bonferroni over the non-baseline models for one metric; power and verdict into each difference."""
    fam = {r.model: r.diff[key] for r in rows if r.difference(key)}
    for n, adj in stats.adjust({n: d.ci for n, d in fam.items()}, LEVEL).items():
        d, ci = fam[n], fam[n].ci
        alpha = (1 - LEVEL) / max(adj.family_size, 1)
        d.adjusted = adj
        measured = ci.n_seeds > 1 and not stats.no_spread(ci)  # zero spread: no noise to plan seeds with
        d.seeds_needed = stats.seeds_needed(effect, ci.sd_seed, ci.var_image, ci.n_boot, alpha) if measured else None
        d.image_floor = _floor(ci, alpha)


def _floor(ci: stats.DiffCI, alpha: float) -> float:
    """Smallest difference detectable with unlimited seeds (the shared validation-image variance alone)."""
    return stats.min_detectable(0.0, ci.var_image, 10**6, ci.n_boot, alpha) if ci.n_seeds > 1 else math.nan


def _fmt(v, nd=3):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _data_warnings(store: Store) -> list[str]:
    """The dataset check's finding that validation images are training images too (data_check.json's val_overlap)."""
    path = store.root / "data_check.json"
    overlap = (json.loads(path.read_text()).get("val_overlap") or 0.0) if path.is_file() else 0.0
    if overlap >= 1.0:
        return ["VALIDATION = TRAINING: every validation image is also a training image (e.g. coco128's val=train), "
                "so the metrics measure fit to the training data, not generalisation"]
    if overlap > 0:
        return [f"{overlap:.0%} of the validation images are also training images: the metrics are optimistic"]
    return []


def _replicates(store, ok: list[TrialRecord], n_boot: int, boot_seed: int,
                ahead: "WorkAhead | None" = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every ok trial's bootstrap replicates of mAP50 and mAP50-95 on one shared set of image samples, computed on
    every usable core (numpy releases the GIL in the sums; each trial's result does not depend on the others);
    those ``ahead`` computed already are taken from it."""
    from concurrent.futures import ThreadPoolExecutor

    from .._threads import usable_cpus

    paths = {r.trial_id: store.root / r.eval for r in ok if r.eval and (store.root / r.eval).is_file()}
    known = {tid: ahead.known(p, n_boot, boot_seed) for tid, p in paths.items()} if ahead is not None else {}
    out = {tid: v for tid, v in known.items() if v is not None}
    todo = {tid: p for tid, p in paths.items() if tid not in out}
    W = bootstrap.image_weights(ok[0].n_val_images, n_boot, boot_seed) if todo else None
    with ThreadPoolExecutor(max(1, min(len(todo), usable_cpus()))) as pool:
        done = list(pool.map(lambda p: image_replicates(p, W), todo.values()))
    out.update(zip(todo, done))
    if ahead is not None:  # kept for the next call (the rounds of a declared rule ask after each round)
        ahead.remember({todo[tid]: v for tid, v in zip(todo, done)}, n_boot, boot_seed)
    return {tid: out[tid] for tid in paths}


def trial_replicates(store, ok: list[TrialRecord], n_boot: int, boot_seed: int = 0,
                     ahead: "WorkAhead | None" = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`_replicates` of the report, or none when the trials were scored on different numbers of images."""
    if len({r.n_val_images for r in ok}) != 1:
        return {}
    return _replicates(store, ok, n_boot, boot_seed, ahead)


class WorkAhead:
    """Report work done on a core the sweep's last trials leave free (:func:`.workers.run_workers`' ``spare_core``):
    the plotting library's import, and the bootstrap replicates of each trial recorded so far, the very numbers the
    report would compute (same image samples; a trial's evaluation file is known by its path, size and time)."""

    def __init__(self, store: Store, settings_hash: str, n_boot: int, boot_seed: int = 0):
        self.store, self.settings_hash, self.n_boot, self.boot_seed = store, settings_hash, n_boot, boot_seed
        self.replicates: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.plots_ready = False
        self._weights: dict[int, np.ndarray] = {}  # image samples by number of images
        self._failed: set[tuple] = set()

    @staticmethod
    def _key(path: Path, n_boot: int, boot_seed: int) -> tuple | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return str(path), st.st_size, st.st_mtime_ns, n_boot, boot_seed

    def known(self, path: Path, n_boot: int, boot_seed: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.replicates.get(self._key(path, n_boot, boot_seed))

    def remember(self, by_path: dict, n_boot: int, boot_seed: int) -> None:
        """Keep replicates computed elsewhere (path -> replicates) for :meth:`known`."""
        for path, value in by_path.items():
            key = self._key(path, n_boot, boot_seed)
            if key is not None:
                self.replicates[key] = value

    def step(self) -> bool:
        """Do one piece (one trial's replicates, or the import); False when nothing is left to do now. Never raises:
        what fails here is left to the report, which meets the same error and says so."""
        if not self.plots_ready:
            self.plots_ready = True
            with contextlib.suppress(Exception):
                plots.warm_up()
            return True
        try:
            records = list(self.store.latest(self.settings_hash).values())
        except Exception:
            return False
        for rec in records:
            path = self.store.root / rec.eval if rec.ok and rec.eval and rec.n_val_images else None
            key = self._key(path, self.n_boot, self.boot_seed) if path is not None else None
            if key is None or key in self.replicates or key in self._failed:
                continue
            try:
                if rec.n_val_images not in self._weights:
                    self._weights[rec.n_val_images] = bootstrap.image_weights(rec.n_val_images, self.n_boot, self.boot_seed)
                self.replicates[key] = image_replicates(path, self._weights[rec.n_val_images])
            except Exception:
                self._failed.add(key)
            return True
        return False


def summarize(store: Store, config: SweepConfig, n_boot: int = 1000, boot_seed: int = 0, tol: float = AGREEMENT_TOL,
              bench: dict | None = None, effect: float = DEFAULT_EFFECT, ahead: WorkAhead | None = None) -> SweepSummary:
    """Aggregate the ok records of the current settings into the sweep's summary (summary.json); ``ahead``: bootstrap
    replicates computed while the last trials ran."""
    n_boot = stats.check_n_boot(n_boot)
    latest = store.latest(config.settings_hash)
    models = config.model_names
    baseline = config.baseline or models[0]
    recs = [r for r in latest.values() if r.model in models]
    ok = [r for r in recs if r.ok]
    warnings = _data_warnings(store)
    for r in recs:
        if not r.ok:
            warnings.append(f"trial {r.trial_id} failed: {r.error}")
    warnings += hardware.pairing_warnings(ok, baseline)  # a seed whose arms ran on different hardware
    first, _, independent = SummarySettings(0, 0, [], task=config.task).figures
    warnings += _disagreements(ok, config.task, tol)

    # per-image bootstrap replicates of every ok trial, on one shared set of image samples
    reps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_images = {r.n_val_images for r in ok}
    if len(n_images) == 1 and ok:
        reps = _replicates(store, ok, n_boot, boot_seed, ahead)
    elif len(n_images) > 1:
        warnings.append(f"trials were validated on different numbers of images {sorted(n_images)}: no CIs")

    def by_seed(model):
        return {r.seed: r for r in ok if r.model == model}

    base = by_seed(baseline)
    base_ips = stats.mean_std([r.train_images_per_s for r in base.values()])[0]
    base_params = next((m.params for m in config.specs if m.name == baseline), None)
    decision, needed = _decision(config, ok, reps, warnings)
    ref = _Base(baseline, base, base_params, base_ips, bench or {}, reps, boot_seed)
    rows = [_row(spec, by_seed(spec.name), [r for r in recs if r.model == spec.name],
                 needed.get(spec.name, len(config.seeds)), ref) for spec in config.specs]
    planned = config.planned
    extended = sorted(set(config.seeds) - set(planned))
    if extended:
        warnings.append(f"seeds extended after the sweep was planned ({planned} -> {config.seeds}): the interval is "
                        "not a fixed-design interval (adding seeds after looking is optional stopping)")
    for key in ("map", "map50"):
        _adjust_family(rows, key, effect)
    return SweepSummary(
        baseline=baseline, effect=effect, planned_seeds=planned, seeds_extended=extended, data=config.data,
        settings=SummarySettings(config.epochs, config.imgsz, config.seeds, config.train_args, config.pretrained,
                                 config.weights, config.eval_split, config.settings().get("model_options", {}), config.task),
        n_eval_images=next(iter({r.n_val_images for r in ok}), None) if ok else None, n_boot=n_boot,
        agreement_tolerance=tol, models=rows, warnings=warnings,
        n_trials=sum(needed.values()) if needed else len(config.models) * len(config.seeds), n_ok=len(ok),
        decision=decision,
        ci_method=(f"{int(100 * LEVEL)}% interval of the mean over seeds of (model - baseline) {independent} {first}: "
                   f"{stats.METHOD}; image bootstrap with {n_boot} replicates (one image sample for every model "
                   "and seed). Family-wise: Holm-adjusted p over the non-baseline models, Bonferroni simultaneous "
                   "intervals. Power: noncentral t, 80%, at the family-wise level (Holm's first step)."))


def _disagreements(ok: list[TrialRecord], task: str, tol: float) -> list[str]:
    """A warning per trial whose Ultralytics figure and independent computation differ by more than ``tol``."""
    first, second, independent = SummarySettings(0, 0, [], task=task).figures
    out = []
    for r in ok:
        for key, label in (("map50", second), ("map", first)):
            gap = abs(r.ultra[key] - r.coco[key])
            if gap > tol:
                out.append(f"trial {r.trial_id}: {label} Ultralytics {r.ultra[key]:.4f} vs {independent} "
                           f"{r.coco[key]:.4f} differ by {gap:.4f} (> tolerance {tol})")
    return out


def _decision(config: SweepConfig, ok: list[TrialRecord], reps: dict, warnings: list[str]) -> tuple:
    """The decisions under the sweep's declared rule, or under the default rule at the final look of a fixed-seed
    sweep (:mod:`.rounds`), and, for a declared rule, the trials it asked for per model (else {})."""
    from collections import Counter

    from . import rounds

    declared = config.rule is not None
    rule = None if declared else rounds.implicit_rule(len(config.seeds))
    if not declared and rule is None:
        return None, {}
    rp = rounds.replay_records(config, ok, reps, rule)
    for change in config.rule_changes:
        warnings.append(f"the decision rule was changed after {change.get('trials_recorded', '?')} trial(s) were "
                        f"recorded ({change.get('changed')}; --allow-changes, {change.get('at')}): the decisions are "
                        "not under a rule declared before the data")
    n_images = {r.n_val_images for r in ok}
    report = rounds.decision_report(rp, ok, config.baseline or config.model_names[0],
                                    next(iter(n_images)) if len(n_images) == 1 else None, declared, config.rule_changes)
    return report, (dict(Counter(m for m, _ in rp.needed)) if declared else {})


@dataclasses.dataclass(frozen=True)
class _Base:
    """What every model's row is set against: the baseline (its name, its trials by seed, parameters and training
    throughput), the latencies measured side by side (``bench``) and the image-bootstrap replicates."""

    name: str
    trials: dict
    params: int | None
    ips: float
    bench: dict
    reps: dict
    boot_seed: int


def _row(spec: ModelSpec, mine: dict[int, TrialRecord], all_trials: list[TrialRecord], n_seeds: int,
         ref: _Base) -> ModelRow:
    """One model's row: its figures over seeds, cost, speed and (not for the baseline) its differences."""
    name, baseline, base_params, base_ips, bench = spec.name, ref.name, ref.params, ref.ips, ref.bench
    row = ModelRow(name, spec.ref, name == baseline, spec.control, len(mine), n_seeds,
                   sum(not r.ok for r in all_trials))
    for src in SOURCES:
        for key in METRICS:
            mean, sd = stats.mean_std([getattr(r, src)[key] for r in mine.values()])
            setattr(row, f"{src}_{key}_mean", mean)
            setattr(row, f"{src}_{key}_std", sd)
    if all("precision" in r.ultra for r in mine.values()):  # not for classify (top-1 and top-5 only)
        row.precision = stats.mean_std([r.ultra["precision"] for r in mine.values()])[0]
        row.recall = stats.mean_std([r.ultra["recall"] for r in mine.values()])[0]
    any_rec = next(iter(mine.values()), None)
    row.params = spec.params or (any_rec.params if any_rec else None)
    row.gflops_640 = spec.gflops_640 or (any_rec.gflops_640 if any_rec else None)
    row.params_ratio = row.params / base_params if row.params and base_params else None
    lat, base_lat = bench.get(name), bench.get(baseline)
    row.latency_ms = lat
    row.latency_ratio = lat / base_lat if lat and base_lat else None
    ips = stats.mean_std([r.train_images_per_s for r in mine.values()])[0]
    row.train_images_per_s = ips
    row.train_speed_ratio = ips / base_ips if ips == ips and base_ips and base_ips == base_ips else None
    row.per_seed = {str(s): {"ultra": r.ultra, "coco": r.coco} for s, r in sorted(mine.items())}
    starts = [r.start["map"] for r in mine.values() if (r.start or {}).get("map") is not None]
    if starts:  # pretrained trials: Ultralytics mAP50-95 before any training step
        row.start_map_mean, row.start_map_std = stats.mean_std(starts)
    heads = sorted({r.head_start for r in mine.values() if r.head_start})
    if heads:
        row.head_start = ", ".join(heads)
    if name != baseline:
        row.diff = _diffs(mine, ref.trials, ref.reps, ref.boot_seed)
    return row


CSV_COLS = ["model", "n_ok", "n_trials", "ultra_map50_mean", "ultra_map50_std", "ultra_map_mean", "ultra_map_std",
            "coco_map50_mean", "coco_map50_std", "coco_map_mean", "coco_map_std", "precision", "recall",
            "d_map", "d_map_lo", "d_map_hi", "d_map_sim_lo", "d_map_sim_hi", "d_map_p_holm", "d_map_sd_seed",
            "d_map_mdd", "d_map_seeds_needed", "d_map_verdict", "d_map50", "d_map50_lo", "d_map50_hi", "d_map50_sim_lo",
            "d_map50_sim_hi", "d_map50_p_holm", "params", "params_ratio",
            "gflops_640", "latency_ms", "latency_ratio", "train_images_per_s", "train_speed_ratio"]


def _flat(row: ModelRow) -> dict:
    """The row as summary.csv writes it (the differences flattened into d_map_* and d_map50_* columns)."""
    values = row.to_json()
    out = {k: values.get(k) for k in CSV_COLS}
    for key, col in (("map", "d_map"), ("map50", "d_map50")):
        d = row.difference(key)
        if d is not None:
            values = d.to_json()
            out[col] = d.delta
            for f in ("lo", "hi", "sim_lo", "sim_hi", "p_holm", "sd_seed", "mdd", "seeds_needed", "verdict"):
                if f"{col}_{f}" in CSV_COLS:
                    out[f"{col}_{f}"] = values.get(f)
    return out


def _head_starts(row: ModelRow) -> set[str]:
    """How the head of a row's trials started (:meth:`yolo_attn.weights.TransferReport.head_start`'s words, joined by ", "
    in the row)."""
    return set((row.head_start or "").split(", ")) - {""}


def pretrained_lines(summary: SweepSummary) -> list[str]:
    """What a sweep from --pretrained weights started from: attention init, fine-tuning settings, the head."""
    s = summary.settings
    if not s.pretrained:
        return []
    from .trial import FINE_TUNE_ARGS

    t = s.train_args
    tune = ", ".join(f"{k} {t.get(k)}" for k in ("optimizer", "lr0", "lrf", "warmup_epochs", "mosaic", "freeze", "attn_lr")
                     if k in t)
    user = sorted(k for k in FINE_TUNE_ARGS if k in t and t[k] != FINE_TUNE_ARGS[k])
    init = t.get("attn_init") or "as each YAML writes it"
    own = s.model_options
    every = "each model" if not any("attn_init" in o for o in own.values()) else "each model without an attn_init of its own"
    out = ["", f"Started from {Path(str(s.pretrained)).name}: attention layers init {init}"
           + (f" ({every} predicts exactly as the stock checkpoint before training)" if init == "identity" else "")
           + f"; fine-tuning settings {tune}"
           + (f" (changed from yolo_attn's fine-tuning preset: {', '.join(user)})" if user else " (yolo_attn's fine-tuning preset)")
           + ". epoch 0: Ultralytics mAP50-95 before any training step."]
    if own:
        out.append("Per-model options (the model YAML's `yolo_attn:` key; they override the values above for that model): "
                   + "; ".join(f"{name}: " + ", ".join(f"{k} {v}" for k, v in o.items()) for name, o in own.items())
                   + (". load names: Ultralytics' name-and-shape matching (as `YOLO(yaml).load(pt)`) instead of the "
                      "structure-aware transfer" if any(o.get("load") == "names" for o in own.values()) else "") + ".")
    scratch = [r.model for r in summary.models if "scratch" in _head_starts(r)]
    new_cls = [r.model for r in summary.models if "new class outputs" in _head_starts(r)]
    by_name = [m for m in scratch if (own.get(m) or {}).get("load") == "names"]
    scratch = [m for m in scratch if m not in by_name]
    if scratch:
        out.append(f"The head starts from scratch in {', '.join(scratch)}: the checkpoint's head does not "
                   "transfer (e.g. the anchor-based head of an original-YOLOv5 checkpoint); only the backbone and "
                   "neck are pretrained, and a few epochs are not enough to train the head.")
    if by_name:
        out.append(f"The head starts from scratch in {', '.join(by_name)} (loaded by name and shape): none of "
                   "the checkpoint's head tensors matches its names and shapes (after an inserted layer, for example, the "
                   "head sits at another index).")
    if new_cls:
        out.append(f"The class outputs of the head start from scratch in {', '.join(new_cls)} (the dataset's class "
                   "count differs from the checkpoint's); the rest of the head is pretrained.")
    return out


def eval_line(summary: SweepSummary) -> str:
    """Which split the table scores: every figure and interval below comes from it."""
    split = summary.settings.eval_split
    n = summary.n_eval_images
    imgs = f" ({n} images)" if n else ""
    if split == "test":
        return (f"Scored on the **test** split{imgs}: mAP, COCOeval and the image bootstrap use the test images; "
                "training validated on val each epoch.")
    return f"Scored on the **val** split{imgs} (the images training validated on each epoch)."


def md_text(text) -> str:
    """``text`` as it may stand in a markdown table cell or list item: backslashes and ``|`` escaped, line breaks
    made spaces (a model named ``a|b`` or with a newline keeps the table's columns)."""
    return " ".join(str(text).replace("\\", "\\\\").replace("|", "\\|").splitlines())


def _md_names(summary: SweepSummary) -> SweepSummary:
    """The summary as ``summary.md`` shows it: model names, options and warnings through :func:`md_text`."""
    settings = dataclasses.replace(summary.settings,
                                   model_options={md_text(k): v for k, v in summary.settings.model_options.items()})
    return dataclasses.replace(summary, baseline=md_text(summary.baseline), settings=settings,
                               models=[dataclasses.replace(r, model=md_text(r.model)) for r in summary.models],
                               warnings=[md_text(w) for w in summary.warnings], data=md_text(summary.data))


def markdown(summary: SweepSummary) -> str:
    summary = _md_names(summary)
    s = summary.settings
    start = any(r.start_map_mean is not None for r in summary.models)
    first, second, independent = s.figures
    lines = [
        f"# Attention comparison on {Path(str(summary.data)).name}",
        "",
        *([_task_line(s), ""] if s.task != "detect" else []),
        f"Baseline: **{summary.baseline}**. {summary.n_ok}/{summary.n_trials} trials ok; epochs {s.epochs}, "
        f"imgsz {s.imgsz}, seeds {s.seeds}, weights {s.weights}"
        + (f", pretrained {s.pretrained}" if s.pretrained else "") + ".",
        "",
        eval_line(summary),
        "",
        "| model | ok | " + (f"{first} epoch 0 | " if start else "") + f"{first} (Ultralytics) | {first} ({independent}) "
        f"| {second} (Ultralytics) | {second} ({independent}) "
        f"| P | R | Δ{first} [95% CI] | Δ{second} [95% CI] | params | GFLOPs@640 | latency × "
        "| train img/s × (not interleaved) |",
        "|---" * (15 if start else 14) + "|",
    ]
    for r in summary.models:
        lines.append(_table_line(r, start))
    lines += [
        "",
        f"mean ± std over seeds. Δ: {independent} {first}, model − baseline, mean over paired seeds, with its 95% "
        "interval "
        "for "
        "that model alone; * = different from the baseline after the family-wise (Holm) adjustment over the "
        f"{_family_size(summary)} non-baseline models (not: 'this interval excludes 0').",
        f"Interval: {summary.ci_method}",
        "latency ×: batch-1 CPU inference latency at the sweep's imgsz, ratio to the baseline (interleaved, same process);",
        "train img/s × (not interleaved): training throughput ratio to the baseline (mean over seeds). It compares "
        "trials run at different times, beside other trials or processes, so it measures the machine's load as much "
        "as the model and is not a model property; latency × (measured interleaved) is the speed to read.",
        f"Ultralytics vs {independent}: same predictions; disagreement tolerance {summary.agreement_tolerance}.",
    ] + pretrained_lines(summary) + [""] + verdict_lines(summary) + decision_lines(summary)
    if summary.diagnosis:  # compare --diagnose (yolo_attn/diagnose)
        lines += ["", f"Why did attention help or hurt? See the [diagnosis]({summary.diagnosis})."]
    if summary.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary.warnings]
    return "\n".join(lines) + "\n"


def _task_line(s: SummarySettings) -> str:
    """What the figures of a sweep of another task than detect are."""
    first, second, _ = s.figures
    if (first, second) == ("mAP50-95", "mAP50"):
        return (f"Task **{s.task}**: every mAP below is the {s.metric}, and Ultralytics' figure of the same output and "
                "predictions.")
    return (f"Task **{s.task}**: {first} and {second} below are the {s.metric}, and Ultralytics' figures of the same "
            "predictions.")


def _table_line(r: ModelRow, start: bool) -> str:
    """One model's line of the main table."""
    def ci(key):
        if r.is_baseline:
            return "baseline"
        x = r.difference(key)
        if x is None:
            return "-"
        if x.n_seeds < 2:
            return f"{x.delta:+.3f} (1 seed: no interval)"
        star = " *" if x.significant else ""
        return f"{x.delta:+.3f} [{x.lo:+.3f}, {x.hi:+.3f}]{star}"

    name = r.model + (" (control)" if r.is_control else "")
    ratio = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    e0 = (f" | {_fmt(r.start_map_mean)} ± {_fmt(r.start_map_std)}" if r.start_map_mean is not None else " | -") if start else ""
    if not r.params:
        return f"| {name} | {r.n_ok}/{r.n_trials}{e0} | - | - | - | - | - | - | {ci('map')} | {ci('map50')} | - | - | - | - |"
    figures = " | ".join(f"{_fmt(r.mean(src, key))} ± {_fmt(r.std(src, key))}"
                         for key in ("map", "map50") for src in ("ultra", "coco"))
    return (f"| {name} | {r.n_ok}/{r.n_trials}{e0} | {figures} | {_fmt(r.precision)} | {_fmt(r.recall)} "
            f"| {ci('map')} | {ci('map50')} | {r.params / 1e6:.3f}M | {_fmt(r.gflops_640, 2)} | {ratio(r.latency_ratio)} "
            f"| {ratio(r.train_speed_ratio)} |")


def _p(p) -> str:
    return "-" if p is None or not math.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _family_size(summary: SweepSummary) -> int:
    return len(summary.compared)


def verdict_lines(summary: SweepSummary) -> list[str]:
    """The 'Verdicts' section: family-wise table, power, one verdict line per model, what the sweep can conclude."""
    rows = summary.compared
    eff = summary.effect
    if not rows:
        return []
    k = len(rows)
    x0 = rows[0].diff["map"].adjusted
    sim = f"{100 * (x0.sim_level if x0 else 1 - (1 - LEVEL) / k):.1f}%"
    first, _, independent = summary.settings.figures
    out = [
        f"## Verdicts ({first}, {independent}; {k} models against {summary.baseline}, family-wise 5%)",
        "",
        f"| model | seeds | Δ | simultaneous 95% CI (Bonferroni: each at {sim}) | p (Holm) | SD of Δ over seeds "
        f"| image SD | detectable at 80% power | seeds for Δ = {eff:g} | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        x = r.diff["map"]
        one, flat = x.n_seeds < 2, stats.no_spread(x.ci)  # flat: zero spread, no noise to plan with
        need = x.seeds_needed
        need_s = ("-" if one or flat else str(need) if need else
                  f"out of reach: the validation images alone hide < {x.image_floor:.4f}")
        adj = x.adjusted
        sim_ci = ("no interval (1 seed)" if one else f"[{adj.sim_lo:+.4f}, {adj.sim_hi:+.4f}]" if adj else
                  "no family-wise interval")
        out.append(
            f"| {r.model} | {x.n_seeds} | {x.delta:+.4f} | {sim_ci} "
            f"| {_p(adj.p_holm if adj else None)} | {_fmt(x.ci.sd_seed, 4)} | {_fmt(math.sqrt(x.ci.var_image), 4)} "
            f"| {'-' if one or flat else '≥ ' + _fmt(x.mdd, 3)} | {need_s} | {x.verdict} |")
    notes = [f"- {r.model}: {r.diff['map'].ci.note}" for r in rows
             if r.diff["map"].ci.note and r.diff["map"].n_seeds > 1]
    out += [""] + notes if notes else []
    out += ["", "**Verdict per model:**", ""]
    dec = summary.decision if summary.decision is not None and summary.decision.declared else None
    out += [f"- {r.model}: {dec.model(r.model).text if dec and dec.model(r.model) else r.diff['map'].verdict}"
            for r in rows]
    better = [r.model for r in rows if r.diff["map"].verdict == "better"]
    out += ["", ("Best placement (family-wise 5%): " + ", ".join(better) + " (better than the baseline)." if better else
                 "No model is shown better than the baseline at family-wise 5%; a larger mean is not evidence.")]
    out += [_can_conclude(rows, summary, eff)]
    if summary.seeds_extended:
        out += ["", f"**Seeds extended after looking** (planned {summary.planned_seeds}, now also "
                    f"{summary.seeds_extended}): the interval is not a fixed-design interval. For a confirmatory "
                    "answer, plan the seeds first (`yolo-attn compare --plan`) and run them into a new folder."]
    return out


def decision_lines(summary: SweepSummary) -> list[str]:
    """The 'Decision' section: the rule beside the outcome (declared in config.json before the first trial, or the
    default rule applied at the final look of a fixed-seed sweep), the looks taken, one line per model."""
    dec = summary.decision
    if dec is None:
        return []
    r = dec.rule
    first, second, independent = summary.settings.figures
    metric = {"mAP50-95": first, "mAP50": second}.get(r["metric"], r["metric"])  # the rule names the box figures
    looks = ", ".join(map(str, r["looks"]))
    rule = (f"margin ±{r['margin']:g} {metric} (a difference worth having), α {r['alpha']:g} family-wise (Holm "
            f"across the models; equivalence by two one-sided tests at α), looks at {looks} seeds "
            f"({r['spending']} α spending), at most {r['max_seeds']} seeds")
    if dec.declared:
        head = [f"## Decision under the declared rule ({metric}, {independent})", "",
                f"Rule declared in config.json at {r['declared_at']}, before the first trial: {rule}."]
    else:
        head = [f"## Decision at the final look under the default rule ({metric}, {independent})", "",
                f"Not declared before the sweep (a fixed-seed sweep; `--until-decided` or `--margin` declare one): the "
                f"default rule applied at its one look, {rule}."]
    taken = ", ".join(map(str, dec.looks_taken)) or f"none yet (the first look needs {r['looks'][0]} seeds)"
    state = "decided" if dec.done and all(m.outcome in ("better", "worse", "equivalent") for m in dec.models) else \
        "ended at the last look" if dec.done else "still running: rerun the same command to continue"
    head += ["", f"Looks taken: {taken} ({state}). Trials used: {dec.trials_used} of the fixed design's "
                 f"{dec.trials_fixed} ({len(dec.models) + 1} models x {r['max_seeds']} seeds).", ""]
    lines = [f"- {md_text(m.model)}: {m.text}" + (f" (stopped training at {m.stopped_at} seeds)"
                                                  if dec.declared and m.stopped_at else "") for m in dec.models]
    return [""] + head + lines


def _can_conclude(rows: list[ModelRow], summary: SweepSummary, eff: float) -> str:
    mdds = [r.diff["map"].mdd for r in rows if r.diff["map"].n_seeds > 1]
    mdds = [m for m in mdds if m is not None and math.isfinite(m)]
    if not mdds and any(stats.no_spread(r.diff["map"].ci) for r in rows):
        return ("What this sweep can conclude: nothing about the size of a difference: every seed and image sample "
                "gave the same difference (no noise measured; untrained models? train longer).")
    if not mdds:
        return "With one seed nothing can be said about seed noise: run at least 2 (better 5+) seeds."
    needs = [r.diff["map"].seeds_needed for r in rows]
    need_txt = (f"detecting Δ = {eff:g} would take {max(needs)} seeds per model (80% power, family-wise 5%)"
                if all(needs) else f"Δ = {eff:g} is out of reach for at least one model with this validation set "
                "at any number of seeds (more validation images are needed)")
    return (f"What this sweep can conclude: differences of about {min(mdds):.3f}-{max(mdds):.3f} "
            f"{summary.settings.figures[0]} or more "
            f"would be detected 80% of the time; smaller ones would mostly go unseen, and {need_txt}.")


def write_outputs(store: Store, records: list[TrialRecord], summary: SweepSummary) -> dict[str, Path]:
    root = store.root
    out = {}
    out["json"] = store.write_summary(summary)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLS)
    w.writeheader()
    for r in summary.models:
        w.writerow({k: ("" if v is None else v) for k, v in _flat(r).items()})
    out["csv"] = atomic_write(root / "summary.csv", buf.getvalue())
    out["md"] = atomic_write(root / "summary.md", markdown(summary))
    ok_recs = [r for r in records if r.ok]
    try:
        out["plot_diff"] = plots.diff_plot(summary, root / "diff_to_baseline.png")
        out["plot_epochs"] = plots.epochs_plot(summary, ok_recs, root / "map_over_epochs.png")
        out["plot_pr"] = plots.pr_plot(summary, ok_recs, root / "precision_recall.png")
    except Exception as exc:  # a plot must never lose the table
        summary.warnings.append(f"plotting failed: {type(exc).__name__}: {exc}")
        store.write_summary(summary)
    return out
