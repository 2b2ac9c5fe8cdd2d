"""Checks of a model YAML before Ultralytics builds it: structure, names that are layers, safe arguments.

Each failure is a :class:`YamlLayerError` naming the file, the row and the layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import LAYERS
from ._core import _ORIGINAL_PARSE_MODEL, _ULTRALYTICS_NAMES, YamlLayerError, _tasks

MAX_REPEATS = 100  # a row's repeat count after depth scaling; C3 x 3,000,000 once ran until killed
MAX_CLASSES = 100_000  # nc: the Detect head allocates nc output channels per level
# parse_model replaces a string argument that names one of its local variables by that variable's value; only these
# plain values may be named so (Ultralytics' YAMLs use nc and kpt_shape), never internals such as d, ch or layers
DATA_LOCALS = frozenset({"nc", "kpt_shape", "reg_max", "end2end", "scale", "depth", "width", "max_channels"})
_NN_PREFIXES = ("nn.", "torchvision.ops.")  # parse_model resolves these with getattr on torch.nn / torchvision.ops


def _lookup(name: str) -> Any:
    """What parse_model would resolve ``name`` to (None when nothing); never imports or calls anything else."""
    if name.startswith(_NN_PREFIXES):
        prefix = next(p for p in _NN_PREFIXES if name.startswith(p))
        attr = name[len(prefix):]
        if not attr or "." in attr:
            return None
        if prefix == "nn.":
            return getattr(torch.nn, attr, None)
        import torchvision.ops

        return getattr(torchvision.ops, attr, None)
    return vars(_tasks).get(name)


def resolve_layer(name: Any) -> type | None:
    """The layer class a model-YAML module name resolves to in ``parse_model``, or None when it is not a layer.

    Only ``nn.Module`` subclasses are layers: a name resolving to a function (``torch_load``, ``check_requirements``),
    a module, a whole model class (``DetectionModel``) or a loss would otherwise be *called* with the row's args.
    """
    value = _lookup(name) if isinstance(name, str) and name else None
    if not (isinstance(value, type) and issubclass(value, nn.Module)):
        return None
    if getattr(value, "yolo_attn_spec", None) is None and value.__module__.startswith(("ultralytics.nn.tasks", "ultralytics.utils")):
        return None  # whole models (DetectionModel, Ensemble) and losses are not layers
    return value


def _layer_names() -> list[str]:
    return [k for k in vars(_tasks) if k in _ULTRALYTICS_NAMES and resolve_layer(k) is not None]


def _not_a_layer(name: Any) -> str:
    """Why ``name`` is refused: an unknown name (closest matches), or a name that resolves to something else."""
    value = _lookup(name) if isinstance(name, str) and name else None
    if value is None:
        return LAYERS.unknown_message(name, _layer_names())
    kind = type(value).__name__ if not isinstance(value, type) else "class that is not a layer"
    return f"{name!r} is not a model layer (it names a {kind}); a model YAML may name only nn.Module layer classes"


def _parse_locals_names() -> frozenset[str]:
    code = _ORIGINAL_PARSE_MODEL.__code__
    return frozenset(code.co_varnames + code.co_cellvars)


def check_activation(act: Any, source: str) -> None:
    """``activation:`` is ``eval``-ed by parse_model: allow only ``[torch.]nn.Class(literal args)`` of an nn.Module class."""
    import ast

    bad = YamlLayerError(f"{source}: activation {act!r} is not allowed; write a torch.nn module call such as nn.SiLU() "
                         "or nn.LeakyReLU(0.1) (literal arguments only)")
    if not isinstance(act, str):
        raise bad
    try:
        call = ast.parse(act.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        raise bad from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
        raise bad
    owner = call.func.value
    dotted = [owner.id] if isinstance(owner, ast.Name) else [getattr(owner.value, "id", None), owner.attr] if isinstance(owner, ast.Attribute) else []
    if dotted not in (["nn"], ["torch", "nn"]) or resolve_layer("nn." + call.func.attr) is None:
        raise bad
    try:
        for node in [*call.args, *(k.value for k in call.keywords)]:
            ast.literal_eval(node)
    except ValueError:
        raise bad from None
    if any(k.arg is None for k in call.keywords):  # **kwargs
        raise bad


def _depth_gain(d: dict, source: str) -> float:
    scales, scale = d.get("scales"), d.get("scale")
    if scales:
        if not isinstance(scales, dict):
            raise YamlLayerError(f"{source}: 'scales' must map a scale letter to [depth, width, max_channels]")
        key = scale or next(iter(scales))
        row = scales.get(key)
        if not (isinstance(row, (list, tuple)) and len(row) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in row)):
            raise YamlLayerError(f"{source}: scale {key!r} is not one of {list(scales)} with [depth, width, max_channels] > 0")
        return float(row[0])
    for key in ("depth_multiple", "width_multiple"):
        x = d.get(key, 1.0)
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 100:
            raise YamlLayerError(f"{source}: {key} must be a number in (0, 100], got {x!r}")
    return float(d.get("depth_multiple", 1.0))


def check_model_dict(d: Any, source: str | None = None) -> None:
    """The top-level structure of a model YAML: a mapping with ``nc``, ``backbone`` and ``head`` lists, sane scales."""
    source = source or (d.get("yaml_file") if isinstance(d, dict) else None) or "<model dict>"
    if not isinstance(d, dict):
        raise YamlLayerError(f"{source}: a model YAML must be a mapping with nc, backbone and head (got {type(d).__name__})")
    missing = [k for k in ("nc", "backbone", "head") if k not in d]
    if missing:
        raise YamlLayerError(f"{source}: model YAML has no {', '.join(repr(k) for k in missing)} "
                             "(a detection model YAML needs nc, backbone and head)")
    nc = d["nc"]
    if isinstance(nc, bool) or not isinstance(nc, int) or not 1 <= nc <= MAX_CLASSES:
        raise YamlLayerError(f"{source}: nc must be an integer number of classes in 1..{MAX_CLASSES}, got {nc!r}")
    for key in ("backbone", "head"):
        if not isinstance(d[key], list):
            raise YamlLayerError(f"{source}: '{key}' must be a list of [from, number, module, args] rows")
    if not d["backbone"]:
        raise YamlLayerError(f"{source}: model YAML has no 'backbone'/'head' rows")
    if "activation" in d and d["activation"] is not None:
        check_activation(d["activation"], source)
    _depth_gain(d, source)


def _check_from(f: Any, i: int, where: str) -> None:
    """Every ``from`` index names an earlier layer (-1 is the previous one; row 0 reads only the image, -1)."""
    fs = f if isinstance(f, list) else [f]
    if not fs or any(isinstance(x, bool) or not isinstance(x, int) for x in fs):
        raise YamlLayerError(f"{where}: 'from' must be a layer index or a list of them, got {f!r}")
    for x in fs:
        if (i == 0 and x != -1) or not -max(i, 1) <= x < max(i, 1):
            raise YamlLayerError(f"{where}: 'from' index {x} does not name an earlier layer")


def _check_args(args: list, where: str) -> None:
    internals = _parse_locals_names() - DATA_LOCALS
    for a in args:
        if isinstance(a, str) and a in internals:
            raise YamlLayerError(f"{where}: argument {a!r} names an internal variable of Ultralytics' parse_model; "
                                 f"only {sorted(DATA_LOCALS)} may be named")


def _check_rows(d: dict) -> None:
    check_model_dict(d)
    source = d.get("yaml_file", "<model dict>")
    depth = _depth_gain(d, source)
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise YamlLayerError(f"{source}: layer {i} {row!r}: a row must be [from, number, module, args]")
        f, n, name, args = row
        where = f"{source}: layer {i} {list(row)}"
        if resolve_layer(name) is None:
            raise YamlLayerError(f"{where}: {_not_a_layer(name)}")
        if not isinstance(args, list):
            raise YamlLayerError(f"{where}: args must be a list, got {args!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise YamlLayerError(f"{where}: number must be a positive integer")
        repeats = max(round(n * depth), 1) if n > 1 else n  # Ultralytics' depth gain
        if repeats > MAX_REPEATS:
            raise YamlLayerError(f"{where}: number {n} repeats the layer {repeats} times after depth scaling "
                                 f"(at most {MAX_REPEATS})")
        if name in LAYERS and not _is_ultralytics_layer(name):
            if isinstance(f, bool) or not isinstance(f, int):
                raise YamlLayerError(
                    f"{where}: {name} takes one input, but 'from' is {f!r} (use a single layer index such as -1)"
                )
        _check_from(f, i, where)
        _check_args(args, where)


def _is_ultralytics_layer(name: str) -> bool:
    """True when ``name`` resolves to Ultralytics' own layer (not a yolo_attn entry)."""
    return getattr(vars(_tasks).get(name), "yolo_attn_spec", None) is None
