"""Weight transfer from stock (or any YOLO) checkpoints into attention models, matched by structure.

Ultralytics' ``model.load`` matches state-dict keys by name and shape, so a layer inserted into the
target shifts every later index: the layers after it stay random, and where shapes happen to agree a
tensor can land in the wrong layer. :func:`transfer_weights` instead

1. splits both state dicts by top-level layer (``model.{i}.<rest>``);
2. aligns source layers to target layers: either by an explicit index map (the JSON the placement
   generator writes beside a YAML, ``{"map": {"0": 0, ...}}``), or by a global sequence alignment
   (Needleman-Wunsch) of the two layer lists. Two layers may be paired only when they are of the same
   family (class name; a yolo_attn block counts as the Ultralytics block it derives from: ``C3Attn``/``C3FMM``
   as ``C3``, ``AttnC2f``/``FMMC2f`` as ``C2f``, ``AttnC3k2``/``FMMC3k2`` as ``C3k2``, ``AttnA2C2f`` as YOLO12's ``A2C2f``, whose
   area-attention tensors have no place in it and are reported, not copied; for bare state dicts without classes, when their tensor names agree, the attention
   sub-layers of the target aside). A pair scores 2
   plus the fraction of the source layer's tensors whose relative key and shape agree; leaving a
   target layer unpaired costs 0.5 for an inserted yolo_attn layer and 1.5 for anything else, leaving
   a source layer unpaired costs 1.5 (1 for a layer without tensors);
3. checks every pair against the from-graph: the pair's inputs, mapped through the alignment (and
   looking through inserted attention layers in the target), must be the same layers. A pair whose
   inputs differ transfers nothing;
4. within a pair, copies each tensor whose relative key exists on both sides with the same shape;
   a pair where any shared tensor differs in shape (class-dependent outputs aside) copies nothing
   (another scale or architecture), unless ``partial=True``.
   Attention parameters new in the target (``C3Attn``'s ``m.i.attn``, inserted layers) keep their
   initialisation. Nothing is copied anywhere else.

A different class count: when the Detect heads have the same input widths, the target's class
branch is rebuilt at the source's hidden width (as wide as the source was trained with), so that all
of it transfers except the class-dependent output convolutions, which keep their initialisation and
are reported. The anchor-based head of the original YOLOv5 repository has no counterpart in
Ultralytics' anchor-free Detect: it is reported as not transferable, backbone and neck transfer.

A source that matches too little (another architecture or scale) raises :class:`ForeignCheckpointError`
unless ``allow_foreign=True``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from .unpickle import Checkpoint, load_checkpoint
from ..registry import LAYERS

__all__ = [
    "ForeignCheckpointError",
    "NonFiniteWeightsError",
    "LayerResult",
    "TransferReport",
    "align_layers",
    "freeze_prefixes",
    "backbone_length",
    "load_by_name",
    "load_index_map",
    "transfer_weights",
    "translate_freeze",
]

_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "anchors", "anchor_grid", "stride")


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


class ForeignCheckpointError(ValueError):
    """The source checkpoint matches too little of the target (another architecture or scale)."""


# --------------------------------------------------------------------------------------------
# Layer views
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------
def _compatible(s: _Layer, t: _Layer) -> bool:
    if s.family is not None and t.family is not None:
        return s.family == t.family
    if not s.shapes and not t.shapes:
        return not (t.preserve and t.family is not None)  # a parameterless unknown layer is not an inserted one
    if not s.shapes or not t.shapes:
        return False
    # without classes, the layers must have the same tensor names (attention sub-layers of the target aside)
    return {k for k in s.shapes if not k.startswith(t.dropped)} == set(t.shapes) - t.attn_keys


def _pair_score(s: _Layer, t: _Layer) -> float:
    if not s.shapes:
        return 2.5 if not t.shapes else 2.0
    same = sum(1 for k, shp in s.shapes.items() if t.shapes.get(k) == shp)
    return 2.0 + same / len(s.shapes)


def _target_gap(t: _Layer) -> float:
    return 0.5 if t.preserve else (1.0 if not t.shapes else 1.5)


def _source_gap(s: _Layer) -> float:
    return 1.5 if s.shapes else 1.0


def align_layers(source: list[_Layer], target: list[_Layer]) -> dict[int, int]:
    """Global alignment of two layer sequences; returns {source index: target index} for paired layers."""
    n, m = len(source), len(target)
    neg = float("-inf")
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 1 = pair, 2 = source gap, 3 = target gap
    for i in range(1, n + 1):
        score[i][0], move[i][0] = score[i - 1][0] - _source_gap(source[i - 1]), 2
    for j in range(1, m + 1):
        score[0][j], move[0][j] = score[0][j - 1] - _target_gap(target[j - 1]), 3
    for i in range(1, n + 1):
        s = source[i - 1]
        for j in range(1, m + 1):
            t = target[j - 1]
            best, how = neg, 0
            if _compatible(s, t):
                best, how = score[i - 1][j - 1] + _pair_score(s, t), 1
            v = score[i - 1][j] - _source_gap(s)
            if v > best:
                best, how = v, 2
            v = score[i][j - 1] - _target_gap(t)
            if v > best:
                best, how = v, 3
            score[i][j], move[i][j] = best, how
    pairs: dict[int, int] = {}
    i, j = n, m
    while i > 0 or j > 0:
        how = move[i][j]
        if how == 1:
            pairs[source[i - 1].index] = target[j - 1].index
            i, j = i - 1, j - 1
        elif how == 2:
            i -= 1
        else:
            j -= 1
    return dict(sorted(pairs.items()))


def load_index_map(index_map: Any) -> dict[int, int]:
    """``{base index: target index}`` from a dict (``{"map": {...}}`` or a bare mapping) or a JSON file."""
    if isinstance(index_map, (str, Path)):
        path = Path(index_map)
        try:
            index_map = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable index map JSON ({exc})") from exc
    if isinstance(index_map, dict) and isinstance(index_map.get("map"), dict):
        index_map = index_map["map"]
    if not isinstance(index_map, dict):
        raise ValueError(f"index map must be a mapping of base index -> target index, got {type(index_map).__name__}")
    out = {}
    for k, v in index_map.items():
        if v is None:
            continue
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"index map entry {k!r}: {v!r} is not an integer pair") from None
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
@dataclass
class LayerResult:
    """What happened to one layer (a target layer, or a source layer with no counterpart)."""

    target: int | None
    source: int | None
    target_type: str
    source_type: str
    status: str  # transferred | partial | new | skipped | no tensors
    transferred: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "source": self.source,
            "target_type": self.target_type,
            "source_type": self.source_type,
            "status": self.status,
            "transferred": self.transferred,
            "new": self.new,
            "skipped": [list(s) for s in self.skipped],
            "note": self.note,
        }


@dataclass
class TransferReport:
    """Outcome of :func:`transfer_weights`. ``str(report)`` is the per-layer table plus the summary line."""

    source: str
    source_format: str
    layers: list[LayerResult]
    mapping: dict[int, int]  # source layer index -> target layer index (paired layers)
    source_tensors: int
    source_params: int
    target_tensors: int
    target_params: int
    tensors: int  # transferred tensors
    params: int  # transferred elements of learnable tensors
    class_dependent: list[str] = field(default_factory=list)  # target keys left at init because nc differs
    head_adapted: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    transferred_keys: dict[str, str] = field(default_factory=dict)  # target key -> source key
    method: str = "structure"  # structure (transfer_weights) | names (load_by_name: Ultralytics' name-and-shape matching)

    @property
    def new_keys(self) -> list[str]:
        return [f"model.{r.target}.{k}" for r in self.layers if r.target is not None for k in r.new]

    @property
    def fraction(self) -> float:
        return self.tensors / max(self.source_tensors, 1)

    def summary(self) -> str:
        return (
            f"Transferred {self.tensors}/{self.source_tensors} source tensors "
            f"({self.params:,}/{self.source_params:,} parameters) into {self.tensors}/{self.target_tensors} target "
            f"tensors ({self.params:,}/{self.target_params:,} parameters) from {Path(self.source).name} "
            f"[{self.source_format}]" + (" by name and shape (Ultralytics' matching)" if self.method == "names" else "")
        )

    def table(self, keys: bool = False) -> str:
        lines = [f"{'target':>6} {'source':>6}  {'layer':<22}{'status':<13}{'tensors':>9}  note"]
        for r in self.layers:
            tgt = "-" if r.target is None else str(r.target)
            src = "-" if r.source is None else str(r.source)
            name = (r.target_type or r.source_type).rsplit(".", 1)[-1]
            if r.source_type and r.target_type and r.source_type.rsplit(".", 1)[-1] != name:
                name = f"{r.source_type.rsplit('.', 1)[-1]}->{name}"
            total = len(r.transferred) + len(r.new) + len([s for s in r.skipped if not s[1].startswith("source-only")])
            count = f"{len(r.transferred)}/{total}" if total else "-"
            lines.append(f"{tgt:>6} {src:>6}  {name:<22}{r.status:<13}{count:>9}  {r.note}")
            if keys:
                lines.extend(f"{'':>16}new      {k}" for k in r.new)
                lines.extend(f"{'':>16}skipped  {k}: {why}" for k, why in r.skipped)
        lines.extend(f"warning: {w}" for w in self.warnings)
        lines.append(self.summary())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "source_format": self.source_format,
            "method": self.method,
            "mapping": {str(k): v for k, v in self.mapping.items()},
            "source_tensors": self.source_tensors,
            "source_params": self.source_params,
            "target_tensors": self.target_tensors,
            "target_params": self.target_params,
            "tensors": self.tensors,
            "params": self.params,
            "class_dependent": self.class_dependent,
            "head_adapted": self.head_adapted,
            "warnings": self.warnings,
            "summary": self.summary(),
            "layers": [r.as_dict() for r in self.layers],
        }


# --------------------------------------------------------------------------------------------
# Task heads (Detect, Segment, Pose, OBB, Classify): class- and keypoint-dependent outputs, branch widths
# --------------------------------------------------------------------------------------------
_TASK_HEADS = frozenset({"Detect", "Segment", "Pose", "OBB", "Segment26", "Pose26", "OBB26", "Classify"})


def _class_output_keys(head: nn.Module) -> dict[str, str]:
    """Relative key -> ``"classes"`` / ``"keypoints"`` of every output tensor set by the class count or keypoint shape."""
    from .._ultralytics.head import task_output_branches

    keys = {}
    for branch in task_output_branches(head):
        for name in branch.outputs:
            mod = head.get_submodule(name)
            keys |= {f"{name}.{p}": branch.depends for p, _ in mod.named_parameters(recurse=False)}
    return keys


def _resized_conv(mod: nn.Conv2d, src: tuple, first: bool, last: bool):
    """A conv of the class branch rebuilt at the source width: a new module, None (fits already), or False (cannot)."""
    tgt = tuple(mod.weight.shape)
    if first and src[1] != tgt[1]:
        return False  # different input widths: another neck, nothing to adapt
    out_c = tgt[0] if last else src[0]
    if mod.groups == 1:
        in_c, groups = src[1], 1
    elif mod.groups == mod.in_channels == mod.out_channels and src[1] == 1:
        in_c = groups = src[0]
        out_c = src[0]
    else:
        return False
    if (out_c, in_c // groups) == tgt[:2]:
        return None
    new = nn.Conv2d(in_c, out_c, mod.kernel_size, mod.stride, mod.padding, mod.dilation, groups, bias=mod.bias is not None)
    if last and mod.bias is not None:
        with torch.no_grad():
            new.bias.copy_(mod.bias)  # the target's class prior (bias_init) keeps its value
    return new


def _branch_chain(head: nn.Module, branch) -> list[tuple[str, nn.Module]]:
    """``[(name, conv or BN)]`` of one output branch in order (names relative to the head), its outputs last."""
    seq = head.get_submodule(branch.hidden) if branch.hidden else nn.Sequential()
    mods = [(f"{branch.hidden}.{n}", m) for n, m in seq.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    inside = {n for n, _ in mods}
    return mods + [(n, head.get_submodule(n)) for n in branch.outputs if n not in inside]


def _resized(mod: nn.Module, src: tuple, first: bool, last: bool):
    """``mod`` rebuilt at the source width: a new module, None (fits already), or False (cannot)."""
    if isinstance(mod, nn.BatchNorm2d):
        return None if src == tuple(mod.weight.shape) else nn.BatchNorm2d(src[0], eps=mod.eps, momentum=mod.momentum)
    if isinstance(mod, nn.Conv2d):
        return _resized_conv(mod, src, first, last)
    return None if src[1:] == tuple(mod.weight.shape)[1:] else False  # Classify's linear: fixed input width


def _class_branch_plan(head: nn.Module, src_shapes: dict[str, tuple]) -> list | None:
    """``[(name, new module, old module)]`` rebuilding the output branches at the source width; None if they cannot be."""
    from .._ultralytics.head import task_output_branches

    plan = []
    for branch in task_output_branches(head):
        mods = _branch_chain(head, branch)
        if not mods:
            return None
        for pos, (name, mod) in enumerate(mods):
            src = src_shapes.get(f"{name}.weight")
            if src is None:
                return None
            new = _resized(mod, src, pos == 0, name in branch.outputs)
            if new is False:
                return None
            if new is not None:
                plan.append((name, new, mod))
    return plan


def _adapt_class_branch(head: nn.Module, src_shapes: dict[str, tuple]) -> bool:
    """Rebuild the class branch of ``head`` at the source's hidden width. True if anything changed.

    Only when every conv/BN of the branch exists in the source, the branch inputs have the same width,
    and the output convolutions keep the target's class count.
    """
    plan = _class_branch_plan(head, src_shapes)
    for name, new, old in plan or []:
        parent = head.get_submodule(name.rpartition(".")[0])
        p = next(old.parameters(), None)
        if p is not None:
            new = new.to(device=p.device, dtype=p.dtype)
            for np_, op in zip(new.parameters(), old.parameters()):
                np_.requires_grad_(op.requires_grad)
        new.train(old.training)
        setattr(parent, name.rpartition(".")[2], new)
    return bool(plan)


def adapt_class_branch_to(model: nn.Module, state_dict: dict) -> bool:
    """Give ``model``'s Detect class branch the hidden width the checkpoint ``state_dict`` has. True if it changed.

    A transfer between class counts keeps the source's class-branch width (:func:`_adapt_class_branch`), so
    the model it writes cannot be rebuilt from its YAML alone: reading such a checkpoint back (safe loading,
    ``train model=X.pt``) applies the same rebuild before the weights are loaded.
    """
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not len(layers):
        return False
    prefix = f"model.{len(layers) - 1}."
    shapes = {k[len(prefix):]: tuple(v.shape) for k, v in state_dict.items() if k.startswith(prefix)}
    return bool(shapes) and _adapt_class_branch(layers[-1], shapes)


# --------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------
def _as_checkpoint(source: Any, trust: bool) -> Checkpoint:
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, (str, Path)):
        return load_checkpoint(source, trust=trust)
    if isinstance(source, nn.Module):
        from .unpickle import checkpoint_from_module

        return checkpoint_from_module(source)
    if isinstance(source, dict):
        from .unpickle import checkpoint_from_object

        return checkpoint_from_object(source)
    raise TypeError(f"source must be a path, Checkpoint, nn.Module or state dict, got {type(source).__name__}")


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


def _graph_problem(s: _Layer, t: _Layer, s2t: dict[int, int], target: list[_Layer], paired_t: set[int]) -> str:
    if s.inputs is None or t.inputs is None:
        return ""

    def resolve(ti: int) -> int:
        seen = 0
        while 0 <= ti < len(target) and ti not in paired_t and target[ti].preserve and target[ti].inputs and seen < 64:
            ti, seen = target[ti].inputs[0], seen + 1
        return ti

    want = [s2t.get(x, None) if x >= 0 else -1 for x in s.inputs]
    got = [resolve(x) if x >= 0 else -1 for x in t.inputs]
    if want != got:
        return f"inputs differ: source layer {s.index} reads {s.inputs} (-> target {want}), target reads {t.inputs}"
    return ""


@dataclass
class _Transfer:
    """The state one :func:`transfer_weights` call shares between its steps."""

    ckpt: Checkpoint
    net: nn.Module
    by_layer: dict[int, dict[str, torch.Tensor]]
    source: list[_Layer]
    target: list[_Layer]
    s2t: dict[int, int]
    explicit_map: bool
    check_graph: bool
    adapt_head: bool
    partial: bool
    tgt_sd: dict[str, torch.Tensor] = field(default_factory=dict)
    copied: dict[str, str] = field(default_factory=dict)  # target key -> source key
    class_dependent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    head_adapted: bool = False

    def __post_init__(self):
        self.t2s = {v: k for k, v in self.s2t.items()}
        self.paired_t = set(self.t2s)
        self.tgt_sd = self.net.state_dict()
        self.src_nc = self.ckpt.nc
        from .._ultralytics.head import class_count

        self.tgt_nc = class_count(self.net.model[-1])


def _alignment(source: list[_Layer], target: list[_Layer], index_map: Any) -> dict[int, int]:
    """{source index: target index}: the explicit index map (checked for range) or the sequence alignment."""
    if index_map is None:
        return align_layers(source, target)
    s2t = load_index_map(index_map)
    bad = {k: v for k, v in s2t.items() if not (0 <= k < max(len(source), 1) and 0 <= v < len(target))}
    if bad:
        raise ValueError(f"index map entries out of range (source has {len(source)} layers, target {len(target)}): {bad}")
    return s2t


def _pair_problem(x: _Transfer, s: _Layer, t: _Layer) -> str:
    if x.explicit_map and not _compatible(s, t):
        return f"index map pairs {s.short} with {t.short}"
    if x.check_graph:
        return _graph_problem(s, t, x.s2t, x.target, x.paired_t)
    return ""


def _head_class_keys(x: _Transfer, t: _Layer, s: _Layer, anchor_head: bool) -> dict[str, str]:
    """Class- and keypoint-dependent keys of a task head target (Detect, Segment, Pose, OBB, Classify), its output
    branches first rebuilt at the source width if allowed."""
    if t.family not in _TASK_HEADS or anchor_head:
        return {}
    tm = x.net.model[t.index]
    if x.adapt_head and _adapt_class_branch(tm, s.shapes):
        x.head_adapted = True
        x.tgt_sd = x.net.state_dict()
        t.shapes = {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    return _class_output_keys(tm)


def _copy_tensors(x: _Transfer, r: LayerResult, t: _Layer, si: int, stensors: dict, cls_keys: dict[str, str]) -> None:
    """Copy every tensor of the pair whose key and shape agree; record the others in ``r``."""
    prefix = f"model.{t.index}."
    for k, shp in t.shapes.items():
        src = stensors.get(k)
        if src is None:
            r.new.append(k)
        elif tuple(src.shape) != shp:
            if cls_keys.get(k) == "keypoints":
                why = f"keypoint-dependent output, {src.shape[0]} -> {shp[0]} values"
                x.class_dependent.append(prefix + k)
            elif k in cls_keys:
                why = f"class-dependent output, nc {x.src_nc if x.src_nc is not None else src.shape[0]} -> {x.tgt_nc}"
                x.class_dependent.append(prefix + k)
            else:
                why = f"shape {tuple(src.shape)} -> {shp}"
            r.skipped.append((k, why))
        else:
            with torch.no_grad():
                x.tgt_sd[prefix + k].copy_(src)
            r.transferred.append(k)
            x.copied[prefix + k] = f"model.{si}.{k}"
    for k in stensors:
        if k not in t.shapes:
            r.skipped.append((k, "source-only: no such tensor in the target layer"))


def _describe(x: _Transfer, r: LayerResult, t: _Layer, stensors: dict, anchor_head: bool) -> None:
    """Set the note and status of a paired layer from what was copied."""
    prefix = f"model.{t.index}."
    if anchor_head:
        r.note = "anchor-based YOLOv5 head (models.yolo.Detect) is not transferable to the anchor-free Detect; keeps init"
    elif r.new and all(k in t.attn_keys for k in r.new):
        r.note = f"{len(r.new)} attention tensors keep their initialisation"
    elif r.new:
        r.note = f"{len(r.new)} tensors not in the source layer keep their initialisation"
    nclass = sum(1 for k, why in r.skipped if prefix + k in x.class_dependent and why.startswith("class"))
    if nclass:
        r.note = (r.note + "; " if r.note else "") + f"{nclass} class-dependent output tensors keep init (nc {x.src_nc} -> {x.tgt_nc})"
    nkpt = sum(1 for k, why in r.skipped if prefix + k in x.class_dependent and why.startswith("keypoint"))
    if nkpt:
        r.note = (r.note + "; " if r.note else "") + f"{nkpt} keypoint-dependent output tensors keep init (another kpt_shape)"
    mism = [k for k, why in r.skipped if why.startswith("shape")]
    if mism:
        r.note = (r.note + "; " if r.note else "") + f"{len(mism)} shape mismatches"
    if x.head_adapted and t.family in _TASK_HEADS:
        r.note = (r.note + "; " if r.note else "") + "class branch rebuilt at the source width"
    if not t.shapes and not stensors:
        r.status = "no tensors"
    elif r.transferred and not r.new and not any(not why.startswith("source-only") for _, why in r.skipped) and len(r.transferred) == len(stensors):
        r.status = "transferred"
    elif r.transferred:
        r.status = "partial"
    else:
        r.status = "skipped"
        if not r.note:
            r.note = "nothing matches by key and shape"


def _transfer_layer(x: _Transfer, t: _Layer) -> LayerResult:
    """Transfer into one target layer from its paired source layer (if any); return what happened."""
    si = x.t2s.get(t.index)
    if si is None:
        note = "inserted, keeps its initialisation" if t.preserve else "no source layer, keeps its initialisation"
        status = "new" if t.shapes else "no tensors"
        return LayerResult(t.index, None, t.type, "", status, new=list(t.shapes), note=note if t.shapes else "inserted")
    s = x.source[si]
    stensors = x.by_layer.get(si, {})
    dropped = [k for k in stensors if t.dropped and k.startswith(t.dropped)]  # replaced by the target's attention
    stensors = {k: v for k, v in stensors.items() if k not in dropped}
    r = LayerResult(t.index, si, t.type, s.type, "")
    problem = _pair_problem(x, s, t)
    if problem:
        r.status, r.note = ("skipped", problem) if (t.shapes or s.shapes) else ("no tensors", problem)
        r.new = list(t.shapes)
        r.skipped = [(k, "source-only: " + problem) for k in stensors]
        x.warnings.append(f"layer {t.index}: {problem}")
        return r
    anchor_head = s.type.startswith("models.") and s.short == "Detect" or ("anchors" in stensors and "m.0.weight" in stensors)
    cls_keys = _head_class_keys(x, t, s, anchor_head)
    differ = [k for k, shp in t.shapes.items() if k in stensors and k not in cls_keys and tuple(stensors[k].shape) != shp]
    if differ and not x.partial:
        k = differ[0]
        why = f"shapes differ ({len(differ)} tensors, e.g. {k} {tuple(stensors[k].shape)} -> {t.shapes[k]}): another architecture or scale"
        r.status, r.note, r.new = "skipped", why, list(t.shapes)
        r.skipped = [(k, "source-only: " + why) for k in stensors]
        return r
    _copy_tensors(x, r, t, si, stensors, cls_keys)
    r.skipped.extend((k, "source-only: attention of the source block, replaced by the target's layer") for k in dropped)
    _describe(x, r, t, stensors, anchor_head)
    if dropped:
        r.note = (r.note + "; " if r.note else "") + f"{len(dropped)} tensors of the replaced attention not transferred"
    return r


def _report(x: _Transfer, results: list[LayerResult], other_keys: list[str]) -> TransferReport:
    """The report of a finished transfer: per-layer results (source layers without a target added) and totals."""
    for s in x.source:  # source layers without a target
        if s.index not in x.s2t and s.shapes:
            skipped = [(k, "source-only: no target layer") for k in s.shapes]
            results.append(LayerResult(None, s.index, "", s.type, "skipped", skipped=skipped, note="no counterpart in the target"))
    if other_keys:
        x.warnings.append(f"{len(other_keys)} source tensors outside model.<i>. were ignored (e.g. {other_keys[0]})")
    src_sd, net, tgt_sd = x.ckpt.state_dict, x.net, x.tgt_sd
    tgt_param_names = {n for n, _ in net.named_parameters()}
    return TransferReport(
        source=str(x.ckpt.path),
        source_format=x.ckpt.format,
        layers=sorted(results, key=lambda r: (r.target if r.target is not None else 10**6, r.source or 0)),
        mapping=dict(x.s2t),
        source_tensors=len(src_sd),
        source_params=sum(v.numel() for k, v in src_sd.items() if v.is_floating_point() and not _is_buffer(k, x.ckpt)),
        target_tensors=len(tgt_sd),
        target_params=sum(p.numel() for p in net.parameters()),
        tensors=len(x.copied),
        params=sum(tgt_sd[k].numel() for k in x.copied if k in tgt_param_names),
        class_dependent=x.class_dependent,
        head_adapted=x.head_adapted,
        warnings=x.warnings,
        transferred_keys=x.copied,
    )


def _adopt_class_names(ckpt: Checkpoint, net: nn.Module, tgt_nc) -> None:
    """Class names follow the weights when the class count is the same and the target has only default names."""
    if ckpt.names and ckpt.nc is not None and ckpt.nc == tgt_nc and len(ckpt.names) == tgt_nc:
        names = getattr(net, "names", None)
        if not names or names == {i: str(i) for i in range(tgt_nc)}:
            net.names = {int(k): v for k, v in ckpt.names.items()}


def transfer_weights(
    source: Any,
    model: Any,
    *,
    index_map: Any = None,
    allow_foreign: bool = False,
    trust: bool = False,
    adapt_head: bool = True,
    min_fraction: float = 0.5,
    check_graph: bool = True,
    partial: bool = False,
    verbose: bool = False,
) -> TransferReport:
    """Copy every tensor of ``source`` that fits into its structurally matching place in ``model``.

    Args:
        source: checkpoint path (Ultralytics ``.pt``, state dict ``.pt``/``.pth``/``.safetensors``,
            original-YOLOv5 ``.pt``), a :class:`~yolo_attn.weights.Checkpoint`, a model or a state dict.
        model: the target ``DetectionModel`` (or ``YOLO`` object); changed in place.
        index_map: optional ``{base index: target index}`` (dict, ``{"map": ...}`` dict, or JSON path)
            used instead of the alignment.
        allow_foreign: transfer what matches even when less than ``min_fraction`` of the source does.
        trust: read ``source`` with full unpickling (runs code in the file). Default: safe reading.
        adapt_head: on a class-count change, rebuild the target's class branch at the source width.
        min_fraction: fraction of source tensors that must transfer (else :class:`ForeignCheckpointError`).
        check_graph: refuse pairs whose inputs (from-graph) do not correspond.
        partial: within a paired layer, copy the tensors whose shapes agree even when others differ.
            Default False: a layer with any shape difference (class-dependent outputs aside) transfers
            nothing, since its remaining tensors (BN statistics of other filters...) would not fit.
        verbose: print the report through Ultralytics' LOGGER.

    Returns:
        A :class:`TransferReport`.

    Raises:
        NonFiniteWeightsError: a source tensor holds NaN or inf (checked before ``model`` is touched).
        ForeignCheckpointError: less than ``min_fraction`` of the source fits (unless ``allow_foreign``).
    """
    t0 = time.perf_counter()
    ckpt = _as_checkpoint(source, trust)
    check_finite(ckpt)
    net = _unwrap_model(model)
    by_layer, other_keys = _split_by_layer(ckpt.state_dict)
    source_layers = _source_layers(ckpt, by_layer)
    target_layers = _target_layers(net)
    x = _Transfer(
        ckpt, net, by_layer, source_layers, target_layers, _alignment(source_layers, target_layers, index_map),
        explicit_map=index_map is not None, check_graph=check_graph, adapt_head=adapt_head, partial=partial,
    )  # fmt: skip
    results = [_transfer_layer(x, t) for t in target_layers]
    report = _report(x, results, other_keys)
    _adopt_class_names(ckpt, net, x.tgt_nc)
    report.seconds = time.perf_counter() - t0
    if report.fraction < min_fraction and not allow_foreign:
        raise ForeignCheckpointError(
            f"{ckpt.path}: only {report.tensors} of {report.source_tensors} source tensors fit the target model "
            "(another architecture or scale?). Pass allow_foreign=True / --allow-foreign to transfer them anyway.\n"
            + report.table()
        )
    if report.fraction < min_fraction:
        report.warnings.append(f"foreign source: only {report.fraction:.0%} of its tensors transferred (allowed)")
    if verbose:
        from ultralytics.utils import LOGGER

        LOGGER.info(report.table())
    return report


def load_by_name(source: Any, model: Any, *, trust: bool = False) -> TransferReport:
    """Load ``source`` into ``model`` the way Ultralytics' ``YOLO(yaml).load(pt)`` does: by name and shape.

    The checkpoint is read by yolo_attn's safe reader (:func:`yolo_attn.weights.load_checkpoint`; no
    pickled code runs); the tensors to copy are chosen by Ultralytics' own ``intersect_dicts`` (a tensor is
    copied when a tensor of the same name and shape exists in ``model``), then loaded non-strictly. Nothing
    is aligned: after a layer inserted into the target every index is shifted, so those layers mostly keep
    their initialisation, and a tensor whose name and shape happen to agree lands in whatever layer now
    carries that index. This is the comparison arm for :func:`transfer_weights`; the report says per target
    layer what arrived (``method`` ``names``).
    """
    from .._ultralytics import intersect_dicts

    t0 = time.perf_counter()
    ckpt = _as_checkpoint(source, trust)
    check_finite(ckpt)
    net = _unwrap_model(model)
    own = net.state_dict()
    matched = intersect_dicts(ckpt.state_dict, own)
    with torch.no_grad():
        net.load_state_dict({k: v.to(own[k].dtype) for k, v in matched.items()}, strict=False)
    by_layer, _other = _split_by_layer(ckpt.state_dict)
    types = {li.index: li.type for li in (ckpt.layers or [])}
    head = net.model[-1]
    cls_keys = {f"model.{len(net.model) - 1}.{k}" for k in _class_output_keys(head)}
    results, class_dependent = [], []
    for i, m in enumerate(net.model):
        prefix, stensors = f"model.{i}.", by_layer.get(i, {})
        r = LayerResult(i, i if stensors else None, _module_type(m), types.get(i, ""), "")
        for k, v in m.state_dict().items():
            src = stensors.get(k)
            if prefix + k in matched:
                r.transferred.append(k)
            elif src is not None:
                r.skipped.append((k, f"shape {tuple(src.shape)} -> {tuple(v.shape)}"))
                if prefix + k in cls_keys:
                    class_dependent.append(prefix + k)
            else:
                r.new.append(k)
        r.skipped.extend((k, "source-only: no such tensor in the target layer") for k in stensors if k not in m.state_dict())
        if not r.transferred and not r.new and not r.skipped:
            r.status = "no tensors"
        elif r.transferred and not r.new and len(r.transferred) == len(stensors):
            r.status = "transferred"
        elif r.transferred:
            r.status = "partial"
        elif not m.state_dict():
            r.status, r.note = "skipped", f"no tensors; the source's {len(stensors)} tensors of this index have no place here"
        else:
            r.status = "new" if not stensors else "skipped"
            r.note = "no tensor of this name and shape in the source; keeps its initialisation"
        results.append(r)
    for si in sorted(set(by_layer) - set(range(len(net.model)))):
        results.append(LayerResult(None, si, "", types.get(si, ""), "skipped", note="no layer of this index in the target",
                                   skipped=[(k, "source-only: no target layer") for k in by_layer[si]]))
    tgt_param_names = {n for n, _ in net.named_parameters()}
    report = TransferReport(
        source=str(ckpt.path), source_format=ckpt.format, layers=results,
        mapping={r.target: r.target for r in results if r.target is not None and r.transferred},
        source_tensors=len(ckpt.state_dict),
        source_params=sum(v.numel() for k, v in ckpt.state_dict.items() if v.is_floating_point() and not _is_buffer(k, ckpt)),
        target_tensors=len(own), target_params=sum(p.numel() for p in net.parameters()), tensors=len(matched),
        params=sum(own[k].numel() for k in matched if k in tgt_param_names), class_dependent=class_dependent,
        transferred_keys={k: k for k in matched}, method="names",
    )  # fmt: skip
    from .._ultralytics.head import class_count

    _adopt_class_names(ckpt, net, class_count(head))
    report.seconds = time.perf_counter() - t0
    return report


# --------------------------------------------------------------------------------------------
# Freezing in base-model indices
# --------------------------------------------------------------------------------------------
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
