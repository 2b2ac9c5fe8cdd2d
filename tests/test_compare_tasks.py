"""compare for the other Ultralytics tasks: a task is scored by its own output (masks for segment; keypoints and
rotated boxes in tests/test_scoring_tasks.py) through ``yolo_attn.scoring``, and a task without a scorer is refused
before anything is written or trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolo_attn.scoring import cocoeval
from yolo_attn.compare.sweep import compare, sweep_task
from yolo_attn.scoring import SCORERS, scorer
from yolo_attn.scoring.segment import encode_masks, read_polygons


@pytest.mark.parametrize("models, message", [
    (["yolo11n-cls.yaml", "yolo11n-cls-se-backbone-end.yaml"], r"a classify model cannot be compared yet"),
    (["yolo11n.yaml", "yolo11n-seg-se-neck.yaml"], r"must share one task: yolo11n.yaml \(detect\), "
                                                   r"yolo11n-seg-se-neck.yaml \(segment\)"),
])
def test_a_task_compare_cannot_score_is_refused_before_anything_is_written(tmp_path, models, message):
    """An oriented-box sweep was trained and scored as detection: '2/2 trials ok' at mAP 0.000."""
    with pytest.raises(ValueError, match=message):
        compare(models=models, seeds=1, epochs=1, imgsz=64, out=str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_the_sweep_task_is_the_models_own():
    assert sweep_task(["yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"]) == "segment"
    assert sweep_task(["yolov5n.yaml"]) == "detect" and set(SCORERS) >= {"detect", "segment", "pose", "obb"}
    assert sweep_task(["yolo11n-obb.yaml", "yolo11n-obb-se-neck.yaml"]) == "obb"
    assert scorer("segment").metric == "mask mAP50-95"


def _polygon_masks(segments, width, height):
    """The polygons rasterised as COCO rasterises ground-truth polygons."""
    from pycocotools import mask as mask_utils

    masks = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], height, width))) for poly in segments]
    return np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)


def _scored(images, masks_of, shift=0):
    seg = scorer("segment")
    gt = seg.ground_truth(images, {0: "circle", 1: "square", 2: "triangle", 3: "cross"})
    boxes, extras = {}, {}
    for im in images:
        rows = [[x - w / 2, y - h / 2, x + w / 2, y + h / 2] for _, x, y, w, h in im.labels * [1, im.width, im.height,
                                                                                             im.width, im.height]]
        boxes[im.key] = np.array([[*r, 0.9, c] for r, c in zip(rows, im.labels[:, 0])]).reshape(-1, 6)
        extras[im.key] = {"masks": encode_masks(np.roll(masks_of[im.key], shift, axis=2)) if len(im.labels) else []}
    return cocoeval.evaluate(gt, seg.detections(gt, boxes, extras), iou_type="segm")


def test_segment_scoring_is_cocoeval_segm_of_the_masks():
    """Masks equal to the label polygons score 1; the same masks moved score less though their boxes do not move."""
    import yaml

    from yolo_attn.datasets import image_size, label_path, shapes_data

    root = yaml.safe_load(shapes_data("segment").read_text())
    val = sorted((Path(root["path"]) / root["val"]).glob("*.jpg"))[:12]
    images, masks = [], {}
    for f in val:
        w, h = image_size(f)
        labels, segments = read_polygons(label_path(f), w, h)
        images.append(cocoeval.GtImage(f.stem, w, h, labels, segments))
        masks[f.stem] = _polygon_masks(segments, w, h)
    exact = _scored(images, masks)
    assert exact.map50 == pytest.approx(1.0) and exact.map == pytest.approx(1.0)
    moved = _scored(images, masks, shift=6)
    assert moved.map < exact.map - 0.1
    assert moved.arrays.n_images == len(images) and moved.arrays.tp.shape[0] == 10  # the bootstrap's arrays


@pytest.mark.slow
def test_a_segment_sweep_scores_masks_end_to_end(tmp_path):
    out = tmp_path / "seg"
    summary = compare(models=["yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"], seeds=2, epochs=1, imgsz=64,
                      out=str(out), progress=False, workers=0, train_args={"fraction": 0.25})
    assert summary.n_ok == 4 and summary.settings.task == "segment"
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "segment"
    preds = json.loads(next(out.glob("trials/*/predictions_coco.json")).read_text())
    assert preds and "segmentation" in preds[0] and preds[0]["segmentation"]["counts"]
    text = (out / "summary.md").read_text()
    assert "Task **segment**: every mAP below is the mask mAP (pycocotools COCOeval segm)" in text
