"""Statistics of a sweep: the paired difference to the baseline, its interval, many models at once, and power.

What is estimated
-----------------
For seed s, model and baseline are trained with the same seed (same data order and augmentation,
tested in ``tests/test_stats.py``) and validated on the same images. The per-seed paired difference

    d_s = mAP(model, s) - mAP(baseline, s) = Delta + e_s + c + u_s

has three parts besides the true difference Delta (the difference expected over training seeds and
over validation sets drawn like this one): the training-seed noise e_s (independent over seeds), the
validation-set error c that *every* seed shares (the same images are hard for all of them), and a
validation-set error u_s that differs between seeds. The estimate is ``delta = mean_s d_s``; its
variance is ``(var(e) + var(u)) / S + var(c)``: the shared image part does not shrink with more seeds.

The interval (``paired_diff_ci``)
-------------------------------
* ``a = s_d^2 / S`` with ``s_d^2`` the sample variance of the S per-seed differences (it estimates
  ``var(e) + var(u)``; ``S - 1`` degrees of freedom);
* ``b = var(c)`` from the image bootstrap (one shared set of image samples for every model and
  seed, :func:`yolo_attn.scoring.bootstrap.image_weights`): with ``V`` the bootstrap variance of
  ``mean_s d_s`` and ``v`` the mean over seeds of the bootstrap variance of ``d_s``,
  ``V = var(c) + var(u)/S`` and ``v = var(c) + var(u)``,
  so ``b = (S V - v) / (S - 1)`` (clipped at 0; ``u`` is already in ``s_d^2`` and is not counted twice),
  and at least ``V - a``: the interval is never narrower than the image bootstrap of the seeds' mean itself, even
  when the seeds agree by chance (``a`` estimates at least ``var(u)/S``; with few seeds of a coarse metric such
  as top-1 accuracy on few images it can be 0);
* half-width ``h = sqrt(t_{S-1}^2 a + t_{B-1}^2 b)`` with ``t_n`` the two-sided ``level`` quantile of
  Student's t with n degrees of freedom (B = number of bootstrap replicates). Each variance part is
  scaled by the critical value of its own estimate, as in Banerjee's interval for a sum of variances
  (Banerjee 1961, "On confidence interval for two-means problem based on separate estimates of
  variances and tabulated values of t-table", Sankhya A 23): it keeps at least the nominal coverage,
  where a Welch-Satterthwaite pooled df under-covers when the seed part is small by chance (measured:
  86-92% at 2 seeds when the seed variance dominates).

With no bootstrap replicates ``b = 0`` and the interval is the paired t-interval. With one seed there
is no seed-level estimate: ``lo``/``hi`` are NaN and ``note`` says why (the report prints that, not
an interval). Assumptions: the seed effects of different seeds are independent and roughly normal
(t-interval); the image bootstrap represents validation-set sampling (images independent); seed s of
the model and of the baseline see the same data stream. Coverage is checked by simulation over 2-20
seeds and seed-to-image variance ratios 0-100 (``tests/test_stats.py``).

Many models (``adjust``)
------------------------
A sweep compares k models with one baseline. Per-model intervals are at ``level``; the family-wise
verdict uses Holm's step-down adjustment (Holm 1979, Scand. J. Statist. 6) of the p-values that
invert the same interval (valid under any dependence, e.g. the shared baseline), and the
simultaneous intervals are Bonferroni intervals at level ``1 - (1 - level) / k``.

Power (``power``, ``min_detectable``, ``seeds_needed``)
-------------------------------------------------------
Approximation: ``delta / se`` is noncentral t with ``S - 1`` degrees of freedom and noncentrality
``Delta / se``, ``se = sqrt(sd_d^2 / S + var(c))``; the test rejects when ``|t|`` exceeds the
interval's critical value ``h / se`` (at the family's Bonferroni level, i.e. Holm's first step). With
``df -> inf`` this is the normal power ``Phi(D/se - z) + Phi(-D/se - z)`` (tested). Since ``var(c)``
does not shrink with seeds, an effect below about ``2.8 sqrt(var(c))`` cannot be detected with any
number of seeds on this validation set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special as _sp  # the distributions' functions themselves: scipy.stats costs 1 s to import

POWER = 0.80
# The fewest image-bootstrap replicates a sweep accepts. The shared validation-image variance ``b`` is a sample
# variance over the B replicates (B - 1 degrees of freedom): 0 or 1 replicate cannot estimate it at all (it would
# count as 0, an interval narrower than stated), and its relative standard error sqrt(2 / (B - 1)) is 20% at
# B = 50, the count Efron & Tibshirani (1993, An Introduction to the Bootstrap, sec. 6.4) give as usually enough
# for a bootstrap standard error (200 seldom exceeded).
MIN_BOOT = 50
METHOD = ("paired t over seeds, per-seed variance plus the shared validation-image variance from the image "
          "bootstrap, each scaled by its own t critical value (Banerjee)")


def check_n_boot(n_boot: int) -> int:
    """``n_boot`` if the interval can use that many bootstrap replicates; ``ValueError`` saying why not."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < MIN_BOOT:
        raise ValueError(
            f"--boot {n_boot}: at least {MIN_BOOT} bootstrap replicates are needed. The interval adds the "
            "validation-image variance estimated from the replicates; with 0 or 1 it would be taken as 0 (an interval "
            f"narrower than stated), and below {MIN_BOOT} the estimate is off by more than 20% (its relative error is "
            "sqrt(2 / (B - 1)))")
    return int(n_boot)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value; NaN for none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


# ------------------------------------------------------------------------------------------------
# The interval, vectorised over leading axes (one call per sweep in the report, many in the tests)
# ------------------------------------------------------------------------------------------------
def variance_parts(d: np.ndarray, boot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the module docstring for per-seed differences ``d`` (..., S) and replicates ``boot`` (..., S, B)."""
    d = np.asarray(d, float)
    S = d.shape[-1]
    a = d.var(axis=-1, ddof=1) / S if S > 1 else np.full(d.shape[:-1], np.nan)
    if boot is None or np.shape(boot)[-1] < 2:
        return a, np.zeros(d.shape[:-1])
    boot = np.asarray(boot, float)
    V = boot.mean(axis=-2).var(axis=-1, ddof=1)
    if S == 1:
        return a, V
    v = boot.var(axis=-1, ddof=1).mean(axis=-1)
    b = np.clip((S * V - v) / (S - 1), 0.0, None)
    # The floor: a + b never below V, the image-sampling variance of the seeds' mean difference itself. ``a``
    # estimates var(e)/S + var(u)/S >= var(u)/S, so it binds only when the seeds' spread is smaller than the image
    # noise each of them carries, e.g. 2 seeds of an accuracy (steps of 1/n images) with the same difference: a = 0
    # and b = 0 gave a zero-width interval and a verdict from it.
    return a, np.maximum(b, V - np.nan_to_num(a, nan=0.0))


def t_quantile(q: float, df: float) -> float:
    """Student t quantile: the ``x`` with ``P(T_df <= x) = q``."""
    return float(_sp.stdtrit(df, q))


def half_width(a, b, n_seeds: int, n_boot: int, level: float = 0.95):
    """Banerjee half-width ``sqrt(t_{S-1}^2 a + t_{B-1}^2 b)`` at two-sided ``level`` (array in, array out)."""
    q = 1 - (1 - np.asarray(level, float)) / 2
    ts = _sp.stdtrit(max(n_seeds - 1, 1), q)
    tb = _sp.stdtrit(n_boot - 1, q) if n_boot > 1 else _sp.ndtri(q)
    return np.sqrt(ts**2 * np.asarray(a, float) + tb**2 * np.asarray(b, float))


def p_value(delta, a, b, n_seeds: int, n_boot: int, iters: int = 45):
    """Two-sided p-value inverting the interval: the largest alpha whose interval still contains 0.

    Vectorised bisection on alpha (the half-width decreases as alpha grows; Brent's method for one
    value). 0 variance: p = 0 for a non-zero difference, 1 for none. Resolution about 1e-13.
    """
    delta, a, b = (np.asarray(x, float) for x in np.broadcast_arrays(delta, a, b))
    if delta.ndim == 0 and a + b > 0 and delta != 0:  # one sweep: root finding is faster than bisection
        f = lambda al: float(half_width(a, b, n_seeds, n_boot, 1 - al)) - abs(float(delta))  # noqa: E731
        if f(1.0 - 1e-12) > 0:
            return np.float64(1.0)
        from scipy.optimize import brentq

        return np.float64(brentq(f, 1e-15, 1.0 - 1e-12, xtol=1e-16, rtol=1e-10) if f(1e-15) > 0 else 0.0)
    lo, hi = np.zeros(delta.shape), np.ones(delta.shape)
    for _ in range(iters):
        mid = (lo + hi) / 2
        inside = np.abs(delta) <= half_width(a, b, n_seeds, n_boot, 1 - mid)
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    p = (lo + hi) / 2
    zero = (a + b) <= 0
    return np.where(zero, np.where(delta == 0, 1.0, 0.0), p)


def as_number(v, default: float = math.nan) -> float:
    """``v`` as a float (JSON writes NaN and infinities as themselves); ``default`` for a missing value."""
    if v is None:
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


@dataclass
class DiffCI:
    """Difference model - baseline (mean over paired seeds) with its interval (see the module docstring)."""

    delta: float
    lo: float
    hi: float
    per_seed: list[float]
    n_seeds: int
    level: float = 0.95
    var_seed: float = math.nan  # a: s_d^2 / S
    var_image: float = 0.0  # b: the validation-image variance shared by all seeds
    n_boot: int = 0
    p: float = math.nan
    note: str | None = None
    method: str = field(default=METHOD)

    @property
    def sd_seed(self) -> float:
        """Sample SD of the per-seed differences (seed noise plus per-seed image noise)."""
        return math.sqrt(self.var_seed * self.n_seeds) if self.n_seeds > 1 else math.nan

    @property
    def se(self) -> float:
        return math.sqrt(self.var_seed + self.var_image) if self.n_seeds > 1 else math.nan

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)

    def interval(self, level: float) -> tuple[float, float]:
        """The interval at another level (e.g. Bonferroni-adjusted); NaN with one seed."""
        if self.n_seeds < 2:
            return math.nan, math.nan
        h = float(half_width(self.var_seed, self.var_image, self.n_seeds, self.n_boot, level))
        return self.delta - h, self.delta + h

    @classmethod
    def from_json(cls, d: dict) -> "DiffCI":
        """The interval of a summary's ``diff`` entry (:meth:`as_dict`'s keys; files of older versions lack some)."""
        return cls(float(d["delta"]), as_number(d.get("lo")), as_number(d.get("hi")), [float(x) for x in d.get("per_seed") or []],
                   int(d.get("n_seeds") or 0), float(d.get("level") or 0.95), as_number(d.get("var_seed")),
                   as_number(d.get("var_image"), 0.0), int(d.get("n_boot") or 0), as_number(d.get("p")), d.get("note"),
                   d.get("method") or METHOD)

    def as_dict(self) -> dict:
        return {"delta": self.delta, "lo": self.lo, "hi": self.hi, "per_seed": self.per_seed,
                "n_seeds": self.n_seeds, "level": self.level, "excludes_zero": self.excludes_zero,
                "sd_seed": self.sd_seed, "var_seed": self.var_seed, "var_image": self.var_image, "se": self.se,
                "n_boot": self.n_boot, "p": self.p, "note": self.note, "method": self.method}


def paired_diff_ci(
    model_point,
    base_point,
    model_reps=None,
    base_reps=None,
    level: float = 0.95,
    seed: int = 0,
) -> DiffCI:
    """Interval of ``mean_s(model[s] - base[s])``, paired over seeds, with the image-bootstrap variance.

    Args:
        model_point, base_point: (S,) full-data statistic per seed (same seeds, same order).
        model_reps, base_reps: (S, B) the statistic on bootstrap image sample b (the same samples for
            both and for every seed); None: seed-level interval only (paired t).
        level: confidence level.
        seed: kept for callers of the former bootstrap interval; the interval is not random.
    """
    mp = np.asarray(model_point, float).reshape(-1)
    bp = np.asarray(base_point, float).reshape(-1)
    if mp.shape != bp.shape or not mp.size:
        raise ValueError("paired_diff_ci: model and baseline need the same, non-empty set of seeds")
    S = mp.size
    d = mp - bp
    boot = None
    if model_reps is not None and base_reps is not None:
        boot = np.asarray(model_reps, float).reshape(S, -1) - np.asarray(base_reps, float).reshape(S, -1)
    B = 0 if boot is None else boot.shape[1]
    a, b = (float(x) for x in variance_parts(d, boot))
    delta = float(d.mean())
    if S < 2:
        return DiffCI(delta, math.nan, math.nan, d.tolist(), S, level, math.nan, b, B, math.nan,
                      note="1 seed: no seed-level interval (seed noise cannot be estimated)")
    h = float(half_width(a, b, S, B, level))
    p = float(p_value(delta, a, b, S, B))
    return DiffCI(delta, delta - h, delta + h, d.tolist(), S, level, a, b, B, p)


# ------------------------------------------------------------------------------------------------
# Many models against one baseline
# ------------------------------------------------------------------------------------------------
def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values along the last axis (NaN stays NaN and is not in the family)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(np.where(np.isfinite(p), p, np.inf), axis=-1, kind="mergesort")  # NaN last
    ps = np.take_along_axis(p, order, axis=-1)
    k = np.isfinite(p).sum(axis=-1, keepdims=True)
    mult = k - np.arange(p.shape[-1])
    adj = np.minimum(1.0, np.fmax.accumulate(mult * ps, axis=-1))
    adj = np.where(np.isfinite(ps), adj, np.nan)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


@dataclass
class Adjusted:
    """Family-wise result for one model: Holm p, Bonferroni simultaneous interval, verdict."""

    p_holm: float
    sim_lo: float
    sim_hi: float
    family_size: int
    sim_level: float
    significant: bool
    mdd: float  # minimum detectable difference at 80% power, family-wise alpha
    verdict: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> "Adjusted | None":
        """The family-wise part of a summary's ``diff`` entry (merged into it by the report); None where it has none."""
        if "p_holm" not in d or "verdict" not in d:
            return None
        return cls(as_number(d["p_holm"]), as_number(d.get("sim_lo")), as_number(d.get("sim_hi")), int(d.get("family_size") or 0),
                   as_number(d.get("sim_level")), bool(d.get("significant")), as_number(d.get("mdd")), str(d["verdict"]))


def adjust(cis: dict[str, DiffCI], level: float = 0.95, power_target: float = POWER) -> dict[str, Adjusted]:
    """Holm-adjusted tests, Bonferroni simultaneous intervals and verdicts for k models against one baseline."""
    names = list(cis)
    k = sum(1 for n in names if cis[n].n_seeds >= 2)
    p_adj = holm([cis[n].p for n in names])
    alpha = 1 - level
    sim_level = 1 - alpha / max(k, 1)
    out = {}
    for n, padj in zip(names, p_adj):
        ci = cis[n]
        lo, hi = ci.interval(sim_level)
        sig = bool(np.isfinite(padj) and padj < alpha)
        mdd = (min_detectable(ci.sd_seed, ci.var_image, ci.n_seeds, ci.n_boot, alpha / max(k, 1), power_target)
               if ci.n_seeds >= 2 else math.nan)
        out[n] = Adjusted(float(padj), lo, hi, k, sim_level, sig, mdd, verdict(ci, sig, mdd))
    return out


NO_SPREAD = ("no spread measured: every seed and image sample gave the same difference (identical predictions, "
             "or untrained models)")


def no_spread(ci: DiffCI) -> bool:
    """The seeds and the image bootstrap gave one and the same difference: a zero-width interval that measures no
    noise, so it supports no verdict and no power statement (e.g. models that all score 0)."""
    return ci.n_seeds >= 2 and ci.sd_seed == 0 and ci.var_image == 0


def verdict(ci: DiffCI, significant: bool, mdd: float) -> str:
    """One of 'better' / 'worse' (family-wise adjusted), 'no detectable difference (could detect >= X)',
    'too few seeds to say'.

    'too few seeds to say': fewer than 2 seeds, or (not significant and) the detectable difference is
    not finite or larger than 1 (the whole mAP scale).
    """
    if ci.n_seeds < 2:
        return "too few seeds to say"
    if significant:
        return "better" if ci.delta > 0 else "worse"
    if no_spread(ci):
        return NO_SPREAD
    if not math.isfinite(mdd) or mdd > 1.0:
        return "too few seeds to say"
    return f"no detectable difference (could detect ≥ {mdd:.3f})"


# ------------------------------------------------------------------------------------------------
# Power
# ------------------------------------------------------------------------------------------------
def power(effect: float, sd_seed: float, var_image: float, n_seeds: int, n_boot: int = 0, alpha: float = 0.05,
          df: float | None = None) -> float:
    """Approximate power of the interval's test to detect a true difference ``effect`` (module docstring).

    ``sd_seed``: SD of the per-seed differences; ``var_image``: shared image variance; ``df``
    overrides ``n_seeds - 1`` (a huge df gives the normal approximation).
    """
    if n_seeds < 2:
        return math.nan
    a = sd_seed**2 / n_seeds
    se = math.sqrt(a + var_image)
    if se == 0:
        return 1.0 if effect != 0 else alpha
    crit = float(half_width(a, var_image, n_seeds, n_boot, 1 - alpha)) / se
    if df is not None:  # normal / custom df: the critical value follows the same df
        crit = t_quantile(1 - alpha / 2, df)
    nu = df if df is not None else n_seeds - 1
    nc = effect / se
    return float(1.0 - _sp.nctdtr(nu, nc, crit) + _sp.nctdtr(nu, nc, -crit))  # noncentral t: P(T > crit) + P(T < -crit)


def min_detectable(sd_seed: float, var_image: float, n_seeds: int, n_boot: int = 0, alpha: float = 0.05,
                   target: float = POWER, df: float | None = None) -> float:
    """Smallest true difference detected with probability ``target`` (bisection on the power curve)."""
    if n_seeds < 2 or not (math.isfinite(sd_seed) and math.isfinite(var_image)):
        return math.nan
    se = math.sqrt(sd_seed**2 / n_seeds + var_image)
    if se == 0:  # no spread measured (identical differences in every seed and image sample): no noise to plan with
        return math.nan
    lo, hi = 0.0, se
    while power(hi, sd_seed, var_image, n_seeds, n_boot, alpha, df) < target:
        hi *= 2
        if hi > 1e6 * se:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        if power(mid, sd_seed, var_image, n_seeds, n_boot, alpha, df) < target:
            lo = mid
        else:
            hi = mid
    return hi


def seeds_needed(effect: float, sd_seed: float, var_image: float, n_boot: int = 0, alpha: float = 0.05,
                 target: float = POWER, max_seeds: int = 200) -> int | None:
    """Fewest seeds whose power to detect ``effect`` reaches ``target``; None if no number of seeds does.

    2..max_seeds: the noncentral-t power; beyond, the normal approximation
    ``sd^2 / S + var_image <= (effect / (z_{1-alpha/2} + z_target))^2`` (t and z agree there). None when
    the shared validation-image variance alone is too large (then more validation images are needed).
    """
    if not (math.isfinite(sd_seed) and math.isfinite(var_image)) or effect <= 0:
        return None
    for s in range(2, max_seeds + 1):
        if power(effect, sd_seed, var_image, s, n_boot, alpha) >= target:
            return s
    room = (effect / (_sp.ndtri(1 - alpha / 2) + _sp.ndtri(target))) ** 2 - var_image
    return int(math.ceil(sd_seed**2 / room)) if room > 0 else None
