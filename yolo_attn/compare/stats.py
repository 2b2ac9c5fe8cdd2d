"""Statistics of a sweep: mean/std over seeds and the paired, two-level bootstrap CI of a difference.

Design (documented in :mod:`yolo_attn.compare`): the difference of a model to the baseline is

    delta = mean over seeds s of [ mAP(model, s) - mAP(baseline, s) ]

computed on the same validation images. Two sources of noise make it uncertain: the training seed
and the finite set of validation images. The 95% CI comes from a two-level (hierarchical) paired
bootstrap: each replicate b draws

* an image multiset (N images with replacement, weights ``W[b]``) shared by *every* model and seed
  (pairing over images: the same hard images count for both sides), and
* a multiset of seeds (S of the seeds with replacement) shared by model and baseline (pairing over
  seeds: seed s of the model is compared with seed s of the baseline, which saw the same data
  order and augmentation),

and recomputes delta from the per-image matching results (:func:`yolo_attn.compare.cocoeval.weighted_map`).
The CI is the 2.5 and 97.5 percentiles of the replicate deltas. With few seeds (2-3) the seed level
is coarse, so the interval mostly reflects image sampling; the per-seed deltas are reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def image_weights(n_images: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Bootstrap weights (n_boot x n_images): how often each image is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    if n_images == 0:
        return np.zeros((n_boot, 0))
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n_boot).astype(float)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value; NaN for none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


@dataclass
class DiffCI:
    """Difference model - baseline with its bootstrap CI."""

    delta: float
    lo: float
    hi: float
    per_seed: list[float]
    n_seeds: int
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)

    def as_dict(self) -> dict:
        return {"delta": self.delta, "lo": self.lo, "hi": self.hi, "per_seed": self.per_seed,
                "n_seeds": self.n_seeds, "level": self.level, "excludes_zero": self.excludes_zero}


def paired_diff_ci(
    model_point,
    base_point,
    model_reps=None,
    base_reps=None,
    level: float = 0.95,
    seed: int = 0,
    resample_seeds: bool = True,
) -> DiffCI:
    """Paired two-level bootstrap CI of ``mean_s(model[s] - base[s])``.

    Args:
        model_point, base_point: (S,) full-data statistic per seed (same seeds, same order).
        model_reps, base_reps: (S, B) the statistic on bootstrap image sample b (same samples for both);
            None bootstraps over seeds only.
        level: confidence level.
        seed: RNG seed of the seed-level resampling.
        resample_seeds: also resample seeds (set False to get the image-only interval).
    """
    mp = np.asarray(model_point, float).reshape(-1)
    bp = np.asarray(base_point, float).reshape(-1)
    if mp.shape != bp.shape or not mp.size:
        raise ValueError("paired_diff_ci: model and baseline need the same, non-empty set of seeds")
    S = mp.size
    per_seed = (mp - bp).tolist()
    delta = float(np.mean(mp - bp))
    if model_reps is None:
        d = (mp - bp)[None, :]
        B = 2000
        diffs = np.repeat(d, B, axis=0)
    else:
        mr = np.asarray(model_reps, float).reshape(S, -1)
        br = np.asarray(base_reps, float).reshape(S, -1)
        diffs = (mr - br).T  # (B, S)
        B = diffs.shape[0]
    if resample_seeds and S > 1:
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, S, size=(B, S))
        reps = np.take_along_axis(diffs, pick, axis=1).mean(1)
    else:
        reps = diffs.mean(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return DiffCI(delta, float(lo), float(hi), per_seed, S, level)
