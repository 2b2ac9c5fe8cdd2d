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
import sys
from typing import Any

import torch
from torch import nn

from .registry import LAYERS, LayerSpec

try:  # Ultralytics is a hard dependency; fail with a clear message if it is missing or too old.
    import ultralytics
    from ultralytics.nn import tasks as _tasks
    from ultralytics.utils.ops import make_divisible
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError("yolo_attn needs the 'ultralytics' package: pip install 'ultralytics>=8.3,<8.5'") from exc

ULTRALYTICS_VERSION = ultralytics.__version__
_ORIGINAL_PARSE_MODEL = getattr(_tasks.parse_model, "__wrapped__", _tasks.parse_model)
_ORIGINAL_SAFE_LOAD = getattr(_tasks.torch_safe_load, "__wrapped__", _tasks.torch_safe_load)
_REPEATS_KEY = "_yolo_attn_repeats"  # {row index: YAML repeat count} for block rows, set by the parse wrapper
# names Ultralytics resolves before yolo_attn adds any (entries of an earlier import of this module excluded)
_ULTRALYTICS_NAMES = frozenset(k for k, v in vars(_tasks).items() if getattr(v, "yolo_attn_spec", None) is None)
# local variables of parse_model that this bridge reads (and, for ``c2``, writes); tests/test_bridge.py checks them
PARSE_MODEL_LOCALS = ("ch", "f", "i", "d", "c2", "width", "depth", "max_channels")


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
    if sys.version_info >= (3, 13):  # PEP 667: f_locals is a write-through proxy
        frame.f_locals["c2"] = c2
    else:  # the documented pre-3.13 way debuggers write a local back into a running frame
        frame.f_locals["c2"] = c2
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    if frame.f_locals.get("c2") != c2:  # pragma: no cover - only on an unsupported interpreter
        raise RuntimeError("yolo_attn could not set the output channels of a block layer in parse_model")


def _row_label(loc: dict[str, Any], name: str) -> str:
    d = loc.get("d") or {}
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    i = loc.get("i")
    row = list(rows[i]) if isinstance(i, int) and i < len(rows) else "?"
    repeats = d.get(_REPEATS_KEY) or {}
    if row != "?" and i in repeats:  # show the repeat count as written in the YAML
        row[1] = repeats[i]
    return f"{d.get('yaml_file', '<model dict>')}: layer {i} {row} ({name})"


def _split_args(args: tuple) -> tuple[list, dict]:
    """YAML args: positional values, optionally ending with a mapping of keyword options."""
    args = list(args)
    kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
    return args, dict(kwargs)


def _build_from_row(spec: LayerSpec, args: tuple) -> nn.Module:
    loc = _parse_locals()
    ch, f = loc["ch"], loc["f"]
    where = _row_label(loc, spec.name)
    if not isinstance(f, int):
        raise YamlLayerError(f"{where}: takes one input, but 'from' is {f!r}")
    pos, kw = _split_args(args)
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
def _resolvable(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith(("nn.", "torchvision.ops.")):
        return True
    return name in vars(_tasks)


def _check_rows(d: dict) -> None:
    source = d.get("yaml_file", "<model dict>")
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    if not rows:
        raise YamlLayerError(f"{source}: model YAML has no 'backbone'/'head' rows")
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise YamlLayerError(f"{source}: layer {i} {row!r}: a row must be [from, number, module, args]")
        f, n, name, args = row
        if not _resolvable(name):
            layers = [k for k, v in vars(_tasks).items() if k in _ULTRALYTICS_NAMES and isinstance(v, type) and issubclass(v, nn.Module)]
            raise YamlLayerError(f"{source}: layer {i} {list(row)}: {LAYERS.unknown_message(name, layers)}")
        if not isinstance(args, list):
            raise YamlLayerError(f"{source}: layer {i} {list(row)}: args must be a list, got {args!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise YamlLayerError(f"{source}: layer {i} {list(row)}: number must be a positive integer")
        if name in LAYERS and not _is_ultralytics_layer(name):
            if isinstance(f, bool) or not isinstance(f, int):
                raise YamlLayerError(
                    f"{source}: layer {i} {list(row)}: {name} takes one input, but 'from' is {f!r} "
                    "(use a single layer index such as -1)"
                )
            if not (-max(i, 1) <= f < max(i, 1)):
                raise YamlLayerError(f"{source}: layer {i} {list(row)}: 'from' index {f} does not name an earlier layer")


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
    finally:
        d.pop(_REPEATS_KEY, None)


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
# Model YAMLs shipped with yolo_attn, resolvable by name (owned by the configs issue; see
# yolo_attn/placement.py). Ultralytics' yaml_model_load calls ``check_yaml`` (the name imported into
# ultralytics.nn.tasks), which searches only Ultralytics' own cfg directory. The wrapper below keeps
# that behaviour and, only for a bare file name Ultralytics does not find, answers with the file of
# that name among yolo_attn's configs. yaml_model_load asks for 'yolov5s-cbam-neck.yaml' first and
# then for the scale-free 'yolov5-cbam-neck.yaml', so both spellings resolve.
# --------------------------------------------------------------------------------------------
_ORIGINAL_CHECK_YAML = getattr(_tasks.check_yaml, "__wrapped__", _tasks.check_yaml)


def config_dir():
    """Directory of yolo_attn's shipped model YAMLs.

    ``yolo_attn/cfg`` inside an installed wheel (``pyproject.toml`` maps the package ``yolo_attn.cfg`` to the
    source tree's ``models/yaml``), the source tree's ``models/yaml`` for a checkout or an editable install.
    """
    from pathlib import Path

    here = Path(__file__).resolve().parent
    return here / "cfg" if (here / "cfg").is_dir() else here.parent / "models" / "yaml"


def shipped_config(name) -> str | None:
    """Path of the shipped config called ``name`` (a bare file name not present in the cwd), else None."""
    import os

    name = str(name).strip()
    if not name or os.path.dirname(name) or os.path.exists(name):
        return None
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


def load_model_yaml(path) -> dict:
    """Ultralytics' ``yaml_model_load`` (name resolution, scale-free fallback), yolo_attn's configs included."""
    install_config_lookup()
    return _tasks.yaml_model_load(path)


def install_config_lookup() -> None:
    """Route ``ultralytics.nn.tasks.check_yaml`` through :func:`check_yaml` (idempotent)."""
    _tasks.check_yaml = check_yaml


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
# The detection head of a built model (owned by the diagnose issue; see yolo_attn/diagnose/).
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
