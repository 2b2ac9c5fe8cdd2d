"""Decisions with a declared rule: seeds added in rounds until a model is better, worse or equivalent to the baseline.

The question is a decision (keep the attention layer or not), so the sweep declares before its first trial a
:class:`Rule`: the metric, the margin ``delta`` of a difference worth having, the family-wise error ``alpha``, the
seed counts at which it looks (``looks``, the last one ``max_seeds``) and the alpha-spending function. At each look
:func:`decide` (one model) or :func:`decide_family` (every model against one baseline, Holm across them) gives each
model one of

* ``better`` / ``worse``: the repeated confidence interval (RCI) of model - baseline excludes 0;
* ``equivalent``: the equivalence RCI lies within ``(-delta, +delta)`` (two one-sided tests);
* ``continue``: neither, and a later look is declared;
* ``undecided``: neither at the last look (the interval is reported as it stands).

Design (docs/decisions.md says why)
-----------------------------------
*Alpha spending.* The ``alpha`` of a two-sided test is spent over the looks by the Lan-DeMets spending function of
O'Brien-Fleming type (Lan & DeMets 1983, "Discrete sequential boundaries for clinical trials", Biometrika 70:659-663)
``alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))``, or of Pocock type ``alpha ln(1 + (e - 1) t)``, at the information
time ``t_k = n_k / max_seeds`` (seed counts: fixed when the rule is declared).

*Boundaries on the paired t statistic.* The critical values ``c_k`` (``n_k - 1`` degrees of freedom at look k: 1 at
a 2-seed first look) make the chance, with no true difference, that ``|T_j| >= c_j`` at some look ``j <= k`` equal
to ``alpha(t_k)`` for the paired t statistics of nested seeds themselves, not for their normal approximation: the
"significance level approach" (normal-theory boundaries turned into t quantiles of the same nominal level,
Jennison & Turnbull 2000, "Group Sequential Methods", sec. 3.8) errs by 5.4-5.8% at 4-9 looks of 2-10 seeds
(measured). :func:`t_boundaries` takes the first look's t quantile exactly and later ones from the exact joint
law of the nested t statistics, drawn through their sufficient statistics with a fixed seed (Monte Carlo, 2^19
paths, two standard errors on the safe side; at a large df it gives the published O'Brien-Fleming values, tested).
At a 2-seed first look the boundary is about 54000 (``p_1`` of 1e-5 with 1 df): it stops nothing but a sweep
that is decided already, and costs nothing.

*The image variance.* The repeated confidence interval at look k is the sweep's paired interval at the look's
nominal level ``p_k = 2 P(T_{n_k-1} > c_k)``: ``diff +/- sqrt(t_{n_k-1}^2 a + t_{B-1}^2 b)`` with the seed part
``a`` and the shared validation-image part ``b`` of :mod:`.stats` (:func:`.stats.variance_parts`,
:func:`.stats.half_width`, Banerjee's combination). ``b`` does not shrink with seeds, which makes successive looks
more correlated than the nested t statistics alone; that errs on the safe side (checked by simulation in the cells
of the coverage test, ``benchmarks/sequential_sim.py``).

*Equivalence* is Schuirmann's two one-sided tests (Schuirmann 1987, J. Pharmacokinet. Biopharm. 15:657-680), each
at level ``alpha`` with its own one-sided spending of ``alpha`` over the same looks: equivalent when the
``1 - 2 q_k`` RCI lies inside ``+/- delta`` (Jennison & Turnbull 1993, "Sequential equivalence testing and repeated
confidence intervals", Biometrics 49:31-43). It is a per-model claim at ``alpha``; a claim that *all* the models it
names are equivalent holds at ``alpha`` too (intersection-union).

*Many models.* Better/worse is tested with Holm's step-down across the k models, in its group-sequential form
(Ye, Li, Liu & Yao 2013, Stat. Med. 32:1112-1124; Maurer & Bretz 2013, Stat. Biopharm. Res. 5:311-320): a model
is tested with the spending design at ``alpha / (k - r)`` where r models are already rejected, and a rejection
passes its share on at once, to the current and to earlier looks of the models not yet decided.

The functions are vectorised over leading axes (one sweep in :func:`decide`, many in the simulation); all decide
from the data alone, so the same seeds always give the same history of decisions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
from scipy import special as _sp

from . import stats

OUTCOMES = ("better", "worse", "equivalent", "continue", "undecided")
_CONTINUE, _BETTER, _WORSE, _EQUIV = 0, 1, 2, 3
SPENDING = ("obrien-fleming", "pocock")
# The default margin: a difference below 0.01 mAP50-95 is not worth an attention layer (docs/decisions.md): that is
# about what the same extra latency buys by widening the model, and 3x the validation-image SE of the small sets
# the sweeps use, so that equivalence can be shown at all.
DEFAULT_MARGIN = 0.01
DEFAULT_LOOKS = (3, 5, 7, 10)
_PATHS, _PATH_SEED = 1 << 19, 20260101  # simulated null t paths for the boundaries (t_boundaries)


# ------------------------------------------------------------------------------------------------
# The declared rule
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """The decision rule, declared before the first trial (``config.json``); see the module docstring."""

    metric: str = "mAP50-95"
    alpha: float = 0.05
    margin: float = DEFAULT_MARGIN
    looks: tuple[int, ...] = DEFAULT_LOOKS
    max_seeds: int = DEFAULT_LOOKS[-1]
    declared_at: str = "1970-01-01T00:00:00+00:00"
    spending: str = "obrien-fleming"

    def __post_init__(self):
        object.__setattr__(self, "looks", _check_looks(self.looks))
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"Rule.metric: a metric name is needed, got {self.metric!r}")
        if not _is_number(self.alpha) or not 0 < self.alpha < 0.5:
            raise ValueError(f"Rule.alpha: the family-wise error must lie in (0, 0.5), got {self.alpha!r}")
        if not _is_number(self.margin) or not 0 < self.margin < math.inf:
            raise ValueError(f"Rule.margin: the margin of a difference worth having must be > 0, got {self.margin!r}")
        if isinstance(self.max_seeds, bool) or not isinstance(self.max_seeds, (int, np.integer)) \
                or self.max_seeds != self.looks[-1]:
            raise ValueError(f"Rule.max_seeds: must equal the last look ({self.looks[-1]}), got {self.max_seeds!r}")
        if self.spending not in SPENDING:
            raise ValueError(f"Rule.spending: one of {', '.join(SPENDING)}, got {self.spending!r}")
        try:
            datetime.fromisoformat(str(self.declared_at))
        except ValueError:
            raise ValueError(f"Rule.declared_at: an ISO 8601 time is needed, got {self.declared_at!r}") from None
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "margin", float(self.margin))
        object.__setattr__(self, "max_seeds", int(self.max_seeds))

    @classmethod
    def declare(cls, metric: str = "mAP50-95", *, alpha: float = 0.05, margin: float = DEFAULT_MARGIN,
                looks=DEFAULT_LOOKS, spending: str = "obrien-fleming") -> "Rule":
        """A rule declared now (UTC, to the second)."""
        looks = _check_looks(looks)
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        return cls(metric, alpha, margin, looks, looks[-1], now, spending)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["looks"] = list(self.looks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        """The rule of :meth:`to_dict`; a missing or unknown key is a ``ValueError`` naming it."""
        if not isinstance(d, dict):
            raise ValueError(f"Rule: a mapping is needed, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing, unknown = [n for n in names if n not in d], sorted(set(d) - set(names))
        if missing or unknown:
            raise ValueError(f"Rule: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}")
        return cls(**{n: d[n] for n in names})

    def differs(self, other: "Rule") -> list[str]:
        """The fields (the declaration time aside) in which ``other`` is another rule: a resumed sweep compares."""
        return [f.name for f in fields(self) if f.name != "declared_at" and getattr(self, f.name) != getattr(other, f.name)]


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def _check_looks(looks) -> tuple[int, ...]:
    try:
        out = tuple(looks)
    except TypeError:
        raise ValueError(f"Rule.looks: a sequence of seed counts is needed, got {looks!r}") from None
    if not out or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in out):
        raise ValueError(f"Rule.looks: whole seed counts are needed, got {looks!r}")
    out = tuple(int(n) for n in out)
    if out[0] < 2 or any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"Rule.looks: increasing seed counts from at least 2 are needed (a 1-seed look has no seed "
                         f"variance), got {list(out)}")
    return out


# ------------------------------------------------------------------------------------------------
# Boundaries: alpha spending and recursive integration
# ------------------------------------------------------------------------------------------------
def spent(spending: str, alpha: float, t: float) -> float:
    """Cumulative error spent by information time ``t`` in [0, 1] (Lan & DeMets 1983)."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "obrien-fleming":
        return float(2.0 - 2.0 * _sp.ndtr(_sp.ndtri(1.0 - alpha / 2.0) / math.sqrt(t)))
    if spending == "pocock":
        return float(alpha * math.log1p((math.e - 1.0) * t))
    raise ValueError(f"spending: one of {', '.join(SPENDING)}, got {spending!r}")


@lru_cache(maxsize=4)
def _t_paths(looks: tuple[int, ...]) -> np.ndarray:
    """Paired t statistics of ``_PATHS`` simulated null sweeps at each look (``_PATHS`` x J; fixed RNG seed).

    Exact in distribution for normal per-seed differences, through the sufficient statistics of each block of seeds
    between looks: its mean ``N(0, 1 / m)`` and within sum of squares ``chi2_{m-1}``, merged into the running mean
    and sum of squares (``SS_k = SS_{k-1} + W + n_{k-1} m / n_k (mean_block - mean_{k-1})^2``).
    """
    rng = np.random.default_rng(_PATH_SEED)
    mean, ss, n, out = np.zeros(_PATHS), np.zeros(_PATHS), 0, []
    for n_k in looks:
        m = n_k - n
        block = rng.standard_normal(_PATHS) / math.sqrt(m)
        within = rng.chisquare(m - 1, _PATHS) if m > 1 else np.zeros(_PATHS)
        ss = ss + within + (n * m / n_k) * (block - mean) ** 2
        mean, n = (n * mean + m * block) / n_k, n_k
        out.append(mean * math.sqrt(n_k) / np.sqrt(ss / (n_k - 1)))
    return np.stack(out, 1)


@lru_cache(maxsize=256)
def t_boundaries(alpha: float, looks: tuple[int, ...], max_seeds: int, spending: str = "obrien-fleming",
                 sides: int = 2) -> tuple[float, ...]:
    """Critical values ``c_k`` of the paired t statistic (``n_k - 1`` df) at each look: the error spent by look k,
    ``alpha(n_k / max_seeds)``, is the chance under no difference of ``|T_j| >= c_j`` (``sides=1``: ``T_j >= c_j``)
    at some look ``j <= k``.

    The first look is exact (its t quantile). Later looks: order statistics of the simulated t paths
    (:func:`_t_paths`), each look rejecting the paths not rejected before until the spent count, less two Monte-Carlo
    standard errors (the rule errs on the safe side: its error exceeds ``alpha`` by chance in about 2% of designs at
    most); a look that would reject fewer than 200 paths takes its increment's own t quantile (conservative).
    """
    T = _t_paths(tuple(looks))
    stat = np.abs(T) if sides == 2 else T
    alive, out, target_prev = np.ones(T.shape[0], bool), [], 0
    for j, n in enumerate(looks):
        cum = spent(spending, alpha, n / max_seeds)
        target = max(0, math.floor(cum * _PATHS - 2 * math.sqrt(cum * _PATHS)))
        rejected_so_far = _PATHS - int(alive.sum())
        r = target - rejected_so_far
        inc = cum - spent(spending, alpha, looks[j - 1] / max_seeds) if j else cum
        if j == 0 or r < 200:
            c = float(_sp.stdtrit(n - 1, 1 - inc / sides)) if inc > 0 else math.inf
        else:
            c = float(np.partition(stat[alive, j], -r)[-r])
        out.append(c)
        alive &= ~(stat[:, j] >= c)
    return tuple(out)


def nominal_levels(rule: Rule, alpha: float | None = None, sides: int = 2) -> np.ndarray:
    """Nominal error per look of the t boundaries: two-sided ``2 P(T > c_k)`` (``sides=2``) or ``P(T > c_k)``."""
    c = t_boundaries(float(rule.alpha if alpha is None else alpha), rule.looks, rule.max_seeds, rule.spending, sides)
    return np.array([sides * float(_sp.stdtr(n - 1, -ck)) for n, ck in zip(rule.looks, c)])


# ------------------------------------------------------------------------------------------------
# The decision, vectorised over leading axes
# ------------------------------------------------------------------------------------------------
def _half_width(a, b, n, n_boot, level):
    """:func:`.stats.half_width`, infinite where nothing is spent (level 1)."""
    if level >= 1.0:
        return np.full(np.shape(a), np.inf)
    return stats.half_width(a, b, n, n_boot, level)


def look_arrays(d, boot, rule: Rule, alphas: tuple[float, ...]) -> dict:
    """Per look with data: mean difference, variance parts and RCI half-widths.

    ``d`` (..., S) per-seed differences, ``boot`` (..., S, B) their image-bootstrap replicates or None; ``alphas``
    the family levels of Holm's steps. Returns ``diff``, ``a``, ``b`` (..., J), ``h`` (..., J, len(alphas)) the
    two-sided RCI half-widths, ``heq`` (..., J) the equivalence RCI half-widths; J = looks with at most S seeds.
    """
    d = np.asarray(d, float)
    S, B = d.shape[-1], 0 if boot is None else np.shape(boot)[-1]
    levels = [nominal_levels(rule, al) for al in alphas]
    eq_levels = nominal_levels(rule, rule.alpha, sides=1)
    out = {k: [] for k in ("diff", "a", "b", "h", "heq")}
    for j, n in enumerate(x for x in rule.looks if x <= S):
        a, b = stats.variance_parts(d[..., :n], None if boot is None else np.asarray(boot, float)[..., :n, :])
        out["diff"].append(d[..., :n].mean(-1))
        out["a"].append(a)
        out["b"].append(b)
        out["h"].append(np.stack([_half_width(a, b, n, B, 1 - lv[j]) for lv in levels], -1))
        out["heq"].append(_half_width(a, b, n, B, 1 - 2 * eq_levels[j]))
    shape = d.shape[:-1]
    empty = {"diff": shape + (0,), "a": shape + (0,), "b": shape + (0,), "h": shape + (0, len(alphas)),
             "heq": shape + (0,)}
    return {k: np.stack(v, len(shape)) if v else np.zeros(empty[k]) for k, v in out.items()}


def run_looks(diff, h, heq, avail, margin: float) -> tuple[np.ndarray, ...]:
    """The history of decisions, look by look, for k models against one baseline (Holm across them).

    ``diff`` (..., k, J), ``h`` (..., k, J, k) (the half-width at Holm's step r in the last axis), ``heq``
    (..., k, J), ``avail`` (..., k) the number of looks each model has data for (NaN ``diff`` beyond). Returns,
    (..., k) each: the outcome code (0 none, 1 better, 2 worse, 3 equivalent), the look at which it was decided
    (when the model stops), the look whose interval decided it (earlier when a Holm rejection passed its share
    back) and the Holm step. Undecided models: their last look with data, the last step.
    """
    diff = np.asarray(diff, float)
    k, J = diff.shape[-2:]
    code = np.zeros(diff.shape[:-1], int)
    when, dlook, dstep = np.zeros_like(code), np.zeros_like(code), np.zeros_like(code)
    with np.errstate(invalid="ignore"):
        excl = np.abs(diff)[..., None] > h  # (..., k, J, k)
        eq = np.abs(diff) + heq < margin
    for K in range(J):
        seen = (np.arange(J) <= K) & (np.arange(J) < np.asarray(avail)[..., None])
        for _ in range(k):  # Holm: a rejection passes its share to the others, at this look and earlier ones
            r = ((code == _BETTER) | (code == _WORSE)).sum(-1, keepdims=True)
            step = np.broadcast_to(np.minimum(r, k - 1), code.shape)
            ex = np.take_along_axis(excl, step[..., None, None], -1)[..., 0] & seen
            new = (code == _CONTINUE) & ex.any(-1)
            if not new.any():
                break
            first = ex.argmax(-1)
            up = np.take_along_axis(diff, first[..., None], -1)[..., 0] > 0
            code = np.where(new, np.where(up, _BETTER, _WORSE), code)
            when, dlook, dstep = np.where(new, K, when), np.where(new, first, dlook), np.where(new, step, dstep)
        now = (code == _CONTINUE) & (np.asarray(avail) > K) & eq[..., K]
        code = np.where(now, _EQUIV, code)
        r = ((code == _BETTER) | (code == _WORSE)).sum(-1, keepdims=True)
        open_ = (code == _CONTINUE) | now
        last = np.minimum(K, np.asarray(avail) - 1)
        when, dlook = np.where(open_, last, when), np.where(open_, last, dlook)
        dstep = np.where(open_, np.minimum(r, k - 1), dstep)
    return code, when, dlook, dstep


# ------------------------------------------------------------------------------------------------
# One sweep: Decision objects
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """The outcome for one model at a look, with the intervals it rests on.

    ``lo``/``hi``: the two-sided RCI at level ``level`` (better: ``lo > 0``; worse: ``hi < 0``); ``eq_lo``/``eq_hi``:
    the equivalence RCI (level ``eq_level``; equivalent: inside ``+/- margin``). ``look``: index into the rule's
    looks of the deciding look (the last look with data when undecided or continuing); ``n_seeds``: its seeds.
    ``alpha_family``: the share of alpha its better/worse test had (Holm); ``nominal_alpha`` and ``t_boundary``: that
    test's boundary at this look (the paired t critical value, ``n_seeds - 1`` df, and its two-sided level). ``within_margin``: a better/worse difference whose RCI is inside the margin too.
    """

    outcome: str
    lo: float
    hi: float
    diff: float
    n_seeds: int
    look: int
    final: bool
    level: float
    eq_lo: float
    eq_hi: float
    eq_level: float
    margin: float
    alpha_family: float
    nominal_alpha: float
    t_boundary: float
    var_seed: float
    var_image: float
    n_boot: int
    within_margin: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _paired(model_points, base_points, model_reps, base_reps, name: str = "model"):
    """Per-seed differences (S,) and bootstrap differences (S, B) or None; ``ValueError`` naming what is wrong."""
    mp, bp = np.asarray(model_points, float).reshape(-1), np.asarray(base_points, float).reshape(-1)
    if not (np.isfinite(mp).all() and np.isfinite(bp).all()):
        raise ValueError(f"{name}_points/base_points: every per-seed metric must be a finite number")
    if bp.size < mp.size:
        raise ValueError(f"base_points: the baseline has {bp.size} seeds, {name} {mp.size}: every seed of the model "
                         "needs the baseline's same seed")
    if (model_reps is None) != (base_reps is None):
        raise ValueError(f"{name}_reps/base_reps: both or neither (the replicates pair over the same image samples)")
    if model_reps is None:
        return mp - bp[: mp.size], None
    mr, br = np.asarray(model_reps, float), np.asarray(base_reps, float)
    if mr.ndim != 2 or br.ndim != 2 or mr.shape[0] != mp.size or br.shape[0] < mp.size or mr.shape[1] != br.shape[1]:
        raise ValueError(f"{name}_reps/base_reps: (seeds x B) replicates are needed for each seed, with the same B; got "
                         f"{mr.shape} and {br.shape} for {mp.size} seeds")
    try:
        stats.check_n_boot(mr.shape[1])
    except ValueError as e:
        raise ValueError(f"{name}_reps: {e}") from None
    return mp - bp[: mp.size], mr - br[: mp.size]


def _available(rule: Rule, n: int, look: int | None) -> int:
    """How many looks the data reach (``look``: decide at that look, 0-based, with its seeds only)."""
    if look is None:
        return sum(1 for x in rule.looks if x <= n)
    if isinstance(look, bool) or not isinstance(look, (int, np.integer)) or not 0 <= look < len(rule.looks):
        raise ValueError(f"look: an index into the rule's {len(rule.looks)} looks {list(rule.looks)}, got {look!r}")
    if rule.looks[look] > n:
        raise ValueError(f"look {look}: needs {rule.looks[look]} seeds, the data have {n}")
    return int(look) + 1


def _decision(arr: dict, rule: Rule, alphas: tuple, i: int, history: tuple, avail: int, n: int) -> Decision:
    """Model ``i``'s :class:`Decision` from the look arrays and its ``history`` (code, deciding look, Holm step)."""
    code, j, step = history
    nan = math.nan
    if avail == 0:  # fewer seeds than the first look
        return Decision("continue", nan, nan, nan, n, -1, False, nan, nan, nan, nan, rule.margin, alphas[0], nan, nan,
                        nan, nan, arr["n_boot"])
    final = avail == len(rule.looks) and j == avail - 1
    word = {_BETTER: "better", _WORSE: "worse", _EQUIV: "equivalent"}.get(code, "undecided" if final else "continue")
    diff, h, heq = float(arr["diff"][i, j]), float(arr["h"][i, j, step]), float(arr["heq"][i, j])
    nominal = float(nominal_levels(rule, alphas[step])[j])
    lo, hi = diff - h, diff + h
    return Decision(word, lo, hi, diff, rule.looks[j], j, final, 1 - nominal, diff - heq, diff + heq,
                    1 - 2 * float(nominal_levels(rule, sides=1)[j]), rule.margin, alphas[step], nominal,
                    float(_sp.stdtrit(rule.looks[j] - 1, 1 - nominal / 2)), float(arr["a"][i, j]), float(arr["b"][i, j]), arr["n_boot"],
                    code in (_BETTER, _WORSE) and -rule.margin < lo and hi < rule.margin)


def decide_family(models: dict, base_points, base_reps=None, *, rule: Rule, look: int | None = None) -> dict:
    """Decisions for several models against one baseline, Holm across them (see the module docstring).

    ``models``: name -> ``(points, reps)`` (reps None without the image bootstrap) of the seeds run so far, in
    seed order; a model that stopped at a look has fewer seeds than the baseline. ``look``: decide at that look
    (0-based index into ``rule.looks``) with its seeds only. Returns name -> :class:`Decision`.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models: a mapping name -> (points, reps) with at least one model is needed")
    k = len(models)
    return _decide(models, base_points, base_reps, rule, look, tuple(_alpha(rule) / (k - r) for r in range(k)))


def decide(model_points, base_points, model_reps=None, base_reps=None, *, rule: Rule, look: int | None = None,
           n_models: int = 1) -> Decision:
    """The decision for one model against the baseline at the latest look its seeds reach (or at ``look``).

    ``model_points``/``base_points``: per-seed metric in seed order (paired; the baseline may have more seeds);
    ``model_reps``/``base_reps``: per-seed image-bootstrap replicates (seeds x B, the same image samples for both),
    or None. ``n_models``: the family size; alone, the better/worse test takes ``alpha / n_models`` (Holm's first
    step, i.e. Bonferroni; :func:`decide_family` takes the whole step-down). Equivalence is at ``alpha`` either way.
    """
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)) or n_models < 1:
        raise ValueError(f"n_models: a family size >= 1 is needed, got {n_models!r}")
    models = {"model": (model_points, model_reps)}
    return _decide(models, base_points, base_reps, rule, look, (_alpha(rule) / n_models,))["model"]


def _no_signal(model_points, base_points, margin: float) -> bool:
    """The model and the baseline both score below the margin on average over the seeds (every trial exactly 0 is the
    extreme: untrained models). Neither learned a difference worth having, so their near-equal scores are no evidence
    of equivalence, nor a tiny gap of superiority: no look decides (the model stays open; at the last look,
    undecided). Measured: a 2-epoch search confirmation at mAP50-95 0.000 read "equivalent within ±0.05"."""
    m = np.asarray(model_points, float)
    b = np.asarray(base_points, float)[: m.size]
    return bool(m.size) and max(float(np.mean(m)), float(np.mean(b))) < margin


def _alpha(rule) -> float:
    if not isinstance(rule, Rule):
        raise ValueError(f"rule: a declared Rule is needed, got {type(rule).__name__}")
    return rule.alpha


def _decide(models: dict, base_points, base_reps, rule: Rule, look, alphas: tuple) -> dict:
    """:func:`decide_family` with the better/worse levels of Holm's steps given (``alphas``, one per step)."""
    k, J, L = len(models), len(rule.looks), len(alphas)
    arr = {"diff": np.full((k, J), np.nan), "a": np.full((k, J), np.nan), "b": np.full((k, J), np.nan),
           "h": np.full((k, J, L), np.inf), "heq": np.full((k, J), np.inf), "n_boot": 0}
    avail, n_seen = np.zeros(k, int), []
    for i, (name, pair) in enumerate(models.items()):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"models[{name!r}]: a pair (points, reps) is needed")
        d, boot = _paired(pair[0], base_points, pair[1], base_reps, name=str(name))
        arr["n_boot"] = 0 if boot is None else boot.shape[1]
        avail[i] = _available(rule, d.size, look)
        n_seen.append(d.size)
        keep = rule.looks[avail[i] - 1] if avail[i] else 0
        one = look_arrays(d[:keep], None if boot is None else boot[:keep], rule, alphas)
        if _no_signal(pair[0], base_points, rule.margin):
            one["h"], one["heq"] = np.full_like(one["h"], np.inf), np.full_like(one["heq"], np.inf)
        for key in ("diff", "a", "b", "h", "heq"):
            arr[key][i, : avail[i]] = one[key]
    code, _, dlook, dstep = run_looks(arr["diff"], arr["h"], arr["heq"], avail, rule.margin)
    return {name: _decision(arr, rule, alphas, i, (int(code[i]), int(dlook[i]), int(dstep[i])), int(avail[i]),
                            n_seen[i]) for i, name in enumerate(models)}


# ------------------------------------------------------------------------------------------------
# Which lever: more seeds or more evaluation images
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lever:
    """What would decide a model sooner: ``seeds`` more seeds (of the model and the baseline), or ``images`` more
    evaluation images (None: that lever alone cannot), with their estimated costs (seconds; None without a cost
    per unit). ``target``: the half-width to reach at two-sided ``level`` (the last look's); ``beyond_rule``: the
    seeds exceed the declared maximum (deciding then needs a new rule)."""

    seeds: int | None
    images: int | None
    seeds_cost: float | None
    images_cost: float | None
    target: float
    level: float
    beyond_rule: bool

    def to_dict(self) -> dict:
        return asdict(self)


def which_lever(decision: Decision, rule: Rule, *, n_images: int, seed_cost: float | None = None,
                image_cost: float | None = None, n_models: int = 1) -> Lever:
    """More seeds k, or more evaluation images m, that make the interval narrow enough to decide against the margin.

    Target half-width ``w = max(margin / 2, |diff|)``: an interval narrower than ``margin / 2`` either excludes 0 or
    lies within the margin, whatever the difference turns out to be; a difference beyond ``margin / 2`` needs only
    ``|diff|`` if it stays where it is. The level is the last look's (``alpha / n_models``). Seeds: the per-seed
    variance ``n a`` shrinks as ``1 / (n + k)`` (t with ``n + k - 1`` df); images: the shared image variance ``b``
    as ``1 / (n_images + m)`` (the per-seed image noise inside ``a`` is left there: the images lever is not
    overstated). ``seed_cost``: seconds per extra seed of the model and the baseline; ``image_cost``: seconds per
    extra evaluation image over every trial re-evaluated.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise ValueError(f"n_images: the evaluation images of the sweep (>= 1) are needed, got {n_images!r}")
    if decision.n_seeds < 2 or not math.isfinite(decision.var_seed):
        raise ValueError("decision: a look with at least 2 seeds is needed (seed variance)")
    level = 1 - float(nominal_levels(rule, rule.alpha / n_models)[-1])
    target = max(rule.margin / 2, abs(decision.diff))
    n, a, b, B = decision.n_seeds, decision.var_seed, decision.var_image, decision.n_boot

    def width(k, b_):
        return float(stats.half_width(a * n / (n + k), b_, n + k, B, level))

    seeds = _fewest(lambda k: width(k, b) < target) if width(10**7, b) < target else None
    images = None
    ts, tb = (float(_sp.stdtrit(df, 1 - (1 - level) / 2)) if df > 0 else float(_sp.ndtri(1 - (1 - level) / 2))
              for df in (n - 1, B - 1))
    room = (target**2 - ts**2 * a) / tb**2
    if room > 0 and b > 0:
        images = max(0, math.ceil(n_images * (b / room - 1)))
    elif room > 0:
        images = 0
    cost = lambda units, per: None if units is None or per is None else units * float(per)  # noqa: E731
    return Lever(seeds, images, cost(seeds, seed_cost), cost(images, image_cost), target, level,
                 seeds is not None and n + seeds > rule.max_seeds)


def _fewest(ok, hi: int = 1) -> int:
    """The smallest k >= 0 with ``ok(k)`` for a monotone ``ok`` (doubling, then bisection)."""
    if ok(0):
        return 0
    while not ok(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def describe(decision: Decision, lever: Lever | None = None, digits: int = 3) -> str:
    """The verdict in words: "better by +0.012 [0.004, 0.020]", "equivalent to the baseline within ±0.01: ...",
    "undecided after 8 seeds: +0.003 [-0.011, 0.017]; 6 more seeds or 400 more evaluation images would decide it"."""
    f = lambda x: f"{x:+.{digits}f}"  # noqa: E731
    if decision.outcome == "continue" and decision.look < 0:
        return f"continue: {decision.n_seeds} seeds, fewer than the first look"
    if not (np.isfinite(decision.lo) and np.isfinite(decision.hi)):  # _no_signal: nothing was measured
        return (f"{decision.outcome} after {decision.n_seeds} seeds: the model and the baseline both score below the "
                f"margin ±{decision.margin:g} on average, so the seeds cannot show a difference worth having or its "
                "absence (untrained models? train longer)")
    iv = f"{f(decision.diff)} [{f(decision.lo)}, {f(decision.hi)}]"
    if decision.outcome in ("better", "worse"):
        tail = f", within the margin ±{decision.margin:g}" if decision.within_margin else ""
        return f"{decision.outcome} by {iv} after {decision.n_seeds} seeds{tail}"
    if decision.outcome == "equivalent":
        return (f"equivalent to the baseline within ±{decision.margin:g}: {f(decision.diff)} "
                f"[{f(decision.eq_lo)}, {f(decision.eq_hi)}] after {decision.n_seeds} seeds")
    text = f"{decision.outcome} after {decision.n_seeds} seeds: {iv}"
    if lever is not None:
        ways = [f"{lever.seeds} more seeds" if lever.seeds is not None else None,
                f"{lever.images} more evaluation images" if lever.images is not None else None]
        ways = [w for w in ways if w]
        text += "; " + (" or ".join(ways) + " would decide it" if ways else "neither more seeds nor more images alone "
                        "would decide it")
    return text
