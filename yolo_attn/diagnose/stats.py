"""Intervals used by the sections: paired image bootstrap of a mAP difference, t-interval over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit

from ..scoring import cocoeval
from ..scoring.bootstrap import image_weights


@dataclass
class Interval:
    """A point estimate with a 95% interval (``lo``/``hi`` None when there is too little data)."""

    est: float
    lo: float | None = None
    hi: float | None = None

    def excludes_zero(self) -> bool:
        return self.lo is not None and (self.lo > 0 or self.hi < 0)

    def fmt(self, digits: int = 3) -> str:
        if self.est is None or (isinstance(self.est, float) and math.isnan(self.est)):
            return "n/a"
        s = f"{self.est:+.{digits}f}"
        return s if self.lo is None else f"{s} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def paired_diff(pairs: list[tuple[cocoeval.EvalArrays, cocoeval.EvalArrays]], n_boot: int, seed: int) -> Interval:
    """Mean over ``pairs`` of mAP50-95(a) - mAP50-95(b) (top-1 accuracy for classification outcomes, which bring
    their own ``replicates``), with a percentile interval from resampling the images.

    Every pair is scored on the same images, so one set of image weights serves all of them (the pairs
    are seeds of a sweep, or one model with and without a change).
    """
    if not pairs:
        return Interval(float("nan"))
    n = pairs[0][0].n_images
    w = np.vstack([np.ones((1, n)), image_weights(n, n_boot, seed)])
    diff = np.zeros(len(w))
    for a, b in pairs:
        diff += _metric(a, w) - _metric(b, w)
    diff /= len(pairs)
    if n_boot < 20:
        return Interval(float(diff[0]))
    lo, hi = np.percentile(diff[1:], [2.5, 97.5])
    return Interval(float(diff[0]), float(lo), float(hi))


def _metric(arrays, w: np.ndarray) -> np.ndarray:
    """The figure the intervals compare on each image multiset: mAP50-95, or what the arrays' own ``replicates``
    give second (top-1 accuracy)."""
    replicates = getattr(arrays, "replicates", None)
    return replicates(w)[1] if replicates is not None else cocoeval.weighted_map(arrays, w)[1]


def seed_interval(values: list[float]) -> Interval:
    """Mean and Student-t 95% interval of per-seed values (no interval with fewer than two)."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not v.size:
        return Interval(float("nan"))
    if v.size < 2:
        return Interval(float(v.mean()))
    half = float(stdtrit(v.size - 1, 0.975)) * v.std(ddof=1) / math.sqrt(v.size)
    return Interval(float(v.mean()), float(v.mean() - half), float(v.mean() + half))
