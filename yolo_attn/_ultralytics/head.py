"""The detection head of a built model and its loss (yolo_attn/diagnose/, yolo_attn/transfer.py)."""

from __future__ import annotations

import torch
from torch import nn

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
