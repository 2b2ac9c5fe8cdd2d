"""Shuffle attention (SA-Net).

Zhang, Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", ICASSP 2021
(arXiv:2102.00240).

The ``C`` channels are divided into ``G`` groups; each group is split in half along its channels:

* the *channel* half ``X1`` is gated per channel by ``sigmoid(W1 * s + b1)``, with ``s`` its global
  average over the positions;
* the *spatial* half ``X2`` is gated per position by ``sigmoid(W2 * N(X2) + b2)``, with ``N`` the
  group normalisation of the paper (one normalisation group per channel: zero mean and unit
  variance over the positions of each channel).

``W1, b1, W2, b2`` are per-channel scalars (``C / 2G`` of each) shared by all groups. The gated
halves are concatenated back in place and the channels are shuffled with two shuffle groups so that
information flows between the two halves in the next layer.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_positive_int, gate_options, in_float32, maybe_residual_scale

GROUP_CHOICES = (64, 32, 16, 8, 4, 2, 1)  # the paper uses G = 64 in ResNet-50


def default_groups(c1: int) -> int:
    """Largest of 64, 32, ..., 1 whose ``2 * G`` divides ``c1`` (0 if ``c1`` is odd)."""
    return next((g for g in GROUP_CHOICES if c1 % (2 * g) == 0), 0)


@register(
    family="shuffle",
    paper="Zhang & Yang, SA-Net: Shuffle Attention for Deep Convolutional Neural Networks",
    year=2021,
    gating=True,
    note="default groups: largest of 64..1 with 2G dividing C; init=identity uses a zero residual scale "
    "(the channel shuffle rules out a neutral gate)",
)
class ShuffleAttention(GatedModule):
    """Shuffle attention over ``G`` groups.

    Args:
        c1: input (= output) channels; must be even.
        groups: ``G``; ``2 * G`` must divide ``c1``. Default ``None`` picks the largest of
            64, 32, 16, 8, 4, 2, 1 that does (64 for C >= 128 multiples of 128, 8 for C = 16).
        eps: epsilon of the spatial branch's normalisation.
        fuse: ``"mul"`` (paper) or ``"add"`` (each half gets its gate added instead).
        init: ``"paper"``: gate scales ``W1 = W2 = 0`` and shifts ``b1 = b2 = 1`` (the authors'
            released initialisation; every gate starts at ``sigmoid(1)``). ``"identity"``: same
            gate parameters, and the output is ``x + gamma * (SA(x) - x)`` with a learnable
            per-channel ``gamma`` starting at 0. A neutral gate alone would not do: the final channel
            shuffle permutes even an ungated input.
    """

    def __init__(self, c1: int, groups: int | None = None, eps: float = 1e-5, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        if c1 % 2:
            raise ValueError(f"{name}: needs an even number of channels (two halves per group), got {c1}")
        if groups is None:
            groups = default_groups(c1)
        check_positive_int(groups, "groups", name)
        if c1 % (2 * groups):
            raise ValueError(f"{name}: 2 * groups ({2 * groups}) must divide the {c1} input channels")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        self.groups, self.eps = groups, float(eps)
        c = c1 // (2 * groups)
        # per-channel scalars stored 1-D (a 5-D parameter would break model.to(memory_format=channels_last))
        self.cweight = nn.Parameter(torch.zeros(c))
        self.cbias = nn.Parameter(torch.ones(c))
        self.sweight = nn.Parameter(torch.zeros(c))
        self.sbias = nn.Parameter(torch.ones(c))
        self.scale = maybe_residual_scale(c1, init, name)
        self._make_gates()

    def _make_gates(self) -> None:
        self.channel_gate = Gate(self.fuse, "paper")  # sigmoid gates under both inits (see init above)
        self.spatial_gate = Gate(self.fuse, "paper")

    def normalise(self, x2: torch.Tensor) -> torch.Tensor:
        """Zero mean and unit variance over the positions of each channel (the spatial half's group norm)."""
        d = x2 - x2.mean((3, 4), keepdim=True)
        return d * torch.rsqrt(d.pow(2).mean((3, 4), keepdim=True) + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c1, h, w = x.shape
        xg = x.reshape(b, self.groups, 2, c1 // (2 * self.groups), h, w)
        x1, x2 = xg[:, :, 0], xg[:, :, 1]  # (B, G, C/2G, H, W) each
        cw, cb, sw, sb = (p.view(1, 1, -1, 1, 1) for p in (self.cweight, self.cbias, self.sweight, self.sbias))
        # channel half: per-channel global average -> affine -> gate
        y1 = self.channel_gate(x1, cw * x1.mean((3, 4), keepdim=True) + cb)
        # spatial half: per-channel normalisation over positions -> affine -> gate
        y2 = self.spatial_gate(x2, sw * in_float32(self.normalise, x2) + sb)  # float32: a variance passes fp16's range
        y = torch.stack([y1, y2], 2).view(b, 2, c1 // 2, h, w).transpose(1, 2).reshape(b, c1, h, w)
        return y if self.scale is None else self.scale(x, y)
