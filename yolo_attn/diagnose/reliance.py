"""Reliance: validation mAP with each attention layer knocked out (the identity; FMM: ``x + F(x)``) and
with each layer's gates replaced by their mean over the validation images.

A large drop on knock-out but none on mean replacement says the model relies on the average scaling
the attention applies, not on its input-dependent selection. Differences carry a 95% interval from
resampling the validation images (paired: the same resample for both runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..scoring.cocoeval import EvalArrays

from .data import DiagData
from .evaluate import Evaluation, evaluate
from .gates import GateStats
from .layers import AttnLayer, gates_fixed, knocked_out
from .stats import Interval, paired_diff


@dataclass
class RelianceRow:
    layer: str  # a layer name, or "all"
    kind: str
    knockout: Interval  # mAP(knocked out) - mAP
    mean_gate: Interval | None  # mAP(gates at their mean) - mAP; None without gates
    ko_arrays: EvalArrays | None = field(default=None, repr=False)  # for pooling seeds
    mean_arrays: EvalArrays | None = field(default=None, repr=False)


def reliance(model, layers: list[AttnLayer], gate_stats: list[GateStats], data: DiagData, val: Evaluation,
             n_boot: int, seed: int, per_layer: bool = True, evaluator=evaluate) -> list[RelianceRow]:
    """Rows for every layer (if ``per_layer`` and there is more than one) and for all layers together, scored by
    ``evaluator`` (mAP, or top-1 for classify)."""
    means = {(s.layer, s.gate): s.mean_value for s in gate_stats}
    groups = [(layer.name, layer.kind, [layer]) for layer in layers] if per_layer and len(layers) > 1 else []
    groups.append(("all", ",".join(sorted({la.kind for la in layers})), layers))
    rows = []
    base = val.areas["all"].arrays
    for name, kind, group in groups:
        with knocked_out(group):
            ko = evaluator(model, data.val, data.names)
        gates = [(la, n, g) for la in group for n, g in la.gates if (la.name, n) in means]
        mean_iv, mg = None, None
        if gates:
            values = {id(g): means[(la.name, n)] for la, n, g in gates}
            with gates_fixed([g for _la, _n, g in gates], values):
                mg = evaluator(model, data.val, data.names)
            mean_iv = paired_diff([(mg.areas["all"].arrays, base)], n_boot, seed)
        rows.append(RelianceRow(name, kind, paired_diff([(ko.areas["all"].arrays, base)], n_boot, seed), mean_iv,
                                ko.areas["all"].arrays, mg.areas["all"].arrays if mg is not None else None))
    return rows
