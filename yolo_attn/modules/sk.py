"""Selective Kernel (SK) convolution.

Li, Wang, Hu, Yang, "Selective Kernel Networks", CVPR 2019 (arXiv:1903.06586).

The SK unit lets each channel choose its receptive field:

* **split**: ``M`` branches transform the input with grouped 3x3 convolutions of growing dilation
  (dilation ``m`` gives the field of a ``(2m + 1) x (2m + 1)`` kernel, the paper's cheaper stand-in
  for 5x5), each followed by BN and ReLU, giving ``U_1 .. U_M``;
* **fuse**: ``U = sum_m U_m``; global average pooling gives ``s``; a fully connected layer with BN
  and ReLU compresses it to ``z`` of width ``d = max(C / r, L)`` with ``L = 32``;
* **select**: one fully connected layer per branch maps ``z`` to logits ``a_m``; a softmax across
  the ``M`` branches (separately for every channel) gives weights that sum to one, and the output
  is ``V = sum_m softmax(a)_m * U_m``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from ._common import PooledBatchNorm, check_channels, check_positive_int, hidden_channels, maybe_residual_scale

DEFAULT_CARDINALITY = 32  # the paper's SKNet-50 uses G = 32 groups


@register(
    family="sk",
    paper="Li et al., Selective Kernel Networks",
    year=2019,
    gating=False,
    note="output replaces x (not a gate); default groups gcd(C, 32); BN of the fuse layer uses running "
    "statistics for a training batch of one",
)
class SK(nn.Module):
    """Selective Kernel unit with ``C`` in and out channels.

    Args:
        c1: input (= output) channels ``C``.
        branches: number of branches ``M`` (>= 1); branch ``m`` (1-based) is a 3x3 convolution with
            dilation ``m``, so the default 2 gives the paper's 3x3 and "5x5" pair.
        groups: groups of each branch convolution; must divide ``c1``. Default ``None`` uses
            ``gcd(c1, 32)`` (the paper's cardinality 32 where the width allows), which divides
            every channel count.
        reduction: ``r`` in ``d = max(C // r, min_hidden)``.
        min_hidden: ``L`` in the same formula (paper: 32).
        init: ``"paper"`` returns ``V``; ``"identity"`` returns ``x + gamma * (V - x)`` with a
            learnable per-channel ``gamma`` starting at 0 (exact identity when freshly built).

    The fuse layer's BN normalises a pooled ``(B, d)`` vector; with one sample in training mode
    batch statistics do not exist, so that case normalises with the running statistics instead
    of failing (Ultralytics' last training batch may hold a single image).
    """

    def __init__(
        self,
        c1: int,
        branches: int = 2,
        groups: int | None = None,
        reduction: int = 16,
        min_hidden: int = 32,
        init: str = "paper",
    ):
        super().__init__()
        name = type(self).__name__
        check_channels(c1, name)
        check_positive_int(branches, "branches", name)
        check_positive_int(min_hidden, "min_hidden", name)
        if groups is None:
            groups = math.gcd(c1, DEFAULT_CARDINALITY)
        check_positive_int(groups, "groups", name)
        if c1 % groups:
            raise ValueError(f"{name}: groups {groups} must divide the {c1} input channels")
        d = hidden_channels(c1, reduction, name, minimum=min_hidden)
        self.branches, self.groups, self.init = branches, groups, init
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c1, c1, 3, padding=m, dilation=m, groups=groups, bias=False),
                nn.BatchNorm2d(c1),
                nn.ReLU(inplace=True),
            )
            for m in range(1, branches + 1)
        )
        self.fc = nn.Conv2d(c1, d, 1, bias=False)
        self.bn = PooledBatchNorm(d)
        self.act = nn.ReLU(inplace=True)
        self.select = nn.Conv2d(d, c1 * branches, 1)  # the M per-branch layers, stacked
        self.scale = maybe_residual_scale(c1, init, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        u = [conv(x) for conv in self.convs]  # U_1 .. U_M
        s = sum(um.mean((2, 3), keepdim=True) for um in u)  # GAP of U = sum_m U_m
        z = self.act(self.bn(self.fc(s)))
        a = self.select(z).view(b, self.branches, c, 1, 1).softmax(1)
        v = u[0] * a[:, 0]
        for m in range(1, self.branches):
            v = v + u[m] * a[:, m]
        return v if self.scale is None else self.scale(x, v)
