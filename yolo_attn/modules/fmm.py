"""Feature-map multiplication (FMM) bottlenecks.

Ye, Xu, et al., "Towards Understanding the Effectiveness of Attention Mechanism" (arXiv:2106.15067,
2021) argue that attention helps through feature-map multiplication, which acts as a regulariser
(it smooths the learned function), and propose FMMNet: residual blocks computing ``y = x * F(x)``
instead of ``y = x + F(x)``. These blocks put that change into YOLOv5's C3.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules.block import C3, Bottleneck

from ..registry import register
from ._common import check_channels, check_positive_int


class BottleneckFMM(Bottleneck):
    """Ultralytics ``Bottleneck`` whose shortcut multiplies instead of adds: ``y = x * F(x)``.

    ``multiply = False`` (set on an instance by :mod:`yolo_attn.diagnose` to knock the multiplication out)
    gives the stock residual ``y = x + F(x)`` with the same weights. It is a class attribute, so blocks
    pickled before it existed load with the default.
    """

    multiply = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        if not self.add:
            return y
        return x * y if self.multiply else x + y


@register(
    family="fmm",
    paper="Ye et al., Towards Understanding the Effectiveness of Attention Mechanism (FMMNet)",
    year=2021,
    kind="block",
)
class C3FMM(C3):
    """C3 whose bottlenecks use feature-map multiplication. YAML: ``[-1, 3, C3FMM, [c2, shortcut]]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut=True, g=1, e=0.5):
        check_channels(c1, "C3FMM")
        check_positive_int(n, "repeats n", "C3FMM")
        super().__init__(c1, c2, 0, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(BottleneckFMM(c_, c_, shortcut, g, k=((1, 1), (3, 3)), e=1.0) for _ in range(n)))
