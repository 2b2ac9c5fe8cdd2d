"""Shared pieces of the attention modules: gate fusion, identity start, option checks.

Gating modules compute a gate ``g`` from the input and combine it with the input:

* ``fuse="mul"`` (the papers' form): ``y = x * g``;
* ``fuse="add"``: ``y = x + g``, the ablation of Ye et al., "Towards Understanding the
  Effectiveness of Attention Mechanism" (2021), which asks whether the benefit of attention comes
  from feature-map multiplication.

``init="paper"`` keeps each paper's initialisation and gate (``g = sigmoid(z)``).
``init="identity"`` zero-initialises the layer that produces the gate logits ``z`` and uses a gate
form that is exactly neutral at ``z = 0``: ``g = 2 * sigmoid(z)`` for ``mul`` (value 1) and
``g = 2 * sigmoid(z) - 1`` for ``add`` (value 0). A freshly built module then returns its input
unchanged, so inserting it into a pretrained model does not disturb the transferred features.
Modules without a gate use :class:`ResidualScale` (``y = x + gamma * (f(x) - x)``, ``gamma = 0``).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from ..registry import INITS  # noqa: F401  (re-exported for the module files)

FUSES = ("mul", "add")
HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_choice(value, choices, option: str, owner: str) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise a ValueError naming the option."""
    if value not in choices:
        raise ValueError(f"{owner}: {option} must be one of {list(choices)}, got {value!r}")
    return value


def check_positive_int(value, option: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {option} must be a positive integer, got {value!r}")
    return value


def check_channels(c1, owner: str) -> int:
    return check_positive_int(c1, "input channels c1", owner)


def gate_options(module: nn.Module, c1, fuse, init) -> str:
    """Validate ``c1``, ``fuse`` and ``init`` of a gating module, store ``fuse``/``init`` on it; return its class name."""
    name = type(module).__name__
    check_channels(c1, name)
    module.fuse = check_choice(fuse, FUSES, "fuse", name)
    module.init = check_choice(init, INITS, "init", name)
    return name


def check_odd_kernel(kernel_size, owner: str) -> int:
    """A positive odd convolution size (same-size output with symmetric padding)."""
    check_positive_int(kernel_size, "kernel_size", owner)
    if kernel_size % 2 == 0:
        raise ValueError(f"{owner}: kernel_size must be odd (same-size output), got {kernel_size}")
    return kernel_size


def hidden_channels(c1: int, reduction, owner: str, minimum: int = 1) -> int:
    """Channels of a squeeze layer, ``c1 // reduction`` but at least ``minimum``; rejects nonsense reductions."""
    check_positive_int(reduction, "reduction", owner)
    if reduction > c1:
        raise ValueError(
            f"{owner}: reduction {reduction} exceeds the {c1} input channels "
            "(yolo_attn infers channels: write [] or [reduction], not the channel count)"
        )
    return max(c1 // reduction, minimum)


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(z)


def _twice_sigmoid(z: torch.Tensor) -> torch.Tensor:  # neutral for mul: 1 at z = 0
    return 2 * torch.sigmoid(z)


def _centred_sigmoid(z: torch.Tensor) -> torch.Tensor:  # neutral for add: 0 at z = 0
    return 2 * torch.sigmoid(z) - 1


def _raw(z: torch.Tensor) -> torch.Tensor:  # the input already is the gate (or an additive transform)
    return z


def _mul(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return x * g


def _add(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return x + g


def _residual_mul(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # x + x * g = x * (1 + g) (BAM)
    return torch.addcmul(x, x, g)


GATE_VALUES = {"sigmoid": _sigmoid, "2sigmoid": _twice_sigmoid, "2sigmoid-1": _centred_sigmoid, "raw": _raw}
GATE_COMBINES = {"mul": _mul, "add": _add, "residual": _residual_mul}
KNOCKOUT = "identity"  # Gate.override value that makes the gate return its input


def gate_value_kind(fuse: str, init: str) -> str:
    """The gate form of the module docstring: ``sigmoid`` (paper), ``2sigmoid`` / ``2sigmoid-1`` (identity)."""
    if init == "identity":
        return "2sigmoid" if fuse == "mul" else "2sigmoid-1"
    return "sigmoid"


class Gate(nn.Module):
    """The gating step ``y = combine(x, value(z))`` as a parameter-free submodule.

    ``value`` (``sigmoid``, ``2sigmoid``, ``2sigmoid-1`` or ``raw``) and ``combine`` (``mul``, ``add``
    or ``residual`` = ``x * (1 + g)``) are chosen once at construction. Holding the step as a module
    lets forward hooks see every gate's logits ``z`` (``gate.value(z)`` is the gate value) and lets
    :mod:`yolo_attn.diagnose` switch it: ``override = KNOCKOUT`` returns ``x`` unchanged, a tensor
    ``override`` is used as the gate value in place of ``value(z)`` (e.g. its mean over a data set).
    No parameters or buffers: a module's state-dict keys are the same with or without it.
    """

    def __init__(self, fuse: str, init: str = "paper", value: str | None = None, combine: str | None = None):
        super().__init__()
        self.value_kind = value or gate_value_kind(fuse, init)
        self.combine_kind = combine or fuse
        if self.value_kind not in GATE_VALUES or self.combine_kind not in GATE_COMBINES:
            raise ValueError(f"Gate: unknown gate form {self.value_kind!r}/{self.combine_kind!r}")
        self.override = None
        self._bind()

    def _bind(self) -> None:
        self.value = GATE_VALUES[self.value_kind]
        self.combine = GATE_COMBINES[self.combine_kind]

    def __getstate__(self):  # functions are re-bound on load, never pickled (weights-only loading)
        state = self.__dict__.copy()
        for key in ("value", "combine", "override"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.override = None
        self._bind()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.override is None:
            return self.combine(x, self.value(z))
        if isinstance(self.override, str):  # KNOCKOUT
            return x
        return self.combine(x, self.override)

    def extra_repr(self) -> str:
        return f"value={self.value_kind}, combine={self.combine_kind}"


class GatedModule(nn.Module):
    """Base of the modules that hold :class:`Gate` submodules, built by their ``_make_gates()``.

    Models pickled before gates were modules lack those submodules; ``__setstate__`` builds them from the
    stored ``fuse``/``init`` options when such a module is loaded, so old checkpoints run unchanged.
    """

    def _make_gates(self) -> None:
        raise NotImplementedError

    def __setstate__(self, state):
        super().__setstate__(state)
        if not any(isinstance(m, Gate) for m in self._modules.values()):
            self._make_gates()


def zero_init_(layer: nn.Module) -> nn.Module:
    """Zero the weight and bias of ``layer`` (a conv/linear/BN, or an Ultralytics Conv via its conv+bn)."""
    for p in layer.parameters():
        nn.init.zeros_(p)
    if hasattr(layer, "bn"):  # Ultralytics Conv: BN(0) -> 0 needs beta = 0 and gamma = 0
        nn.init.zeros_(layer.bn.weight)
        nn.init.zeros_(layer.bn.bias)
    return layer


class ResidualScale(nn.Module):
    """``y = x + gamma * (f - x)`` with a learnable per-channel ``gamma`` that starts at 0.

    Used by non-gating modules under ``init="identity"`` (a ReZero-style start, Bachlechner et al.,
    "ReZero is All You Need", 2020): the module begins as the identity and learns how much of its
    output ``f`` to mix in. Under ``init="paper"`` modules do not create it and return ``f``.
    """

    def __init__(self, c1: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, c1, 1, 1))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * (f - x)


def maybe_residual_scale(c1: int, init: str, owner: str) -> ResidualScale | None:
    """A :class:`ResidualScale` for ``init="identity"``, None for ``init="paper"``."""
    return ResidualScale(c1) if check_choice(init, INITS, "init", owner) == "identity" else None


class PooledBatchNorm(nn.BatchNorm2d):
    """BatchNorm over pooled ``(B, C, 1, 1)`` descriptors that also works for a training batch of one.

    With one sample there are no batch statistics (PyTorch raises); the running statistics are used
    instead. Ultralytics' last training batch can hold a single image, so SK and BAM need this.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


# ------------------------------------------------------------------------------------------------
# Half precision (fp16/bf16, autocast): the parts that must not run in half (modules/_precision.py measures it)
# ------------------------------------------------------------------------------------------------
def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
    except RuntimeError:  # a device without autocast (meta: shape-only runs)
        return False


def in_float32(fn, x: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
    """``fn(x, *others)``, computed in float32 when ``x`` is fp16/bf16 or autocast is on; the result in ``x``'s dtype.

    For the parts of a layer whose intermediate values leave fp16's range (65504) on a trained network's
    activations, or lose bf16's 8 bits: a variance of values of 1e3, attention logits. The tensors are upcast
    and autocast is switched off inside (it would cast a matmul back to half). A float32 input without
    autocast runs ``fn`` unchanged, so float32 results and exported float32 graphs are not touched.
    """
    autocast = _autocast_on(x.device.type)
    if x.dtype not in HALF_DTYPES and not autocast:
        return fn(x, *others)
    with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
        out = fn(x.float(), *(t.float() for t in others))
    return out.to(x.dtype)


def mean_over(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean over ``dims`` (kept) written as ``sum * (1 / n)``: a sum's backward is a broadcast view, where a mean's
    backward divides a full-size gradient. An fp16/bf16 sum is accumulated and scaled in float32 (a sum over the
    6400 positions of an 80 x 80 map of activations of ~10 passes fp16's 65504) and returned in ``x``'s dtype."""
    scale = 1.0 / math.prod(x.shape[d] for d in dims)
    if x.dtype in HALF_DTYPES:
        return (x.sum(dims, keepdim=True, dtype=torch.float32) * scale).to(x.dtype)
    return x.sum(dims, keepdim=True) * scale
