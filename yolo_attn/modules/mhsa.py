"""Multi-head self-attention with 2D relative position logits, as in Bottleneck Transformers.

Srinivas, Lin, Parmar, Shlens, Abbeel, Vaswani, "Bottleneck Transformers for Visual Recognition",
CVPR 2021 (arXiv:2101.11605).

BoTNet replaces the 3x3 convolution of the last ResNet bottlenecks by all-to-all multi-head
self-attention over the feature map. Queries, keys and values are 1x1 projections; for every head the
logit of query position ``i`` and key position ``j`` is the content-content term plus a
content-position term with *relative* position embeddings that are factorised into a height part
and a width part:

    logit(i, j) = (q_i . k_j + q_i . (r^H[h_j - h_i] + r^W[w_j - w_i])) / sqrt(d)

and the output is ``softmax_j(logit) @ v`` per head, heads concatenated.

How this module uses it as a channel-preserving YAML layer: ``y = x + W_o MHSA(x)``, with a 1x1
output projection ``W_o`` (the role the bottleneck's following 1x1 convolution plays in BoTNet) and a
residual connection (the bottleneck's shortcut), so it can be dropped anywhere in a YAML.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ._common import INITS, check_channels, check_choice, check_positive_int, in_float32, zero_init_


def _offsets(n: int, max_size: int, device: torch.device) -> torch.Tensor:
    """``(n, n)`` indices into a table of offsets ``-(max_size-1)..max_size-1``: entry ``[i, j]`` is ``j - i``."""
    r = torch.arange(n, device=device)
    return r.unsqueeze(0) - r.unsqueeze(1) + (max_size - 1)


def check_feature_size(h: int, w: int, max_size: int, owner: str) -> None:
    if h > max_size or w > max_size:
        raise ValueError(
            f"{owner}: feature map {h}x{w} exceeds max_size={max_size} of the relative position tables; "
            f"build the layer with a larger max_size (e.g. {{max_size: {max(h, w)}}})"
        )


@register(
    family="mhsa",
    paper="Srinivas et al., Bottleneck Transformers for Visual Recognition",
    year=2021,
    note="drop-in form y = x + proj(MHSA(x)) (BoTNet's surrounding bottleneck convs/BN omitted); 2D relative "
    "position tables for maps up to max_size (default 64, larger raises); O((HW)^2) memory, meant for P5/P6",
)
class MHSA(nn.Module):
    """BoT-style multi-head self-attention with height/width relative position logits, plus a residual.

    Args:
        c1: input (= output) channels.
        heads: number of attention heads; must divide ``c1`` (head size ``d = c1 / heads``).
        max_size: largest feature-map height or width supported. The relative tables hold learnable
            embeddings ``r^H, r^W`` (size ``d``, shared by the heads as in BoTNet) for every offset in
            ``[-(max_size-1), max_size-1]``; a forward gathers the ``H x H`` and ``W x W`` offsets it
            needs, so one layer serves every input size up to ``max_size`` (a larger one raises
            ValueError). ONNX export at a fixed size turns the gather into a constant-index Gather.
        init: ``"paper"`` (PyTorch default convolutions, relative embeddings ~ N(0, 1/d)) or
            ``"identity"`` (output projection zero-initialised: the fresh layer is exactly ``y = x``).

    Determinism: the tables are read with advanced indexing, whose backward on CUDA is the sort-based
    (deterministic) ``index_put_`` kernel; everything else is matmul/softmax/1x1 convolution.
    """

    def __init__(self, c1: int, heads: int = 4, max_size: int = 64, init: str = "paper"):
        super().__init__()
        name = type(self).__name__
        check_channels(c1, name)
        check_positive_int(heads, "heads", name)
        if c1 % heads:
            raise ValueError(f"{name}: heads {heads} must divide the {c1} input channels")
        check_positive_int(max_size, "max_size", name)
        self.init = check_choice(init, INITS, "init", name)
        self.heads, self.head_dim, self.max_size = heads, c1 // heads, max_size
        d = self.head_dim
        self.qkv = nn.Conv2d(c1, 3 * c1, 1, bias=False)
        self.rel_h = nn.Parameter(torch.randn(2 * max_size - 1, d) * d**-0.5)
        self.rel_w = nn.Parameter(torch.randn(2 * max_size - 1, d) * d**-0.5)
        self.proj = nn.Conv2d(c1, c1, 1)
        if init == "identity":
            zero_init_(self.proj)

    def relative_logits(self, q: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Content-position logits ``q_i . (r^H[h_j-h_i] + r^W[w_j-w_i])`` for ``q`` of shape (B, heads, HW, d)."""
        b, n, _, d = q.shape
        q = q.reshape(b * n, h, w, d)
        rh = self.rel_h[_offsets(h, self.max_size, q.device)].to(q.dtype)  # (h, h_key, d)
        rw = self.rel_w[_offsets(w, self.max_size, q.device)].to(q.dtype)  # (w, w_key, d)
        # Batched matmuls on 4-D tensors (one matrix per row, per column) rather than einsum over 5-D ones:
        # the same sums, and a graph that every export converter maps (PNNX/NCNN mis-converted the einsum).
        lh = q @ rh.transpose(1, 2)  # (bn, h, w, h_key)
        lw = (q.transpose(1, 2) @ rw.transpose(1, 2)).transpose(1, 2)  # (bn, h, w, w_key)
        logits = lh.reshape(b * n, h * w, h, 1) + lw.reshape(b * n, h * w, 1, w)  # (bn, hw, h_key, w_key)
        return logits.reshape(b, n, h * w, h * w)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """The heads' outputs ``softmax_j(logit(i, j)) v_j``, concatenated: (b, c, h, w), before ``proj``."""
        b, c, h, w = x.shape
        n, d = self.heads, self.head_dim
        qkv = F.conv2d(x, self.qkv.weight.to(x.dtype))  # = self.qkv(x), in x's dtype (float32 from in_float32)
        q, k, v = qkv.reshape(b, 3, n, d, h * w).unbind(1)  # each (b, n, d, hw)
        q = q.transpose(-1, -2) * d**-0.5  # (b, n, hw, d), scaled once for both logit terms
        logits = q @ k + self.relative_logits(q, h, w)  # (b, n, hw_query, hw_key)
        # Explicit softmax-matmul rather than F.scaled_dot_product_attention: with this q-dependent bias and
        # channel-major q/k/v, CPU SDPA takes its unfused path and measured no faster (forward or backward).
        return (v @ logits.softmax(-1).transpose(-1, -2)).reshape(b, c, h, w)  # (b, n, d, hw) per head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_size(x.shape[2], x.shape[3], self.max_size, type(self).__name__)
        # In float32 for fp16/bf16 input (projection included): the logits of a trained network's activations pass
        # fp16's range, and q, k rounded to half move logits of 1e4-1e5 by more than the softmax tolerates.
        return x + self.proj(in_float32(self.attend, x))
