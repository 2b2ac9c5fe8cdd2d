"""The detection head of a built model and its loss (yolo_attn/diagnose/, yolo_attn/transfer.py); the task heads'
class- and keypoint-dependent outputs (yolo_attn/transfer.py)."""

from __future__ import annotations

from dataclasses import dataclass

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


def task_head(model) -> tuple[nn.Module, list[int], list[float]] | None:
    """:func:`detection_head` of any task's model: a detection-type head (Detect and the Segment, Pose and OBB heads
    built on it), or a classifier (``Classify``: its one input, whose stride is measured by a forward pass at 256
    pixels); None when the last layer is neither."""
    from ultralytics.nn.modules.head import Classify, Detect

    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, nn.Sequential) and len(layers) else None
    if isinstance(head, Detect) and getattr(head, "stride", None) is not None:
        f = head.f if isinstance(head.f, (list, tuple)) else [head.f]
        return head, [int(i) for i in f], [float(s) for s in torch.as_tensor(head.stride).reshape(-1)]
    if not isinstance(head, Classify):
        return detection_head(model)
    seen = {}

    def grab(_m, inp) -> None:  # returns nothing: the input goes on unchanged
        seen["shape"] = inp[0].shape

    hook = head.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, 256, 256, device=next(model.parameters()).device))
    finally:
        hook.remove()
    f = head.f if isinstance(head.f, (list, tuple)) else [head.f]
    return head, [int(i) for i in f], [256.0 / float(seen["shape"][-1])]


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


# The task heads' outputs whose channels are set by the class count or the keypoint shape, and the branches
# before them whose width follows (Detect's ``c3 = max(ch[0], min(nc, 100))``, Pose's ``c4 = max(ch[0] // 4, nk)``)
_KEYPOINT_BRANCHES = (("cv4", ("cv4_kpts", "cv4_sigma")), ("one2one_cv4", ("one2one_cv4_kpts", "one2one_cv4_sigma")))


@dataclass(frozen=True)
class OutputBranch:
    """One branch of a task head ending in outputs set by the class count or the keypoint shape.

    ``hidden``: name (relative to the head) of the ``nn.Sequential`` before the outputs, whose width may follow them
    ("" when there is none: Classify's ``linear`` reads a fixed width); ``outputs``: names of the output layers (the
    Sequential's own last ``nn.Conv2d``, or separate layers reading it: YOLO26 Pose's ``cv4_kpts``/``cv4_sigma``);
    ``depends``: ``"classes"`` or ``"keypoints"``.
    """

    hidden: str
    outputs: tuple[str, ...]
    depends: str


def _ends_in_conv(seq) -> bool:
    children = list(seq.children()) if isinstance(seq, nn.Sequential) else []
    return bool(children) and isinstance(children[-1], nn.Conv2d)


def task_output_branches(head: nn.Module) -> list[OutputBranch]:
    """The :class:`OutputBranch` es of a Detect, Segment, Pose or OBB head (YOLO26's too) or of Classify.

    Class outputs: Detect's class branches (``cv3``, ``one2one_cv3``), YOLO26 Segment's semantic-segmentation
    branch (``proto.semseg``), Classify's ``linear``; keypoint outputs: Pose's keypoint branches (``cv4``,
    ``one2one_cv4`` and, in YOLO26, their separate ``cv4_kpts``/``cv4_sigma`` layers). Segment's mask coefficients
    (``cv4``, 32 masks) and OBB's angle branch (``cv4``, one angle) have fixed widths and are not listed.
    """
    from ultralytics.nn.modules.head import Classify

    if isinstance(head, Classify):
        return [OutputBranch("", ("linear",), "classes")] if isinstance(head.linear, nn.Linear) else []
    out = []
    for attr, branch in detect_class_branches(head):
        for j, seq in enumerate(branch):
            if _ends_in_conv(seq):
                out.append(OutputBranch(f"{attr}.{j}", (f"{attr}.{j}.{len(seq) - 1}",), "classes"))
    semseg = getattr(getattr(head, "proto", None), "semseg", None)
    if _ends_in_conv(semseg):
        out.append(OutputBranch("proto.semseg", (f"proto.semseg.{len(semseg) - 1}",), "classes"))
    if hasattr(head, "kpt_shape"):
        for attr, separate in _KEYPOINT_BRANCHES:
            branch = getattr(head, attr, None)
            for j, seq in enumerate(branch if isinstance(branch, nn.ModuleList) else []):
                outs = tuple(f"{a}.{j}" for a in separate if isinstance(getattr(head, a, None), nn.ModuleList))
                outs = outs or ((f"{attr}.{j}.{len(seq) - 1}",) if _ends_in_conv(seq) else ())
                if outs:
                    out.append(OutputBranch(f"{attr}.{j}", outs, "keypoints"))
    return out


def class_count(head: nn.Module) -> int | None:
    """The class count of a task head: its ``nc``, or the outputs of Classify's ``linear``."""
    nc = getattr(head, "nc", None)
    if nc is None and isinstance(getattr(head, "linear", None), nn.Linear):
        return head.linear.out_features
    return nc


_TASK_MODELS = {"segment": "SegmentationModel", "pose": "PoseModel", "obb": "OBBModel", "classify": "ClassificationModel"}


def model_task(model) -> str:
    """Ultralytics' task of a built model (from its head's class) or of a model-YAML dict (from its head row):
    ``segment``, ``pose``, ``obb``, ``classify``, or ``detect`` for everything else."""
    from ultralytics.nn.modules.head import OBB, Classify, Pose, Segment
    from ultralytics.nn.tasks import guess_model_task

    if isinstance(model, dict):
        task = guess_model_task(model) if model.get("head") else None
        return task if task in _TASK_MODELS else "detect"
    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, nn.Sequential) and len(layers) else None
    kinds = ((Segment, "segment"), (Pose, "pose"), (OBB, "obb"), (Classify, "classify"))
    return next((task for cls, task in kinds if isinstance(head, cls)), "detect")


def task_model_class(cfg: dict) -> type:
    """Ultralytics' model class for a model-YAML dict: ``SegmentationModel`` for a Segment head, ``PoseModel``,
    ``OBBModel``, ``ClassificationModel``; ``DetectionModel`` otherwise."""
    from ultralytics.nn import tasks

    return getattr(tasks, _TASK_MODELS.get(model_task(cfg), "DetectionModel"))
