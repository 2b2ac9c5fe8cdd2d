"""Instance segmentation: masks, scored by COCOeval ``segm`` against the label files' polygons.

The validator's masks (scaled back to each original image by the validator itself, as its ``save_json`` does) are
logged as COCO run-length encodings; the ground-truth polygons are the label rows in pixels. Box and mask figures
both come from the same pass: the sweep's metric is the mask mAP50-95, Ultralytics' ``SegmentMetrics.seg``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Scorer, coco_gt_with_rows


def mask_metrics(validator) -> dict[str, float]:
    """Ultralytics' mask figures of a validation pass."""
    seg = validator.metrics.seg
    return {"map50": float(seg.map50), "map": float(seg.map), "precision": float(seg.mp), "recall": float(seg.mr)}


def read_polygons(label_file, width: int, height: int) -> tuple[np.ndarray, list[list[float]]]:
    """``cls xc yc w h`` rows (each polygon's box) and the polygons in pixels, exact duplicate rows dropped as
    Ultralytics drops them; a row that is not a polygon is left out (the dataset check refuses it)."""
    rows: list[tuple[float, ...]] = []
    path = Path(label_file)
    for line in (path.read_text().splitlines() if path.is_file() else []):
        v = tuple(float(x) for x in line.split())
        if len(v) >= 7 and len(v) % 2 == 1 and v not in rows:
            rows.append(v)
    labels, segments = [], []
    for v in rows:
        xs, ys = np.array(v[1::2]) * width, np.array(v[2::2]) * height
        x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
        labels.append([v[0], (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height])
        segments.append(np.stack([xs, ys], 1).reshape(-1).tolist())
    return (np.array(labels, dtype=float).reshape(-1, 5), segments)


def _ground_truth(images, names) -> dict:
    gt, polygons = coco_gt_with_rows(images, names, "polygons")
    for ann, poly in zip(gt["annotations"], polygons):
        xs, ys = np.asarray(poly[0::2]), np.asarray(poly[1::2])
        ann["segmentation"] = [poly]
        ann["area"] = float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)  # shoelace
    return gt


def _detections(gt: dict, boxes: dict, extras: dict | None = None) -> list[dict]:
    from . import cocoeval

    dets = cocoeval.coco_dets_pixels(gt, boxes)  # image by image, rows in order
    masks = [m for im in gt["images"] for m in ((extras or {}).get(im["file_name"]) or {}).get("masks", [])]
    if len(masks) != len(dets):
        raise ValueError(f"the validation pass logged {len(dets)} boxes but {len(masks)} masks")
    for det, rle in zip(dets, masks):
        det["segmentation"] = rle
    return dets


def encode_masks(masks) -> list[dict]:
    """COCO run-length encodings (``counts`` as text) of binary masks ``(n, H, W)`` in original-image pixels."""
    from pycocotools import mask as mask_utils

    arr = np.asfortranarray(np.asarray(masks, dtype=np.uint8).transpose(1, 2, 0))
    out = mask_utils.encode(arr) if arr.shape[2] else []
    return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")} for r in out]


def log_masks(outputs: dict, data: dict | None = None) -> dict:
    """What the prediction log keeps of an image's masks ``(n, H, W)``: their run-length encodings."""
    masks = outputs.get("masks")
    return {"masks": encode_masks(masks) if masks is not None and len(masks) else []}


SCORER = Scorer(task="segment", output="mask", iou_type="segm", ultra=mask_metrics, read_ground_truth=read_polygons,
                ground_truth=_ground_truth, detections=_detections, log_extras=log_masks)
