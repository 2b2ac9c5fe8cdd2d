"""Exported models (yolo-attn export-check; see yolo_attn/deploy/)."""

from __future__ import annotations

import torch


def read_as_named(path) -> bool:
    """Whether ``YOLO(path)`` reads ``path`` itself: Ultralytics rewrites some YOLOv5/YOLOv3 checkpoint names to
    its own 'u' releases (``yolov5n.pt`` -> ``yolov5nu.pt``) and downloads those instead."""
    from ultralytics.utils.checks import check_yolov5u_filename

    return check_yolov5u_filename(str(path), verbose=False) == str(path)


def exported_model(path, device: str = "cpu"):
    """Ultralytics' own runner of an exported model (any format ``YOLO(path)`` predicts with): ``runner(im)``
    takes a float BCHW tensor in [0, 1] and returns the raw head output, as Ultralytics' predictor sees it."""
    from ultralytics.nn.autobackend import AutoBackend

    return AutoBackend(str(path), device=torch.device(device), fuse=False, verbose=False)


def detections(pred: torch.Tensor, conf: float, iou: float, max_det: int = 300) -> list[torch.Tensor]:
    """Ultralytics' NMS of a raw detection output ``(B, 4 + nc, anchors)``: per image ``(n, 6)`` xyxy, conf, cls."""
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(pred, conf_thres=conf, iou_thres=iou, max_det=max_det)
