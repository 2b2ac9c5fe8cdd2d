"""The one place where the studies read the statistics of a sweep (adapter to :mod:`yolo_attn.compare.summary`).

A study never computes an interval itself: the difference of a model to its baseline, its interval,
and (where the report's family-wise adjustment provides them) the verdict and the minimum detectable
difference come from the sweep's summary (:class:`~yolo_attn.compare.summary.ModelRow`'s
:class:`~yolo_attn.compare.summary.MetricDiff`, the one interval type of a comparison). Contrasts between two
non-baseline models of one sweep (attention with ``fuse: mul`` minus ``fuse: add``) are paired over
seeds and go through ``stats.paired_diff_ci`` on the per-seed values (seed level only: the shared
validation-image variance is not available outside the sweep, which the report says).

Verdict words follow the compare report: ``better``, ``worse``, ``no detectable difference (could detect ≥ X)``
and ``too few seeds to say``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..compare.summary import MetricDiff, ModelRow, SweepSummary



def effect_of(row: ModelRow, metric: str = "map") -> MetricDiff | None:
    """The difference of one summary row to the sweep's baseline (None for the baseline or without results)."""
    return row.difference(metric)


def contrast(a: MetricDiff, b: MetricDiff) -> MetricDiff | None:
    """A - B for two effects against the same baseline, paired over their common seeds (seed-level interval)."""
    from ..compare import stats
    from ..compare.summary import MetricDiff

    if not a.seeds or not b.seeds:
        return None
    pa, pb = dict(zip(a.seeds, a.per_seed)), dict(zip(b.seeds, b.per_seed))
    common = sorted(set(pa) & set(pb))
    if not common:
        return None
    # (A - base) - (B - base) = A - B per seed: the baseline cancels
    return MetricDiff(stats.paired_diff_ci([pa[s] for s in common], [pb[s] for s in common]), common)


def fmt_effect(e: MetricDiff | None) -> str:
    """``+0.012 [-0.004, +0.028]`` (or the single-seed value with no interval)."""
    if e is None:
        return "-"
    if not e.has_interval:
        return f"{e.delta:+.3f} (no interval)"
    return f"{e.delta:+.3f} [{e.lo:+.3f}, {e.hi:+.3f}]"


def sentence(e: MetricDiff | None, subject: str, metric_name: str = "mAP50-95") -> str:
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
    """One model of a sweep as the studies use it (from the summary's row)."""

    label: str
    is_baseline: bool
    n_ok: int
    map_mean: float  # COCOeval mAP50-95, mean over seeds
    map_std: float
    params: int | None
    params_ratio: float | None
    latency_ms: float | None
    latency_ratio: float | None
    effect: MetricDiff | None  # against the sweep's baseline

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("label", "is_baseline", "n_ok", "map_mean", "map_std", "params",
                                           "params_ratio", "latency_ms", "latency_ratio")}
        d["effect"] = self.effect.brief() if self.effect else None
        return d


def model_results(summary: SweepSummary, metric: str = "map") -> dict[str, ModelResult]:
    """label -> :class:`ModelResult` for every model of a compare summary."""
    return {row.model: ModelResult(row.model, row.is_baseline, row.n_ok, row.mean("coco", metric), row.std("coco", metric),
                                   row.params, row.params_ratio, row.latency_ms, row.latency_ratio, effect_of(row, metric))
            for row in summary.models}
