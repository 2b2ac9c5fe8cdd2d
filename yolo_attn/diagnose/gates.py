"""Gate values over the validation images, caught by forward hooks on every :class:`Gate`.

Per gate: mean, std, the shares saturated near 0 and near 1 (below 0.05 / above 0.95 once mapped to
[0, 1]: ``sigmoid`` as is, ``2 sigmoid`` halved, ``2 sigmoid - 1`` shifted), the normalised entropy of
the gate across its channels/positions (1 = the same value everywhere, i.e. no selection; 0 = all on
one element), and for layers started at ``init: identity`` the mean distance from the neutral value.
Also each gate's mean over the images (kept per channel), which the reliance section substitutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..modules._common import Gate
from .layers import AttnLayer

_UNIT = {"sigmoid": (1.0, 0.0), "2sigmoid": (0.5, 0.0), "2sigmoid-1": (0.5, 0.5)}  # g -> a g + b in [0, 1]
_NEUTRAL = {"2sigmoid": 1.0, "2sigmoid-1": 0.0}
SAT = 0.05


@dataclass
class GateStats:
    layer: str
    gate: str
    form: str  # value/combine
    shape: list[int]  # of one image's gate value
    mean: float
    std: float
    sat_low: float | None
    sat_high: float | None
    entropy: float | None
    identity_distance: float | None
    mean_value: torch.Tensor = field(repr=False)  # kept-dims mean (1, C.., 1, 1): the reliance substitute


class _Acc:
    def __init__(self):
        self.n = self.s = self.s2 = self.low = self.high = self.ent = self.dist = 0.0
        self.images = 0
        self.kept = None
        self.shape = None


def _entropy(u: torch.Tensor) -> torch.Tensor:
    """Per image normalised entropy of a non-negative map (B, ...)."""
    p = u.flatten(1).clamp_min(0)
    n = p.shape[1]
    if n < 2:
        return torch.ones(p.shape[0])
    p = p / p.sum(1, keepdim=True).clamp_min(1e-12)
    return -(p * p.clamp_min(1e-12).log()).sum(1) / math.log(n)


def _hook(acc: _Acc, gate: Gate):
    def fn(_m, inp, _out):
        g = gate.value(inp[1]).detach().float()
        b = g.shape[0]
        acc.shape = list(g.shape[1:])
        acc.images += b
        acc.n += g.numel()
        acc.s += float(g.sum())
        acc.s2 += float((g * g).sum())
        kept = g.mean((-2, -1), keepdim=True).sum(0, keepdim=True)
        acc.kept = kept if acc.kept is None else acc.kept + kept
        if gate.value_kind in _UNIT:
            a, c = _UNIT[gate.value_kind]
            u = g * a + c
            acc.low += float((u < SAT).sum())
            acc.high += float((u > 1 - SAT).sum())
            acc.ent += float(_entropy(u).sum())
        if gate.value_kind in _NEUTRAL:
            acc.dist += float((g - _NEUTRAL[gate.value_kind]).abs().sum())

    return fn


class GateRecorder:
    """``with GateRecorder(layers) as rec:`` hooks every gate of ``layers``; ``rec.stats()`` afterwards."""

    def __init__(self, layers: list[AttnLayer]):
        self.accs = [(layer, name, g, _Acc()) for layer in layers for name, g in layer.gates]
        self.handles = []

    def __enter__(self) -> GateRecorder:
        self.handles = [g.register_forward_hook(_hook(acc, g)) for _la, _n, g, acc in self.accs]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def stats(self) -> list[GateStats]:
        return [_stats(layer, name, g, acc) for layer, name, g, acc in self.accs if acc.n]  # skip unused gates


def _stats(layer: AttnLayer, name: str, g: Gate, acc: _Acc) -> GateStats:
    mean = acc.s / acc.n
    unit = g.value_kind in _UNIT
    return GateStats(
        layer.name, name, f"{g.value_kind}/{g.combine_kind}", acc.shape, mean,
        math.sqrt(max(acc.s2 / acc.n - mean * mean, 0.0)),
        acc.low / acc.n if unit else None, acc.high / acc.n if unit else None,
        acc.ent / acc.images if unit else None,
        acc.dist / acc.n if (g.value_kind in _NEUTRAL and layer.init == "identity") else None,
        acc.kept / acc.images,
    )
