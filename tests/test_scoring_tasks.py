"""Scoring pose and oriented-box sweeps: the independent computations on known answers (no training) and their
agreement with Ultralytics' own figure on the same predictions; one tiny sweep of each task end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolo_attn.scoring import cocoeval
from conftest import run_compare
from yolo_attn.scoring import iou_of, scorer

NAMES = {0: "circle", 1: "square", 2: "triangle", 3: "cross"}


def _val_images(task: str, n: int = 16) -> list[cocoeval.GtImage]:
    import yaml

    from yolo_attn.datasets import image_size, label_path, shapes_data

    root = yaml.safe_load(shapes_data(task).read_text())
    images = []
    for f in sorted((Path(root["path"]) / root["val"]).glob("*.jpg"))[:n]:
        w, h = image_size(f)
        images.append(cocoeval.GtImage(f.stem, w, h, *scorer(task).read_ground_truth(label_path(f), w, h)))
    return images


def _ultralytics_map(per_image: list[tuple], n_cls: int) -> float:
    """Ultralytics' mAP50-95 of per-image (tp (D, 10), conf, pred_cls, true_cls) by its own ``ap_per_class``."""
    from ultralytics.utils.metrics import ap_per_class

    tp, conf, pcls, tcls = (np.concatenate([p[i] for p in per_image]) for i in range(4))
    ap = ap_per_class(tp, conf, pcls, tcls)[5]
    return float(ap.mean())


# --------------------------------------------------------------------------------------------
# COCO's matching with another IoU
# --------------------------------------------------------------------------------------------
def _random_boxes(rng, n_images=20, n_cls=3):
    gt = {"info": {}, "images": [], "annotations": [],
          "categories": [{"id": k + 1, "name": str(k)} for k in range(n_cls)]}
    dets = []
    for i in range(1, n_images + 1):
        gt["images"].append({"id": i, "file_name": f"im{i}", "width": 200, "height": 200})
        for _ in range(rng.integers(0, 6)):
            x, y, w, h = rng.uniform(0, 150), rng.uniform(0, 150), rng.uniform(5, 50), rng.uniform(5, 50)
            c = int(rng.integers(1, n_cls + 1))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": c,
                                      "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            for _ in range(rng.integers(0, 3)):  # near copies, some of another class
                jit = rng.normal(0, 0.15 * min(w, h), 4)
                dets.append({"image_id": i, "category_id": c if rng.random() < 0.8 else int(rng.integers(1, n_cls + 1)),
                             "bbox": [x + jit[0], y + jit[1], max(w + jit[2], 1), max(h + jit[3], 1)],
                             "score": float(rng.random())})
        for _ in range(rng.integers(0, 3)):  # false positives
            dets.append({"image_id": i, "category_id": int(rng.integers(1, n_cls + 1)),
                         "bbox": [*rng.uniform(0, 150, 2), *rng.uniform(5, 50, 2)], "score": float(rng.random())})
    return gt, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_matching_is_cocoevals_own_with_its_iou(seed):
    """With the axis-aligned IoU, COCO's matching done here gives what pycocotools' COCOeval bbox gives: the same
    mAPs and the same per-image arrays for the bootstrap."""
    gt, dets = _random_boxes(np.random.default_rng(seed))
    ref = cocoeval.evaluate(gt, dets, iou_type="bbox")

    def box_iou(ds, gs):
        return cocoeval._iou_xywh(np.array([d["bbox"] for d in ds]), np.array([g["bbox"] for g in gs]))

    own = cocoeval.evaluate_matched(gt, dets, box_iou)
    assert 0.05 < ref.map < 0.95
    assert own.map == pytest.approx(ref.map, abs=1e-12) and own.map50 == pytest.approx(ref.map50, abs=1e-12)
    for name in ("cat", "img", "score", "tp", "ignore", "n_gt"):
        np.testing.assert_array_equal(getattr(own.arrays, name), getattr(ref.arrays, name), err_msg=name)


def test_claims_follow_the_score_order():
    iou = np.array([[0.6, 0.9], [0.95, 0.97], [0.2, 0.55]])
    tp = cocoeval.match_by_score(iou)
    assert tp[0].tolist() == [True, True, False]  # at 0.5: 0 takes object 1, 1 takes object 0, none is left for 2
    assert tp[-1].tolist() == [False, True, False]  # at 0.95: 0 reaches no object, 1 takes object 1 (0.97)


# --------------------------------------------------------------------------------------------
# Oriented boxes
# --------------------------------------------------------------------------------------------
def _obb_rows(gt, images, rng=None, noise=0.0):
    """Per image key, prediction rows ``xc yc w h angle conf cls`` from the ground truth's rotated boxes, moved by
    ``noise`` pixels (and as many radians / 20), with random confidences and one false positive per image."""
    rows = {}
    for n, im in enumerate(images, 1):
        anns = [a for a in gt["annotations"] if a["image_id"] == n]
        r = np.array([[*a["rbox"], 0.9, a["category_id"] - 1] for a in anns]).reshape(-1, 7)
        if rng is not None:
            r[:, :2] += rng.normal(0, noise, (len(r), 2))
            r[:, 4] += rng.normal(0, noise / 20, len(r))
            r[:, 5] = rng.uniform(0.3, 1.0, len(r))
            fp = [*rng.uniform(10, im.width - 10, 2), 20, 12, 0.3, rng.uniform(0.3, 1.0), rng.integers(0, 4)]
            r = np.vstack([r, fp])
        rows[im.key] = r
    return rows


def _obb_ultralytics_map(gt, images, rows, save_dir) -> float:
    """Ultralytics' rotated-box mAP50-95 of the same rows: its OBB validator's matching, its AP."""
    import torch
    from ultralytics.models.yolo.obb import OBBValidator

    validator, per_image = OBBValidator(save_dir=save_dir), []
    for n, im in enumerate(images, 1):
        anns = [a for a in gt["annotations"] if a["image_id"] == n]
        r = rows[im.key][np.argsort(-rows[im.key][:, 5], kind="stable")]
        pred = {"cls": torch.tensor(r[:, 6]), "bboxes": torch.tensor(r[:, :5]), "conf": torch.tensor(r[:, 5])}
        truth = {"cls": torch.tensor([a["category_id"] - 1.0 for a in anns]),
                 "bboxes": torch.tensor([a["rbox"] for a in anns], dtype=torch.float64).reshape(-1, 5)}
        tp = validator._process_batch(pred, truth)["tp"]
        per_image.append((tp, r[:, 5], r[:, 6], truth["cls"].numpy()))
    return _ultralytics_map(per_image, 4)


def test_obb_scoring_is_cocos_matching_with_ultralytics_probiou(tmp_path):
    """Rotated boxes equal to the label polygons score 1; moved ones less; on the same rows the figure is
    Ultralytics' own within the report's tolerance."""
    obb = scorer("obb")
    images = _val_images("obb")
    gt = obb.ground_truth(images, NAMES)
    assert obb.metric == "rotated-box mAP50-95" and iou_of("probiou") is obb.iou
    exact = cocoeval.evaluate(gt, obb.detections(gt, _obb_rows(gt, images), {}), iou_type=obb.iou_type)
    assert exact.map50 == pytest.approx(1.0) and exact.map == pytest.approx(1.0)
    rows = _obb_rows(gt, images, np.random.default_rng(0), noise=2.0)
    moved = cocoeval.evaluate(gt, obb.detections(gt, rows, {}), iou_type=obb.iou_type)
    assert 0.2 < moved.map < exact.map - 0.1
    assert moved.arrays.n_images == len(images) and moved.arrays.tp.shape[0] == 10  # the bootstrap's arrays
    assert moved.map == pytest.approx(float(cocoeval.weighted_map(moved.arrays, np.ones((1, len(images))))[1][0]))
    assert abs(moved.map - _obb_ultralytics_map(gt, images, rows, tmp_path)) < 0.02


def test_obb_ground_truth_is_ultralytics_rotated_box_of_each_polygon():
    obb = scorer("obb")
    images = _val_images("obb", 4)
    gt = obb.ground_truth(images, NAMES)
    ann = gt["annotations"][0]
    xs, ys = np.array(ann["segmentation"][0][0::2]), np.array(ann["segmentation"][0][1::2])
    xc, yc, w, h, angle = ann["rbox"]
    assert (xc, yc) == pytest.approx((xs.mean(), ys.mean()), abs=0.05)  # a rectangle's centre
    assert w * h == pytest.approx(ann["area"]) and max(w, h) <= np.hypot(np.ptp(xs), np.ptp(ys))
    with pytest.raises(ValueError, match="7 columns"):
        obb.detections(gt, {images[0].key: np.zeros((1, 6))}, {})


# --------------------------------------------------------------------------------------------
# Pose
# --------------------------------------------------------------------------------------------
def _pose_predictions(images, kpt_shape, rng=None, noise=0.0):
    """Boxes and logged keypoints (as the bridge logs them) equal to the labels, the keypoints moved by ``noise``
    pixels with random confidences."""
    pose = scorer("pose")
    boxes, extras = {}, {}
    for im in images:
        lab = im.labels * [1, im.width, im.height, im.width, im.height]
        conf = rng.uniform(0.3, 1.0, len(lab)) if rng is not None else np.full(len(lab), 0.9)
        boxes[im.key] = np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2, s, c]
                                  for (c, x, y, w, h), s in zip(lab, conf)]).reshape(-1, 6)
        k = np.array(im.segments, dtype=float).reshape(-1, *kpt_shape) * [im.width, im.height, 1][: kpt_shape[1]]
        if rng is not None:
            k[..., :2] += rng.normal(0, noise, k[..., :2].shape)
        extras[im.key] = pose.log_extras({"keypoints": k}, {"kpt_shape": list(kpt_shape)})
    return boxes, extras


def _pose_ultralytics_map(images, boxes, extras, sigma, save_dir) -> float:
    """Ultralytics' keypoint mAP50-95 of the same predictions: its OKS (``kpt_iou``, box area x 0.53) and matching."""
    import torch
    from ultralytics.models.yolo.pose import PoseValidator
    from ultralytics.utils.metrics import kpt_iou

    validator, per_image = PoseValidator(save_dir=save_dir), []
    for im in images:
        lab = im.labels * [1, im.width, im.height, im.width, im.height]
        truth = torch.tensor(np.array(im.segments, dtype=float).reshape(len(lab), -1, 3) * [im.width, im.height, 1])
        order = np.argsort(-boxes[im.key][:, 4], kind="stable")
        pred = torch.tensor(extras[im.key]["keypoints"][order])
        oks = kpt_iou(truth, pred, sigma=sigma, area=torch.tensor(lab[:, 3] * lab[:, 4] * 0.53))
        tp = validator.match_predictions(torch.tensor(boxes[im.key][order, 5]), torch.tensor(lab[:, 0]), oks).numpy()
        per_image.append((tp, boxes[im.key][order, 4], boxes[im.key][order, 5], lab[:, 0]))
    return _ultralytics_map(per_image, 4)


def test_pose_scoring_is_cocoeval_keypoints_with_the_datasets_sigmas(tmp_path):
    """Keypoints equal to the labels score 1; moved ones less, though their boxes do not move; on the same
    predictions the figure is Ultralytics' own (its OKS, its matching, its AP) within the report's tolerance."""
    pose = scorer("pose")
    images = _val_images("pose")
    assert pose.metric == "keypoint mAP50-95"
    gt = pose.ground_truth(images, NAMES)
    exact = cocoeval.evaluate(gt, pose.detections(gt, *_pose_predictions(images, (4, 3))), iou_type="keypoints")
    assert exact.map50 == pytest.approx(1.0) and exact.map == pytest.approx(1.0)
    assert gt["info"]["kpt_oks_sigmas"] == [0.25] * 4 and gt["annotations"][0]["num_keypoints"] == 4
    boxes, extras = _pose_predictions(images, (4, 3), np.random.default_rng(0), noise=5.0)
    gt = pose.ground_truth(images, NAMES)
    moved = cocoeval.evaluate(gt, pose.detections(gt, boxes, extras), iou_type="keypoints")
    assert 0.2 < moved.map < exact.map - 0.1
    assert moved.arrays.n_images == len(images) and moved.arrays.tp.shape[0] == 10
    assert abs(moved.map - _pose_ultralytics_map(images, boxes, extras, np.ones(4) / 4, tmp_path)) < 0.02


def test_pose_sigmas_and_visibility_are_ultralytics():
    from ultralytics.utils.metrics import OKS_SIGMA

    from yolo_attn.scoring.pose import lay_out_ground_truth, oks_sigmas

    np.testing.assert_allclose(oks_sigmas([17, 3]), OKS_SIGMA)  # COCO's, from pycocotools
    np.testing.assert_allclose(oks_sigmas([17, 2]), np.ones(17) / 17)  # COCO's only with visibility, as Ultralytics
    assert oks_sigmas([2, 3], [0.1, 0.2]).tolist() == [0.1, 0.2]
    logged = scorer("pose").log_extras({}, {"kpt_shape": [2, 3], "kpt_oks_sigmas": [0.1, 0.2]})  # no prediction
    assert logged["keypoints"].shape == (0, 2, 3) and logged["kpt_oks_sigmas"] == [0.1, 0.2]
    with pytest.raises(ValueError, match="2 positive values"):
        oks_sigmas([2, 3], [0.1])
    gt = {"info": {}, "images": [{"id": 1, "width": 100, "height": 50}],
          "annotations": [{"image_id": 1, "yolo_keypoints": [0.5, 0.5, 0.0, 0.2, 0.4, 1.0]},
                          {"image_id": 1, "yolo_keypoints": [-1.0, 0.5, 0.2, 0.4]}]}
    lay_out_ground_truth({**gt, "annotations": gt["annotations"][:1]}, [2, 3])
    assert gt["annotations"][0]["keypoints"] == [50.0, 25.0, 0.0, 20.0, 20.0, 2.0]
    assert gt["annotations"][0]["num_keypoints"] == 1
    lay_out_ground_truth({**gt, "annotations": gt["annotations"][1:]}, [2, 2])  # 2-D: negative coordinate, unlabelled
    assert gt["annotations"][1]["keypoints"][2::3] == [0.0, 2.0]
    short = {"info": {}, "images": gt["images"], "annotations": [{"image_id": 1, "yolo_keypoints": [0.1] * 8}]}
    with pytest.raises(ValueError, match="kpt_shape \\[4, 3\\] needs 12"):
        lay_out_ground_truth(short, [4, 3])


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task, models, key, phrase", [
    ("pose", ["yolo11n-pose.yaml", "yolo11n-pose-se-neck.yaml"], "keypoints",
     "keypoint mAP (pycocotools COCOeval keypoints)"),
    ("obb", ["yolo11n-obb.yaml", "yolo11n-obb-se-neck.yaml"], "rbox",
     "rotated-box mAP (COCO's matching and AP with Ultralytics' probiou IoU)"),
])
def test_a_sweep_of_the_task_scores_its_output_end_to_end(tmp_path, task, models, key, phrase):
    out = tmp_path / task
    summary = run_compare(models=models, seeds=2, epochs=1, imgsz=64, out=str(out), progress=False, workers=0,
                      train_args={"fraction": 0.25})
    assert summary.n_ok == 4 and summary.settings.task == task
    preds = json.loads(next(out.glob("trials/*/predictions_coco.json")).read_text())
    assert preds and key in preds[0]
    assert f"Task **{task}**: every mAP below is the {phrase}" in (out / "summary.md").read_text()
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    figures = [(r["ultra"]["map"], r["coco"]["map"]) for r in records if r["status"] == "ok"]
    print(task, "Ultralytics vs independent mAP50-95 per trial:", figures)
    assert len(figures) == 4 and all(abs(u - c) < 0.02 for u, c in figures)  # the report's tolerance


def test_the_bootstraps_thread_pool_never_parses_two_array_headers_at_once(tmp_path, monkeypatch):
    """numpy reads each array's header with ``ast``; CPython 3.11 can raise ``SystemError: AST constructor recursion
    depth mismatch`` when two threads parse at once (a CI run failed so). The files are read under one lock."""
    import ast
    import time
    from concurrent.futures import ThreadPoolExecutor

    from yolo_attn.scoring import image_replicates
    from yolo_attn.scoring.bootstrap import image_weights
    from yolo_attn.scoring.classify import ClassArrays

    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"t{i}.npz")
        ClassArrays(rng.random(20) < 0.5, rng.random(20) < 0.8).save(paths[-1])
    inside, overlaps, real_parse = [0], [], ast.parse

    def slow_parse(*a, **k):
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.002)  # widens the window two unguarded threads would share
        try:
            return real_parse(*a, **k)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    W = image_weights(20, 50, 0)
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda p: image_replicates(p, W), paths))
    assert len(done) == 6 and max(overlaps) == 1
