"""The comparison arm of the transfer: Ultralytics' own name-and-shape load (``YOLO(yaml).load(pt)``), reported per layer."""

from __future__ import annotations

import time
from typing import Any

import torch

from .checkpoint import check_finite
from .heads import _class_output_keys, adopt_class_names
from .layers import _is_buffer, _module_type, _split_by_layer, _unwrap_model
from .read import as_checkpoint
from .report import LayerResult, TransferReport


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
    ckpt = as_checkpoint(source, trust)
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
        r = _layer_result(i, m, by_layer.get(i, {}), matched, types.get(i, ""))
        class_dependent += [f"model.{i}.{k}" for k, _ in r.skipped if f"model.{i}.{k}" in cls_keys]
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

    adopt_class_names(ckpt, net, class_count(head))
    report.seconds = time.perf_counter() - t0
    return report


def _layer_result(i: int, m, stensors: dict, matched: dict, source_type: str) -> LayerResult:
    """What the name-and-shape load did to target layer ``i`` (``m``), whose index holds ``stensors`` in the source."""
    prefix = f"model.{i}."
    r = LayerResult(i, i if stensors else None, _module_type(m), source_type, "")
    own = m.state_dict()
    for k, v in own.items():
        src = stensors.get(k)
        if prefix + k in matched:
            r.transferred.append(k)
        elif src is not None:
            r.skipped.append((k, f"shape {tuple(src.shape)} -> {tuple(v.shape)}"))
        else:
            r.new.append(k)
    r.skipped.extend((k, "source-only: no such tensor in the target layer") for k in stensors if k not in own)
    if not r.transferred and not r.new and not r.skipped:
        r.status = "no tensors"
    elif r.transferred and not r.new and len(r.transferred) == len(stensors):
        r.status = "transferred"
    elif r.transferred:
        r.status = "partial"
    elif not own:
        r.status, r.note = "skipped", f"no tensors; the source's {len(stensors)} tensors of this index have no place here"
    else:
        r.status = "new" if not stensors else "skipped"
        r.note = "no tensor of this name and shape in the source; keeps its initialisation"
    return r
