"""Global Context block.

Cao, Xu, Lin, Wei, Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
ICCV Workshops 2019 (arXiv:1904.11492).

The GC block simplifies the non-local block to one query-independent attention map and pairs it
with an SE-like bottleneck (eq. 4 of the paper):

* context modelling: ``a = softmax_j(W_k x_j)`` over all ``H*W`` positions (``W_k`` a 1x1 conv to one
  map), and the global context ``c = sum_j a_j x_j`` (attention pooling instead of average pooling);
* transform: ``t = W_v2 relu(LN(W_v1 c))``, a bottleneck of width ``C / r`` with layer normalisation
  over its ``[C/r, 1, 1]`` output;
* fusion: ``y_i = x_i + t`` at every position (broadcast addition, the paper's default); the paper
  also evaluates multiplicative fusion, here ``y = x * sigmoid(t)`` through the shared gate helper.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, gate_options, hidden_channels, zero_init_


@register(
    family="gc",
    paper="Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
    year=2019,
    gating=True,
    note="Default fuse=add is the paper's additive fusion y = x + t (no sigmoid); fuse=mul gates x * sigmoid(t). "
    "init=paper uses PyTorch's default init; init=identity zeroes the last transform conv (the authors' "
    "start for add fusion).",
)
class GC(GatedModule):
    """Global context block: softmax attention pooling, bottleneck transform, broadcast fusion.

    Args:
        c1: input (= output) channels.
        reduction: bottleneck ratio ``r`` (hidden width ``c1 // r``; 16 in the paper).
        fuse: ``"add"`` (paper default: ``x + t``) or ``"mul"`` (``x * sigmoid(t)``, via ``Gate``).
        init: ``"paper"`` or ``"identity"`` (last transform conv zeroed: the block starts as the identity).
    """

    def __init__(self, c1: int, reduction: int = 16, fuse: str = "add", init: str = "paper"):
        super().__init__()
        name = gate_options(self, c1, fuse, init)
        c_ = hidden_channels(c1, reduction, name)
        self.attn = nn.Conv2d(c1, 1, 1)  # W_k: one logit per position
        self.fc1 = nn.Conv2d(c1, c_, 1)
        self.ln = nn.LayerNorm([c_, 1, 1])
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(c_, c1, 1)
        if init == "identity":
            zero_init_(self.fc2)
        self._make_gates()

    def _make_gates(self) -> None:
        # add: the paper's additive fusion x + t, the transform itself (no sigmoid); mul: x * sigmoid(t)
        self.gate = Gate(self.fuse, self.init, value="raw" if self.fuse == "add" else None)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Attention-pooled global context ``sum_j softmax(W_k x)_j x_j`` as a (B, C, 1, 1) tensor."""
        a = self.attn(x).flatten(2).softmax(-1)  # (B, 1, HW) weights over positions
        return torch.matmul(x.flatten(2), a.transpose(1, 2)).unsqueeze(-1)  # (B, C, HW) @ (B, HW, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.fc2(self.act(self.ln(self.fc1(self.context(x)))))
        return self.gate(x, t)
