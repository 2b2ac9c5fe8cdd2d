"""The interface every task's scorer fills in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Scorer:
    """How the trials of one Ultralytics task are scored.

    Attributes:
        task: Ultralytics' task name.
        output: the output that is scored, in words (``box``, ``mask``, ``keypoint``, ``rotated-box``): the summary
            names the metric by it.
        iou_type: the IoU of that output: pycocotools' COCOeval ``iouType`` (``bbox``, ``segm``, ``keypoints``), or
            the name of the scorer's own ``iou`` for an output pycocotools cannot compare (``probiou``), which
            :func:`yolo_attn.scoring.cocoeval.evaluate` matches the COCO way.
        ultra: ``ultra(validator)`` -> Ultralytics' own figures of that output: ``map``, ``map50``, ``precision``,
            ``recall``.
        read_ground_truth: ``read_ground_truth(label_file, width, height)`` -> the image's labels as the scorer keeps
            them in ``GtImage``: ``labels`` (``cls xc yc w h`` rows) and, per row, the output's own geometry in
            ``segments`` (polygons in pixels for masks and rotated boxes, the keypoint values for keypoints), or None.
        ground_truth: ``ground_truth(gt_images, names)`` -> the COCO ground-truth dict.
        detections: ``detections(gt, rows, extras)`` -> COCO result records, from the logged rows (image key ->
            ``x1 y1 x2 y2 conf cls`` in pixels; ``xc yc w h angle conf cls`` for rotated boxes) and the output's
            extras (image key -> what ``log_extras`` kept of the image).
        log_extras: ``log_extras(outputs, data)`` -> what the prediction log keeps of one image's other outputs
            (``outputs``: the validator's scaled outputs besides boxes, scores and classes, as numpy arrays;
            ``data``: the validator's dataset dict); None when the rows are all that is scored.
        iou: for an ``iou_type`` pycocotools lacks, ``iou(detections, annotations)`` -> the (D, G) IoU matrix of
            COCO records.
    """

    task: str
    output: str
    iou_type: str
    ultra: Callable[[Any], dict[str, float]]
    read_ground_truth: Callable[..., tuple]
    ground_truth: Callable[..., dict]
    detections: Callable[..., list[dict]]
    log_extras: Optional[Callable[[dict, dict], dict]] = None
    iou: Optional[Callable[[list, list], Any]] = None

    @property
    def column(self) -> str:
        """The suffix of the scored output in Ultralytics' metric names (``metrics/mAP50-95(M)``, results.csv)."""
        return {"mask": "(M)", "keypoint": "(P)"}.get(self.output, "(B)")

    @property
    def independent(self) -> str:
        """The computation beside Ultralytics' figure, in words."""
        if self.iou_type in ("bbox", "segm", "keypoints"):
            return f"pycocotools COCOeval {self.iou_type}"
        return f"COCO's matching and AP with Ultralytics' {self.iou_type} IoU"

    @property
    def metric(self) -> str:
        """The sweep's metric in words: ``mAP50-95`` for boxes, ``mask mAP50-95`` for masks and so on."""
        return "mAP50-95" if self.output == "box" else f"{self.output} mAP50-95"


def coco_gt_with_rows(images, names, what: str) -> tuple[dict, list]:
    """The COCO ground truth of ``images`` (:func:`yolo_attn.scoring.cocoeval.coco_gt`: annotations in image order,
    rows in order) and, in the same order, each object's own geometry (``GtImage.segments``, named ``what`` in the
    error when the two counts differ)."""
    from . import cocoeval

    gt = cocoeval.coco_gt(images, names)
    rows = [r for im in images for r in (im.segments or [])]
    if len(rows) != len(gt["annotations"]):
        raise ValueError(f"{len(gt['annotations'])} ground-truth objects but {len(rows)} {what}")
    return gt, rows
