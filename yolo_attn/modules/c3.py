"""C3 blocks whose bottlenecks carry a registered attention layer.

The attention is applied to the residual branch of every bottleneck before the shortcut addition,
``y = x + A(F(x))``, the placement used by SE-ResNet (Hu et al., 2018) and CBAM (Woo et al., 2018)
inside residual blocks. The convolutions are Ultralytics' own ``C3``/``Bottleneck`` layers with the
same parameter names, so stock C3 weights transfer into this block.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules.block import C3, Bottleneck

from ..registry import LAYERS, register, split_options
from ._common import check_channels, check_positive_int


def check_attention_args(attn_args, owner: str) -> None:
    """The attention's own YAML args must be a list (``[16, {init: identity}]``)."""
    if not isinstance(attn_args, (list, tuple)):
        raise ValueError(f"{owner}: attention args must be a list, got {attn_args!r}")


def _attention(name: str, c: int, attn_args, owner: str) -> nn.Module:
    spec = LAYERS.get(name)
    if spec.kind != "preserve":
        raise ValueError(f"{owner}: attention {name!r} must be a channel-preserving layer, not a {spec.kind}")
    args, kwargs = split_options(attn_args)
    return spec.cls(c, *args, **kwargs)


class BottleneckAttn(Bottleneck):
    """Ultralytics ``Bottleneck`` with an attention layer on its residual branch."""

    def __init__(self, c1: int, c2: int, attn: str, attn_args=(), shortcut=True, g=1, k=(3, 3), e=0.5, owner="C3Attn"):
        super().__init__(c1, c2, shortcut, g, k, e)
        self.attn = _attention(attn, c2, attn_args, owner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(self.cv2(self.cv1(x)))
        return x + y if self.add else y


@register(family="c3", paper="Jocher et al., YOLOv5 C3 block with attention bottlenecks", year=2020, kind="block")
class C3Attn(C3):
    """C3 whose ``n`` bottlenecks each carry attention ``attn``.

    YAML: ``[-1, 3, C3Attn, [c2, NAME, [attention args...], shortcut]]``, for example
    ``[-1, 3, C3Attn, [256, CBAM, [16, {init: identity}]]]``. Scales with width/depth like ``C3``.
    """

    yaml_attention_args = 2  # YAML args [c2, NAME, [attention args], ...]: where the attention's args sit

    def __init__(self, c1: int, c2: int, n: int = 1, attn: str = "SE", attn_args=(), shortcut=True, g=1, e=0.5):
        check_channels(c1, "C3Attn")
        check_positive_int(n, "repeats n", "C3Attn")
        check_attention_args(attn_args, "C3Attn")
        super().__init__(c1, c2, 0, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(
            *(BottleneckAttn(c_, c_, attn, attn_args, shortcut, g, k=((1, 1), (3, 3)), e=1.0) for _ in range(n))
        )
