"""Exported models (yolo-attn export-check; see yolo_attn/deploy/)."""

from __future__ import annotations

import contextlib

import torch


def read_as_named(path) -> bool:
    """Whether ``YOLO(path)`` reads ``path`` itself: Ultralytics rewrites some YOLOv5/YOLOv3 checkpoint names to
    its own 'u' releases (``yolov5n.pt`` -> ``yolov5nu.pt``) and downloads those instead."""
    from ultralytics.utils.checks import check_yolov5u_filename

    return check_yolov5u_filename(str(path), verbose=False) == str(path)


def export_format_names() -> frozenset[str]:
    """The ``format=`` names the installed Ultralytics exports to. One it lacks must not reach ``YOLO.export``:
    Ultralytics 8.4.0 has no ``litert`` and takes it for its closest name, ``tflite`` (TensorFlow, onnx2tf)."""
    from ultralytics.engine.exporter import export_formats

    return frozenset(export_formats()["Argument"])


def exported_model(path, device: str = "cpu"):
    """Ultralytics' own runner of an exported model (any format ``YOLO(path)`` predicts with): ``runner(im)``
    takes a float BCHW tensor in [0, 1] and returns the raw head output, as Ultralytics' predictor sees it."""
    from ultralytics.nn.autobackend import AutoBackend

    return AutoBackend(str(path), device=torch.device(device), fuse=False, verbose=False)


def detections(pred: torch.Tensor, conf: float, iou: float, max_det: int = 300, nc: int = 0, rotated: bool = False,
               end2end: bool = False, multi_label: bool = False) -> list[torch.Tensor]:
    """Ultralytics' NMS of a raw detection output ``(B, 4 + nc + extra, anchors)``: per image ``(n, 6 + extra)`` xyxy
    (``rotated``: xywh, the angle last), conf, cls, then the task's channels (mask coefficients, keypoints, angle);
    ``end2end``: an end-to-end head's rows ``(B, max_det, 6 + extra)``, only filtered by ``conf``. ``pred`` is left
    as it was (older releases convert its boxes in place). ``multi_label``: a box for every class scoring above
    ``conf`` (as Ultralytics' validators score), not only its best class (as its predictor keeps)."""
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(pred.clone(), conf_thres=conf, iou_thres=iou, max_det=max_det, nc=nc, rotated=rotated,
                               end2end=end2end, multi_label=multi_label)


@contextlib.contextmanager
def one_to_one(model):
    """Inside: an end-to-end head (YOLO26's, with a one-to-one branch) gives that branch's NMS-free rows
    ``(B, max_det, 6 + extra)``, the output a sweep validates it on (``trainer.end_to_end_val_args``); yields whether
    it does (False: any other head, left as it is). Releases after 8.4.0 select the branch by the head's
    ``end2end`` setter (as built: the one-to-many branch), restored afterwards; 8.4.0's ``end2end`` is read-only,
    true whenever the head has the branch."""
    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, torch.nn.Sequential) and len(layers) else None
    if head is None or getattr(head, "one2one_cv2", None) is None:
        yield False
        return
    chosen = getattr(type(head), "end2end", None)
    if isinstance(chosen, property) and chosen.fset is None:  # 8.4.0: read-only, end-to-end whenever it has the branch
        yield bool(head.end2end)
        return
    saved = {k: head.__dict__[k] for k in ("_end2end", "end2end") if k in head.__dict__}
    head.end2end = True
    try:
        yield bool(head.end2end)
    finally:
        for k in ("_end2end", "end2end"):
            if k in saved:
                head.__dict__[k] = saved[k]
            else:
                head.__dict__.pop(k, None)


def masks_in_original(prototypes: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor, size: int,
                      shape: tuple[int, int], ratio_pad) -> torch.Tensor:
    """An image's binary masks ``(n, H, W)`` (uint8) in its original pixels ``shape``, as Ultralytics' segmentation
    validator makes those it scores (and the sweep logs): assembled at the input's resolution ``size`` x ``size``
    from the image's ``prototypes`` (C, h, w), the mask ``coefficients`` (n, C) and ``boxes`` (n, 4, xyxy in input
    pixels) by ``process_mask_native``, then cropped and scaled back by ``scale_masks`` with ``ratio_pad`` (the
    letterbox's ``((gain, gain), (pad_w, pad_h))``, half the padding of each axis)."""
    from ultralytics.utils import ops

    h, w = int(shape[0]), int(shape[1])
    if not len(coefficients):
        return torch.zeros((0, h, w), dtype=torch.uint8)
    masks = ops.process_mask_native(prototypes, coefficients, boxes, (size, size))
    return ops.scale_masks(masks[None], (h, w), ratio_pad=ratio_pad)[0].byte()


# Ultralytics' heads whose outputs export-check knows (their YOLO26 forms are subclasses)
_HEADS = (("Segment", "segment"), ("Pose", "pose"), ("OBB", "obb"), ("Classify", "classify"), ("Detect", "detect"))


def export_head(model) -> dict | None:
    """What the outputs of a built model's head hold: ``{"task", "head", "nc", "end2end", "kpt_shape"}``, or None
    when its head is none of Detect, Segment, Pose, OBB, Classify (and their YOLO26 forms) or a subclass with
    other inputs (YOLOE's and YOLO-World's prompt heads; RT-DETR's decoder is no Detect)."""
    from ultralytics.nn.modules import head as heads

    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, torch.nn.Sequential) and len(layers) else None
    if head is None or type(head).__name__.startswith(("YOLOE", "World")):
        return None
    task = next((t for name, t in _HEADS if isinstance(head, getattr(heads, name))), None)
    if task is None:
        return None
    nc = getattr(head, "nc", None)
    if task == "classify":
        nc = head.linear.out_features
    kpt = getattr(head, "kpt_shape", None)
    return {"task": task, "head": type(head).__name__, "nc": int(nc), "end2end": bool(getattr(head, "end2end", False)),
            "kpt_shape": tuple(int(k) for k in kpt) if kpt is not None else None}


def task_outputs(raw, task: str) -> list[torch.Tensor]:
    """The outputs that matter of a model's forward pass, PyTorch's (``(y, extras)``, a segment model's
    ``((y, prototypes), extras)``) or an exported model's (``y``, a segment model's ``[y, prototypes]``):
    ``[y]``, or ``[y, prototypes]`` for ``segment`` — as Ultralytics' segmentation predictor reads them."""

    def t(x):
        return torch.as_tensor(x).detach().float().cpu()

    if task == "segment" and isinstance(raw, (list, tuple)) and len(raw) >= 2:
        if isinstance(raw[0], (list, tuple)):  # PyTorch: ((y, prototypes), extras)
            return [t(raw[0][0]), t(raw[0][-1])]
        return [t(raw[0]), t(raw[-1])]
    while isinstance(raw, (list, tuple)):
        raw = raw[0]
    return [t(raw)]
