"""compare for the other Ultralytics tasks: a task is scored by its own output (masks for segment; keypoints and
rotated boxes in tests/test_scoring_tasks.py) through ``yolo_attn.scoring``, and a task without a scorer is refused
before anything is written or trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolo_attn.scoring import cocoeval
from yolo_attn.compare.sweep import sweep_task
from conftest import run_compare
from yolo_attn.scoring import SCORERS, scorer
from yolo_attn.scoring.segment import encode_masks, read_polygons


@pytest.mark.parametrize("models, message", [
    (["yolo11n.yaml", "yolo11n-seg-se-neck.yaml"], r"must share one task: yolo11n.yaml \(detect\), "
                                                   r"yolo11n-seg-se-neck.yaml \(segment\)"),
])
def test_a_task_compare_cannot_score_is_refused_before_anything_is_written(tmp_path, models, message):
    """An oriented-box sweep was trained and scored as detection: '2/2 trials ok' at mAP 0.000."""
    with pytest.raises(ValueError, match=message):
        run_compare(models=models, seeds=1, epochs=1, imgsz=64, out=str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_the_sweep_task_is_the_models_own():
    assert sweep_task(["yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"]) == "segment"
    assert sweep_task(["yolov5n.yaml"]) == "detect" and set(SCORERS) >= {"detect", "segment", "pose", "obb"}
    assert sweep_task(["yolo11n-obb.yaml", "yolo11n-obb-se-neck.yaml"]) == "obb"
    assert sweep_task(["yolo11n-cls.yaml", "yolo11n-cls-se-backbone-end.yaml"]) == "classify"
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
    summary = run_compare(models=["yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"], seeds=2, epochs=1, imgsz=64,
                      out=str(out), progress=False, workers=0, train_args={"fraction": 0.25})
    assert summary.n_ok == 4 and summary.settings.task == "segment"
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "segment"
    preds = json.loads(next(out.glob("trials/*/predictions_coco.json")).read_text())
    assert preds and "segmentation" in preds[0] and preds[0]["segmentation"]["counts"]
    text = (out / "summary.md").read_text()
    assert "Task **segment**: every mAP below is the mask mAP (pycocotools COCOeval segm)" in text


# --------------------------------------------------------------------------------------------
# Classification: top-1 / top-5 of the logged class probabilities against the class folders
# --------------------------------------------------------------------------------------------
def _classify_gt(folders):
    from yolo_attn.scoring.classify import read_class_folder

    images = [cocoeval.GtImage(f"im{i}", 32, 32, *read_class_folder(f"/d/val/{c}/im{i}.jpg", 32, 32))
              for i, c in enumerate(folders)]
    return scorer("classify").ground_truth(images, {0: "circle", 1: "cross", 2: "square"})


def test_classify_scoring_counts_top1_and_top5_per_image_and_resamples_them():
    """Known answers: the class folder is the truth; ties rank the lower class first; the bootstrap's replicates
    are the accuracy of each image multiset (all weights 1: the figure itself)."""
    from yolo_attn.scoring.classify import ClassArrays

    s = scorer("classify")
    gt = _classify_gt(["circle", "square", "cross", "square"])
    rows = {"im0": [[0.7, 0.2, 0.1]], "im1": [[0.5, 0.1, 0.4]], "im2": [[0.3, 0.3, 0.4]], "im3": [[0.2, 0.2, 0.6]]}
    dets = s.detections(gt, {k: np.array(v) for k, v in rows.items()})
    assert dets[2]["category_ids"] == [3, 1, 2]  # 0.3 = 0.3: class 0 before class 1
    res = s.score(gt, dets, max_det=300)
    assert (res.map, res.map50) == (0.5, 1.0) and res.arrays.top1.tolist() == [True, False, False, True]
    w = np.array([[1, 1, 1, 1], [2, 0, 0, 2], [0, 1, 1, 0]], dtype=float)
    top5, top1 = res.arrays.replicates(w)
    assert top1.tolist() == [0.5, 1.0, 0.0] and top5.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="im0: its class folder 'dog' is none of the model's classes"):
        _classify_gt(["dog"])
    with pytest.raises(ValueError, match=r"logged class probabilities of shape \(1, 2\), expected \(1, 3\)"):
        s.detections(gt, {"im0": np.zeros((1, 2))})
    assert isinstance(res.arrays, ClassArrays) and s.metric == "top-1 accuracy" and s.figures == ("top-1", "top-5")


@pytest.fixture(scope="module")
def classify_sweep(tmp_path_factory):
    """A 2-model x 2-seed classify sweep (1 epoch at imgsz 32) on a small synthetic class-folder dataset (48 train,
    24 val images): its results folder and summary (read by the diagnose test too)."""
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    root = tmp_path_factory.mktemp("classify")
    write_dataset(root / "shapes", ShapesConfig(n_train=48, n_val=24, imgsz=64, min_size=14, max_size=40),
                  task="classify")
    summary = run_compare(models=["yolo11n-cls.yaml", "yolo11n-cls-se-backbone-end.yaml"], seeds=2, epochs=1,
                          imgsz=32, data=str(root / "shapes"), out=str(root / "sweep"), progress=False, workers=0)
    return root / "sweep", summary


def test_a_classify_sweep_scores_top1_with_intervals_and_agrees_with_ultralytics(classify_sweep):
    """The summary names top-1 accuracy and its recount, every trial's recount of top-1 and top-5 from the logged
    probabilities equals Ultralytics' ClassifyMetrics of the same pass (the report's tolerance: no warning), and the
    difference has a paired interval with the image bootstrap's part (each trial's per-image outcomes saved for it)."""
    from yolo_attn.scoring import image_replicates

    out, summary = classify_sweep
    assert summary.n_ok == 4 and summary.settings.task == "classify" and summary.n_eval_images == 24
    text = (out / "summary.md").read_text()
    assert "Task **classify**: top-1 and top-5 below are the top-1 accuracy (top-1 and top-5 recounted" in text
    assert "| top-1 (Ultralytics) | top-1 (recount) |" in text and "Ultralytics vs recount: same predictions" in text
    records = {r["trial_id"]: r for r in map(json.loads, (out / "trials.jsonl").read_text().splitlines())}
    pairs = [(r["ultra"][k], r["coco"][k]) for r in records.values() if r["status"] == "ok" for k in ("map", "map50")]
    print("classify: Ultralytics vs recount (top-1, top-5) per trial:", pairs)
    assert len(pairs) == 8 and all(abs(u - c) < 1e-6 for u, c in pairs)
    assert not [w for w in summary.warnings if "differ by" in w]
    d = next(r for r in summary.models if not r.is_baseline).diff["map"]
    assert d.n_seeds == 2 and np.isfinite([d.lo, d.hi]).all() and d.lo <= d.delta <= d.hi
    assert d.ci.n_boot == 1000 and not d.ci.note  # the image bootstrap took part
    for tid, r in records.items():
        top5, top1 = image_replicates(out / r["eval"], np.ones((1, 24)))
        assert (top1[0], top5[0]) == pytest.approx((r["coco"]["map"], r["coco"]["map50"]))


# --------------------------------------------------------------------------------------------
# diagnose of the other tasks: the sections that apply, the others left out with their reason
# --------------------------------------------------------------------------------------------
DX_FAST = dict(imgsz=64, n_train=8, n_erf=4, n_consistency=4, n_jac=2, jac_projections=2, n_pairs=1, path_steps=5,
               n_boot=20)


def test_diagnose_of_a_classify_sweep_scores_top1_and_leaves_out_object_sizes(classify_sweep, tmp_path):
    """The classify sweep's checkpoints: fit and reliance by top-1 accuracy (each image's class from its folder, the
    diagnosis's own count on the same validation images as the sweep's), no object sizes (the reason stated), the
    ERF at the classifier's one input, gates, consistency and smoothness on the class probabilities."""
    import dataclasses

    from yolo_attn.diagnose import Settings, diagnose, write
    from yolo_attn.diagnose.sweep import sweep_inputs

    out, _ = classify_sweep
    inp = sweep_inputs(out)
    d = diagnose(inp.refs, inp.baseline, inp.data, dataclasses.replace(Settings(**DX_FAST), imgsz=inp.imgsz))
    md = write(d, tmp_path / "dx").read_text()
    assert d.task == "classify" and "Task **classify**: the sections that score predictions use top-1 accuracy" in md
    assert "Not measured for classify models: a classification image has no objects" in md
    assert "| model | seeds | train top-1 accuracy | val top-1 accuracy |" in md
    assert "Δ top-1 accuracy knocked out" in md
    val = d.dataset.val
    assert [d.dataset.names[c] for c in val.image_class] == [f.parent.name for f in val.files]
    records = {(r["model"], r["seed"]): r for r in map(json.loads, (out / "trials.jsonl").read_text().splitlines())}
    for m in d.models:  # square images: letterboxed = resized, as Ultralytics' classify transforms resize
        assert abs(m.fit.val_map - records[(m.ref.label, m.ref.seed)]["coco"]["map"]) <= 2 / len(val) + 1e-9
        assert [e.level for e in m.erf] == ["P5"] and m.erf[0].r90 > 0 and m.sizes == []
    se = [m for m in d.models if m.layers]
    assert se and all(m.gates and m.reliance and m.reliance[-1].layer == "all" for m in se)


@pytest.mark.parametrize("task, models", [
    ("segment", ["yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"]),
])
def test_diagnose_of_a_detection_type_task_scores_fit_sizes_and_reliance_by_its_own_metric(tmp_path, task, models):
    """A segment model's fit, sizes and reliance are scored by its mask mAP50-95 (the sweep's metric, never the box
    mAP of its detection branch; a pose or obb model's by its own through the same evaluator, tests/
    test_diagnose_tasks.py); ERF, gates, consistency and smoothness run on the detection branch."""
    import contextlib
    import io

    import torch

    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset
    from yolo_attn.diagnose import ModelRef, Settings, diagnose, write
    from yolo_attn.models import build_model

    data = write_dataset(tmp_path / "shapes", ShapesConfig(n_train=8, n_val=4, imgsz=64, min_size=14, max_size=40),
                         task=task)
    refs = []
    for name in models:
        torch.manual_seed(0)
        with contextlib.redirect_stdout(io.StringIO()):
            model = build_model(name, nc=4)
        torch.save({"model": model}, tmp_path / f"{Path(name).stem}.pt")
        refs.append(ModelRef(Path(name).stem, tmp_path / f"{Path(name).stem}.pt"))
    d = diagnose(refs, refs[0].label, data, Settings(**DX_FAST))
    md = write(d, tmp_path / "dx").read_text()
    assert d.task == task and all(m.fit is not None and m.sizes and m.reliance == [] for m in d.models[:1])
    metric = scorer(task).metric
    assert f"Task **{task}**: the sections that score predictions use {metric}" in md
    assert "Not measured for" not in md and f"| model | seeds | train {metric} | val {metric} |" in md
    assert "train mAP50-95" not in md  # never the box mAP of the detection branch
    assert f"Δ {metric} knocked out" in md and "AP small" in md
    assert [x.range for x in d.models[0].sizes][:3] == ["small", "medium", "large"]
    se = d.models[1]
    assert se.fit is not None and se.reliance and se.reliance[-1].layer == "all"
    assert [e.level for e in se.erf] == ["P3", "P4", "P5"] and se.gates and se.consistency
    assert np.isfinite(se.smooth.jac_mean) and se.smooth.paths
