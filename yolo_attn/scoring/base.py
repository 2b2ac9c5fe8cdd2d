"""The interface every task's scorer fills in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Scorer:
    """How the trials of one Ultralytics task are scored.

    Attributes:
        task: Ultralytics' task name.
        output: the output that is scored, in words (``box``, ``mask``): the summary names the metric by it.
        iou_type: pycocotools' COCOeval ``iouType`` of that output.
        ultra: ``ultra(validator)`` -> Ultralytics' own figures of that output: ``map``, ``map50``, ``precision``,
            ``recall``.
        read_ground_truth: ``read_ground_truth(label_file, width, height)`` -> the image's labels as the scorer keeps
            them in ``GtImage`` (``labels``: ``cls xc yc w h`` rows; ``segments``: polygons in pixels, or None).
        ground_truth: ``ground_truth(gt_images, names)`` -> the COCO ground-truth dict.
        detections: ``detections(gt, boxes, extras)`` -> COCO result records, from the logged boxes (image key ->
            ``x1 y1 x2 y2 conf cls`` rows in pixels) and the output's extras (image key -> e.g. RLE masks).
        encode_masks: for a task whose output is masks, how the validation pass's masks are logged.
    """

    task: str
    output: str
    iou_type: str
    ultra: Callable[[Any], dict[str, float]]
    read_ground_truth: Callable[..., tuple]
    ground_truth: Callable[..., dict]
    detections: Callable[..., list[dict]]
    encode_masks: Optional[Callable] = None  # masks (n, H, W) -> what the prediction log keeps of them (segment)

    @property
    def metric(self) -> str:
        """The sweep's metric in words: ``mAP50-95`` for boxes, ``mask mAP50-95`` for masks."""
        return "mAP50-95" if self.output == "box" else f"{self.output} mAP50-95"
