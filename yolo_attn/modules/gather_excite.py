"""Gather-Excite.

Hu, Shen, Albanie, Sun, Vedaldi, "Gather-Excite: Exploiting Feature Context in Convolutional Neural
Networks", NeurIPS 2018 (arXiv:1810.12348).

A gather operator ``xi_G`` aggregates each channel over a spatial extent ``e`` and an excite operator
``xi_E`` redistributes the gathered context back to every position as a gate:
``y = x * sigmoid(interp(xi_G(x)))`` (Sec. 3). Two gather operators are provided:

* ``extent=0`` - GE-theta-minus with global extent: the parameter-free gather is the channel mean
  over all positions, so ``y = x * sigmoid(mean_hw(x))``;
* ``extent=e`` (a power of two) - GE-theta with a parametric gather: ``log2(e)`` depthwise 3x3
  convolutions of stride 2, each batch-normalised (ReLU between them), reduce the map by ``e`` in
  each direction; the gathered map is brought back to ``H x W`` by nearest-neighbour interpolation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, gate_options, mean_over


@register(
    family="gather_excite",
    paper="Hu et al., Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks",
    year=2018,
    gating=True,
    note="extent=0: parameter-free global GE-theta-minus, x * sigmoid(mean(x)); init=identity adds a zero-initialised "
    "per-channel affine on the gathered mean (exactly x at start). extent=2^k: parametric GE-theta, k strided "
    "depthwise 3x3 convs + nearest upsampling.",
)
class GatherExcite(GatedModule):
    """Gather-Excite gate.

    Args:
        c1: input (= output) channels.
        extent: ``0`` for a global, parameter-free gather (paper's GE-theta-minus); a power of two ``e >= 2``
            for the parametric gather over an ``e x e`` extent (GE-theta).
        fuse: ``"mul"`` (paper) or ``"add"`` (gate added instead of multiplied).
        init: ``"paper"`` or ``"identity"``: the module starts as the identity (the last gather BN is zeroed;
            the global variant gets a learnable per-channel scale and shift of its descriptor, both zero).
    """

    def __init__(self, c1: int, extent: int = 0, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        if isinstance(extent, bool) or not isinstance(extent, int) or extent < 0 or (extent and extent & (extent - 1)):
            raise ValueError(f"{name}: extent must be 0 (global) or a power of two, got {extent!r}")
        if extent == 1:
            raise ValueError(f"{name}: extent 1 gathers nothing; use 0 (global) or a power of two >= 2")
        self.extent = extent
        self.gather = None
        self.scale = self.shift = None
        if extent:
            layers = []
            for i in range(extent.bit_length() - 1):  # log2(extent) stride-2 stages
                if i:
                    layers.append(nn.ReLU(inplace=True))
                layers += [nn.Conv2d(c1, c1, 3, 2, 1, groups=c1, bias=False), nn.BatchNorm2d(c1)]
            self.gather = nn.Sequential(*layers)
            if init == "identity":
                nn.init.zeros_(self.gather[-1].weight)
                nn.init.zeros_(self.gather[-1].bias)
        elif init == "identity":
            # The paper's global gather has no parameters, and sigmoid(mean(x)) cannot be neutral for every x;
            # a zero-initialised affine z = scale * mean + shift makes the start exact and is learned from there.
            self.scale = nn.Parameter(torch.zeros(1, c1, 1, 1))
            self.shift = nn.Parameter(torch.zeros(1, c1, 1, 1))
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is None:
            z = mean_over(x, (2, 3))
            if self.scale is not None:
                z = torch.addcmul(self.shift, self.scale, z)
        else:
            z = self.gather(x)
            z = F.interpolate(z, size=x.shape[2:], mode="nearest")
        return self.gate(x, z)
