"""The one place where yolo_attn touches Ultralytics internals.

Ultralytics resolves a model-YAML layer name with ``globals()[name]`` inside
``ultralytics.nn.tasks.parse_model`` and, for layers it does not know, calls the class with the
YAML arguments only (no input channels), records the input channels as the output channels, and
repeats the layer ``n`` times. To make registered attention layers first-class YAML layers, this
module:

* puts one *YAML entry class* per registered name into ``ultralytics.nn.tasks``' namespace. An
  entry class is an ``nn.Module`` subclass (so Ultralytics' restricted loading accepts it) whose
  constructor reads the row being parsed (input channels; for ``block`` layers the width/depth
  multiples) from the running ``parse_model`` frame, returns an instance of the real registered
  class, and for ``block`` layers writes their output channels back (``c2``);
* wraps ``parse_model`` to validate rows (clear errors naming file, row and layer, closest match)
  and to hand the repeat count of ``block`` rows to the layer itself, as Ultralytics does for ``C3``;
* wraps ``torch_safe_load`` and ``check_requirements`` so that a checkpoint naming a yolo_attn
  module this installation lacks fails with a clear error instead of Ultralytics' pip auto-install;
* allow-lists every yolo_attn module class for ``torch.load(weights_only=True)`` so checkpoints
  load under ``ULTRALYTICS_SAFE_LOAD=1``;
* wraps ``check_yaml`` so the configs shipped in ``models/yaml`` resolve by name from any folder;
* routes ``check_font`` to a local font, so plots render offline (no Arial download).

``tests/test_bridge.py`` checks every assumption made here against the installed Ultralytics, and
``.ci/compat`` runs it against the oldest version ``pyproject.toml`` allows.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .registry import LAYERS, LayerSpec, split_options

try:  # Ultralytics is a hard dependency; fail with a clear message if it is missing or too old.
    import ultralytics
    from ultralytics.nn import tasks as _tasks
    from ultralytics.utils.ops import make_divisible
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError("yolo_attn needs the 'ultralytics' package: pip install 'ultralytics>=8.4.0,<8.5'") from exc

ULTRALYTICS_VERSION = ultralytics.__version__
_ORIGINAL_PARSE_MODEL = getattr(_tasks.parse_model, "__wrapped__", _tasks.parse_model)
_ORIGINAL_SAFE_LOAD = getattr(_tasks.torch_safe_load, "__wrapped__", _tasks.torch_safe_load)
_REPEATS_KEY = "_yolo_attn_repeats"  # {row index: YAML repeat count} for block rows, set by the parse wrapper
# names Ultralytics resolves before yolo_attn adds any (entries of an earlier import of this module excluded)
_ULTRALYTICS_NAMES = frozenset(k for k, v in vars(_tasks).items() if getattr(v, "yolo_attn_spec", None) is None)
# local variables of parse_model that this bridge reads (and, for ``c2``, writes; ``legacy`` too where it exists);
# tests/test_bridge.py checks them
PARSE_MODEL_LOCALS = ("ch", "f", "i", "d", "c2", "width", "depth", "max_channels", "scale")


class YamlLayerError(ValueError):
    """A model YAML row naming a yolo_attn layer is invalid; the message names the file, row and layer."""


def ultralytics_names() -> frozenset[str]:
    """Layer names Ultralytics itself resolves (before yolo_attn registers anything)."""
    return _ULTRALYTICS_NAMES


# --------------------------------------------------------------------------------------------
# Reading the state of the parse_model call that is building a layer
# --------------------------------------------------------------------------------------------
def _parse_frame():
    """The frame of the innermost running ``parse_model`` (the row being built)."""
    frame = sys._getframe(1)
    code = _ORIGINAL_PARSE_MODEL.__code__
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("a yolo_attn YAML entry was called outside Ultralytics' parse_model")
    return frame


def _parse_locals() -> dict[str, Any]:
    """Local variables of the innermost running ``parse_model`` (the row being built)."""
    return _parse_frame().f_locals


def _set_output_channels(c2: int) -> None:
    """Tell the running ``parse_model`` the output channels of the row being built.

    For a name it does not know, Ultralytics records ``c2 = ch[f]`` (the input channels) *before* it calls the
    entry, and appends ``c2`` to its channel list after the call. A ``block`` layer may change channels, so the
    entry overwrites that local; otherwise the next layer would be built for the wrong input channels.
    """
    frame = _parse_frame()
    write_frame_local(frame, "c2", c2)
    if frame.f_locals.get("c2") != c2:  # pragma: no cover - only on an unsupported interpreter
        raise RuntimeError("yolo_attn could not set the output channels of a block layer in parse_model")


FRAME_LOCALS_PROXY = sys.version_info >= (3, 13)  # PEP 667: frame.f_locals is a write-through proxy


def write_frame_local(frame, name: str, value) -> str:
    """Set local variable ``name`` of the running ``frame``; returns how (the branch the interpreter takes).

    From Python 3.13 on (PEP 667) ``frame.f_locals`` writes through to the frame (``"proxy"``). Before, it is
    a snapshot dict, and ``PyFrame_LocalsToFast`` copies it back into the frame, as debuggers do (``"fast"``).
    """
    frame.f_locals[name] = value
    if FRAME_LOCALS_PROXY:
        return "proxy"
    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return "fast"


def _row_label(loc: dict[str, Any], name: str) -> str:
    d = loc.get("d") or {}
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    i = loc.get("i")
    row = list(rows[i]) if isinstance(i, int) and i < len(rows) else "?"
    repeats = d.get(_REPEATS_KEY) or {}
    if row != "?" and i in repeats:  # show the repeat count as written in the YAML
        row[1] = repeats[i]
    return f"{d.get('yaml_file', '<model dict>')}: layer {i} {row} ({name})"


def _build_from_row(spec: LayerSpec, args: tuple) -> nn.Module:
    loc = _parse_locals()
    ch, f = loc["ch"], loc["f"]
    where = _row_label(loc, spec.name)
    if not isinstance(f, int):
        raise YamlLayerError(f"{where}: takes one input, but 'from' is {f!r}")
    pos, kw = split_options(args)
    try:
        c1 = ch[f]
    except IndexError:
        raise YamlLayerError(f"{where}: 'from' index {f} does not name an earlier layer") from None
    if spec.kind == "block":
        if not pos:
            raise YamlLayerError(f"{where}: a block layer needs its output channels first, e.g. [256]")
        c2 = pos[0]
        if not isinstance(c2, int) or c2 <= 0:
            raise YamlLayerError(f"{where}: output channels must be a positive integer, got {c2!r}")
        c2 = make_divisible(min(c2, loc["max_channels"]) * loc["width"], 8)
        n = loc["d"].get(_REPEATS_KEY, {}).get(loc["i"])
        if n is None:
            raise YamlLayerError(f"{where}: built by an unwrapped parse_model; import yolo_attn before ultralytics models")
        n = max(round(n * loc["depth"]), 1) if n > 1 else n  # Ultralytics' depth gain, as applied to C3
        pos = [c2, n, *pos[1:]]
        pos, kw = scale_block_options(spec, pos, kw, loc)  # C3k2-style blocks (see "Newer bases" at the end)
    try:
        module = spec.cls(c1, *pos, **kw)
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise YamlLayerError(f"{where}: bad arguments {list(args)}: {exc}") from exc
    if spec.kind == "block":
        _set_output_channels(pos[0])
    return module


def _entry_class(spec: LayerSpec) -> type:
    """An nn.Module subclass named like ``spec.cls`` whose construction builds ``spec.cls`` from a YAML row."""

    def __new__(cls, *args):
        return _build_from_row(spec, args)

    return type(
        spec.name,
        (nn.Module,),
        {
            "__new__": __new__,
            "__module__": spec.cls.__module__,
            "__qualname__": spec.cls.__qualname__,
            "__doc__": spec.cls.__doc__,
            "yolo_attn_spec": spec,
        },
    )


# --------------------------------------------------------------------------------------------
# Wrappers of parse_model and torch_safe_load
# --------------------------------------------------------------------------------------------
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


@functools.wraps(_ORIGINAL_PARSE_MODEL)
def parse_model(d, ch, verbose=True):
    """Ultralytics' parse_model, with yolo_attn's name check and ``block`` repeat handling."""
    _check_rows(d)
    repeats = {}
    for i, row in enumerate(list(d.get("backbone") or []) + list(d.get("head") or [])):
        if row[2] in LAYERS and LAYERS.get(row[2]).kind == "block":
            repeats[i], row[1] = row[1], 1  # the block builds its own repeats, like C3
    d[_REPEATS_KEY] = repeats
    try:
        return _ORIGINAL_PARSE_MODEL(d, ch, verbose=verbose)
    except YamlLayerError:
        raise
    except (TypeError, IndexError, KeyError, ValueError, ZeroDivisionError, AttributeError, AssertionError) as exc:
        # a row the name/structure check let through but Ultralytics' own layer handling rejects
        raise YamlLayerError(f"{_failed_row(d, exc)}: Ultralytics cannot build this row ({type(exc).__name__}: {exc})") from exc
    finally:
        d.pop(_REPEATS_KEY, None)


def _failed_row(d: dict, exc: BaseException) -> str:
    """``file: layer i [row] (module)`` of the row parse_model was building when ``exc`` was raised."""
    tb, loc = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code is _ORIGINAL_PARSE_MODEL.__code__:
            loc = tb.tb_frame.f_locals
        tb = tb.tb_next
    if loc is None or not isinstance(loc.get("i"), int):
        return str(d.get("yaml_file", "<model dict>"))
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    return _row_label({"d": d, "i": loc["i"]}, str(rows[loc["i"]][2]))


class MissingLayerModuleError(ModuleNotFoundError):
    """A checkpoint needs a yolo_attn module that this installation does not have."""


@functools.wraps(_ORIGINAL_SAFE_LOAD)
def torch_safe_load(weight, *args, **kwargs):
    """Ultralytics' torch_safe_load, refusing to auto-install a missing yolo_attn module."""
    from pathlib import Path

    if Path(str(weight)).is_file():
        check_checkpoint_modules(weight)
    try:
        return _ORIGINAL_SAFE_LOAD(weight, *args, **kwargs)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("yolo_attn"):
            raise MissingLayerModuleError(_missing_message(weight, exc.name)) from exc
        raise


def _guard_check_requirements(original):
    """Wrap Ultralytics' ``check_requirements`` so that it never pip-installs a ``yolo_attn`` module.

    ``torch_safe_load`` calls ``check_requirements(e.name)`` for a module that unpickling could not import. When a
    fresh process loads a checkpoint without importing yolo_attn first, the unpickler imports yolo_attn (which
    installs this guard) while Ultralytics' own ``torch_safe_load`` is already running, so the wrapper of
    ``torch_safe_load`` cannot intercept the error; this guard does.
    """
    if getattr(original, "_yolo_attn_guard", False):
        return original

    @functools.wraps(original)
    def check_requirements(requirements=(), *args, **kwargs):
        names = [requirements] if isinstance(requirements, str) else []
        if isinstance(requirements, (list, tuple)):
            names = [r for r in requirements if isinstance(r, str)]
        for name in names:
            if name == "yolo_attn" or name.startswith("yolo_attn."):
                raise MissingLayerModuleError(_missing_message("the checkpoint being loaded", name), name=name)
        return original(requirements, *args, **kwargs)

    check_requirements._yolo_attn_guard = True
    return check_requirements


def _missing_message(weight, name) -> str:
    from . import __version__

    return (
        f"{weight} was saved with a yolo_attn module '{name}' that yolo_attn {__version__} does not have. "
        "Install the yolo_attn version the checkpoint was trained with."
    )


def check_checkpoint_modules(weight) -> None:
    """Raise :class:`MissingLayerModuleError` if ``weight`` pickles yolo_attn classes that cannot be imported.

    Ultralytics answers a ModuleNotFoundError during unpickling by pip-installing a package of that name;
    this check runs first so that never happens for yolo_attn modules.
    """
    import importlib

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(weight)
    except Exception:  # not a zip checkpoint: torch.load reports the real problem
        return
    for full in names:
        if not full.startswith("yolo_attn."):
            continue
        module, _, attr = full.rpartition(".")
        try:
            ok = hasattr(importlib.import_module(module), attr)
        except ModuleNotFoundError:
            ok = False
        if not ok:
            raise MissingLayerModuleError(_missing_message(weight, full))


# --------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------
def _module_classes() -> list[type]:
    """Every nn.Module subclass defined in yolo_attn (for the weights_only allow-list)."""
    seen, todo = set(), [nn.Module]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return sorted(
        (c for c in seen if c.__module__.startswith("yolo_attn.") and "yolo_attn_spec" not in vars(c)),
        key=lambda c: (c.__module__, c.__qualname__),
    )


def install() -> None:
    """Make every registered layer resolvable by Ultralytics (idempotent)."""
    namespace = vars(_tasks)
    for spec in LAYERS:
        current = namespace.get(spec.name)
        if getattr(current, "yolo_attn_spec", None) is not None and current.yolo_attn_spec.cls is spec.cls:
            continue
        if spec.overrides and spec.overrides != spec.name:
            raise RuntimeError(f"yolo_attn layer {spec.name!r}: overrides must be '' or its own name, got {spec.overrides!r}")
        if spec.name in _ULTRALYTICS_NAMES:
            if spec.overrides != spec.name:
                raise RuntimeError(
                    f"yolo_attn layer {spec.name!r} would shadow Ultralytics' own {spec.name!r}; "
                    "rename it or declare overrides=" + repr(spec.name)
                )
            if not (isinstance(current, type) and issubclass(current, nn.Module)):
                # e.g. 'Path', 'LOGGER', 'torch': Ultralytics' own code uses these names; never replace them
                raise RuntimeError(
                    f"yolo_attn layer {spec.name!r} would replace {spec.name!r} in ultralytics.nn.tasks, "
                    "which is not a model layer; rename it"
                )
        namespace[spec.name] = _entry_class(spec)
    _tasks.parse_model = parse_model
    _tasks.torch_safe_load = torch_safe_load
    install_config_lookup()  # model YAMLs shipped with yolo_attn resolve by name (see the end of this file)
    _tasks.check_requirements = _guard_check_requirements(_tasks.check_requirements)
    torch.serialization.add_safe_globals(_module_classes())
    install_offline_font()  # plots render offline: no Arial download (see the end of this file)


# --------------------------------------------------------------------------------------------
# Model YAMLs shipped with yolo_attn, resolvable by name (see
# yolo_attn/placement.py). Ultralytics' yaml_model_load calls ``check_yaml`` (the name imported into
# ultralytics.nn.tasks), which searches only Ultralytics' own cfg directory. The wrapper below keeps
# that behaviour and, only for a bare file name Ultralytics does not find, answers with the file of
# that name among yolo_attn's configs. yaml_model_load asks for 'yolov5s-cbam-neck.yaml' first and
# then for the scale-free 'yolov5-cbam-neck.yaml', so both spellings resolve.
# --------------------------------------------------------------------------------------------
_ORIGINAL_CHECK_YAML = getattr(_tasks.check_yaml, "__wrapped__", _tasks.check_yaml)
_ORIGINAL_YAML_MODEL_LOAD = getattr(_tasks.yaml_model_load, "__wrapped__", _tasks.yaml_model_load)


def shipped_config(name) -> str | None:
    """Path of the shipped config called ``name`` (a bare file name not present in the cwd), else None."""
    import os

    name = str(name).strip()
    if not name or os.path.dirname(name) or os.path.exists(name):
        return None
    from .placement import config_dir

    path = config_dir() / name
    return str(path) if path.is_file() else None


@functools.wraps(_ORIGINAL_CHECK_YAML)
def check_yaml(file, *args, **kwargs):
    """Ultralytics' check_yaml; a bare name it cannot find is looked up among yolo_attn's shipped configs."""
    ours = shipped_config(file)
    if ours is None:
        return _ORIGINAL_CHECK_YAML(file, *args, **kwargs)
    try:
        found = _ORIGINAL_CHECK_YAML(file, *args, **kwargs)
    except FileNotFoundError:
        return ours
    return found or ours


@functools.wraps(_ORIGINAL_YAML_MODEL_LOAD)
def yaml_model_load(path):
    """Ultralytics' yaml_model_load, then :func:`check_model_dict` and the row check: clear errors naming the file.

    Ultralytics indexes ``d["backbone"]``, ``d["nc"]`` before parse_model runs, so an empty YAML or one without
    these keys would otherwise end in a KeyError/TypeError traceback.
    """
    import yaml

    try:
        d = _ORIGINAL_YAML_MODEL_LOAD(path)
    except (TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:  # not YAML or not a mapping
        if isinstance(exc, YamlLayerError):
            raise
        raise YamlLayerError(f"{path}: a model YAML must be a mapping with nc, backbone and head "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    _check_rows(d)
    return d


def ultralytics_config_file(name: str) -> str:
    """Where Ultralytics keeps its own model YAML ``name``, relative to its install: ``ultralytics/cfg/models/v5/yolov5.yaml``.

    Used in the header of the shipped configs (each is derived from one of these files, under Ultralytics'
    licence). Raises FileNotFoundError when ``name`` is not one of Ultralytics' model YAMLs.
    """
    from pathlib import Path

    root = Path(ultralytics.__file__).resolve().parent
    found = _ORIGINAL_CHECK_YAML(name, hard=False)
    path = Path(found).resolve() if found else None
    if path is None or not path.is_relative_to(root):
        raise FileNotFoundError(f"{name} is not one of Ultralytics' model YAMLs")
    return path.relative_to(root.parent).as_posix()


def load_model_yaml(path) -> dict:
    """Ultralytics' ``yaml_model_load`` (name resolution, scale-free fallback), yolo_attn's configs included."""
    install_config_lookup()
    return _tasks.yaml_model_load(path)


def install_config_lookup() -> None:
    """Route ``check_yaml`` and ``yaml_model_load`` of ``ultralytics.nn.tasks`` through the wrappers (idempotent)."""
    import ultralytics.engine.model as engine_model  # YOLO("x.yaml") imports yaml_model_load by name

    _tasks.check_yaml = check_yaml
    for module in (_tasks, engine_model):
        if getattr(module, "yaml_model_load", None) is not None:
            module.yaml_model_load = yaml_model_load


# --------------------------------------------------------------------------------------------
# Offline-safe plot fonts
# --------------------------------------------------------------------------------------------
# Ultralytics' ``check_font`` looks for Arial in its settings folder and in matplotlib's font list, and
# otherwise downloads it from the Ultralytics assets server. It runs when a dataset is checked and when
# training/validation plots draw labels; offline, each call costs a failed HTTP request and the labels
# fall back to PIL's tiny bitmap font. ``ultralytics.utils.plotting`` and ``ultralytics.data.utils``
# import it by name, so the wrapper replaces the name in those modules (and in ``checks``).
_FONT_MODULES = ("ultralytics.utils.checks", "ultralytics.utils.plotting", "ultralytics.data.utils")


def _original_check_font():
    from ultralytics.utils import checks

    return getattr(checks.check_font, "__wrapped__", checks.check_font)


def fallback_font():
    """matplotlib's DejaVuSans.ttf (always installed with matplotlib, an Ultralytics dependency)."""
    from pathlib import Path

    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def offline_check_font(font: str = "Arial.ttf"):
    """``check_font`` that downloads only when Ultralytics is online and falls back to DejaVuSans.

    Order: the font in Ultralytics' settings folder; a font file of that name known to matplotlib; when
    ``ultralytics.utils.ONLINE`` (false under ``YOLO_OFFLINE=1`` or without DNS) Ultralytics' own lookup,
    which may download; otherwise, or if that finds nothing, matplotlib's DejaVuSans. Non-Latin labels
    (Ultralytics asks for Arial.Unicode.ttf) then lack CJK glyphs but still render.
    """
    from pathlib import Path

    from matplotlib import font_manager
    from ultralytics import utils

    name = Path(str(font)).name
    local = Path(utils.USER_CONFIG_DIR) / name
    if local.exists():
        return local
    known = [f.fname for f in font_manager.fontManager.ttflist if Path(f.fname).name == name]
    if known:
        return known[0]
    if utils.ONLINE:
        found = _original_check_font()(font)
        if found:
            return found
    fallback = fallback_font()
    return fallback if fallback.exists() else None


def install_offline_font() -> None:
    """Route Ultralytics' ``check_font`` (in every module that imported it) through :func:`offline_check_font`."""
    import importlib

    def check_font(font: str = "Arial.ttf"):
        return offline_check_font(font)

    check_font.__doc__ = offline_check_font.__doc__
    check_font.__wrapped__ = _original_check_font()  # lets a second install find Ultralytics' function
    for module_name in _FONT_MODULES:
        module = importlib.import_module(module_name)
        if getattr(module, "check_font", None) is not None:
            module.check_font = check_font


# --------------------------------------------------------------------------------------------
# Datasets (used by yolo_attn/datasets/files.py and its tests).
# Ultralytics replaces PIL.Image.open with a version that pip-installs a HEIF plugin when Pillow
# cannot identify a file, and keeps Pillow's own function as ``ultralytics.utils.patches._image_open``.
# Its split listing is the method ``BaseDataset.get_img_files``; the tests compare yolo_attn's own
# listing (datasets/files.image_files) with it.
# --------------------------------------------------------------------------------------------
def pil_open():
    """Pillow's ``Image.open`` as it was before Ultralytics patched it (no pip install on a broken image)."""
    from PIL import Image
    from ultralytics.utils import patches

    return getattr(patches, "_image_open", Image.open)


def ultralytics_image_files(img_path) -> list[str]:
    """The image files Ultralytics' loader lists for a split entry (a folder, a .txt list, or a list of them)."""
    from types import SimpleNamespace
    from unittest import mock

    from ultralytics.data import base

    stand_in = SimpleNamespace(prefix="", fraction=1.0)  # the two attributes get_img_files reads
    with mock.patch.object(base, "check_file_speeds", lambda *a, **k: None):  # timing only; it also draws from random
        return base.BaseDataset.get_img_files(stand_in, img_path)


def datasets_dir():
    """Ultralytics' ``DATASETS_DIR`` (from its settings), where it looks for a relative ``path:`` not found in the cwd."""
    from pathlib import Path

    from ultralytics.data import utils

    return Path(utils.DATASETS_DIR)


def find_packaged_file(name: str) -> str | None:
    """The file Ultralytics finds for a bare name such as ``coco8.yaml`` (searched in its package), never downloaded."""
    from ultralytics.utils.checks import check_file

    found = check_file(str(name), download=False, hard=False)
    return str(found) if found else None


def check_dataset_yaml(yaml_path, autodownload: bool = False) -> dict:
    """Ultralytics' own ``check_det_dataset`` verdict on a dataset YAML (the mapping it trains with).

    yolo_attn calls it with ``autodownload=False`` on its sanitised copy (no ``download:`` key), so nothing
    in the YAML runs; ``autodownload=True`` only for ``yolo-attn train --trust``. Fonts resolve offline.
    """
    from ultralytics.data import utils

    install_offline_font()
    return utils.check_det_dataset(str(yaml_path), autodownload=autodownload)


def intersect_dicts(source: dict, target: dict) -> dict:
    """Ultralytics' own name-and-shape matching (``ultralytics.utils.torch_utils.intersect_dicts``, what
    ``DetectionModel.load`` copies): the tensors of ``source`` whose name exists in ``target`` with the same shape."""
    from ultralytics.utils.torch_utils import intersect_dicts as _intersect

    return _intersect(source, target)


def freeze_in_trainer(trainer, prefixes) -> list[str]:
    """Freeze the parameters of ``trainer.model`` whose names start with one of ``prefixes``; return their names.

    Runs after Ultralytics' own freeze step (which re-enables every gradient it does not freeze), and
    adds the prefixes to the trainer's ``freeze_layer_names`` so Ultralytics keeps those layers'
    BatchNorm in eval mode while training.
    """
    prefixes = tuple(prefixes)
    names = [n for n, p in trainer.model.named_parameters() if n.startswith(prefixes)]
    for n, p in trainer.model.named_parameters():
        if n.startswith(prefixes):
            p.requires_grad = False
    trainer.freeze_layer_names = list(trainer.freeze_layer_names) + list(prefixes)
    return names


def train_imgsz(imgsz: int, model) -> int:
    """The image size Ultralytics' trainer trains ``model`` at when asked for ``imgsz``.

    The trainer rounds the size up with ``check_imgsz`` to a multiple of the model's largest stride, at
    least 32 (its grid size), and never below that grid size; the same call is made here (its own warning
    silenced: the caller says which setting was rounded).
    """
    import logging

    from ultralytics.utils import LOGGER
    from ultralytics.utils.checks import check_imgsz

    stride = getattr(model, "stride", None)
    grid = max(int(stride.max()) if isinstance(stride, torch.Tensor) else 32, 32)
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        return int(check_imgsz(int(imgsz), stride=grid, floor=grid, max_dim=1))
    finally:
        LOGGER.setLevel(level)


# --------------------------------------------------------------------------------------------
# Newer bases (YOLOv8, YOLO11, YOLO12, YOLO26): block options Ultralytics sets per scale, the Detect head layout
# (yolo_attn/modules/c2f.py and area.py, yolo_attn/transfer.py)
# --------------------------------------------------------------------------------------------
_C3K_SCALES = frozenset({"m", "l", "x"})  # scales at which parse_model builds C3k2 with c3k=True
_A2_RESIDUAL_SCALES = frozenset({"l", "x"})  # scales at which parse_model builds A2C2f with residual=True, mlp_ratio=1.2


def _set_parse_local(name: str, value) -> None:
    """Write one local variable of the running ``parse_model`` (see :func:`_set_output_channels`)."""
    write_frame_local(_parse_frame(), name, value)


def _set_block_option(spec: LayerSpec, pos: list, kw: dict, name: str, value) -> tuple[list, dict]:
    """Set constructor option ``name`` of a block: in ``pos`` (which starts at c2) when given there, else as a keyword."""
    import inspect

    at = list(inspect.signature(spec.cls).parameters).index(name) - 1  # c1 is not in pos
    if len(pos) > at:
        return [*pos[:at], value, *pos[at + 1 :]], kw
    return pos, {**kw, name: value}


def scale_block_options(spec: LayerSpec, pos: list, kw: dict, loc: dict[str, Any]) -> tuple[list, dict]:
    """Options that Ultralytics' ``parse_model`` sets for a ``C3k2`` or ``A2C2f`` row, applied to a yolo_attn block
    derived from it.

    For ``C3k2`` Ultralytics (a) switches its ``c3k`` units on at the m/l/x scales and (b) clears the
    ``legacy`` flag that later selects YOLO11's (not YOLOv8's) Detect head. For YOLO12's ``A2C2f`` it clears
    ``legacy`` too and, at the l/x scales, turns on the scaled residual with an MLP ratio of 1.2. A block
    subclassing either gets the same, so a YOLO11 whose every C3k2 is replaced still has YOLO11's head.
    ``pos`` are the constructor arguments after ``c1`` (``[c2, n, ...]``).
    """
    from ultralytics.nn.modules.block import A2C2f, C3k2

    if not (isinstance(spec.cls, type) and issubclass(spec.cls, (C3k2, A2C2f))):
        return pos, kw
    if "legacy" in loc:  # Ultralytics versions whose Detect has a legacy (YOLOv8) and a YOLO11 form
        _set_parse_local("legacy", False)
    if issubclass(spec.cls, A2C2f):
        if loc.get("scale") in _A2_RESIDUAL_SCALES:
            pos, kw = _set_block_option(spec, pos, kw, "residual", True)
            pos, kw = _set_block_option(spec, pos, kw, "mlp_ratio", 1.2)
    elif loc.get("scale") in _C3K_SCALES:
        pos, kw = _set_block_option(spec, pos, kw, "c3k", True)
    return pos, kw


_CLASS_BRANCHES = ("cv3", "one2one_cv3")  # Detect's class branches (one2one_*: the end-to-end heads)


def detect_class_branches(head: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """``[(attribute, ModuleList)]`` of a Detect head's class branches: one ``nn.Sequential`` per input level,
    whose last child is the class-count dependent ``nn.Conv2d`` (YOLOv5u/v8: ``Conv, Conv, Conv2d``; YOLO11:
    ``(DWConv, Conv), (DWConv, Conv), Conv2d``)."""
    out = []
    for attr in _CLASS_BRANCHES:
        branch = getattr(head, attr, None)
        if isinstance(branch, nn.ModuleList):
            out.append((attr, branch))
    return out


# --------------------------------------------------------------------------------------------
# The detection head of a built model (see yolo_attn/diagnose/).
# --------------------------------------------------------------------------------------------
def detection_head(model) -> tuple[nn.Module, list[int], list[float]] | None:
    """``(head, input layer indices, strides)`` of a built Ultralytics detection model, or None if it has none.

    The head is the last layer of ``model.model``; its ``f`` lists the layers feeding it (P3, P4, P5) and
    ``stride`` their strides in input pixels, as Ultralytics sets them when it builds the model.
    """
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not len(layers):
        return None
    head = layers[-1]
    stride = getattr(head, "stride", None)
    if "Detect" not in type(head).__name__ or stride is None or not hasattr(head, "nc"):
        return None
    f = head.f if isinstance(head.f, (list, tuple)) else [head.f]
    return head, [int(i) for i in f], [float(s) for s in torch.as_tensor(stride).reshape(-1)]


_LOSS_NAMES = ("box_loss", "cls_loss", "dfl_loss")


def detection_loss(model, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float] | None:
    """Ultralytics' own training loss items of ``model`` on the batch ``images`` (None if the model has no loss).

    ``targets`` rows are ``(image index, class, xc, yc, w, h)`` normalised to the input images. The loss'
    gains (``box``, ``cls``, ``dfl``) come from the model's stored training arguments (Ultralytics' defaults
    if it has none). The model's ``args`` and ``criterion`` are restored afterwards; no gradient is kept.
    """
    if not callable(getattr(model, "loss", None)):
        return None
    from ultralytics.cfg import get_cfg

    had_args = hasattr(model, "args")
    saved_args, saved_criterion = getattr(model, "args", None), getattr(model, "criterion", None)
    gains = {k: v for k, v in (saved_args or {}).items() if k in ("box", "cls", "dfl")} if isinstance(saved_args, dict) else {}
    batch = {"img": images, "batch_idx": targets[:, 0], "cls": targets[:, 1:2], "bboxes": targets[:, 2:6]}
    try:
        model.args = get_cfg(overrides=gains) if saved_args is None or isinstance(saved_args, dict) else saved_args
        model.criterion = None
        with torch.no_grad():
            _total, items = model.loss(batch)
    finally:
        model.criterion = saved_criterion
        if had_args:
            model.args = saved_args
        else:
            del model.args
    if isinstance(items, dict):
        return {k: float(v) for k, v in items.items()}
    return {k: float(v) for k, v in zip(_LOSS_NAMES, torch.as_tensor(items).reshape(-1))}


# --------------------------------------------------------------------------------------------
# Seeded construction and the epoch-0 validation of a training run (the pretrained path of yolo_attn.train)
# --------------------------------------------------------------------------------------------
def _running_parse_locals() -> dict[str, Any] | None:
    """Locals of the innermost running ``parse_model``, or None outside one."""
    try:
        return _parse_frame().f_locals
    except RuntimeError:
        return None


def layer_roles(d: dict) -> list[str]:
    """A role per row of model dict ``d``: module name, YAML arguments and the count of earlier rows with both equal.

    The role says which rows correspond across two models without depending on row positions: a stock
    ``Detect`` row has the same role in a model with inserted attention layers, and the k-th inserted
    ``SE [16]`` the same role in every model holding one.
    """
    import json

    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    seen: dict[str, int] = {}
    roles = []
    for row in rows:
        key = f"{row[2]}:{json.dumps(row[3], sort_keys=True, default=str)}"
        roles.append(f"{key}#{seen.get(key, 0)}")
        seen[key] = seen.get(key, 0) + 1
    return roles


def layer_seed(seed: int, role: str) -> int:
    """The generator seed of one layer role under run seed ``seed`` (63 bits of SHA-256 of both)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{int(seed)}|{role}".encode()).digest()[:8], "little") >> 1


class seeded_layers:  # noqa: N801 - used as a context manager, like torch.no_grad
    """Inside, every layer ``parse_model`` builds draws its initial values from its own seed, ``layer_seed(seed, role)``.

    The global torch generator is re-seeded when the first parameter of a new row is registered (torch's
    parameter-registration hook, before the layer's constructor initialises it), so each layer's random
    start depends only on the run seed and the layer's role (:func:`layer_roles`), not on the layers built
    before it: the same stock layers and the same head start alike in every model of one seed, whatever
    attention layers precede them. The CPU generator's state is restored on exit. A layer that draws random
    numbers before registering its first parameter draws those from the previous layer's stream.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._row: tuple[int, int] | None = None
        self._roles: dict[int, list[str]] = {}

    def _hook(self, module, name, param):
        loc = _running_parse_locals()
        if loc is None or not isinstance(loc.get("i"), int) or not isinstance(loc.get("d"), dict):
            return None
        d, i = loc["d"], loc["i"]
        roles = self._roles.setdefault(id(d), layer_roles(d))
        if self._row != (id(d), i) and i < len(roles):
            self._row = (id(d), i)
            torch.manual_seed(layer_seed(self.seed, roles[i]))
        return None

    def __enter__(self):
        self._rng = torch.random.get_rng_state()
        self._handle = nn.modules.module.register_module_parameter_registration_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        torch.random.set_rng_state(self._rng)
        return False


def validate_before_training(trainer) -> dict[str, float]:
    """Ultralytics' own per-epoch validation of ``trainer``'s model before its first training step.

    Call it from ``on_pretrain_routine_end`` (the EMA copy then equals the model). It runs the same
    validator and data loader as the validation after each epoch, so the numbers are comparable with
    ``results.csv``; the trainer's best fitness is left as it was (epoch 0 never becomes ``best.pt``).
    """
    names = tuple(getattr(trainer, "loss_names", None) or ())
    if not names:  # set by Ultralytics from the first training batch's loss; before it, from the model's criterion
        from ultralytics.utils.torch_utils import unwrap_model

        model = unwrap_model(trainer.model)
        names = tuple((getattr(model, "criterion", None) or model.init_criterion()).loss_names)
    had_epoch, best, loss = hasattr(trainer, "epoch"), trainer.best_fitness, getattr(trainer, "loss", None)
    trainer.loss_items = {k: torch.zeros((), device=trainer.device) for k in names}
    trainer.loss = torch.zeros((), device=trainer.device)  # validate() reads it as a fallback fitness
    trainer.epoch = trainer.start_epoch - 1
    try:
        metrics, _fitness = trainer.validate()
    finally:
        trainer.best_fitness, trainer.loss_items, trainer.loss = best, None, loss
        if not had_epoch:
            del trainer.epoch
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) or hasattr(v, "item")}


# --------------------------------------------------------------------------------------------
# The optimizer a training run uses (optimizer=auto resolves by the number of iterations)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerChoice:
    """The optimizer a run trains with: its class name, base learning rate and momentum; MuSGD's mixing factors."""

    name: str
    lr: float
    momentum: float | None
    muon: float | None = None  # MuSGD: weight of the Muon (orthogonalised) update
    sgd: float | None = None  # MuSGD: weight of the SGD update

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def optimizer_choice(optimizer: torch.optim.Optimizer) -> OptimizerChoice:
    """What Ultralytics' ``build_optimizer`` built: the lowest group learning rate is the base one (MuSGD boosts the
    class branches' groups)."""
    groups = optimizer.param_groups
    first = groups[0]
    momentum = first.get("momentum", (first.get("betas") or (None,))[0])
    muon, sgd = getattr(optimizer, "muon", None), getattr(optimizer, "sgd", None)
    return OptimizerChoice(type(optimizer).__name__, float(min(g["lr"] for g in groups)),
                           None if momentum is None else float(momentum),
                           None if muon is None else float(muon), None if sgd is None else float(sgd))


def train_iterations(n_images: int, batch: int, nbs: int, epochs: int) -> int:
    """The iteration count Ultralytics' trainer gives ``build_optimizer`` (what ``optimizer=auto`` decides by)."""
    return math.ceil(n_images / max(batch, nbs)) * epochs


def resolve_optimizer(name: str, lr0: float, momentum: float, nc: int, iterations: int) -> OptimizerChoice:
    """The optimizer Ultralytics' own ``build_optimizer`` picks for these settings (``auto`` included), built for a
    one-convolution stand-in model so that nothing is trained or loaded."""
    from types import SimpleNamespace

    from ultralytics.engine.trainer import BaseTrainer

    class _StandIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Conv2d(1, 1, 1))

    args = SimpleNamespace(optimizer=name, lr0=lr0, momentum=momentum, warmup_bias_lr=0.0)
    host = SimpleNamespace(args=args, data={"nc": nc})
    import logging

    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its choice is logged at INFO; the caller reports it
    try:
        opt = BaseTrainer.build_optimizer(host, _StandIn(), name=name, lr=lr0, momentum=momentum, iterations=iterations)
    finally:
        logger.setLevel(level)
    return optimizer_choice(opt)


def end_to_end_val_args(model) -> dict[str, Any]:
    """Validation arguments that make Ultralytics score an end-to-end head (YOLO26's one-to-one branch) NMS-free.

    Newer Ultralytics versions apply NMS to the one-to-many branch unless ``nms=False``; 8.4.0 reads ``nms`` as an
    export option (default False) and validates an end-to-end head NMS-free. ``{}`` for any other head.
    """
    net = getattr(model, "model", model)  # a YOLO wrapper or the DetectionModel
    head = net.model[-1] if isinstance(getattr(net, "model", None), nn.Sequential) else None
    return {"nms": False} if getattr(head, "one2one_cv2", None) is not None else {}


class PredictionLog:
    """The predictions of a validator's latest pass, image by image, held in memory (no ``save_txt`` files).

    ``images[im_file]`` is an ``(n, 6)`` float array ``x1 y1 x2 y2 conf cls`` in pixels of the original
    image: the boxes Ultralytics' validator scored, scaled back by the validator itself (``scale_preds``,
    what ``save_txt`` and ``save_json`` write). ``passes`` counts the validation passes seen.
    """

    def __init__(self):
        self.images: dict[str, Any] = {}
        self.passes = 0


def record_predictions(validator) -> PredictionLog:
    """Make ``validator`` keep each pass's predictions in a :class:`PredictionLog` (the latest pass only).

    Wraps two methods of this validator object: ``init_metrics`` (a pass starts: the log empties) and
    ``update_metrics`` (after Ultralytics scored a batch, its predictions are copied, scaled to each
    original image). Costs a few milliseconds per pass.
    """
    log = PredictionLog()
    init_metrics, update_metrics = validator.init_metrics, validator.update_metrics

    def init(model):
        init_metrics(model)
        log.images, log.passes = {}, log.passes + 1

    def update(preds, batch):
        update_metrics(preds, batch)  # Ultralytics' own scoring first (it may set classes to 0: single_cls)
        for si, pred in enumerate(preds):
            pbatch = validator._prepare_batch(si, batch)
            boxes = validator.scale_preds(pred, pbatch)["bboxes"] if len(pred["cls"]) else pred["bboxes"]
            rows = torch.cat([boxes.float(), pred["conf"].float()[:, None], pred["cls"].float()[:, None]], 1)
            log.images[str(pbatch["im_file"])] = rows.cpu().numpy().astype("float64")

    validator.init_metrics, validator.update_metrics = init, update
    return log


class final_eval_of:  # noqa: N801 - a context manager, like seeded_layers
    """Inside: Ultralytics' closing validation (``trainer.final_eval``) validates ``weights`` instead of ``best.pt``.

    ``final_eval`` strips the optimizer from ``last.pt`` and ``best.pt`` and validates ``trainer.best``;
    here ``trainer.best`` names ``weights`` for the call, and ``best.pt`` is stripped afterwards as
    Ultralytics would have.
    """

    def __init__(self, trainer, weights):
        self.trainer, self.weights = trainer, weights

    def __enter__(self):
        self.best = self.trainer.best
        self.trainer.best = type(self.best)(self.weights)
        return self

    def __exit__(self, *exc):
        from ultralytics.utils.torch_utils import strip_optimizer

        self.trainer.best = self.best
        if exc[0] is None and self.best.exists() and self.best.resolve() != type(self.best)(self.weights).resolve():
            strip_optimizer(self.best)
        return False


# --------------------------------------------------------------------------------------------
# Exported models (yolo-attn export-check; see yolo_attn/deploy/)
# --------------------------------------------------------------------------------------------
def exported_model(path, device: str = "cpu"):
    """Ultralytics' own runner of an exported model (any format ``YOLO(path)`` predicts with): ``runner(im)``
    takes a float BCHW tensor in [0, 1] and returns the raw head output, as Ultralytics' predictor sees it."""
    from ultralytics.nn.autobackend import AutoBackend

    return AutoBackend(str(path), device=torch.device(device), fuse=False, verbose=False)


def detections(pred: torch.Tensor, conf: float, iou: float, max_det: int = 300) -> list[torch.Tensor]:
    """Ultralytics' NMS of a raw detection output ``(B, 4 + nc, anchors)``: per image ``(n, 6)`` xyxy, conf, cls."""
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(pred, conf_thres=conf, iou_thres=iou, max_det=max_det)


# --------------------------------------------------------------------------------------------
# Importing this module registers every layer with Ultralytics; after ``import yolo_attn`` it is imported
# (through yolo_attn.modules) once Ultralytics is loaded (yolo_attn/_hooks.py). The families first: they fill the registry.
# --------------------------------------------------------------------------------------------
importlib.import_module(f"{__package__}.modules")

install()
