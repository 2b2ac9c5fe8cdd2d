"""YOLOv8's ``C2f`` and YOLO11's ``C3k2`` with attention or feature-map multiplication in their bottlenecks.

The newer Ultralytics bases replace YOLOv5's ``C3`` by ``C2f`` (YOLOv8: split the 1x1 projection in two,
run ``n`` bottlenecks on one half, concatenate every intermediate output) and ``C3k2`` (YOLO11: a ``C2f``
whose units are plain bottlenecks, or small ``C3k`` blocks at the m/l/x scales). The blocks here keep
every convolution and parameter name of Ultralytics' own block, so stock weights transfer into them, and
change only the residual units:

* ``AttnC2f`` / ``AttnC3k2``: each bottleneck applies a registered channel-preserving layer ``A`` to its
  residual branch before the shortcut, ``y = x + A(F(x))`` (as SE-ResNet, Hu et al. 2018, and CBAM,
  Woo et al. 2018, do in residual blocks; as :class:`~yolo_attn.modules.c3.C3Attn` does in ``C3``);
* ``FMMC2f`` / ``FMMC3k2``: each bottleneck multiplies instead of adds, ``y = x * F(x)`` (FMMNet, Ye et
  al., arXiv:2106.15067, 2021; as :class:`~yolo_attn.modules.fmm.C3FMM` does in ``C3``).

The names put the modifier first (as Ultralytics' ``RepC3``/``GhostConv`` do) because ``C2fAttn`` is
already Ultralytics' text-guided block of YOLO-World. The bridge scales width and depth like Ultralytics'
blocks and, like Ultralytics does for ``C3k2``, switches the ``c3k`` units on at the m/l/x scales.
"""

from __future__ import annotations

from torch import nn
from ultralytics.nn.modules.block import C2f, C3k, C3k2, PSABlock

from ..registry import register
from ._common import check_channels, check_positive_int
from .c3 import BottleneckAttn, check_attention_args
from .fmm import BottleneckFMM


class C3kAttn(C3k):
    """Ultralytics ``C3k`` (the unit of ``C3k2`` at m/l/x) whose bottlenecks carry attention ``attn``."""

    def __init__(self, c1: int, c2: int, n: int, attn: str, attn_args=(), shortcut=True, g=1, e=0.5, k=3, owner="AttnC3k2"):
        super().__init__(c1, c2, 0, shortcut, g, e, k)
        c_ = int(c2 * e)
        self.m = nn.Sequential(
            *(BottleneckAttn(c_, c_, attn, attn_args, shortcut, g, k=(k, k), e=1.0, owner=owner) for _ in range(n))
        )


class C3kFMM(C3k):
    """Ultralytics ``C3k`` whose bottlenecks use feature-map multiplication."""

    def __init__(self, c1: int, c2: int, n: int, shortcut=True, g=1, e=0.5, k=3):
        super().__init__(c1, c2, 0, shortcut, g, e, k)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(BottleneckFMM(c_, c_, shortcut, g, k=(k, k), e=1.0) for _ in range(n)))


def _with_psa(unit: nn.Module, c: int, psa: bool) -> nn.Module:
    """``unit``, followed by a PSA block as in ``C3k2(attn=True)`` (YOLO26's last head block) when ``psa``."""
    return nn.Sequential(unit, PSABlock(c, attn_ratio=0.5, num_heads=max(c // 64, 1))) if psa else unit


def _check(owner: str, c1, n) -> None:
    check_channels(c1, owner)
    check_positive_int(n, "repeats n", owner)


@register(family="c3", paper="Ultralytics YOLOv8 C2f block with attention bottlenecks", year=2023, kind="block")
class AttnC2f(C2f):
    """C2f whose ``n`` bottlenecks each carry attention ``attn``.

    YAML: ``[-1, 3, AttnC2f, [c2, NAME, [attention args...], shortcut]]``, for example
    ``[-1, 3, AttnC2f, [256, CBAM, [16], True]]``. Scales with width/depth like ``C2f``.
    """

    yaml_attention_args = 2  # YAML args [c2, NAME, [attention args], ...]: where the attention's args sit

    def __init__(self, c1: int, c2: int, n: int = 1, attn: str = "SE", attn_args=(), shortcut=False, g=1, e=0.5):
        _check("AttnC2f", c1, n)
        check_attention_args(attn_args, "AttnC2f")
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(
            BottleneckAttn(self.c, self.c, attn, attn_args, shortcut, g, k=((3, 3), (3, 3)), e=1.0, owner="AttnC2f")
            for _ in range(n)
        )


@register(family="c3", paper="Ultralytics YOLO11 C3k2 block with attention bottlenecks", year=2024, kind="block")
class AttnC3k2(C3k2):
    """C3k2 whose bottlenecks (or, with ``c3k``, the bottlenecks inside its C3k units) carry attention ``attn``.

    YAML: ``[-1, 2, AttnC3k2, [c2, NAME, [attention args...], c3k, e, psa]]``, for example
    ``[-1, 2, AttnC3k2, [512, SE, [], False, 0.25]]``. Scales like ``C3k2`` (``c3k`` on at m/l/x). ``psa`` is
    ``C3k2``'s ``attn`` flag (YOLO26's last head block: each bottleneck followed by a PSA block, kept as it is).
    """

    yaml_attention_args = 2

    def __init__(self, c1: int, c2: int, n: int = 1, attn: str = "SE", attn_args=(), c3k=False, e=0.5, psa=False, g=1,
                 shortcut=True):  # fmt: skip
        _check("AttnC3k2", c1, n)
        check_attention_args(attn_args, "AttnC3k2")
        super().__init__(c1, c2, n, c3k=c3k, e=e, g=g, shortcut=shortcut)
        self.m = nn.ModuleList(
            _with_psa(BottleneckAttn(self.c, self.c, attn, attn_args, shortcut, g, owner="AttnC3k2"), self.c, True)
            if psa
            else C3kAttn(self.c, self.c, 2, attn, attn_args, shortcut, g)
            if c3k
            else BottleneckAttn(self.c, self.c, attn, attn_args, shortcut, g, owner="AttnC3k2")
            for _ in range(n)
        )


@register(
    family="fmm",
    paper="Ye et al., Towards Understanding the Effectiveness of Attention Mechanism (FMMNet), in YOLOv8's C2f",
    year=2021,
    kind="block",
)
class FMMC2f(C2f):
    """C2f whose bottlenecks use feature-map multiplication. YAML: ``[-1, 3, FMMC2f, [c2, shortcut]]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut=False, g=1, e=0.5):
        _check("FMMC2f", c1, n)
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(BottleneckFMM(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0) for _ in range(n))


@register(
    family="fmm",
    paper="Ye et al., Towards Understanding the Effectiveness of Attention Mechanism (FMMNet), in YOLO11's C3k2",
    year=2021,
    kind="block",
)
class FMMC3k2(C3k2):
    """C3k2 whose bottlenecks use feature-map multiplication. YAML: ``[-1, 2, FMMC3k2, [c2, c3k, e, psa]]`` (``psa``:
    ``C3k2``'s ``attn`` flag, each bottleneck followed by a PSA block)."""

    def __init__(self, c1: int, c2: int, n: int = 1, c3k=False, e=0.5, psa=False, g=1, shortcut=True):
        _check("FMMC3k2", c1, n)
        super().__init__(c1, c2, n, c3k=c3k, e=e, g=g, shortcut=shortcut)
        self.m = nn.ModuleList(
            _with_psa(BottleneckFMM(self.c, self.c, shortcut, g), self.c, True)
            if psa
            else C3kFMM(self.c, self.c, 2, shortcut, g)
            if c3k
            else BottleneckFMM(self.c, self.c, shortcut, g)
            for _ in range(n)
        )
