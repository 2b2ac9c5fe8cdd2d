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

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .align import _alignment, _compatible, _graph_problem
from .checkpoint import Checkpoint, check_finite
from .heads import _TASK_HEADS, _adapt_class_branch, _class_output_keys, adopt_class_names
from .layers import _Layer, _is_buffer, _source_layers, _split_by_layer, _target_layers, _unwrap_model
from .read import as_checkpoint
from .report import LayerResult, TransferReport


class ForeignCheckpointError(ValueError):
    """The source checkpoint matches too little of the target (another architecture or scale)."""


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
    ckpt = as_checkpoint(source, trust)
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
    adopt_class_names(ckpt, net, x.tgt_nc)
    report.seconds = time.perf_counter() - t0
    _check_fraction(report, min_fraction, allow_foreign)
    if verbose:
        from ultralytics.utils import LOGGER

        LOGGER.info(report.table())
    return report


def _check_fraction(report: TransferReport, min_fraction: float, allow_foreign: bool) -> None:
    """:class:`ForeignCheckpointError` when less than ``min_fraction`` of the source fits (a warning with ``allow_foreign``)."""
    if report.fraction >= min_fraction:
        return
    if not allow_foreign:
        raise ForeignCheckpointError(
            f"{report.source}: only {report.tensors} of {report.source_tensors} source tensors fit the target model "
            "(another architecture or scale?). Pass allow_foreign=True / --allow-foreign to transfer them anyway.\n"
            + report.table()
        )
    report.warnings.append(f"foreign source: only {report.fraction:.0%} of its tensors transferred (allowed)")
