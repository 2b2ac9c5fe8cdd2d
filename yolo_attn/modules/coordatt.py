"""Coordinate Attention.

Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021
(arXiv:2103.02907).

Instead of pooling a feature map to one value per channel, coordinate attention pools along each
spatial direction separately (eq. 2-3): ``z_h`` (C x H, averaged over the width) and ``z_w`` (C x W,
averaged over the height). The two are concatenated along the spatial axis and transformed
together by a shared 1x1 convolution to ``C / r`` channels, batch normalisation and a non-linearity
(h-swish), ``f = delta(F1([z_h, z_w]))`` (eq. 4). ``f`` is split back into its height and width
parts, each is mapped to ``C`` channels by its own 1x1 convolution and a sigmoid (eq. 5-6), and the
output is ``y = x * g_h * g_w`` (eq. 7), a gate that varies along rows and along columns.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_positive_int, gate_options, hidden_channels, mean_over, zero_init_

_DEFAULT_REDUCTION = 32


@register(
    family="coordatt",
    paper="Hou, Zhou, Feng, Coordinate Attention for Efficient Mobile Network Design",
    year=2021,
    gating=True,
    note="Hidden width max(8, c1 // reduction) as in the paper; fuse=add adds both directional gates.",
)
class CoordAtt(GatedModule):
    """Coordinate attention: direction-aware gates along H and along W.

    Args:
        c1: input (= output) channels.
        reduction: reduction ratio ``r``; hidden width ``max(8, c1 // r)``.
        fuse: ``"mul"`` (paper, ``x * g_h * g_w``) or ``"add"`` (``x + g_h + g_w``).
        init: ``"paper"`` or ``"identity"`` (both gate convolutions zeroed: each gate is exactly neutral).
    """

    def __init__(self, c1: int, reduction: int = _DEFAULT_REDUCTION, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        check_positive_int(reduction, "reduction", name)
        if reduction > max(c1, _DEFAULT_REDUCTION):  # the paper's floor of 8 allows r > c1 for thin layers
            hidden_channels(c1, reduction, name)  # raises the shared "looks like a channel count" error
        mip = max(8, c1 // reduction)
        self.conv1 = nn.Conv2d(c1, mip, 1, bias=False)  # bias would be cancelled by the BN that follows
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, c1, 1)
        self.conv_w = nn.Conv2d(mip, c1, 1)
        if init == "identity":
            zero_init_(self.conv_h)
            zero_init_(self.conv_w)
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate_w = Gate(self.fuse, self.init)
        self.gate_h = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        z_h = mean_over(x, (3,))  # (B, C, H, 1)
        z_w = mean_over(x, (2,)).transpose(2, 3)  # (B, C, W, 1)
        f = self.act(self.bn1(self.conv1(torch.cat((z_h, z_w), 2))))  # shared transform over H + W positions
        f_h, f_w = torch.split(f, [h, w], 2)
        x = self.gate_w(x, self.conv_w(f_w.transpose(2, 3)))  # (B, C, 1, W) gate
        return self.gate_h(x, self.conv_h(f_h))  # (B, C, H, 1) gate
