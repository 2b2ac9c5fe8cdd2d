"""Triplet attention: cross-dimension gates from three rotated views of the input.

Misra, Nalamada, Arasanipalai, Hou, "Rotate to Attend: Convolutional Triplet Attention Module",
WACV 2021 (arXiv:2010.03045).

Each branch looks at the ``(C, H, W)`` tensor along one pair of dimensions. The remaining dimension
is collapsed by *Z-pool*, the concatenation of its max and its mean (two maps); a ``k x k``
convolution (2 -> 1) with BN turns them into gate logits and a sigmoid into a gate:

* branch 1, channel x height: Z-pool over ``W``, gate of shape ``(C, H)`` broadcast over ``W``;
* branch 2, channel x width: Z-pool over ``H``, gate of shape ``(C, W)`` broadcast over ``H``;
* branch 3, spatial: Z-pool over ``C``, gate of shape ``(H, W)`` broadcast over ``C``.

The output is the average of the three gated tensors, ``y = x * (g1 + g2 + g3) / 3``.

The paper rotates the input so that the collapsed dimension comes first, gates the rotated tensor
and rotates back. Gating ``x`` directly with the broadcast gate gives the same result without
moving the feature map in memory; the 2-D convolution then runs over the ``(C, H)`` or ``(C, W)``
plane rather than its transpose, which is the same family of functions with transposed kernels.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_odd_kernel, gate_options, zero_init_


class _ZPoolGate(nn.Module):
    """Z-pooled maps (2 channels) -> ``k x k`` conv -> BN: the gate logits of one branch."""

    def __init__(self, k: int, zero: bool):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)
        if zero:
            zero_init_(self.bn)

    def forward(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        p = torch.stack([x.amax(dim), x.mean(dim)], 1)  # (B, 2, *the two kept dims)
        return self.bn(self.conv(p))[:, 0]


@register(
    family="triplet",
    paper="Misra et al., Rotate to Attend: Convolutional Triplet Attention Module",
    year=2021,
    gating=True,
)
class TripletAttention(GatedModule):
    """Triplet attention.

    Args:
        c1: input (= output) channels.
        kernel_size: odd size ``k`` of each branch convolution (paper: 7).
        no_spatial: drop the spatial (H x W) branch and average the two cross-channel branches
            (the paper's ablation).
        fuse: ``"mul"`` (paper) or ``"add"``; with ``add`` the averaged gate is added to ``x``.
        init: ``"paper"`` (sigmoid gates) or ``"identity"``: the BN of each branch starts at zero
            scale and shift, so every logit is 0, and the gates use neutral form of :class:`yolo_attn.modules._common.Gate`
            (``2 * sigmoid`` = 1 for ``mul``, ``2 * sigmoid - 1`` = 0 for ``add``): the averaged
            gate is exactly neutral and the module returns its input.
    """

    def __init__(self, c1: int, kernel_size: int = 7, no_spatial: bool = False, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        check_odd_kernel(kernel_size, name)
        if not isinstance(no_spatial, bool):
            raise ValueError(f"{name}: no_spatial must be true or false, got {no_spatial!r}")  # noqa: TRY004 (contract: ValueError)
        self.no_spatial = no_spatial
        zero = init == "identity"
        self.ch = _ZPoolGate(kernel_size, zero)  # channel x height
        self.cw = _ZPoolGate(kernel_size, zero)  # channel x width
        self.hw = None if no_spatial else _ZPoolGate(kernel_size, zero)  # height x width
        self._make_gates()

    def _make_gates(self) -> None:
        self.branch_value = Gate(self.fuse, self.init)  # only its .value: the form of each branch's gate
        self.gate = Gate(self.fuse, self.init, value="raw")  # fuses x with the averaged gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = self.branch_value.value
        g = value(self.ch(x, 3)).unsqueeze(3) + value(self.cw(x, 2)).unsqueeze(2)
        if self.hw is None:
            return self.gate(x, g * 0.5)
        g = g + value(self.hw(x, 1)).unsqueeze(1)
        return self.gate(x, g / 3)
