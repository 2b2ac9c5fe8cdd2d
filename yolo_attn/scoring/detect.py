"""Detection: boxes, scored by COCOeval ``bbox`` (:mod:`yolo_attn.scoring.cocoeval`)."""

from __future__ import annotations

from .base import Scorer


def box_metrics(validator) -> dict[str, float]:
    """Ultralytics' box figures of a validation pass."""
    box = validator.metrics.box
    return {"map50": float(box.map50), "map": float(box.map), "precision": float(box.mp), "recall": float(box.mr)}


def read_boxes(label_file, width: int, height: int) -> tuple:
    from ..datasets import read_yolo_labels

    return read_yolo_labels(label_file), None


def _ground_truth(images, names) -> dict:
    from . import cocoeval

    return cocoeval.coco_gt(images, names)


def _detections(gt: dict, boxes: dict, extras: dict | None = None) -> list[dict]:
    from . import cocoeval

    return cocoeval.coco_dets_pixels(gt, boxes)


SCORER = Scorer(task="detect", output="box", iou_type="bbox", ultra=box_metrics, read_ground_truth=read_boxes,
                ground_truth=_ground_truth, detections=_detections)
