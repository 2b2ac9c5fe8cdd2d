"""Convolutional Block Attention Module.

Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018 (arXiv:1807.06521).

CBAM refines a feature map with two gates applied one after the other:

* channel attention ``Mc(F) = sigmoid(W1 relu(W0 avg(F)) + W1 relu(W0 max(F)))``: both the spatially
  average-pooled and max-pooled descriptors go through one shared two-layer MLP (hidden width
  ``C / r``), the two results are summed (eq. 2; the paper writes the MLP without biases);
* spatial attention ``Ms(F) = sigmoid(f7x7([mean_c(F); max_c(F)]))``: the channel-wise mean and
  maximum maps are stacked and convolved by one 7x7 filter to a single map (eq. 3).

``F' = Mc(F) * F`` then ``F'' = Ms(F') * F'``. Besides the full module the two halves are registered
on their own (``CBAMChannel``, ``CBAMSpatial``) for ablations.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from ._common import Gate, GatedModule, check_odd_kernel, gate_options, hidden_channels, mean_over, zero_init_

_PAPER = "Woo et al., CBAM: Convolutional Block Attention Module"


def _max(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over ``dim`` (kept). ``amax`` is far faster forward, but its backward builds a tie-splitting mask;
    when a gradient is needed, ``max`` with indices routes it to one argmax, about twice as fast overall."""
    if x.requires_grad and torch.is_grad_enabled():
        return x.max(dim, keepdim=True)[0]
    return x.amax(dim, keepdim=True)


class _ChannelGate(nn.Module):
    """Channel half of CBAM (eq. 2): logits from avg- and max-pooled descriptors through a shared MLP."""

    def __init__(self, c1: int, reduction: int, init: str, owner: str):
        super().__init__()
        c_ = hidden_channels(c1, reduction, owner)
        self.fc1 = nn.Conv2d(c1, c_, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(c_, c1, 1, bias=False)
        if init == "identity":
            zero_init_(self.fc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Both descriptors side by side as a (B, C, 1, 2) map, so the shared first layer runs once. W1 is
        # linear and bias-free, so W1 relu(W0 a) + W1 relu(W0 m) = W1 (relu(W0 a) + relu(W0 m)): the
        # hidden activations are summed first and the second layer also runs once.
        avg = mean_over(x, (2, 3))
        d = torch.cat((avg, _max(x.flatten(2), 2).unsqueeze(-1)), 3)
        return self.fc2(self.act(self.fc1(d)).sum(3, keepdim=True))


class _SpatialGate(nn.Module):
    """Spatial half of CBAM (eq. 3): one k x k conv over the stacked channel-mean and channel-max maps."""

    def __init__(self, kernel_size: int, init: str):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        if init == "identity":
            zero_init_(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = mean_over(x, (1,))  # mean over channels
        return self.conv(torch.cat((avg, _max(x, 1)), 1))


class _CBAMBase(GatedModule):
    def _options(self, c1: int, fuse: str, init: str) -> str:
        name = gate_options(self, c1, fuse, init)
        return name

    def _make_gates(self) -> None:
        """One gate per half the module has (called at the end of ``__init__``)."""
        if "channel" in self._modules:
            self.channel_gate = Gate(self.fuse, self.init)
        if "spatial" in self._modules:
            self.spatial_gate = Gate(self.fuse, self.init)


@register(
    family="cbam",
    paper=_PAPER,
    year=2018,
    gating=True,
    note="Paper CBAM (avg+max pooled shared MLP, 7x7 spatial conv). Not ultralytics.nn.modules.CBAM (not a YAML "
    "name in Ultralytics), whose channel half is a single 1x1 conv on the average-pooled descriptor only.",
)
class CBAM(_CBAMBase):
    """Full CBAM: channel gate, then spatial gate on the channel-refined map.

    Args:
        c1: input (= output) channels.
        reduction: MLP reduction ratio ``r`` of the channel half (hidden width ``c1 // r``).
        kernel_size: odd size of the spatial half's convolution (7 in the paper).
        fuse: ``"mul"`` (paper) or ``"add"``: each gate is added instead of multiplied.
        init: ``"paper"`` or ``"identity"`` (zero last MLP layer and zero spatial conv).
    """

    def __init__(self, c1: int, reduction: int = 16, kernel_size: int = 7, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = self._options(c1, fuse, init)
        self.channel = _ChannelGate(c1, reduction, init, name)
        self.spatial = _SpatialGate(check_odd_kernel(kernel_size, name), init)
        self._make_gates()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_gate(x, self.channel(x))
        return self.spatial_gate(x, self.spatial(x))


@register(family="cbam", paper=_PAPER, year=2018, gating=True, note="Channel-attention half of CBAM only.")
class CBAMChannel(_CBAMBase):
    """CBAM's channel attention alone: ``x * sigmoid(MLP(avg(x)) + MLP(max(x)))``.

    Args:
        c1: input (= output) channels.
        reduction: MLP reduction ratio ``r`` (hidden width ``c1 // r``).
        fuse: ``"mul"`` (paper) or ``"add"``.
        init: ``"paper"`` or ``"identity"``.
    """

    def __init__(self, c1: int, reduction: int = 16, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = self._options(c1, fuse, init)
        self.channel = _ChannelGate(c1, reduction, init, name)
        self._make_gates()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_gate(x, self.channel(x))


@register(family="cbam", paper=_PAPER, year=2018, gating=True, note="Spatial-attention half of CBAM only.")
class CBAMSpatial(_CBAMBase):
    """CBAM's spatial attention alone: ``x * sigmoid(conv_k([mean_c(x); max_c(x)]))``.

    Args:
        c1: input (= output) channels (the gate itself is channel-agnostic).
        kernel_size: odd convolution size (7 in the paper).
        fuse: ``"mul"`` (paper) or ``"add"``.
        init: ``"paper"`` or ``"identity"``.
    """

    def __init__(self, c1: int, kernel_size: int = 7, fuse: str = "mul", init: str = "paper"):
        super().__init__()
        name = self._options(c1, fuse, init)
        self.spatial = _SpatialGate(check_odd_kernel(kernel_size, name), init)
        self._make_gates()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_gate(x, self.spatial(x))
