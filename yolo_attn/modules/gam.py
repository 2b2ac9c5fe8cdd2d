"""Global Attention Mechanism (GAM).

Liu, Shao, Hoffmann, "Global Attention Mechanism: Retain Information to Enhance Channel-Spatial
Interactions", arXiv:2112.05561 (2021).

GAM follows CBAM's sequential channel-then-spatial layout but avoids pooling away information:

* **channel**: the tensor is permuted to ``(H, W, C)`` and a two-layer MLP (``C -> C/r -> C``,
  ReLU between) is applied at every position; permuted back, a sigmoid gives the gate
  ``Mc``: ``F1 = Mc(x) * x``. A position-wise MLP over channels is exactly a pair of 1x1
  convolutions, which is how it is computed here (no permutation in memory).
* **spatial**: a 7x7 convolution ``C -> C/r`` with BN and ReLU, then a 7x7 convolution
  ``C/r -> C`` with BN, and a sigmoid give ``Ms``: ``F2 = Ms(F1) * F1``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_odd_kernel, gate_options, hidden_channels, zero_init_


@register(
    family="gam",
    paper="Liu et al., Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions",
    year=2021,
    gating=True,
    note="no group conv / channel shuffle in the spatial branch (the paper's optional ResNet-50 variant)",
)
class GAM(GatedModule):
    """GAM channel then spatial attention.

    Args:
        c1: input (= output) channels ``C``.
        reduction: ``r``; hidden width ``C // r`` (paper: 4), at least 1.
        kernel_size: odd size of the two spatial convolutions (paper: 7).
        fuse: ``"mul"`` (paper) or ``"add"``, used for both gates.
        init: ``"paper"`` or ``"identity"``: the last MLP layer and the last BN are zero-initialised
            and both gates use neutral form of :class:`yolo_attn.modules._common.Gate`, so each step returns its input.
    """

    def __init__(self, c1: int, reduction: int = 4, kernel_size: int = 7, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        check_odd_kernel(kernel_size, name)
        c_ = hidden_channels(c1, reduction, name)
        p = kernel_size // 2
        self.channel = nn.Sequential(nn.Conv2d(c1, c_, 1), nn.ReLU(inplace=True), nn.Conv2d(c_, c1, 1))
        self.spatial = nn.Sequential(
            nn.Conv2d(c1, c_, kernel_size, padding=p, bias=False),
            nn.BatchNorm2d(c_),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_, c1, kernel_size, padding=p, bias=False),
            nn.BatchNorm2d(c1),
        )
        if init == "identity":
            zero_init_(self.channel[-1])
            zero_init_(self.spatial[-1])
        self._make_gates()

    def _make_gates(self) -> None:
        self.channel_gate = Gate(self.fuse, self.init)
        self.spatial_gate = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_gate(x, self.channel(x))
        return self.spatial_gate(x, self.spatial(x))
