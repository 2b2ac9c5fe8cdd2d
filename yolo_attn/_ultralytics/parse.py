"""Parse-time hooks: the YAML entry class of each registered layer, and the wrapper of ``parse_model``.

Ultralytics resolves a model-YAML layer name with ``globals()[name]`` inside ``ultralytics.nn.tasks.parse_model``
and calls a class it does not know with the YAML arguments only. An entry class reads the row being built (input
channels; for ``block`` layers the width and depth multiples) from the running ``parse_model`` frame and returns the
real registered layer; for ``block`` layers it writes their output channels back."""

from __future__ import annotations

import functools
from typing import Any

from torch import nn
from ultralytics.utils.ops import make_divisible

from ..registry import LAYERS, LayerSpec, split_options
from ._core import _ORIGINAL_PARSE_MODEL, _REPEATS_KEY, YamlLayerError
from .frames import _parse_locals, _set_output_channels, _set_parse_local
from .yaml_checks import _check_rows


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
        pos, kw = scale_block_options(spec, pos, kw, loc)  # C3k2-style blocks (see scale_block_options)
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
        if not _known_config(d):
            _check_size(d, ch)
        return _ORIGINAL_PARSE_MODEL(d, ch, verbose=verbose)
    except YamlLayerError:
        raise
    except (TypeError, IndexError, KeyError, ValueError, ZeroDivisionError, AttributeError, AssertionError) as exc:
        # a row the name/structure check let through but Ultralytics' own layer handling rejects
        raise YamlLayerError(f"{_failed_row(d, exc)}: Ultralytics cannot build this row ({type(exc).__name__}: {exc})") from exc
    finally:
        d.pop(_REPEATS_KEY, None)


# The most parameters (and buffers) a model YAML may ask for: ten times YOLO26x, 2.4 GB in float32; and the widest
# layer: activations grow with channels x pixels (YOLO's widest layers have 1280 channels). A row such as
# [-1, 1, Conv, [1000000]] or an attention option of 1e5 would otherwise allocate until the machine gives out.
MAX_MODEL_ELEMENTS = 600_000_000
MAX_LAYER_WIDTH = 16384


def _known_config(d: dict) -> bool:
    """Whether ``d`` was read from a shipped config or one of Ultralytics' own model YAMLs (sizes known)."""
    from pathlib import Path

    import ultralytics

    from ..configs import config_dir, scale_free_name
    from .config_lookup import check_yaml

    name = str(d.get("yaml_file") or "")
    try:  # the file Ultralytics read for that name: a bare name is looked up as yaml_model_load looks it up
        found = name if Path(name).parent != Path(".") else next(
            (f for n in (scale_free_name(name), name) if (f := check_yaml(n, hard=False))), None)
        path = Path(str(found)).resolve() if found else None
    except Exception:  # Ultralytics' lookup asserts on names that are no YAML file (a checkpoint's rebuilt model)
        return False
    roots = (config_dir().resolve(), Path(ultralytics.__file__).resolve().parent / "cfg" / "models")
    return path is not None and path.is_file() and any(path.is_relative_to(r) for r in roots)


def _width(module: nn.Module) -> int:
    """The most channels (or features) any convolution or linear layer inside ``module`` takes or gives."""
    widths = [max(getattr(m, "in_channels", 0), getattr(m, "out_channels", 0), getattr(m, "in_features", 0),
                  getattr(m, "out_features", 0)) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return max(widths, default=0)


def _check_size(d: dict, ch) -> None:
    """Build the rows on torch's meta device (shapes only, no memory) and refuse a model over MAX_MODEL_ELEMENTS or
    with a layer wider than MAX_LAYER_WIDTH, naming the row, before the real build allocates anything."""
    import copy

    import torch

    with torch.device("meta"):
        model, _ = _ORIGINAL_PARSE_MODEL(copy.deepcopy(d), ch, verbose=False)
    sizes = [sum(t.numel() for t in (*m.parameters(), *m.buffers())) for m in model]
    widths = [_width(m) for m in model]
    if sum(sizes) <= MAX_MODEL_ELEMENTS and max(widths, default=0) <= MAX_LAYER_WIDTH:
        return
    i = max(range(len(sizes)), key=lambda k: (widths[k] > MAX_LAYER_WIDTH, sizes[k]))
    label = _row_label({"d": d, "i": i}, str(getattr(model[i], "type", "?")))
    raise YamlLayerError(f"{label}: the model would hold {sum(sizes):,} parameters ({sizes[i]:,} in this row, layers "
                         f"{widths[i]:,} channels wide), more than yolo_attn builds ({MAX_MODEL_ELEMENTS:,} parameters, "
                         f"{MAX_LAYER_WIDTH:,} channels; YOLO26x has 59 million and 1280): check the row's channels "
                         "and options")


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


# Newer bases (YOLOv8, YOLO11, YOLO12, YOLO26): the block options Ultralytics sets per scale, applied to the
# yolo_attn blocks derived from its C3k2 and A2C2f (yolo_attn/modules/c2f.py and area.py)
_C3K_SCALES = frozenset({"m", "l", "x"})  # scales at which parse_model builds C3k2 with c3k=True
_A2_RESIDUAL_SCALES = frozenset({"l", "x"})  # scales at which parse_model builds A2C2f with residual=True, mlp_ratio=1.2


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
