"""Per model (label): its seeds pooled, and its differences to the baseline with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stats import Interval, paired_diff, seed_interval


@dataclass
class LabelSummary:
    label: str
    seeds: list
    layers: list[tuple[str, str]]
    train_map: Interval
    val_map: Interval
    gap: Interval
    gap_vs_baseline: Interval | None  # gap(model) - gap(baseline), paired by seed
    n_pairs: int = 0  # seed pairs (model, baseline) behind the differences
    train_loss: float | None = None  # Ultralytics' loss per image (box + cls + dfl), mean over seeds
    val_loss: float | None = None
    size_vs_baseline: dict[str, Interval] = field(default_factory=dict)  # AP(model) - AP(baseline) per range
    erf: dict[str, dict[str, float | None]] = field(default_factory=dict)  # level -> r50, r90, covered (seed means)
    erf_error: float = 0.0  # largest relative change of a radius from N/2 to N images
    knockout_all: Interval | None = None
    mean_gate_all: Interval | None = None
    tau_mean: float | None = None
    tau_perm_mean: float | None = None
    jac: float | None = None
    jac_se: float | None = None  # standard error of ``jac`` from images and projections (not from seeds)
    roughness_same: float | None = None
    roughness_cross: float | None = None
    dead_gates: list[str] = field(default_factory=list)  # "s<seed> <layer>/<gate> (<share> < 0.05)"
    collapsed: list[str] = field(default_factory=list)  # "s<seed> (val mAP <x>)" far below the baseline


DEAD = 0.95  # share of a gate's values below 0.05 that makes it "dead" (its path is shut)
COLLAPSE = 0.25  # a seed whose val mAP is under this fraction of the baseline's mean "collapsed"


@dataclass
class Diagnosis:
    data: str
    settings: object
    labels: list[str]
    baseline: str | None
    models: list  # ModelDiagnosis, every checkpoint
    summaries: list[LabelSummary]
    ranges: dict
    dataset: object = field(repr=False)
    seconds: float = 0.0
    task: str = "detect"  # Ultralytics' task of the models: which sections apply (.tasks)


def _mean(values):
    v = [x for x in values if x is not None and not (isinstance(x, float) and np.isnan(x))]
    return float(np.mean(v)) if v else None


def _by_seed(results) -> dict:
    return {r.ref.seed: r for r in results}


def _summary(label: str, mine: list, base: list | None, s, metric: str = "mAP50-95") -> LabelSummary:
    fitted = all(r.fit is not None for r in mine + (base or []))  # None: the task has no evaluator (.tasks)
    fit = (lambda get: seed_interval([get(r.fit) for r in mine])) if fitted else (lambda get: Interval(float("nan")))
    out = LabelSummary(label, [r.ref.seed for r in mine], mine[0].layers, fit(lambda f: f.train_map),
                       fit(lambda f: f.val_map), fit(lambda f: f.gap), None)
    if base is not None:
        bs = _by_seed(base)
        paired = [(r, bs[r.ref.seed]) for r in mine if r.ref.seed in bs] or [(r, base[0]) for r in mine]
        out.gap_vs_baseline = seed_interval([a.fit.gap - b.fit.gap for a, b in paired]) if fitted else None
        out.n_pairs = len(paired)
        for rng in mine[0].arrays:
            pairs = [(a.arrays[rng], b.arrays[rng]) for a, b in paired if rng in b.arrays]
            if not pairs or not getattr(pairs[0][0], "n_gt", np.zeros(0)).sum():
                continue  # no object in this size range (or none at all: classification): nothing to compare
            out.size_vs_baseline[rng] = paired_diff(pairs, s.n_boot, s.seed)
    out.dead_gates = [f"s{r.ref.seed} {g.layer}/{g.gate} ({100 * g.sat_low:.0f}% < 0.05)" for r in mine for g in r.gates
                      if g.sat_low is not None and g.sat_low >= DEAD]
    if base is not None and fitted:
        ref = _mean([r.fit.val_map for r in base]) or 0.0
        out.collapsed = [f"s{r.ref.seed} (val {metric} {r.fit.val_map:.3f})" for r in mine
                         if r.fit.val_map < COLLAPSE * ref]
    out.train_loss = _mean([r.fit.train_loss for r in mine]) if fitted else None
    out.val_loss = _mean([r.fit.val_loss for r in mine]) if fitted else None
    for k, lvl in enumerate(mine[0].erf):
        out.erf[lvl.level] = {"r50": _mean([r.erf[k].r50 for r in mine]), "r90": _mean([r.erf[k].r90 for r in mine]),
                              "covered": _mean([r.erf[k].covered for r in mine])}
    out.erf_error = max((lv.rel_change for r in mine for lv in r.erf), default=0.0)
    ko = [(row.ko_arrays, r.arrays["all"]) for r in mine for row in r.reliance if row.layer == "all"]
    mg = [(row.mean_arrays, r.arrays["all"]) for r in mine for row in r.reliance if row.layer == "all" and row.mean_arrays]
    out.knockout_all = paired_diff(ko, s.n_boot, s.seed) if ko else None
    out.mean_gate_all = paired_diff(mg, s.n_boot, s.seed) if mg else None
    out.tau_mean = _mean([c.tau_mean for r in mine for c in r.consistency])
    out.tau_perm_mean = _mean([c.tau_perm_mean for r in mine for c in r.consistency])
    out.jac = _mean([r.smooth.jac_mean for r in mine])
    ses = [r.smooth.jac_se for r in mine if r.smooth.jac_se == r.smooth.jac_se]
    out.jac_se = float(np.sqrt(np.sum(np.square(ses))) / len(ses)) if ses else None
    out.roughness_same = _mean([r.smooth.roughness("same") for r in mine])
    out.roughness_cross = _mean([r.smooth.roughness("cross") for r in mine])
    return out


def compare_to_baseline(results: list, baseline: str | None, s, metric: str = "mAP50-95") -> list[LabelSummary]:
    """Per label, its seeds pooled and its differences to ``baseline``; ``metric``: what the evaluator scores."""
    labels = list(dict.fromkeys(r.ref.label for r in results))
    groups = {lb: [r for r in results if r.ref.label == lb] for lb in labels}
    base = groups.get(baseline) if baseline else None
    return [_summary(lb, groups[lb], base if lb != baseline else None, s, metric) for lb in labels]
