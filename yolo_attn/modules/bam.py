"""Bottleneck Attention Module.

Park, Woo, Lee, Kweon, "BAM: Bottleneck Attention Module", BMVC 2018 (arXiv:1807.06514).

BAM infers one 3D attention map ``M(F) = sigmoid(Mc(F) + Ms(F))`` (eq. 1-4) from two parallel branches:

* channel branch ``Mc(F) = BN(MLP(AvgPool(F)))``: global average pooling and a one-hidden-layer MLP
  of width ``C / r``, batch-normalised, giving one value per channel (broadcast over space);
* spatial branch ``Ms(F) = BN(f1x1(f3x3(f3x3(f1x1(F)))))``: a 1x1 conv reduces to ``C / r`` channels,
  two 3x3 convolutions with dilation ``d`` enlarge the receptive field cheaply, a 1x1 conv maps to
  one map, and batch normalisation ends the branch (intermediate convs use BN + ReLU);

and applies it residually, ``F' = F + F * M(F) = F * (1 + M(F))`` (eq. 1).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import (
    Gate,
    GatedModule,
    PooledBatchNorm,
    check_positive_int,
    gate_options,
    hidden_channels,
    mean_over,
    zero_init_,
)


def _conv_bn_relu(c1: int, c2: int, k: int, d: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c1, c2, k, padding=d * (k // 2), dilation=d, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True)
    )


@register(
    family="bam",
    paper="Park et al., BAM: Bottleneck Attention Module",
    year=2018,
    gating=True,
    note="Paper form y = x * (1 + sigmoid(z)); init=identity uses y = x * (1 + (2 * sigmoid(z) - 1)) with both "
    "branch-final BNs zeroed (exactly x at start); fuse=add gives y = x + gate. The channel branch's BN "
    "uses running statistics for a training batch of one.",
)
class BAM(GatedModule):
    """Bottleneck attention: summed channel and spatial branches, one sigmoid, residual refinement.

    Args:
        c1: input (= output) channels.
        reduction: reduction ratio ``r`` of both branches (hidden width ``c1 // r``; 16 in the paper).
        dilation: dilation of the spatial branch's two 3x3 convolutions (4 in the paper).
        fuse: ``"mul"`` (paper, ``x * (1 + M)``) or ``"add"`` (``x + M``).
        init: ``"paper"`` or ``"identity"`` (last BN of each branch zeroed, gate form exactly neutral).
    """

    def __init__(self, c1: int, reduction: int = 16, dilation: int = 4, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        c_ = hidden_channels(c1, reduction, name)
        check_positive_int(dilation, "dilation", name)
        # channel branch: GAP -> FC -> ReLU -> FC -> BN
        self.channel = nn.Sequential(
            nn.Conv2d(c1, c_, 1), nn.ReLU(inplace=True), nn.Conv2d(c_, c1, 1), PooledBatchNorm(c1)
        )
        # spatial branch: 1x1 reduce -> two dilated 3x3 -> 1x1 to one map -> BN
        self.spatial = nn.Sequential(
            _conv_bn_relu(c1, c_, 1),
            _conv_bn_relu(c_, c_, 3, dilation),
            _conv_bn_relu(c_, c_, 3, dilation),
            nn.Conv2d(c_, 1, 1),
            nn.BatchNorm2d(1),
        )
        if init == "identity":
            zero_init_(self.channel[-1])
            zero_init_(self.spatial[-1])
        self._make_gates()

    def _make_gates(self) -> None:
        # paper: x + x * sigmoid(z), the residual form; identity/mul: x * 2 sigmoid(z) == x * (1 + (2 sigmoid(z) - 1)),
        # exactly x at z = 0; add: x + gate
        residual = self.fuse == "mul" and self.init == "paper"
        self.gate = Gate(self.fuse, self.init, combine="residual" if residual else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = mean_over(x, (2, 3))  # GAP
        z = self.channel(s) + self.spatial(x)  # (B, C, 1, 1) + (B, 1, H, W)
        return self.gate(x, z)
