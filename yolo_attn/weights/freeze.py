"""``freeze=`` given in the base model's layer indices, translated to the attention model's layers and checked."""

from __future__ import annotations

import json
from typing import Any, Iterable

from torch import nn

from ..registry import LAYERS
from .align import load_index_map
from .checkpoint import Checkpoint
from .layers import _unwrap_model
from .report import TransferReport


def _base_indices(freeze: Any, base_map: dict[int, int], backbone_len: int | None) -> list[int]:
    if freeze is None or freeze is False:
        return []
    if isinstance(freeze, str):
        if freeze.strip().lower() != "backbone":
            try:
                freeze = json.loads(freeze)
            except json.JSONDecodeError:
                raise ValueError(f"freeze must be an int, a list of base layer indices or 'backbone', got {freeze!r}") from None
            return _base_indices(freeze, base_map, backbone_len)
        if backbone_len is None:
            raise ValueError("freeze='backbone' needs the base model's backbone length (base_yaml or backbone_len)")
        return list(range(backbone_len))
    if isinstance(freeze, bool):
        raise ValueError("freeze must be an int, a list of base layer indices or 'backbone'")
    if isinstance(freeze, int):
        return list(range(freeze))
    if isinstance(freeze, Iterable):
        out = []
        for x in freeze:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ValueError(f"freeze list entries must be base layer indices, got {x!r}")
            out.append(x)
        return out
    raise ValueError(f"freeze must be an int, a list of base layer indices or 'backbone', got {freeze!r}")


def translate_freeze(freeze: Any, base_map: Any, backbone_len: int | None = None) -> list[int]:
    """Target layer indices for Ultralytics-style ``freeze`` given in the base model's numbering.

    ``freeze``: int N (base layers 0..N-1), a list of base indices, or ``"backbone"`` (base layers
    ``0..backbone_len-1``). Base layers with no target (``base_map`` lacks them) are dropped; inserted
    target layers are never included, so new attention trains.
    """
    bmap = load_index_map(base_map) if not (isinstance(base_map, dict) and all(isinstance(k, int) for k in base_map)) else base_map
    return sorted({bmap[i] for i in _base_indices(freeze, bmap, backbone_len) if i in bmap})


def _attention_free_prefixes(module: nn.Module, prefix: str, preserve_classes: tuple) -> list[str]:
    """Shortest ``prefix.`` paths covering every part of ``module`` that holds no attention sub-layer."""
    if isinstance(module, preserve_classes):
        return []
    if not any(isinstance(m, preserve_classes) for m in module.modules()):
        return [prefix]
    out = []
    for name, child in module.named_children():
        out.extend(_attention_free_prefixes(child, f"{prefix}{name}.", preserve_classes))
    return out


def freeze_prefixes(model: Any, freeze: Any, base_map: Any, backbone_len: int | None = None) -> list[str]:
    """Ultralytics-style name prefixes (``"model.10."``, ``"model.2.m.0.cv1."``) of what to freeze.

    A mapped layer without attention gives ``model.{t}.``; a mapped block carrying attention
    sub-layers (``C3Attn``) gives the prefixes of its attention-free parts, so the new attention trains.
    Use them as the trainer's ``freeze_layer_names`` (substring match on parameter and module names).
    """
    net = _unwrap_model(model)
    preserve_classes = tuple(s.cls for s in LAYERS if s.kind == "preserve")
    out = []
    for t in translate_freeze(freeze, base_map, backbone_len):
        out.extend(_attention_free_prefixes(net.model[t], f"model.{t}.", preserve_classes))
    return out


def check_freeze(freeze: Any, prefixes: list[str], report: TransferReport, base_layers: int | None,
                 backbone_len: int | None = None) -> None:
    """Refuse a base-index ``freeze`` that names no layer of the base model, or that reaches tensors the transfer
    left untrained (the class outputs of a checkpoint with another class count: frozen, they stay random).

    ``prefixes``: :func:`freeze_prefixes` of it; ``base_layers``: the base model's layer count (unknown: no range check).
    """
    indices = _base_indices(freeze, report.mapping, backbone_len)
    if base_layers is not None:
        if isinstance(freeze, int) and not isinstance(freeze, bool) and not 0 <= freeze <= base_layers:
            raise ValueError(f"freeze={freeze}: the base model has {base_layers} layers (freeze=N freezes its layers "
                             f"0..N-1; freeze=backbone its backbone)")
        missing = [i for i in indices if not 0 <= i < base_layers]
        if missing:
            raise ValueError(f"freeze={freeze}: base layer(s) {missing} do not exist (the base model has layers "
                             f"0..{base_layers - 1})")
    frozen_new = [k for k in report.class_dependent if any(k.startswith(p) for p in prefixes)]
    if frozen_new:
        raise ValueError(f"freeze={freeze} reaches {len(frozen_new)} tensors that start untrained because the "
                         f"checkpoint has another class count (e.g. {frozen_new[0]}); frozen they would stay random "
                         "for the whole run: freeze fewer layers (freeze=backbone)")


def base_layer_count(ckpt: Checkpoint) -> int | None:
    """Number of layers of the base model a checkpoint holds (its layer table, else its state dict's layer keys)."""
    if ckpt.layers:
        return len(ckpt.layers)
    found = [int(k.split(".")[1]) for k in ckpt.state_dict if k.startswith("model.") and k.split(".")[1].isdigit()]
    return max(found) + 1 if found else None


def backbone_length(ckpt_or_yaml: Any) -> int | None:
    """Number of backbone rows of a base model (from a Checkpoint's yaml or a YAML dict)."""
    y = ckpt_or_yaml.yaml if isinstance(ckpt_or_yaml, Checkpoint) else ckpt_or_yaml
    if isinstance(y, dict) and isinstance(y.get("backbone"), list):
        return len(y["backbone"])
    return None
