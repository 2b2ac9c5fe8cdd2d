"""Efficient Channel Attention.

Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
Networks", CVPR 2020 (arXiv:1910.03151).

ECA replaces SE's bottleneck MLP by local cross-channel interaction without dimensionality
reduction: the globally average-pooled descriptor ``s`` (one value per channel) is filtered by a
1D convolution of size ``k`` along the channel axis, and the gate is ``sigmoid(conv1d_k(s))``.
The kernel size adapts to the channel count ``C`` through ``k = psi(C) = |log2(C) / gamma + b / gamma|_odd``
(the nearest odd number), with ``gamma = 2`` and ``b = 1`` in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_positive_int, gate_options, mean_over, zero_init_


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size: ``t = int(|(log2(C) + b) / gamma|)``, made odd by adding one if even."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@register(
    family="eca",
    paper="Wang et al., ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    year=2020,
    gating=True,
    note="k_size=None picks the paper's adaptive odd kernel size (gamma=2, b=1).",
)
class ECA(GatedModule):
    """Efficient Channel Attention: a 1D convolution across the pooled channel descriptor, then a gate.

    Args:
        c1: input (= output) channels.
        k_size: 1D kernel size (odd); ``None`` chooses it from ``c1`` as in the paper.
        fuse: ``"mul"`` (paper) or ``"add"`` (gate added instead of multiplied).
        init: ``"paper"`` or ``"identity"`` (zero kernel: the module starts as the identity).
    """

    def __init__(self, c1: int, k_size: int | None = None, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        if k_size is None:
            k_size = eca_kernel_size(c1)
        else:
            check_positive_int(k_size, "k_size", name)
            if k_size % 2 == 0:
                raise ValueError(f"{name}: k_size must be odd (the channel axis is padded symmetrically), got {k_size}")
        self.k_size = k_size
        # One shared kernel slides over the channel axis; the paper's ECA conv has no bias.
        self.conv = nn.Conv1d(1, 1, k_size, padding=k_size // 2, bias=False)
        if init == "identity":
            zero_init_(self.conv)
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = mean_over(x, (2, 3)).flatten(1).unsqueeze(1)  # (B, 1, C): the descriptor as a sequence
        z = self.conv(s).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1) gate logits
        return self.gate(x, z)
