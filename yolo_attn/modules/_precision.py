"""Half precision (fp16, bf16) of the registered layers: how it is measured, and the recorded result.

``benchmarks/half_precision.py`` runs :func:`measure_all` and writes :data:`RESULT_FILE` (shipped with the
package); ``yolo-attn list`` shows it (:func:`half_summary`) and ``tests/test_half_precision.py`` holds every
layer to it. One measurement: a layer with its default options, every parameter moved by a little noise (so
that zero-initialised gates and BN scales are not zero, as after training), copied and cast to the half type
(``module.to(dtype)``, as Ultralytics' ``half=True`` validation and export do: every op in half, no autocast),
runs forward and backward (a fixed random upstream gradient) in training mode. The reference is the same
computation in float32 on the *same* rounded input and parameters, so the error is the arithmetic's, not that
of storing the values in half. Relative error: ``max |half - fp32| / max |fp32|`` per tensor, the worst of the
output (``out``) and of the input and parameter gradients (``grad``). ``identity``: the layer built with
``init="identity"`` (every ``fuse`` of a gating layer), cast to half, returns its half input bit for bit in
training and evaluation mode (block layers have no identity start: ``None``).

Scenarios (inputs): ``unit`` standard-normal; ``large`` a trained network's activations, SiLU of normal
values with a per-channel standard deviation from 5 to 30 and outliers of 1e3 (fp16 stops at 65504: a square
of 1e3 is 1e6); ``large-map`` the same on an 80 x 80 map (P3 of a 640 input), where sums over the positions
pass 65504. The layers with ``(HW)^2`` attention are measured on the small maps only there.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

RESULT_FILE = Path(__file__).with_name("half_precision.json")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
# Largest relative error (output and gradients) counted as "ok": a few units of the type's rounding
# (fp16: 2^-11 = 4.9e-4, bf16: 2^-8 = 3.9e-3) accumulated through a layer's ops.
TOLERANCE = {"fp16": 1e-2, "bf16": 5e-2}
OUTLIER, OUTLIER_RATE = 1e3, 2e-3
QUADRATIC = ("CoAtNetAttn", "MHSA", "NonLocal")  # (HW)^2 attention: not run on the 80 x 80 map
OK, INACCURATE, OVERFLOW, NEEDS_GPU, NOT_RUN = "ok", "inaccurate", "overflow", "needs GPU", "n/a"
# What each layer computes in float32 for fp16/bf16 input or under autocast (``_common.in_float32``/``mean_over``):
# each overflowed fp16 (or, for the attention logits, lost bf16's precision) on the large scenarios without it, but
# CoordAtt, whose sums run over one side of the map only (finite here, not on a map a few times longer).
FLOAT32_PARTS = {
    "BAM": "channel-branch pooling sum",
    "CBAM": "pooling sums",
    "CBAMChannel": "pooling sum",
    "CoordAtt": "directional pooling sums (precaution)",
    "ECA": "pooling sum",
    "GatherExcite": "pooling sum",
    "MHSA": "qkv projection, logits, softmax, weighted sum",
    "NonLocal": "theta/phi/g projection, logits, softmax, weighted sum",
    "ShuffleAttention": "spatial-half normalisation",
    "SimAM": "energy (variance)",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    shape: tuple  # (B, C, H, W)
    large: bool  # a trained network's activations (else standard normal)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("unit", (4, 64, 16, 16), False),
        Scenario("large", (4, 64, 16, 16), True),
        Scenario("large-map", (1, 32, 80, 80), True),
    )
}


def activations(scenario: Scenario, seed: int = 0) -> torch.Tensor:
    """The scenario's float32 input (module docstring)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(scenario.shape, generator=g)
    if not scenario.large:
        return x
    std = torch.linspace(5.0, 30.0, scenario.shape[1]).view(1, -1, 1, 1)
    outliers = torch.rand(scenario.shape, generator=g) < OUTLIER_RATE
    return F.silu(x * std).masked_fill(outliers, OUTLIER)


def build(spec, c1: int, **options) -> torch.nn.Module:
    """The registered layer with default options: ``Cls(c1)`` (preserve) or ``Cls(c1, c1, 2)`` (block)."""
    return spec.cls(c1, c1, 2, **options) if spec.kind == "block" else spec.cls(c1, **options)


def _trained_like(m: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return m.train()


def _forward_backward(m: torch.nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> list[torch.Tensor]:
    """[output, input gradient, parameter gradients...] (a parameter without a gradient is left out)."""
    m.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = m(x)
    y.backward(upstream.to(y.dtype))
    return [y.detach(), x.grad] + [p.grad for p in m.parameters() if p.grad is not None]


def _largest(t: torch.Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


def _relative(a: torch.Tensor, ref: torch.Tensor, floor: float = 0.0) -> float:
    """``max |a - ref|`` over ``max |ref|``, or over ``floor`` when that is larger (0 when both are 0)."""
    err = _largest(a.double() - ref.double())
    scale = max(_largest(ref), floor)
    return err / scale if scale > 0 else err


def _gradient_error(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Worst relative error of the parameter gradients, each against its own size or 1e-2 of the largest (a
    gradient that is zero in exact arithmetic, as a bias's before a BatchNorm, has no relative error of its own)."""
    if not want:
        return 0.0
    floor = 1e-2 * max(_largest(w) for w in want)
    return max(_relative(a, b, floor) for a, b in zip(got, want))


def _loss_scale(grads: list[torch.Tensor], dtype: torch.dtype) -> float:
    """A power of two that brings the largest float32 gradient under 1/16 of the half type's range, as a dynamic
    loss scaler settles (a gradient beyond the range in exact arithmetic is the scaler's business, not the layer's)."""
    largest, limit = max(_largest(g) for g in grads), torch.finfo(dtype).max / 16
    return 2.0 ** math.floor(math.log2(limit / largest)) if largest > limit else 1.0


def _entry(status: str, **values) -> dict:
    return {"status": status, "finite_out": None, "finite_grad": None, "out": None, "grad_x": None, "grad_w": None,
            **values}  # fmt: skip


def measure(spec, dtype: str, scenario: Scenario, seed: int = 0) -> dict:
    """``{status, finite, out, grad}`` of one layer in one half type and scenario (module docstring)."""
    if scenario.shape[2] > 16 and spec.name in QUADRATIC:
        return _entry(NOT_RUN)
    torch.manual_seed(seed)
    half = _trained_like(build(spec, scenario.shape[1]), seed).to(DTYPES[dtype])
    ref = copy.deepcopy(half).float()
    x = activations(scenario, seed).to(DTYPES[dtype])
    upstream = torch.randn(scenario.shape, generator=torch.Generator().manual_seed(seed + 1))
    want = _forward_backward(ref, x.float(), upstream)
    scale = _loss_scale(want[1:], DTYPES[dtype])
    if scale != 1.0:  # the reference again with the scaled upstream gradient
        upstream = upstream * scale
        want = _forward_backward(ref, x.float(), upstream)
    try:
        got = _forward_backward(half, x, upstream)
    except (RuntimeError, NotImplementedError) as exc:
        if "not implemented for" not in str(exc):
            raise
        return _entry(NEEDS_GPU, error=str(exc).splitlines()[0])
    finite = {"finite_out": bool(got[0].isfinite().all()), "finite_grad": all(bool(t.isfinite().all()) for t in got[1:])}
    if not all(finite.values()):
        return _entry(OVERFLOW, **finite, loss_scale=scale)
    out = _relative(got[0], want[0])
    grad_x, grad_w = _relative(got[1], want[1]), _gradient_error(got[2:], want[2:])
    status = OK if out <= TOLERANCE[dtype] else INACCURATE
    return _entry(status, **finite, out=out, grad_x=grad_x, grad_w=grad_w, loss_scale=scale)


def identity_exact(spec, dtype: str, scenario: Scenario, seed: int = 0):
    """Whether every ``init="identity"`` variant returns its half input exactly; None for block layers."""
    if spec.kind == "block":
        return None
    if scenario.shape[2] > 16 and spec.name in QUADRATIC:
        return None
    x = activations(scenario, seed).to(DTYPES[dtype])
    fuses = ({"fuse": "mul"}, {"fuse": "add"}) if spec.gating else ({},)
    for options in fuses:
        m = build(spec, scenario.shape[1], init="identity", **options).to(DTYPES[dtype])
        for train in (True, False):
            with torch.no_grad():
                if not torch.equal(m.train(train)(x), x):
                    return False
    return True


def measure_layer(spec, scenarios=tuple(SCENARIOS)) -> dict:
    """``{dtype: {scenario: {status, finite, out, grad, identity}}}`` for one layer."""
    result = {}
    for dtype in DTYPES:
        result[dtype] = {}
        for name in scenarios:
            entry = measure(spec, dtype, SCENARIOS[name])
            entry["identity"] = identity_exact(spec, dtype, SCENARIOS[name])
            result[dtype][name] = entry
    return result


def read_results(path: str | Path = RESULT_FILE) -> dict:
    """The recorded results file (``{"settings", "versions", "layers": {name: measure_layer(...)}}``); {} if absent."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable half-precision results file ({exc})") from None


def half_summary(layer: dict) -> dict[str, str]:
    """``{dtype: "ok" | the worst status and where}`` of one recorded layer, for ``yolo-attn list``."""
    out = {}
    for dtype, by_scenario in layer.items():
        bad = [(e["status"], name) for name, e in by_scenario.items() if e["status"] not in (OK, NOT_RUN)]
        bad += [("not identity", name) for name, e in by_scenario.items() if e.get("identity") is False]
        out[dtype] = OK if not bad else f"{bad[0][0]} ({', '.join(sorted({n for _, n in bad}))})"
    return out
