"""Both sides of a transfer as lists of layers: index, class, inputs and tensor shapes of each top-level layer.

The target's come from the built model (``model.model[i]``), the source's from a checkpoint's state dict
(``model.{i}.<rest>`` keys) and, where the file has one, its layer table (class and ``from`` of every layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..registry import LAYERS
from .checkpoint import Checkpoint


_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "anchors", "anchor_grid", "stride")


@dataclass
class _Layer:
    index: int
    type: str  # "module.Name", "" when unknown (bare state dict)
    family: str | None
    inputs: list[int] | None  # absolute input indices (-1 = image), None when unknown
    shapes: dict[str, tuple]  # relative key -> shape
    attn_keys: set[str] = field(default_factory=set)  # keys inside attention sub-layers (target only)
    preserve: bool = False  # an inserted-style yolo_attn layer (channel preserving)
    dropped: tuple[str, ...] = ()  # key prefixes of the source block that the target block has no place for

    @property
    def short(self) -> str:
        return self.type.rsplit(".", 1)[-1] if self.type else "?"


def _family(type_str: str) -> str | None:
    if not type_str:
        return None
    short = type_str.rsplit(".", 1)[-1]
    if type_str.startswith("yolo_attn.") and short in LAYERS:
        spec = LAYERS.get(short)
        if spec.kind == "block":  # a yolo_attn block counts as the Ultralytics block it derives from (C3, C2f, C3k2)
            base = next((c for c in spec.cls.__mro__ if c.__module__.startswith("ultralytics.")), None)
            if base is not None:
                return base.__name__
    return short


def _is_preserve(type_str: str) -> bool:
    short = type_str.rsplit(".", 1)[-1]
    return type_str.startswith("yolo_attn.") and short in LAYERS and LAYERS.get(short).kind == "preserve"


def _abs_inputs(f: Any, index: int) -> list[int] | None:
    fs = f if isinstance(f, (list, tuple)) else [f]
    if not all(isinstance(x, int) for x in fs):
        return None
    return [index + x if x < 0 else x for x in fs]


def _module_type(m: nn.Module) -> str:
    t = getattr(m, "type", None)
    if isinstance(t, str) and t:
        return t
    return f"{type(m).__module__}.{type(m).__qualname__}"


def _target_layers(model: nn.Module) -> list[_Layer]:
    preserve_classes = tuple(s.cls for s in LAYERS if s.kind == "preserve")
    layers = []
    for idx, m in enumerate(model.model):
        t = _module_type(m)
        shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        attn_prefixes = [n + "." for n, sub in m.named_modules() if n and isinstance(sub, preserve_classes)]
        attn = {k for k in shapes if any(k.startswith(p) for p in attn_prefixes)}
        layers.append(
            _Layer(
                index=idx,
                type=t,
                family=_family(t),
                inputs=_abs_inputs(getattr(m, "f", -1), idx),
                shapes=shapes,
                attn_keys=attn,
                preserve=_is_preserve(t) or isinstance(m, preserve_classes),
                dropped=tuple(getattr(m, "drops_source", ())),  # AttnA2C2f: the area attention it replaces
            )
        )
    return layers


def _split_by_layer(sd: dict[str, torch.Tensor]) -> tuple[dict[int, dict[str, torch.Tensor]], list[str]]:
    by_layer: dict[int, dict[str, torch.Tensor]] = {}
    other = []
    for k, v in sd.items():
        parts = k.split(".", 2)
        if len(parts) == 3 and parts[0] == "model" and parts[1].isdigit():
            by_layer.setdefault(int(parts[1]), {})[parts[2]] = v
        else:
            other.append(k)
    return by_layer, other


def _source_layers(ckpt: Checkpoint, by_layer: dict[int, dict[str, torch.Tensor]]) -> list[_Layer]:
    table = {li.index: li for li in (ckpt.layers or [])}
    count = max([*table, *by_layer, -1]) + 1
    layers = []
    for idx in range(count):
        info = table.get(idx)
        t = info.type if info else ""
        tensors = by_layer.get(idx, {})
        layers.append(
            _Layer(
                index=idx,
                type=t,
                family=_family(t),
                inputs=_abs_inputs(info.f, idx) if info else None,
                shapes={k: tuple(v.shape) for k, v in tensors.items()},
                preserve=_is_preserve(t),
            )
        )
    return layers


def _unwrap_model(model: Any) -> nn.Module:
    inner = getattr(model, "model", None)
    if isinstance(model, nn.Module) and isinstance(inner, nn.Sequential):
        return model
    if isinstance(inner, nn.Module) and isinstance(getattr(inner, "model", None), nn.Sequential):
        return inner  # an Ultralytics YOLO object
    raise TypeError("target must be an Ultralytics DetectionModel (or YOLO object) whose .model is an nn.Sequential")


def _is_buffer(key: str, ckpt: Checkpoint) -> bool:
    if ckpt.buffer_keys:
        return key in ckpt.buffer_keys
    return key.rsplit(".", 1)[-1] in _BUFFER_SUFFIXES
