"""Efficient Multi-Scale Attention (EMA).

Ouyang, He, Zhang, Luo, Guo, Zhan, Huang, "Efficient Multi-Scale Attention Module with
Cross-Spatial Learning", ICASSP 2023 (arXiv:2305.13563).

The channels are split into ``G`` groups that are processed independently (folded into the batch).
For one group ``X`` with ``C/G`` channels:

* 1x1 branch: ``X`` is averaged along the width (an ``H x 1`` profile) and along the height (a
  ``1 x W`` profile), as in coordinate attention; both profiles pass through one shared 1x1
  convolution and a sigmoid, re-weight ``X`` along rows and columns, and the result is normalised
  with GroupNorm (one group per channel): ``X1``.
* 3x3 branch: a 3x3 convolution of ``X``: ``X2``.
* Cross-spatial learning: each branch's global average is turned into channel weights by a softmax
  and multiplied with the *other* branch's features, ``M = softmax(avg X1) @ X2 + softmax(avg X2) @ X1``,
  a single ``H x W`` map per group.
* The group is gated by that map: ``Y = X * sigmoid(M)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_positive_int, gate_options, zero_init_

DEFAULT_GROUPS = 8  # every YOLOv5 width is a multiple of 8 (Ultralytics rounds channels with make_divisible(., 8))


@register(
    family="ema",
    paper="Ouyang et al., Efficient Multi-Scale Attention Module with Cross-Spatial Learning",
    year=2023,
    gating=True,
    note="groups default 8 (gcd(c1, 8) for widths not divisible by 8); the authors' code defaults to 32",
)
class EMA(GatedModule):
    """Efficient multi-scale attention with cross-spatial learning.

    Args:
        c1: input (= output) channels.
        groups: number of channel groups ``G``; must divide ``c1``. Default (``None``): 8, the largest
            group count that divides every YOLOv5 width, or ``gcd(c1, 8)`` when ``c1`` is not a
            multiple of 8.
        fuse: ``"mul"`` (paper, ``x * g``) or ``"add"`` (``x + g``, the multiplication ablation).
        init: ``"paper"`` or ``"identity"``. Identity zero-initialises the 3x3 convolution and the
            GroupNorm affine parameters, which makes the cross-spatial map exactly 0, and uses the
            neutral gate form of :class:`yolo_attn.modules._common.Gate` (``2 * sigmoid(0) = 1``), so the
            fresh module returns its input bit for bit.
    """

    def __init__(self, c1: int, groups: int | None = None, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        if groups is None:
            groups = math.gcd(c1, DEFAULT_GROUPS)
        check_positive_int(groups, "groups", name)
        if c1 % groups:
            raise ValueError(f"{name}: groups {groups} must divide the {c1} input channels")
        self.groups = groups
        cg = c1 // groups
        self.conv1 = nn.Conv2d(cg, cg, 1)  # shared by the height and width profiles
        self.conv3 = nn.Conv2d(cg, cg, 3, padding=1)
        self.norm = nn.GroupNorm(cg, cg)
        if init == "identity":
            zero_init_(self.conv3)
            zero_init_(self.norm)
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate = Gate(self.fuse, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xg = x.reshape(b * self.groups, c // self.groups, h, w)

        # 1x1 branch: directional profiles -> shared 1x1 conv -> row/column gates -> GroupNorm
        rows = xg.mean(3, keepdim=True)  # (bg, cg, h, 1)
        cols = xg.mean(2, keepdim=True).transpose(2, 3)  # (bg, cg, w, 1)
        s_rows, s_cols = self.conv1(torch.cat((rows, cols), 2)).split((h, w), 2)
        x1 = self.norm(xg * s_rows.sigmoid() * s_cols.sigmoid().transpose(2, 3))

        # 3x3 branch
        x2 = self.conv3(xg)

        # cross-spatial learning: softmax(avg of one branch) weights the channels of the other, both summed
        p = torch.cat((x1.mean((2, 3)), x2.mean((2, 3))), 1)  # (bg, 2cg)
        p = p.unflatten(1, (2, -1)).softmax(2).flatten(1).unsqueeze(1)  # (bg, 1, 2cg), softmax per branch
        feats = torch.cat((x2, x1), 1).flatten(2)  # (bg, 2cg, hw), paired with p's (x1, x2) halves
        m = torch.bmm(p.to(feats.dtype), feats).reshape(b * self.groups, 1, h, w)

        return self.gate(xg, m).reshape(b, c, h, w)
