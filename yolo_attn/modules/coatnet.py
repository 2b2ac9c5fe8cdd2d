"""CoAtNet's relative-attention transformer block.

Dai, Liu, Le, Tan, "CoAtNet: Marrying Convolution and Attention for All Data Sizes", NeurIPS 2021
(arXiv:2106.04803).

CoAtNet's attention adds to the scaled dot-product logits a learned scalar that depends only on the
relative position of query ``i`` and key ``j`` (one scalar per head per 2D offset), "relative attention":

    A_ij = softmax_j(q_i . k_j / sqrt(d) + w_{i-j})

The transformer stages use pre-normalisation with LayerNorm and a residual around both sub-layers:

    y = x + Proj(RelAttn(LN(x)))
    z = y + FFN(LN(y)),  FFN = Linear(C, eC) -> GELU -> Linear(eC, C)

Here every pixel of the feature map is a token (the channel dimension is the embedding), so the block
is a channel-preserving YAML layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ._common import INITS, check_channels, check_choice, check_positive_int, zero_init_
from .mhsa import check_feature_size

HEAD_DIM = 32  # CoAtNet's head size


def default_heads(c1: int, head_dim: int = HEAD_DIM) -> int:
    """Heads of size about ``head_dim``: the largest count <= ``c1 // head_dim`` (at least 1) that divides ``c1``."""
    heads = max(c1 // head_dim, 1)
    while c1 % heads:
        heads -= 1
    return heads


@register(
    family="coatnet",
    paper="Dai et al., CoAtNet: Marrying Convolution and Attention for All Data Sizes",
    year=2021,
    note="pre-norm relative-attention transformer block (attention + FFN), pixels as tokens; per-head 2D "
    "offset bias table for maps up to max_size (default 64, larger raises); O((HW)^2) memory, meant for P5/P6",
)
class CoAtNetAttn(nn.Module):
    """Pre-norm transformer block with CoAtNet relative attention, on an NCHW feature map.

    Args:
        c1: input (= output) channels (the token width).
        heads: attention heads; must divide ``c1``. Default (``None``): heads of size about 32 as in
            CoAtNet (:func:`default_heads`: 256 channels -> 8 heads, 80 -> 2, 16 -> 1).
        expansion: FFN hidden width ``expansion * c1`` (CoAtNet: 4).
        max_size: largest feature-map height or width supported. The bias table holds one learnable
            scalar per head for every 2D offset in ``[-(max_size-1), max_size-1]^2``; a forward gathers
            the ``HW x HW`` entries it needs (a larger map raises ValueError). ONNX export at a fixed size
            turns the gather into a constant-index Gather.
        init: ``"paper"`` (PyTorch default linears, bias table ~ N(0, 0.02^2)) or ``"identity"`` (the
            output projections of attention and FFN zero-initialised: the fresh block is exactly ``y = x``).

    The attention runs through ``F.scaled_dot_product_attention`` with the relative bias as an additive
    4D float mask (on CPU its fused kernel was faster than an explicit softmax-matmul). Determinism: when
    gradients are needed the table is read with advanced indexing, whose CUDA backward is the
    sort-based deterministic ``index_put_``; inference uses the faster ``index_select``.
    """

    def __init__(self, c1: int, heads: int | None = None, expansion: int = 4, max_size: int = 64, init: str = "paper"):
        super().__init__()
        name = type(self).__name__
        check_channels(c1, name)
        heads = default_heads(c1) if heads is None else check_positive_int(heads, "heads", name)
        if c1 % heads:
            raise ValueError(f"{name}: heads {heads} must divide the {c1} input channels")
        check_positive_int(expansion, "expansion", name)
        check_positive_int(max_size, "max_size", name)
        self.init = check_choice(init, INITS, "init", name)
        self.heads, self.head_dim, self.max_size = heads, c1 // heads, max_size
        span = 2 * max_size - 1
        self.norm1 = nn.LayerNorm(c1)
        self.qkv = nn.Linear(c1, 3 * c1)
        self.rel_bias = nn.Parameter(torch.randn(heads, span * span) * 0.02)  # (head, dh * span + dw)
        self.proj = nn.Linear(c1, c1)
        self.norm2 = nn.LayerNorm(c1)
        self.fc1 = nn.Linear(c1, expansion * c1)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(expansion * c1, c1)
        if init == "identity":
            zero_init_(self.proj)
            zero_init_(self.fc2)

    def relative_bias(self, h: int, w: int) -> torch.Tensor:
        """``(heads, HW, HW)`` bias ``w_{i-j}`` for an ``h x w`` map (row-major positions)."""
        span, dev = 2 * self.max_size - 1, self.rel_bias.device
        ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
        dy = (ys.view(h, 1, 1, 1) - ys.view(1, 1, h, 1)) + (self.max_size - 1)  # (h_q, 1, h_k, 1)
        dx = (xs.view(1, w, 1, 1) - xs.view(1, 1, 1, w)) + (self.max_size - 1)  # (1, w_q, 1, w_k)
        index = (dy * span + dx).reshape(h * w, h * w)
        if torch.is_grad_enabled() and self.rel_bias.requires_grad:
            # advanced indexing: its CUDA backward (index_put_ with accumulate) is the sort-based deterministic kernel
            return self.rel_bias[:, index]
        # same gather, about 3x faster on CPU; its backward (index_add_) would use atomics on CUDA, so inference only
        return self.rel_bias.index_select(1, index.flatten()).reshape(self.heads, h * w, h * w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        check_feature_size(h, w, self.max_size, type(self).__name__)
        n, d = self.heads, self.head_dim
        t = x.flatten(2).transpose(1, 2)  # (b, hw, c) tokens
        q, k, v = self.qkv(self.norm1(t)).reshape(b, h * w, 3, n, d).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_bias(h, w).unsqueeze(0).to(q.dtype)  # 4D: CPU SDPA takes its fused path only then
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        t = t + self.proj(a.transpose(1, 2).reshape(b, h * w, c))
        t = t + self.fc2(self.act(self.fc1(self.norm2(t))))
        return t.transpose(1, 2).reshape(b, c, h, w)
