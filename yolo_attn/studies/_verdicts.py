"""The one place where the studies read the statistics of a sweep (adapter to :mod:`yolo_attn.compare.stats`).

A study never computes an interval itself: the difference of a model to its baseline, its interval,
and (where :mod:`yolo_attn.compare.stats` provides them) the verdict and the minimum detectable
difference come from the sweep's ``summary.json`` row (``row["diff"][metric]``). Contrasts between two
non-baseline models of one sweep (attention with ``fuse: mul`` minus ``fuse: add``) are paired over
seeds and go through ``stats.paired_diff_ci`` on the per-seed values (seed level only: the shared
validation-image variance is not available outside the sweep, which the report says).

Field names of the summary are read here and nowhere else, so a change of the summary's format is
fixed in this file. Verdict words follow the compare report: ``better``, ``worse``,
``no detectable difference (could detect ≥ X)`` and ``too few seeds to say``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Effect:
    """One difference (model - baseline, or model A - model B) with its interval and verdict."""

    delta: float
    lo: float
    hi: float
    n_seeds: int
    verdict: str
    per_seed: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    mdd: float | None = None  # minimum detectable difference (80% power) when the statistics provide it
    p: float | None = None
    level: float = 0.95
    sd_seed: float | None = None  # SD over seeds of the per-seed differences (None with one seed or when not given)

    @property
    def has_interval(self) -> bool:
        return self.n_seeds >= 2 and math.isfinite(self.lo) and math.isfinite(self.hi)

    def as_dict(self) -> dict:
        return {"delta": self.delta, "lo": self.lo, "hi": self.hi, "n_seeds": self.n_seeds, "verdict": self.verdict,
                "per_seed": self.per_seed, "seeds": self.seeds, "mdd": self.mdd, "p": self.p, "level": self.level,
                "sd_seed": self.sd_seed}


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fallback_verdict(delta: float, lo: float, hi: float, n: int, mdd: float | None) -> str:
    """The verdict when the summary carries none (the interval alone decides; no power statement)."""
    if n < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        return "too few seeds to say"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    if mdd is not None and math.isfinite(mdd):
        return f"no detectable difference (could detect ≥ {mdd:.3f})"
    return "no detectable difference"


def effect_of(row: dict, metric: str = "map") -> Effect | None:
    """The effect of one summary row against the sweep's baseline (None for the baseline or without results).

    The interval and its family-wise adjustment are read by their own readers (``stats.DiffCI.from_json``,
    ``stats.Adjusted.from_json``); a row without the adjustment (a single comparison) gets the minimum detectable
    difference from the interval and, unless it carries a verdict of its own, a verdict from the interval alone."""
    from ..compare import stats

    d = (row.get("diff") or {}).get(metric)
    if not d:
        return None
    ci, adj = stats.DiffCI.from_json(d), stats.Adjusted.from_json(d)
    n = ci.n_seeds
    lo, hi = (ci.lo, ci.hi) if n >= 2 else (math.nan, math.nan)  # one seed: no seed-level interval (would mislead)
    if adj is not None:
        mdd, verdict, p = adj.mdd, adj.verdict, adj.p_holm
    else:
        mdd = float(stats.min_detectable(ci.sd_seed, ci.var_image, n, ci.n_boot)) if n >= 2 else None
        verdict, p = d.get("verdict") or _fallback_verdict(ci.delta, lo, hi, n, mdd), ci.p
    sd = ci.sd_seed
    return Effect(ci.delta, lo, hi, n, verdict, list(ci.per_seed), [int(s) for s in d.get("seeds", [])], mdd, p, ci.level,
                  sd if n >= 2 and math.isfinite(sd) else None)


def contrast(a: Effect, b: Effect) -> Effect | None:
    """A - B for two effects against the same baseline, paired over their common seeds (seed-level interval)."""
    from ..compare import stats

    if not a.seeds or not b.seeds:
        return None
    pa, pb = dict(zip(a.seeds, a.per_seed)), dict(zip(b.seeds, b.per_seed))
    common = sorted(set(pa) & set(pb))
    if not common:
        return None
    # (A - base) - (B - base) = A - B per seed: the baseline cancels
    ci = stats.paired_diff_ci([pa[s] for s in common], [pb[s] for s in common])
    d = ci.as_dict()
    d["seeds"] = common
    return effect_of({"diff": {"map": d}}, "map")


def fmt_effect(e: Effect | None) -> str:
    """``+0.012 [-0.004, +0.028]`` (or the single-seed value with no interval)."""
    if e is None:
        return "-"
    if not e.has_interval:
        return f"{e.delta:+.3f} (no interval)"
    return f"{e.delta:+.3f} [{e.lo:+.3f}, {e.hi:+.3f}]"


def sentence(e: Effect | None, subject: str, metric_name: str = "mAP50-95") -> str:
    """One sentence on the effect, never stronger than its interval and power allow."""
    if e is None:
        return f"{subject}: no results yet."
    seeds = f"{e.n_seeds} seed{'s' if e.n_seeds != 1 else ''}"
    ci = f"{int(round(e.level * 100))}% CI [{e.lo:+.3f}, {e.hi:+.3f}]"
    if e.verdict == "too few seeds to say" or not e.has_interval:
        return (f"{subject}: too few seeds to say ({seeds}; observed Δ{metric_name} {e.delta:+.3f}"
                + (f", {ci}" if e.has_interval else ", no interval") + ").")
    if e.verdict in ("better", "worse"):
        way = "raised" if e.verdict == "better" else "lowered"
        return f"{subject} {way} {metric_name} by {abs(e.delta):.3f} ({ci}, {seeds})."
    reach = (f"; an effect smaller than {e.mdd:.3f} would likely be missed with {seeds}" if e.mdd is not None
             and math.isfinite(e.mdd) else f"; effects anywhere in [{e.lo:+.3f}, {e.hi:+.3f}] remain possible")
    if e.lo > 0 or e.hi < 0:  # the model's own interval excludes 0, the family-wise (Holm) test does not
        reach += ("; its own interval excludes 0, but the difference does not hold after the adjustment for comparing "
                  "several models with one baseline")
    return f"{subject}: no detectable effect on {metric_name} (Δ {e.delta:+.3f}, {ci}, {seeds}){reach}."


@dataclass(frozen=True)
class ModelResult:
    """One model of a sweep as the studies use it (read from a ``summary.json`` row)."""

    label: str
    is_baseline: bool
    n_ok: int
    map_mean: float  # COCOeval mAP50-95, mean over seeds
    map_std: float
    params: int | None
    params_ratio: float | None
    latency_ms: float | None
    latency_ratio: float | None
    effect: Effect | None  # against the sweep's baseline

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("label", "is_baseline", "n_ok", "map_mean", "map_std", "params",
                                           "params_ratio", "latency_ms", "latency_ratio")}
        d["effect"] = self.effect.as_dict() if self.effect else None
        return d


def model_results(summary: dict, metric: str = "map") -> dict[str, ModelResult]:
    """label -> :class:`ModelResult` for every model of a compare summary."""
    out = {}
    for row in summary.get("models", []):
        out[row["model"]] = ModelResult(
            row["model"], bool(row.get("is_baseline")), int(row.get("n_ok", 0)), _num(row.get(f"coco_{metric}_mean")),
            _num(row.get(f"coco_{metric}_std")), row.get("params"), row.get("params_ratio"), row.get("latency_ms"),
            row.get("latency_ratio"), effect_of(row, metric))
    return out
