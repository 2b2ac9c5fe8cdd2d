"""Checkpoints under diagnosis and their attention layers: finding them, knocking them out, fixing gates.

An *attention layer* is every instance of a registered channel-preserving layer (top-level or inside a
``C3Attn`` bottleneck) and every FMM bottleneck. Its :class:`~yolo_attn.modules._common.Gate` submodules
are the gates hooked by the gate, reliance and consistency sections. Layers without a gate (MHSA,
CoAtNetAttn, NonLocal, SK) take part in the sections that need no gate.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import _ultralytics
from ..modules._common import KNOCKOUT, Gate
from ..modules.fmm import BottleneckFMM
from ..registry import LAYERS
from .data import DiagnoseError


@dataclass
class ModelRef:
    """A checkpoint to diagnose: its label (model name), seed (None outside a sweep) and file."""

    label: str
    path: Path
    seed: int | None = None


@dataclass
class AttnLayer:
    name: str  # path inside model.model, e.g. "9" or "4.m.0.attn"
    kind: str  # class name
    module: nn.Module = field(repr=False)
    gates: list[tuple[str, Gate]] = field(repr=False)  # (name, gate) inside the layer
    init: str | None = None


@dataclass
class LoadedModel:
    ref: ModelRef
    model: nn.Module = field(repr=False)
    strides: list[float]
    head_inputs: list[int]
    layers: list[AttnLayer]
    task: str = "detect"  # Ultralytics' task of the model (its head)


def _preserve_classes() -> tuple[type, ...]:
    return tuple(s.cls for s in LAYERS if s.kind == "preserve")


def attention_layers(model: nn.Module) -> list[AttnLayer]:
    """Every attention layer of ``model`` (outermost only: a layer inside another is part of it)."""
    classes = _preserve_classes()
    out: list[AttnLayer] = []
    for name, m in model.model.named_modules():
        if not isinstance(m, (*classes, BottleneckFMM)) or any(name.startswith(a.name + ".") for a in out):
            continue
        gates = [(n, g) for n, g in m.named_modules() if isinstance(g, Gate)]
        out.append(AttnLayer(name, type(m).__name__, m, gates, getattr(m, "init", None)))
    return out


def load(ref: ModelRef, trust: bool = False) -> LoadedModel:
    """Read a checkpoint through the safe loader: a model of any Ultralytics task (detection-type or classifier head)."""
    from ..weights import read_model_checkpoint

    try:
        model = read_model_checkpoint(ref.path, trust=trust)
    except FileNotFoundError:
        raise DiagnoseError(f"{ref.path}: no such checkpoint") from None
    except ValueError as exc:
        raise DiagnoseError(str(exc)) from None
    from .._ultralytics.head import model_task, task_head

    head = task_head(model)
    if head is None:
        raise DiagnoseError(f"{ref.path}: not an Ultralytics model of a known task (no Detect, Segment, Pose, OBB or "
                            "Classify head as its last layer)")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(ref, model, head[2], head[1], attention_layers(model), model_task(model))


@contextlib.contextmanager
def knocked_out(layers: list[AttnLayer]):
    """The layers replaced by the identity (an FMM bottleneck by its residual ``x + F(x)``)."""
    handles, fmm = [], []
    try:
        for layer in layers:
            if isinstance(layer.module, BottleneckFMM):
                layer.module.multiply = False
                fmm.append(layer.module)
            else:
                handles.append(layer.module.register_forward_hook(lambda _m, inp, _out: inp[0]))
        yield
    finally:
        for h in handles:
            h.remove()
        for m in fmm:
            del m.multiply  # back to the class default


@contextlib.contextmanager
def gates_fixed(gates: list[Gate], values: dict[int, torch.Tensor]):
    """Each gate's value replaced by ``values[id(gate)]`` (e.g. its mean); ``KNOCKOUT`` for the identity."""
    try:
        for g in gates:
            g.override = values[id(g)] if values is not KNOCKOUT else KNOCKOUT
        yield
    finally:
        for g in gates:
            g.override = None
