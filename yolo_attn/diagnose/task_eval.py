"""The evaluator of the segment, pose and obb metrics on a diagnosis split: mask, keypoint (OKS) and rotated-box
mAP50-95, by area range, scored by the sweep's own scorers (:mod:`yolo_attn.scoring`).

The model runs on the split's letterboxed images; its raw output goes through Ultralytics' NMS (the bridge's
:func:`~yolo_attn._ultralytics.export.detections`; an end-to-end head (YOLO26) gives its one-to-one branch's rows,
as the sweep validates it, only filtered by confidence: :func:`~yolo_attn._ultralytics.export.one_to_one`) with the
settings of :mod:`.evaluate` (confidence 0.001, IoU 0.7, at most 100 detections per image, a box for every class
above the confidence, as Ultralytics' validators score). Each image's
predictions are mapped back to its original pixels as Ultralytics' validator maps those the sweep logs: boxes and
keypoints through the letterbox's scale and padding (clipped to the image), masks assembled at the input's
resolution and scaled back by Ultralytics' own functions (the bridge's
:func:`~yolo_attn._ultralytics.export.masks_in_original`), rotated boxes ``xc yc w h angle`` scaled (the angle
kept). The scorer of the task then writes them as COCO records exactly as for a sweep's prediction log
(``log_extras``, ``detections``) against the ground truth of the split's label rows (``ground_truth``).

Area ranges: masks and keypoints by pycocotools' COCOeval (``segm``, ``keypoints``) with every range at once
(:func:`.evaluate.coco_by_area`); rotated boxes by COCO's matching with Ultralytics' probabilistic IoU, one range at
a time (:func:`yolo_attn.scoring.cocoeval.evaluate_matched` with ``area_rng``: COCO's rules for ignored objects and
detections). An object's area is its scorer's: the polygon's for masks, the box's times 0.53 for keypoints, the
rotated box's for obb.
"""

from __future__ import annotations

import numpy as np
import torch

from .._ultralytics.export import detections, export_head, masks_in_original, one_to_one, task_outputs
from ..scoring import SCORERS
from ..scoring.cocoeval import COCOEVAL_IOU_TYPES, evaluate_matched
from .data import Split
from .evaluate import CONF, COCO_AREAS, IOU, MAX_DET, AreaScore, Evaluation, coco_by_area

TASKS = ("segment", "pose", "obb")  # the tasks this module scores


def _to_original(xy: np.ndarray, split: Split, i: int, clip: bool = True) -> np.ndarray:
    """Points ``(..., 2)`` in letterboxed pixels of image ``i`` -> its original pixels (clipped to the image)."""
    r, (left, top), g = float(split.scale[i]), split.pad[i], split.gt[i]
    out = (xy - np.array([left, top])) / r
    if clip:
        out[..., 0], out[..., 1] = out[..., 0].clip(0, g.width), out[..., 1].clip(0, g.height)
    return out


def _boxes(p: np.ndarray, split: Split, i: int) -> np.ndarray:
    """``x1 y1 x2 y2 conf cls`` in original pixels of NMS rows ``p`` (xyxy in letterboxed pixels first)."""
    xyxy = _to_original(p[:, :4].reshape(-1, 2, 2), split, i).reshape(-1, 4)
    return np.concatenate([xyxy, p[:, 4:6]], 1)


def _segment(p: torch.Tensor, split: Split, i: int, extra, head: dict) -> tuple[np.ndarray, dict]:
    g = split.gt[i]
    masks = masks_in_original(extra, p[:, 6:], p[:, :4], split.images.shape[-1], (g.height, g.width),
                              split.ratio_pad(i))
    return _boxes(p.numpy().astype(np.float64), split, i), {"masks": masks.numpy()}


def _pose(p: torch.Tensor, split: Split, i: int, extra, head: dict) -> tuple[np.ndarray, dict]:
    q = p.numpy().astype(np.float64)
    n, dims = head["kpt_shape"]
    points = q[:, 6:].reshape(len(q), n, dims).copy()
    points[..., :2] = _to_original(points[..., :2], split, i)
    return _boxes(q, split, i), {"keypoints": points}


def _obb(p: torch.Tensor, split: Split, i: int, extra, head: dict) -> tuple[np.ndarray, dict]:
    """``xc yc w h angle conf cls`` in original pixels, from NMS rows ``xc yc w h conf cls angle``."""
    q = p.numpy().astype(np.float64)
    centre = _to_original(q[:, :2], split, i, clip=False)
    return np.concatenate([centre, q[:, 2:4] / float(split.scale[i]), q[:, 6:7], q[:, 4:6]], 1), {}


_ROWS = {"segment": _segment, "pose": _pose, "obb": _obb}  # one image's NMS rows -> the rows and outputs logged


@torch.no_grad()
def predictions(model, split: Split, task: str, conf: float = CONF, max_det: int = MAX_DET,
                batch: int = 32) -> tuple[dict, dict]:
    """The model's predictions on ``split`` (NMS at confidence ``conf``, at most ``max_det`` per image) as a sweep's
    prediction log holds them: ``rows`` (image key -> the scorer's rows in original pixels) and ``extras`` (image
    key -> the scorer's ``log_extras`` of the masks or keypoints; None for rotated boxes)."""
    head = export_head(model)
    if head is None or head["task"] != task:
        raise ValueError(f"the model's head is not a {task} head: its {SCORERS[task].metric} cannot be computed")
    s, data = SCORERS[task], {"kpt_shape": head["kpt_shape"], **(split.dataset or {})}
    if head["kpt_shape"] is not None and list(head["kpt_shape"]) != [int(k) for k in data["kpt_shape"]]:
        raise ValueError(f"the model predicts keypoints {list(head['kpt_shape'])} but the dataset's kpt_shape is "
                         f"{list(data['kpt_shape'])}")
    rows, extras = {}, {} if s.log_extras is not None else None
    for start in range(0, len(split), batch):
        with one_to_one(model) as end2end:  # an end-to-end head: its NMS-free rows, as the sweep scores it
            outs = task_outputs(model(split.images[start : start + batch]), task)
        found = detections(outs[0], conf, IOU, max_det, head["nc"], task == "obb", end2end, multi_label=True)
        for j, p in enumerate(found):
            i = start + j
            key = split.gt[i].key
            rows[key], outputs = _ROWS[task](p.float().cpu(), split, i, outs[1][j] if len(outs) > 1 else None, head)
            if extras is not None:
                extras[key] = s.log_extras(outputs, data)
    return rows, extras


def _matched_by_area(gt: dict, dets: list[dict], iou, areas: dict, max_det: int) -> dict[str, AreaScore]:
    """COCO's matching with ``iou`` in each area range (:func:`evaluate_matched`); AR as COCO's: the recall of the
    kept detections, averaged over the thresholds and the categories with objects in the range."""
    out = {}
    for name, rng in areas.items():
        res = evaluate_matched(gt, dets, iou, max_det, None if name == "all" else rng)
        a = res.arrays
        npos = a.n_gt.sum(1)
        if not npos.any():
            out[name] = AreaScore(float("nan"), float("nan"), float("nan"), 0, a)
            continue
        hits = np.stack([(a.tp & ~a.ignore)[:, a.cat == k].sum(1) for k in range(len(npos))])  # (K, T)
        recall = (hits[npos > 0] / npos[npos > 0, None]).mean()
        out[name] = AreaScore(res.map, res.map50, float(recall), int(npos.sum()), a)
    return out


def evaluate_task(task: str, model, split: Split, names: dict[int, str], areas: dict | None = None,
                  conf: float = CONF, max_det: int = MAX_DET) -> Evaluation:
    """``task``'s own mAP50-95 and mAP50 of ``model`` on ``split`` (area 'all') and in every range of ``areas``
    (detections above ``conf``, at most ``max_det`` per image)."""
    s = SCORERS[task]
    rows, extras = predictions(model, split, task, conf, max_det)
    gt = s.ground_truth(split.gt, names)
    dets = s.detections(gt, rows, extras)
    ranges = {"all": COCO_AREAS["all"], **(areas or {})}
    if s.iou_type in COCOEVAL_IOU_TYPES:
        scores = coco_by_area(gt, dets, ranges, s.iou_type, max_det)
    else:
        scores = _matched_by_area(gt, dets, s.iou, ranges, max_det)
    return Evaluation(scores["all"].ap, scores["all"].ap50, scores)


def evaluator(task: str):
    """``evaluate(model, split, names, areas)`` of ``task`` (one of :data:`TASKS`), as :class:`.tasks.TaskView`
    calls it."""
    def evaluate(model, split: Split, names: dict[int, str], areas: dict | None = None) -> Evaluation:
        return evaluate_task(task, model, split, names, areas)

    return evaluate


def object_areas(task: str, split: Split, names: dict[int, str]) -> np.ndarray:
    """Each object's area in original pixels as ``task``'s scorer states it (what its area ranges compare)."""
    return np.array([a["area"] for a in SCORERS[task].ground_truth(split.gt, names)["annotations"]], dtype=float)
