"""Rotated boxes as Ultralytics' OBB task computes them: the polygon-to-box conversion of its label rows and the
probabilistic IoU its OBB validator matches predictions with."""

from __future__ import annotations

import numpy as np


def polygons_to_xywhr(polygons) -> np.ndarray:
    """``(n, 5)`` rotated boxes ``xc yc w h angle`` (radians) of ``(n, 8)`` corner polygons, by Ultralytics'
    ``xyxyxyxy2xywhr`` (the minimum-area rectangle, as its dataset turns an 8-value label row into a box)."""
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    # float32, as Ultralytics' dataset holds label rows (OpenCV's minAreaRect, which older releases call with the
    # array as given, takes no float64)
    arr = np.asarray(polygons, dtype=np.float32).reshape(-1, 8)
    return np.asarray(xyxyxyxy2xywhr(arr), dtype=np.float64).reshape(-1, 5) if len(arr) else np.zeros((0, 5))


def rotated_iou(boxes1, boxes2) -> np.ndarray:
    """``(n, m)`` probabilistic IoU of rotated boxes ``xc yc w h angle`` by Ultralytics' ``batch_probiou`` (what its
    OBB validator matches predictions and ground truth with)."""
    from ultralytics.utils.metrics import batch_probiou

    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 5)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return batch_probiou(a, b).cpu().numpy().astype(np.float64)
