"""SimAM: parameter-free 3-D attention from a neuron energy function.

Yang, Zhang, Li, Xie, "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021.

For every channel the paper scores each activation ``t`` against the other activations of the same
feature map with a closed-form minimal energy. Its inverse is

    e_t = (t - mu)^2 / (4 * (sigma^2 + lambda)) + 1/2,

with ``mu`` the channel mean over the ``H*W`` positions and ``sigma^2 = sum((t - mu)^2) / n``,
``n = H*W - 1`` (the paper's estimate). A larger ``e_t`` marks a more distinctive neuron; the
output re-weights the input with ``y = x * sigmoid(e)``.
"""

from __future__ import annotations

import torch

from ..registry import register
from ._common import Gate, GatedModule, check_channels, in_float32, maybe_residual_scale


@register(
    family="simam",
    paper="Yang et al., SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks",
    year=2021,
    gating=False,
    note="parameter-free; init=identity adds a zero-initialised residual scale (the only parameter)",
)
class SimAM(GatedModule):
    """SimAM energy-based attention (no learnable parameters under ``init="paper"``).

    Args:
        c1: input (= output) channels.
        e_lambda: the regulariser ``lambda`` of the energy (paper: 1e-4); must be > 0.
        init: ``"paper"`` returns ``x * sigmoid(e)``; ``"identity"`` returns
            ``x + gamma * (x * sigmoid(e) - x)`` with a learnable per-channel ``gamma`` starting at
            0, so the freshly built module is exactly the identity.

    On a 1x1 map (``H*W = 1``) there are no other neurons: ``n`` is clamped to 1, the deviation is
    0 and every gate is ``sigmoid(1/2)``, as the formula gives in the limit.
    """

    def __init__(self, c1: int, e_lambda: float = 1e-4, init: str = "paper"):
        super().__init__()
        name = type(self).__name__
        check_channels(c1, name)
        if isinstance(e_lambda, bool) or not isinstance(e_lambda, (int, float)) or not e_lambda > 0:
            raise ValueError(f"{name}: e_lambda must be a positive number, got {e_lambda!r}")
        self.e_lambda = float(e_lambda)
        self.init = init
        self.scale = maybe_residual_scale(c1, init, name)
        self._make_gates()

    def _make_gates(self) -> None:
        self.gate = Gate("mul", "paper")  # x * sigmoid(e) under both inits (identity adds the residual scale)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse energy ``e`` of every activation (the gate logits)."""
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean((2, 3), keepdim=True)).pow(2)
        var = d.sum((2, 3), keepdim=True) / n
        return d / (4 * (var + self.e_lambda)) + 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in float32 for fp16/bf16 input: squared deviations of a trained network's activations (1e3^2) pass fp16's range
        y = self.gate(x, in_float32(self.energy, x))
        return y if self.scale is None else self.scale(x, y)
