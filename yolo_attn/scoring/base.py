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
        label_of: ``label_of(image_file)`` -> the file ``read_ground_truth`` reads for an image; None: Ultralytics'
            label file of it (``images/`` -> ``labels/``, ``.txt``).
        evaluate: ``evaluate(gt, dets, max_det=)`` -> the independent figures ``map50`` and ``map`` and the per-image
            ``arrays`` the bootstrap resamples (with their ``save(path)``); None: COCO's evaluation of ``iou_type``
            (:func:`yolo_attn.scoring.cocoeval.evaluate`, arrays :class:`~yolo_attn.scoring.cocoeval.EvalArrays`).
        replicates: ``replicates(path, weights)`` -> the two figures (``map50``, ``map``) of each image multiset (rows
            of ``weights``) from the arrays saved at ``path``; None: COCO's mAP of the saved ``EvalArrays``
            (:func:`yolo_attn.scoring.cocoeval.weighted_map`).
        figures: the short names of the two figures, ``map`` then ``map50`` (table columns).
        metric_name: the sweep's metric in words, where it is not the output's mAP50-95.
        independent_name: the independent computation in words and its short name (a column), where it is not COCO's.
        columns: Ultralytics' names of the two figures (``map``, ``map50``) in its metrics and results.csv, where
            they are not ``metrics/mAP50-95`` and ``metrics/mAP50`` with the output's suffix.
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
    label_of: Optional[Callable[[Any], Any]] = None
    evaluate: Optional[Callable[..., Any]] = None
    replicates: Optional[Callable[[Any, Any], tuple]] = None
    figures: tuple[str, str] = ("mAP50-95", "mAP50")
    metric_name: Optional[str] = None
    independent_name: Optional[tuple[str, str]] = None
    columns: Optional[dict[str, str]] = None

    @property
    def column(self) -> str:
        """The suffix of the scored output in Ultralytics' metric names (``metrics/mAP50-95(M)``, results.csv)."""
        return {"mask": "(M)", "keypoint": "(P)"}.get(self.output, "(B)")

    def ultra_columns(self) -> dict[str, str]:
        """Ultralytics' metric names (its metrics dict, results.csv) of ``map50``, ``map``, ``precision``, ``recall``
        (those the task has)."""
        if self.columns is not None:
            return dict(self.columns)
        return {k: v + self.column for k, v in {"map50": "metrics/mAP50", "map": "metrics/mAP50-95",
                                                 "precision": "metrics/precision", "recall": "metrics/recall"}.items()}

    @property
    def independent(self) -> str:
        """The computation beside Ultralytics' figure, in words."""
        if self.independent_name:
            return self.independent_name[0]
        if self.iou_type in ("bbox", "segm", "keypoints"):
            return f"pycocotools COCOeval {self.iou_type}"
        return f"COCO's matching and AP with Ultralytics' {self.iou_type} IoU"

    @property
    def independent_short(self) -> str:
        """The independent computation's name in a table column."""
        return self.independent_name[1] if self.independent_name else "COCOeval"

    @property
    def metric(self) -> str:
        """The sweep's metric in words: ``mAP50-95`` for boxes, ``mask mAP50-95`` for masks and so on."""
        if self.metric_name:
            return self.metric_name
        return "mAP50-95" if self.output == "box" else f"{self.output} mAP50-95"

    @property
    def described(self) -> str:
        """What the summary's figures measure, in words (the task line of summary.md)."""
        if self.metric_name:
            return f"{self.metric} ({self.independent})"
        return f"{self.output} mAP ({self.independent})"

    def score(self, gt: dict, dets: list[dict], max_det: int):
        """The independent figures (``map50``, ``map``) and the per-image ``arrays`` of ``dets`` against ``gt``."""
        if self.evaluate is not None:
            return self.evaluate(gt, dets, max_det=max_det)
        from . import cocoeval

        return cocoeval.evaluate(gt, dets, max_det=max_det, dets_reused=False, iou_type=self.iou_type)

    def image_replicates(self, path, weights):
        """The two figures (``map50``, ``map``) of each image multiset (rows of ``weights``) from a trial's arrays."""
        if self.replicates is not None:
            return self.replicates(path, weights)
        from . import cocoeval

        return cocoeval.weighted_map(cocoeval.EvalArrays.load(path), weights)


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
