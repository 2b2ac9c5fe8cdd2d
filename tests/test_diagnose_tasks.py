"""diagnose's evaluator of the segment, pose and obb metrics (yolo_attn/diagnose/task_eval.py): mask, keypoint and
rotated-box mAP by area range on the diagnosis's letterboxed images, through the sweep's own scorers; a perfect
prediction scores 1, and the figures and predictions are those of Ultralytics' validator as the sweep logs them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_attn.datasets.shapes import ShapesConfig, write_dataset
from yolo_attn.diagnose import task_eval
from yolo_attn.diagnose.data import load_data
from yolo_attn.diagnose.evaluate import COCO_AREAS
from yolo_attn.scoring import SCORERS

NC, KPT = 4, (4, 3)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Each task's synthetic shapes: 6 validation images of 64 x 64 (and 4 training ones)."""
    root = tmp_path_factory.mktemp("dx_tasks")
    return {t: write_dataset(root / t, ShapesConfig(n_train=4, n_val=6, imgsz=64, min_size=14, max_size=40), task=t)
            for t in task_eval.TASKS}


def _letterboxed(split, i, xy):
    return np.asarray(xy, dtype=np.float64) * split.scale[i] + split.pad[i]


def _perfect_rows(task, split, i, gt_objs, size, nm):
    """Raw head rows (4 + nc + extra per object) that predict image ``i``'s objects exactly, in letterboxed pixels,
    and (segment) the prototypes whose masks are the label polygons."""
    from pycocotools import mask as mask_utils

    rows, protos = [], np.full((nm, size, size), -1.0, dtype=np.float32)
    for j, a in enumerate(gt_objs):
        x, y, w, h = a["bbox"]
        (x1, y1), (x2, y2) = _letterboxed(split, i, [[x, y], [x + w, y + h]])
        cls = np.eye(NC)[a["category_id"] - 1] * 0.9
        if task == "obb":
            xc, yc, rw, rh, angle = a["rbox"]
            box = [*_letterboxed(split, i, [xc, yc]), rw * split.scale[i], rh * split.scale[i]]
            rows.append([*box, *cls, angle])
            continue
        box = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        if task == "pose":
            k = np.asarray(a["yolo_keypoints"], dtype=np.float64).reshape(KPT)
            pts = _letterboxed(split, i, k[:, :2] * [split.gt[i].width, split.gt[i].height])
            rows.append([*box, *cls, *np.c_[pts, np.ones(len(pts))].reshape(-1)])
            continue
        poly = _letterboxed(split, i, np.reshape(a["segmentation"][0], (-1, 2))).reshape(-1).tolist()
        protos[j][mask_utils.decode(mask_utils.frPyObjects([poly], size, size))[..., 0] > 0] = 1.0
        rows.append([*box, *cls, *np.eye(len(protos))[j]])
    return rows, protos


class _Perfect(torch.nn.Module):
    """A stand-in model whose head output predicts each image's labelled objects exactly (raw, before NMS)."""

    def __init__(self, task, split):
        super().__init__()
        self.task, gt = task, SCORERS[task].ground_truth(split.gt, {k: str(k) for k in range(NC)})
        size, by_image = split.images.shape[-1], {}
        for a in gt["annotations"]:
            by_image.setdefault(a["image_id"] - 1, []).append(a)
        nm = max(1, max(len(v) for v in by_image.values()))
        made = [_perfect_rows(task, split, i, by_image.get(i, []), size, nm) for i in range(len(split))]
        width = max(len(r[0]) for r, _p in made if r) if any(r for r, _p in made) else 0
        n = max(1, max(len(r) for r, _p in made))
        self.rows = torch.zeros(len(split), width, n)
        for i, (r, _p) in enumerate(made):
            if r:
                self.rows[i, :, : len(r)] = torch.tensor(r, dtype=torch.float32).T
        self.protos = torch.stack([torch.from_numpy(p) for _r, p in made])
        self.images = split.images

    def forward(self, x):
        at = next(i for i in range(len(self.images)) if torch.equal(self.images[i], x[0]))
        y = self.rows[at : at + len(x)]
        return ((y, self.protos[at : at + len(x)]), None) if self.task == "segment" else (y, None)


@pytest.mark.parametrize("task, imgsz", [("segment", 64), ("pose", 96), ("obb", 96)])
def test_a_perfect_prediction_scores_1_in_every_range_and_a_moved_one_less(shapes, monkeypatch, task, imgsz):
    """The labelled objects predicted exactly (through NMS, the letterbox's mapping back, the masks' assembly by
    Ultralytics' functions) score 1 in every area range that holds objects; the same predictions moved score less."""
    data = load_data(shapes[task], imgsz, need_train=False, task=task)
    head = {"task": task, "nc": NC, "end2end": False, "kpt_shape": KPT if task == "pose" else None}
    monkeypatch.setattr(task_eval, "export_head", lambda model: head)
    model = _Perfect(task, data.val)
    areas = {k: COCO_AREAS[k] for k in ("small", "medium", "large")}
    ev = task_eval.evaluate_task(task, model, data.val, data.names, areas)
    assert ev.map == pytest.approx(1.0) and ev.map50 == pytest.approx(1.0)
    held = [k for k, a in ev.areas.items() if a.n_gt]
    assert len(held) >= 2 and all(ev.areas[k].ap == pytest.approx(1.0) for k in held)
    assert all(ev.areas[k].ar == pytest.approx(1.0) for k in held)
    model.rows[:, :2] += 8.0  # every box (mask crop, keypoints' box) 8 letterboxed pixels off
    if task == "pose":
        model.rows[:, 4 + NC :: 3] += 8.0  # and every keypoint (OKS with sigmas 1 / K is lenient)
    if task == "segment":
        model.protos = torch.roll(model.protos, 4, dims=-1)
    moved = task_eval.evaluate_task(task, model, data.val, data.names, areas)
    assert moved.map < 0.9


def test_coco_matching_by_area_range_is_cocoevals():
    """The area ranges of the rotated-box evaluation (COCO's matching done here) follow COCOeval's rules: with the
    box IoU it gives pycocotools' own AP and AR of every range, on random boxes of every size."""
    from yolo_attn.diagnose.evaluate import coco_by_area
    from yolo_attn.scoring.cocoeval import _iou_xywh

    rng = np.random.default_rng(0)
    gt = {"images": [{"id": i, "width": 400, "height": 400} for i in range(1, 9)],
          "categories": [{"id": 1}, {"id": 2}], "annotations": []}
    dets = []
    for i in range(1, 9):
        for _ in range(6):
            x, y, s = *rng.uniform(0, 300, 2), rng.choice([12.0, 50.0, 120.0]) * rng.uniform(0.8, 1.2)
            c = int(rng.integers(1, 3))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": c,
                                      "bbox": [x, y, s, s], "area": s * s, "iscrowd": 0})
            for _ in range(2):  # a near copy (some shrink or grow across a range's bound) and a stray box
                f = rng.uniform(0.7, 1.3)
                dets.append({"image_id": i, "category_id": c, "bbox": [x + rng.normal(0, 3), y, s * f, s],
                             "score": float(rng.uniform())})
            dets.append({"image_id": i, "category_id": c, "bbox": [*rng.uniform(0, 300, 2), *rng.uniform(8, 130, 2)],
                         "score": float(rng.uniform())})
    box_iou = lambda d, g: _iou_xywh(np.array([x["bbox"] for x in d]), np.array([a["bbox"] for a in g]))  # noqa: E731
    areas = {"all": COCO_AREAS["all"], "small": COCO_AREAS["small"], "medium": COCO_AREAS["medium"],
             "large": COCO_AREAS["large"], "custom": (30.0**2, 70.0**2)}
    cocoeval_of = coco_by_area(gt, dets, areas, "bbox", max_det=100)
    mine = task_eval._matched_by_area(gt, dets, box_iou, areas, max_det=100)
    for k in areas:
        assert cocoeval_of[k].n_gt == mine[k].n_gt > 0, k
        assert (mine[k].ap, mine[k].ap50, mine[k].ar) == pytest.approx(
            (cocoeval_of[k].ap, cocoeval_of[k].ap50, cocoeval_of[k].ar), abs=1e-9), k
    assert len({round(cocoeval_of[k].ap, 6) for k in areas}) == len(areas)  # the ranges differ: the test can fail


@pytest.mark.parametrize("task, name", [("segment", "yolo11n-seg.yaml"), ("pose", "yolo11n-pose.yaml"),
                                        ("obb", "yolo11n-obb.yaml"), ("segment", "yolo26n-seg.yaml")])
def test_the_evaluator_predicts_and_scores_as_the_validator_the_sweep_logs(shapes, tmp_path, task, name):
    """On square images letterboxed to 1.5 times their size (no rect batches), diagnose's predictions of a model are
    those Ultralytics' validator scores and the sweep logs, mapped back to the images (rows, masks, keypoints: equal),
    and its figure is the scorer's of that log. An end-to-end head (YOLO26) is scored on its one-to-one rows, as the
    sweep validates it."""
    from ultralytics.models import yolo

    from yolo_attn import _ultralytics as bridge
    from types import SimpleNamespace

    from yolo_attn._ultralytics import end_to_end_val_args, load_model_yaml
    from yolo_attn.models import build_model

    cfg = load_model_yaml(name)
    if task == "pose":
        cfg["kpt_shape"] = list(KPT)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = build_model(cfg, nc=NC)
    s = SCORERS[task]
    validator = {"segment": yolo.segment.SegmentationValidator, "pose": yolo.pose.PoseValidator,
                 "obb": yolo.obb.OBBValidator}[task](args=dict(
                     data=str(shapes[task]), imgsz=96, batch=4, rect=False, plots=False, verbose=False, task=task,
                     project=str(tmp_path), name="val", conf=0.001, iou=0.7, max_det=300, device="cpu",
                     **end_to_end_val_args(SimpleNamespace(model=model))))
    log = bridge.record_predictions(validator, log_extras=s.log_extras)
    with contextlib.redirect_stdout(io.StringIO()):
        validator(model=model)
    split = load_data(shapes[task], 96, need_train=False, task=task).val
    model.eval()
    rows, extras = task_eval.predictions(model, split, task, max_det=300)
    assert sorted(rows) == sorted(log.images) and sum(map(len, rows.values())) > 0
    for k, found in rows.items():
        np.testing.assert_allclose(found, log.images[k], atol=1e-4, err_msg=k)
        for name in ("masks", "keypoints"):
            if extras and name in extras[k]:
                mine, theirs = extras[k][name], log.extras[k][name]
                assert (mine == theirs) if name == "masks" else np.allclose(mine, theirs, atol=1e-4), (k, name)
    gt = s.ground_truth(split.gt, {k: str(k) for k in range(NC)})
    logged = s.score(gt, s.detections(gt, log.images, log.extras), 300)
    ev = task_eval.evaluate_task(task, model, split, {k: str(k) for k in range(NC)}, max_det=300)
    assert (ev.map, ev.map50) == pytest.approx((logged.map, logged.map50), abs=1e-9)
