"""What a checkpoint holds, as far as the transfer needs it (:class:`Checkpoint`), made from an unpickled object.

The object is a real model, a dict of tensors, an Ultralytics ``{"model": ..., "ema": ...}`` dict, or the inert
placeholder tree of :mod:`.unpickle`; every walk over it is bounded (:class:`.unpickle._Budget`), so a hostile graph
ends in a :class:`~.unpickle.CheckpointError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .unpickle import CheckpointError, Placeholder, _Budget, _GraphTooLarge, qualified_type


def _attrs(obj: Any) -> dict:
    if isinstance(obj, Placeholder):
        return object.__getattribute__(obj, "__dict__")
    return getattr(obj, "__dict__", {}) if obj is not None else {}


def _is_module_like(obj: Any) -> bool:
    if isinstance(obj, torch.nn.Module):
        return True
    return isinstance(obj, Placeholder) and "_modules" in _attrs(obj) and "_parameters" in _attrs(obj)


def module_state_dict(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], set[str]]:
    """State dict (and the set of its buffer keys) of a real or placeholder ``nn.Module`` tree."""
    out: dict[str, torch.Tensor] = {}
    buffers: set[str] = set()
    if isinstance(obj, torch.nn.Module):
        names = {n for n, _ in obj.named_buffers()}
        for k, v in obj.state_dict().items():
            out[prefix + k] = v
            if k in names:
                buffers.add(prefix + k)
        return out, buffers
    stack = [(obj, prefix, 0)]
    budget = _Budget()
    while stack:
        node, pre, depth = stack.pop()
        budget.spend(depth)
        d = _attrs(node)
        for k, v in (d.get("_parameters") or {}).items():
            if isinstance(v, torch.Tensor):
                out[pre + k] = v
        skip = d.get("_non_persistent_buffers_set") or set()
        for k, v in (d.get("_buffers") or {}).items():
            if isinstance(v, torch.Tensor) and k not in skip:
                out[pre + k] = v
                buffers.add(pre + k)
        children = [(pre + k + ".", m) for k, m in (d.get("_modules") or {}).items() if m is not None]
        for child_prefix, m in reversed(children):
            if isinstance(m, torch.nn.Module):
                sd, bk = module_state_dict(m, child_prefix)
                out.update(sd)
                buffers |= bk
            else:
                stack.append((m, child_prefix, depth + 1))
    # keep the module's own ordering (parameters, buffers, then children depth-first)
    return out, buffers


@dataclass
class LayerInfo:
    """One top-level layer of a pickled YOLO model: index, class (``module.Name``) and inputs."""

    index: int
    type: str
    f: Any = -1


@dataclass
class Checkpoint:
    """What a source file holds, as far as weight transfer needs it.

    Attributes:
        path: the file.
        format: ``"ultralytics"``, ``"yolov5"`` (original repository), ``"state_dict"`` or ``"safetensors"``.
        state_dict: tensors keyed ``model.<layer>.<path>`` (as ``DetectionModel.state_dict()``).
        buffer_keys: keys that are buffers rather than parameters, where known.
        layers: the layer table of a pickled model, or None for bare state dicts.
        yaml: the model YAML dict a pickled model carries, if any.
        names: class names, if known.
        nc: number of classes, if known.
        placeholders: globals the safe reader replaced by placeholders.
        trusted: True when read by a full unpickle.
        meta: other top-level entries (``train_args``, ``date``, ``version``...) that are plain values.
    """

    path: Path
    format: str
    state_dict: dict[str, torch.Tensor]
    buffer_keys: set[str] = field(default_factory=set)
    layers: list[LayerInfo] | None = None
    yaml: dict | None = None
    names: dict | None = None
    nc: int | None = None
    placeholders: set[str] = field(default_factory=set)
    trusted: bool = False
    meta: dict = field(default_factory=dict)
    model: Any = None  # the real nn.Module (trusted or weights-only loads) or placeholder tree
    training_state: dict = field(default_factory=dict)  # every other top-level entry as plain data and tensors
    # (epoch, optimizer and scaler state...: what resuming a run needs beyond the weights); objects left out

    @property
    def half(self) -> bool:
        """True when the file stores its floating-point tensors as float16 (Ultralytics' default)."""
        return any(v.dtype == torch.float16 for v in self.state_dict.values())


_WRAPPER_KEYS = ("ema", "model", "state_dict", "model_state_dict", "model_state", "weights", "net")


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, Placeholder) and obj.ph_name == "OrderedDict":
        obj = dict(obj._ph_items)
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= 0.9 * len(obj):
            return tensors
    return None


def _normalise_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``module.`` (DDP) prefixes stripped; ``0.conv.weight`` (a bare Sequential) becomes ``model.0.conv.weight``."""
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    if sd and all(k.split(".", 1)[0].isdigit() for k in sd):
        sd = {f"model.{k}": v for k, v in sd.items()}
    return sd


def _plain(value: Any, budget: _Budget | None = None, depth: int = 0, tensors: bool = False) -> Any:
    """Plain data (no placeholders; tensors only with ``tensors``) for metadata, or None. Bounded: see :class:`_Budget`."""
    budget = budget or _Budget()
    budget.spend(depth)
    if isinstance(value, (str, int, float, bool)) or value is None or (tensors and isinstance(value, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v, budget, depth + 1, tensors) for v in value]
        return items if all(v is not None or o is None for v, o in zip(items, value)) else None
    if isinstance(value, dict):
        out = {k: _plain(v, budget, depth + 1, tensors) for k, v in value.items() if isinstance(k, (str, int))}
        return {k: v for k, v in out.items() if v is not None or value[k] is None}
    return None


def _layer_index(value: Any, name: Any, pos: int) -> int:
    """The ``i`` a layer carries, else its name in the Sequential, else its position; must be an integer."""
    if value is None:
        value = int(name) if str(name).isdigit() else pos
    if isinstance(value, bool) or not isinstance(value, int):
        raise _GraphTooLarge(f"layer {name!r} has a non-integer layer index i={value!r:.40}")
    return value


def _layer_table(model: Any) -> list[LayerInfo] | None:
    seq = _attrs(model).get("_modules", {}).get("model") if not isinstance(model, torch.nn.Module) else getattr(model, "model", None)
    if seq is None:
        return None
    children = _attrs(seq).get("_modules") if not isinstance(seq, torch.nn.Module) else dict(seq.named_children())
    if not children:
        return None
    table = []
    for pos, (name, layer) in enumerate(children.items()):
        a = _attrs(layer)
        t = a.get("type") if isinstance(a.get("type"), str) else qualified_type(layer)
        table.append(LayerInfo(index=_layer_index(a.get("i"), name, pos), type=t, f=_plain(a.get("f", -1))))
    return table


def _from_model(path: Path, model: Any, top: dict, placeholders: set[str], trusted: bool) -> Checkpoint:
    sd, buffers = module_state_dict(model)
    sd = _normalise_keys(sd)
    a = _attrs(model)
    yaml = _plain(a.get("yaml")) if isinstance(a.get("yaml"), dict) else None
    names = a.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    names = _plain(names) if isinstance(names, dict) else None
    nc = a.get("nc") if isinstance(a.get("nc"), int) else (yaml or {}).get("nc")
    kind = qualified_type(model)
    fmt = "yolov5" if kind.startswith("models.") else "ultralytics"
    meta = {k: _plain(v) for k, v in top.items() if k not in ("model", "ema", "optimizer") and _plain(v) is not None}
    state = {k: _plain(v, tensors=True) for k, v in top.items() if k not in ("model", "ema")}
    return Checkpoint(
        path=path,
        format=fmt,
        state_dict=sd,
        buffer_keys=buffers,
        layers=_layer_table(model),
        yaml=yaml,
        names=names,
        nc=nc if isinstance(nc, int) else None,
        placeholders=placeholders,
        trusted=trusted,
        meta=meta,
        model=model,
        training_state={k: v for k, v in state.items() if v is not None},
    )


def _interpret(path: Path, obj: Any, placeholders: set[str], trusted: bool) -> Checkpoint:
    if _is_module_like(obj):  # torch.save(model)
        return _from_model(path, obj, {}, placeholders, trusted)
    if isinstance(obj, dict):
        for key in ("ema", "model"):
            if _is_module_like(obj.get(key)):
                return _from_model(path, obj[key], obj, placeholders, trusted)
        sd = _tensor_dict(obj)
        if sd is None:
            for key in _WRAPPER_KEYS:
                sd = _tensor_dict(obj.get(key))
                if sd is not None:
                    break
        if sd is not None:
            return Checkpoint(path=path, format="state_dict", state_dict=_normalise_keys(sd), placeholders=placeholders,
                              trusted=trusted)  # fmt: skip
    what = qualified_type(obj)
    if isinstance(obj, dict):
        what = f"a dict with keys {sorted(map(str, obj))[:8]}"
    raise CheckpointError(f"{path}: not a model checkpoint (it holds {what}; expected a model or a state dict)")


def checkpoint_from_module(module: torch.nn.Module, path: str | Path = "<module>") -> Checkpoint:
    """A :class:`Checkpoint` view of a model already in memory (``trusted``: nothing is unpickled)."""
    return _from_model(Path(path), module, {}, set(), True)


def checkpoint_from_object(obj: Any, path: str | Path = "<dict>") -> Checkpoint:
    """A :class:`Checkpoint` view of an in-memory checkpoint object (a state dict or ``{"model": ...}`` dict)."""
    return _interpret(Path(path), obj, set(), True)


def _interpret_bounded(path: Path, obj: Any, placeholders: set[str], trusted: bool) -> Checkpoint:
    """:func:`_interpret`, with a hostile object graph (cycles, deep nesting, odd attribute types) as CheckpointError."""
    try:
        return _interpret(path, obj, placeholders, trusted)
    except CheckpointError:
        raise
    except _GraphTooLarge as exc:
        raise CheckpointError(f"{path}: not a usable checkpoint: {exc}") from None
    except (RecursionError, MemoryError, AttributeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a usable checkpoint ({type(exc).__name__}: {exc})") from None


class NonFiniteWeightsError(ValueError):
    """The source checkpoint holds NaN or infinite values: nothing is transferred from it."""


def check_finite(ckpt: Checkpoint, shown: int = 5) -> None:
    """Raise :class:`NonFiniteWeightsError` naming how many and which source tensors hold NaN or inf values."""
    total = len(ckpt.state_dict)
    bad = [k for k, v in ckpt.state_dict.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
        raise NonFiniteWeightsError(
            f"{ckpt.path}: {len(bad)} of {total} tensors hold NaN or infinite values ({', '.join(bad[:shown])}{more}); "
            "a model trained or started from them predicts nothing useful (a diverged run?). Nothing was transferred")
