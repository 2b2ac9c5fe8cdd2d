"""Non-local block, embedded Gaussian form.

Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018 (arXiv:1711.07971).

Every output position is a weighted sum over all positions of the feature map:

    y_i = sum_j softmax_j(theta(x_i)^T phi(x_j)) * g(x_j),
    z_i = W_z(y_i) + x_i,

where ``theta``, ``phi`` and ``g`` are 1x1 convolutions to ``C / 2`` inner channels, and ``W_z`` is a
1x1 convolution back to ``C`` followed by BN. The paper's "sub-sampling" trick max-pools the
``phi`` and ``g`` maps by 2 before the sum, cutting the pairwise cost by 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ._common import INITS, check_channels, check_choice, hidden_channels, in_float32


@register(
    family="nonlocal",
    paper="Wang et al., Non-local Neural Networks",
    year=2018,
    gating=False,
    note="memory O((HW)^2): meant for P4/P5 maps; both inits start as the identity (paper zero-inits "
    "the BN scale of W_z)",
)
class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block with residual connection.

    Args:
        c1: input (= output) channels ``C``.
        reduction: inner channels are ``C // reduction`` (paper: 2), at least 1.
        sub_sample: max-pool ``phi`` and ``g`` by 2 (windows at the border may be partial, so odd
            sizes and 1x1 maps work).
        init: ``"paper"`` or ``"identity"``; the two are the same here. The paper initialises the
            scale of the BN after ``W_z`` to zero so that the block starts as the identity
            mapping; we zero its shift as well (its default), so ``z = x`` bit-for-bit at build.

    The attention matrix has ``(H*W) x (H*W / 4 if sub_sample else H*W)`` entries per image; at a
    640 input that is ~10 MB per image at P4 and ~0.6 MB at P5, but ~164 MB at P3 without
    sub-sampling.
    """

    def __init__(self, c1: int, reduction: int = 2, sub_sample: bool = False, init: str = "paper"):
        super().__init__()
        name = type(self).__name__
        check_channels(c1, name)
        self.init = check_choice(init, INITS, "init", name)
        if not isinstance(sub_sample, bool):
            raise ValueError(f"{name}: sub_sample must be true or false, got {sub_sample!r}")  # noqa: TRY004 (contract: ValueError)
        self.sub_sample = sub_sample
        self.c_ = c_ = hidden_channels(c1, reduction, name)
        self.qkv = nn.Conv2d(c1, 3 * c_, 1)  # theta, phi and g as one 1x1 convolution
        self.wz = nn.Conv2d(c_, c1, 1, bias=False)  # BN follows
        self.bn = nn.BatchNorm2d(c1)
        nn.init.zeros_(self.bn.weight)  # both inits: the paper's zero BN scale (identity at start)
        nn.init.zeros_(self.bn.bias)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """``y_i = sum_j softmax_j(theta_i . phi_j) g_j``: (B, C', H, W), before ``W_z``."""
        b, _, h, w = x.shape
        c_ = self.c_
        qkv = F.conv2d(x, self.qkv.weight.to(x.dtype), self.qkv.bias.to(x.dtype))  # = self.qkv(x), in x's dtype
        theta = qkv[:, :c_].flatten(2)  # (B, C', HW)
        kv = qkv[:, c_:]
        if self.sub_sample:
            kv = F.max_pool2d(kv, 2, 2, ceil_mode=True)
        kv = kv.flatten(2)
        phi, g = kv[:, :c_], kv[:, c_:]  # (B, C', N)
        f = torch.bmm(theta.transpose(1, 2), phi).softmax(-1)  # (B, HW, N), rows sum to 1
        # y = f g^T as (B, HW, C'): this operand layout has a ~1.5x faster backward on CPU than g f^T
        return torch.bmm(f, g.transpose(1, 2)).transpose(1, 2).reshape(b, c_, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32 for fp16/bf16 input (projections included): the logits of a trained network's activations pass
        # fp16's range, and theta, phi rounded to half move large logits by more than the softmax tolerates.
        return self.bn(self.wz(in_float32(self.attend, x))) + x
