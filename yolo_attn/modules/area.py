"""YOLO12's ``A2C2f`` with its area attention replaced by a registered layer (``AttnA2C2f``).

YOLO12 (Tian, Ye and Doermann, "YOLOv12: Attention-Centric Real-Time Object Detectors", 2025) builds its
backbone's P4/P5 stages from ``A2C2f`` (R-ELAN): a 1x1 projection, ``n`` stages of two *area-attention
blocks*, the concatenation of every stage's output and a 1x1 fusion. Each area-attention block is two
residual steps, ``x + AAttn(x)`` (multi-head self-attention inside a few horizontal areas of the map) and
``x + MLP(x)`` (two 1x1 convolutions).

``AttnA2C2f`` keeps every part of the block and its parameter names (so the projections and MLPs of a
stock YOLO12 checkpoint transfer) and changes one thing: the attention step ``x + AAttn(x)`` becomes the
registered layer ``A(x)`` (a gate ``x * g(x)`` for the gating layers); the MLP step follows unchanged,
``y = A(x); out = y + MLP(y)``. With ``init="identity"`` the layer starts as the identity, and the block
starts as an ``A2C2f`` without attention. This places Ultralytics' attention and ours in the same slot of
the same network, so that a sweep compares them directly. The stock attention's tensors have no place in
this block; the transfer reads which ones from :attr:`AttnA2C2f.drops_source`.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules.block import A2C2f
from ultralytics.nn.modules.conv import Conv

from ..registry import register
from ._common import check_channels, check_positive_int
from .c3 import _attention, check_attention_args


class LayerABlock(nn.Module):
    """An area-attention block of ``A2C2f`` whose attention step is the registered layer ``attn``.

    ``mlp`` has the shape and parameter names of the stock block's MLP and its initialisation (truncated
    normal, std 0.02, zero bias), so it is the same block with one step exchanged.
    """

    def __init__(self, dim: int, attn: str, attn_args=(), mlp_ratio: float = 1.2, owner: str = "AttnA2C2f"):
        super().__init__()
        self.attn = _attention(attn, dim, attn_args, owner)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))
        for m in self.mlp.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(x)
        return y + self.mlp(y)


@register(
    family="c3",
    paper="Tian et al., YOLOv12: Attention-Centric Real-Time Object Detectors (A2C2f with the area attention replaced)",
    year=2025,
    kind="block",
)
class AttnA2C2f(A2C2f):
    """``A2C2f`` whose area-attention steps are the registered channel-preserving layer ``attn``.

    YAML: ``[-1, 4, AttnA2C2f, [c2, NAME, [attention args...], a2, area]]``, for example
    ``[-1, 4, AttnA2C2f, [512, SE, [], True, 4]]`` (the row of ``[-1, 4, A2C2f, [512, True, 4]]``). Scales
    like ``A2C2f``: width, depth and, at the l/x scales, ``residual`` with ``mlp_ratio`` 1.2. ``area`` is kept
    as an argument (so the row reads like the stock one) but has no effect: the layer sees the whole map.
    """

    yaml_attention_args = 2  # YAML args [c2, NAME, [attention args], ...]: where the attention's args sit

    def __init__(self, c1: int, c2: int, n: int = 1, attn: str = "SE", attn_args=(), a2=True, area=1, residual=False,
                 mlp_ratio=2.0, e=0.5, g=1, shortcut=True):  # fmt: skip
        check_channels(c1, "AttnA2C2f")
        check_positive_int(n, "repeats n", "AttnA2C2f")
        check_attention_args(attn_args, "AttnA2C2f")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or not mlp_ratio > 0:
            raise ValueError(f"AttnA2C2f: mlp_ratio must be a positive number (the MLP's width over the block's), "
                             f"got {mlp_ratio!r}")
        if not a2:
            raise ValueError("AttnA2C2f: a2=False builds an A2C2f without area attention (C3k units): nothing to replace")
        c_ = int(c2 * e)
        check_channels(c_, "AttnA2C2f")
        # A2C2f's own constructor requires a multiple of 32 hidden channels (its attention heads), which this block
        # does not need: the parts are built here, with A2C2f's names, and A2C2f's forward runs them
        nn.Module.__init__(self)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv((1 + n) * c_, c2, 1)
        self.gamma = nn.Parameter(0.01 * torch.ones(c2)) if residual else None
        self.m = nn.ModuleList(
            nn.Sequential(*(LayerABlock(c_, attn, attn_args, mlp_ratio) for _ in range(2))) for _ in range(n)
        )

    @property
    def drops_source(self) -> tuple[str, ...]:
        """Key prefixes of a stock ``A2C2f``'s tensors that this block has no place for (its area attention)."""
        return tuple(f"m.{i}.{j}.attn." for i in range(len(self.m)) for j in range(2))
