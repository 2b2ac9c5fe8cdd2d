"""Scoring a trial's closing validation, one module per Ultralytics task behind one interface (:class:`Scorer`).

Every scorer turns the predictions of the validation pass that scored a trial (held in memory by the bridge's
``PredictionLog``) and the ground truth of the same images into COCO records, scores them with pycocotools'
COCOeval (the computation independent of Ultralytics' own figure) and keeps COCOeval's per-image matching
(:class:`yolo_attn.scoring.cocoeval.EvalArrays`), from which the image bootstrap recomputes the metric on any
multiset of images. So the sweep, its intervals, Holm, ``--plan`` and the report are the same for every task;
what differs is here: which output is scored (boxes, masks, keypoints, rotated boxes), how the ground truth is read
and how the records are written. Rotated boxes have no pycocotools IoU: their scorer names its own (Ultralytics'
probiou) and :func:`yolo_attn.scoring.cocoeval.evaluate_matched` evaluates them by COCO's definition.
Classification is no matching at all: its scorer (:mod:`.classify`) brings its own evaluation (top-1 and top-5
counted from the logged class probabilities against the class folders) and per-image outcomes, which its own
``replicates`` resamples; a trial's arrays file says which scorer wrote it (:func:`image_replicates`).

A task without a scorer is refused before anything trains (:func:`scorer`), never scored as another task.
"""

from __future__ import annotations

from .base import Scorer

__all__ = ["Scorer", "SCORERS", "VAL_ARGS", "image_replicates", "iou_of", "scorer"]


def _scorers() -> dict[str, Scorer]:
    from . import classify, detect, obb, pose, segment

    return {s.task: s for s in (detect.SCORER, segment.SCORER, pose.SCORER, obb.SCORER, classify.SCORER)}


SCORERS = _scorers()
# The settings of the validation pass whose predictions are scored: Ultralytics' own mAP settings, stated
# explicitly (every trial of a sweep, and export-check's validations, run with them).
VAL_ARGS = {"conf": 0.001, "iou": 0.7, "max_det": 300}
NOT_YET: dict[str, str] = {}  # tasks yolo_attn trains but does not score in a comparison yet, and why


def scorer(task: str, where: str = "compare") -> Scorer:
    """The scorer of ``task``; ``ValueError`` naming the task when ``where`` cannot score it (before anything trains)."""
    if task in SCORERS:
        return SCORERS[task]
    why = NOT_YET.get(task, "it is not one of Ultralytics' tasks")
    raise ValueError(f"{where} scores {', '.join(SCORERS)} models; a {task} model cannot be compared yet ({why}). "
                     f"yolo-attn train trains it; its own validation reports Ultralytics' {task} metrics")


def iou_of(iou_type: str):
    """The IoU function of the scorer whose own ``iou_type`` it is (one pycocotools does not compute)."""
    for s in SCORERS.values():
        if s.iou_type == iou_type and s.iou is not None:
            return s.iou
    raise ValueError(f"no scorer computes the IoU {iou_type!r}")


def image_replicates(path, weights):
    """A trial's two figures (``map50``, ``map``) on each image multiset (rows of ``weights``), from its arrays file
    (``eval.npz``) by the scorer that wrote it: the file names its task where it is not COCO's ``EvalArrays`` (every
    file of the box, mask, keypoint and rotated-box tasks)."""
    from .._io import read_arrays

    z = read_arrays(path, only=("task",))  # the task name only: the scorer reads the arrays
    task = str(z["task"]) if "task" in z else "detect"
    return scorer(task, where="the image bootstrap").image_replicates(path, weights)
