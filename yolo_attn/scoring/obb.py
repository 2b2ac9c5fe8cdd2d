"""Oriented boxes: rotated boxes, scored by COCO's evaluation with the rotated IoU Ultralytics' OBB validator uses.

pycocotools has no rotated IoU, so the independent figure is COCO's definition computed here
(:func:`yolo_attn.scoring.cocoeval.evaluate_matched`: per image and class the detections by score, each claiming
the unclaimed object it overlaps most at each of the 10 thresholds, then the 101-point interpolated AP of
:func:`~yolo_attn.scoring.cocoeval.weighted_map`), with the overlap Ultralytics matches rotated boxes by, its
probabilistic IoU (``probiou``, through the bridge). The ground truth is the 8-value label rows, each polygon made a
rotated box as Ultralytics' dataset makes it; the predictions are the rows the validator scored, ``xc yc w h angle
conf cls`` in original-image pixels. The sweep's metric is the rotated-box mAP50-95, Ultralytics' ``OBBMetrics.box``.
"""

from __future__ import annotations

import numpy as np

from .base import Scorer, coco_gt_with_rows
from .detect import box_metrics
from .segment import read_polygons


def _ground_truth(images, names) -> dict:
    from .._ultralytics.rotated import polygons_to_xywhr

    gt, polygons = coco_gt_with_rows(images, names, "polygons")  # bbox: each polygon's envelope
    for ann, poly in zip(gt["annotations"], polygons):
        xc, yc, w, h, angle = polygons_to_xywhr(np.reshape(poly, (1, -1)))[0].tolist()
        ann.update(rbox=[xc, yc, w, h, angle], segmentation=[poly], area=w * h)
    return gt


def envelope(xc: float, yc: float, w: float, h: float, angle: float) -> list[float]:
    """The axis-aligned box ``x y w h`` around a rotated box (what a reader of COCO's ``bbox`` expects)."""
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    half_w, half_h = (w * c + h * s) / 2, (w * s + h * c) / 2
    return [xc - half_w, yc - half_h, 2 * half_w, 2 * half_h]


def _detections(gt: dict, rows: dict, extras: dict | None = None) -> list[dict]:
    dets = []
    for im in gt["images"]:
        found = np.asarray(rows.get(im["file_name"], np.zeros((0, 7))), dtype=np.float64)
        if found.ndim != 2 or found.shape[1] != 7:
            raise ValueError(f"{im['file_name']}: rotated boxes are logged as 7 columns (xc yc w h angle conf cls), "
                             f"got shape {found.shape}")
        for xc, yc, w, h, angle, score, c in found.tolist():
            dets.append({"image_id": im["id"], "category_id": int(c) + 1, "rbox": [xc, yc, w, h, angle],
                         "bbox": envelope(xc, yc, w, h, angle), "score": score})
    return dets


def rbox_iou(dets: list[dict], anns: list[dict]) -> np.ndarray:
    """``(D, G)`` probabilistic IoU of the records' rotated boxes (Ultralytics' ``batch_probiou``)."""
    from .._ultralytics.rotated import rotated_iou

    return rotated_iou([d["rbox"] for d in dets], [a["rbox"] for a in anns])


SCORER = Scorer(task="obb", output="rotated-box", iou_type="probiou", ultra=box_metrics,
                read_ground_truth=read_polygons, ground_truth=_ground_truth, detections=_detections, iou=rbox_iou)
