"""Squeeze-and-Excitation.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507).
Global average pooling gives a channel descriptor ``s``; two fully connected layers (implemented as
1x1 convolutions) with a reduction ``r`` produce the channel gate ``sigmoid(W2 relu(W1 s))``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, gate_options, hidden_channels, zero_init_


@register(family="se", paper="Hu et al., Squeeze-and-Excitation Networks", year=2018, gating=True)
class SE(GatedModule):
    """Squeeze-and-Excitation channel gate.

    Args:
        c1: input (= output) channels.
        reduction: squeeze ratio ``r``; hidden width is ``max(c1 // r, 8)`` capped at ``c1``.
        fuse: ``"mul"`` (paper) or ``"add"`` (gate added, for the multiplication ablation).
        init: ``"paper"`` or ``"identity"`` (module starts as the identity).
        relu: keep the ReLU between the two layers (False drops it, an ablation).
    """

    def __init__(self, c1: int, reduction: int = 16, fuse: str = "mul", init: str = "paper", relu: bool = True):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        c_ = min(max(hidden_channels(c1, reduction, name), 8), c1)
        self.fc1 = nn.Conv2d(c1, c_, 1)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.fc2 = nn.Conv2d(c_, c1, 1)
        if init == "identity":
            zero_init_(self.fc2)
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return self.gate(x, self.fc2(self.act(self.fc1(s))))
