"""What the diagnosis measures in the models of each Ultralytics task, and which sections do not apply there.

Two kinds of section:

* those that score the model's predictions on the diagnosis's own letterboxed images -- *fit* (train against
  validation), *sizes* (by object size) and *reliance* (the score with attention knocked out) -- use an evaluator
  of the task's own metric, the one its sweep compares: COCO box mAP for detect (:mod:`.evaluate`), mask,
  keypoint (OKS) and rotated-box mAP50-95 for segment, pose and obb (:mod:`.task_eval`, through the sweep's own
  scorers; never the box mAP of their detection branch), top-1 accuracy for classify (:func:`evaluate_classes`; it
  has no objects, so no *sizes*). A task with none of these leaves those sections out with the reason;
* those that measure the learned function -- the effective receptive field at the head's inputs, the gate
  statistics, the gate-importance consistency and the smoothness -- run for every task, on the output its head gives:
  the boxes and class scores of every anchor (detect, and the detection branch of a segment, pose or obb head:
  its first 4 + nc rows, without mask coefficients, keypoints or angle), or the class probabilities (classify).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

SECTIONS = ("fit", "sizes", "erf", "gates", "reliance", "consistency", "smoothness")
SCORED = ("fit", "sizes", "reliance")  # the sections that score predictions


def _not_scored(task: str) -> dict[str, str]:  # a task no evaluator scores (none today; kept for a new task)
    from ..scoring import SCORERS

    metric = SCORERS[task].metric if task in SCORERS else f"{task} metric"
    why = (f"it scores predictions, and diagnose has no evaluator of the {metric} a {task} model is compared by "
           "(it scores boxes only; the box mAP of the detection branch is not that metric)")
    return {s: why for s in SCORED}


@dataclass(frozen=True)
class TaskView:
    """A task as the diagnosis sees it: the sections left out (section -> why), the evaluator of its metric (None:
    none), and whether its head outputs class probabilities (classify) instead of boxes and class scores."""

    task: str
    skipped: dict[str, str] = field(default_factory=dict)
    evaluate: Optional[Callable] = None  # evaluate(model, split, names, areas) -> Evaluation
    probabilities: bool = False
    metric: str = "mAP50-95"  # what the evaluator's ``map`` is, in words
    object_areas: Optional[Callable] = None  # object_areas(split, names) -> areas its ranges compare; None: the boxes'
    loss: bool = False  # whether the fit section adds Ultralytics' detection loss (detect models)

    def applies(self, section: str) -> bool:
        return section not in self.skipped

    def class_scores(self, model, x: torch.Tensor) -> torch.Tensor:
        """``(B, nc, A)``: every anchor's class scores, or ``(B, nc, 1)``: the class probabilities."""
        from .evaluate import detect_output, head_output

        return head_output(model, x)[:, :, None] if self.probabilities else detect_output(model, x)[:, 4:]

    def output(self, model, x: torch.Tensor) -> torch.Tensor:
        """What the smoothness section differentiates: boxes (divided by the image size) and class scores of every
        anchor, or the class probabilities."""
        from .evaluate import detect_output, head_output

        if self.probabilities:
            return head_output(model, x)
        y = detect_output(model, x)
        return torch.cat((y[:, :4] / x.shape[-1], y[:, 4:]), 1)


def task_view(task: str) -> TaskView:
    """The :class:`TaskView` of an Ultralytics task."""
    from functools import partial

    from ..scoring import SCORERS
    from . import task_eval
    from .evaluate import evaluate

    if task == "detect":
        return TaskView("detect", {}, evaluate, loss=True)
    if task == "classify":
        return TaskView("classify", {"sizes": "a classification image has no objects: there are no object sizes"},
                        evaluate_classes, True, "top-1 accuracy")
    if task in task_eval.TASKS:
        return TaskView(task, {}, task_eval.evaluator(task), False, SCORERS[task].metric,
                        partial(task_eval.object_areas, task))
    return TaskView(task, _not_scored(task))


def forward_only(model, images: torch.Tensor, batch: int = 32) -> None:
    """Run the model over ``images`` (for hooks such as the gate recorder), scoring nothing."""
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(images[i : i + batch])


@torch.no_grad()
def evaluate_classes(model, split, names: dict, areas=None):
    """Top-1 (``map``) and top-5 (``map50``) accuracy of the class probabilities on ``split``, each image's class
    being ``split.image_class``; one area 'all' holding the per-image outcomes for the bootstrap."""
    from ..scoring.classify import TOP_K, ClassArrays
    from .evaluate import AreaScore, Evaluation, head_output

    probs = torch.cat([head_output(model, split.images[i : i + 32]).float() for i in range(0, len(split), 32)])
    ranked = torch.argsort(-probs, dim=1, stable=True)[:, :TOP_K].numpy()
    truth = np.asarray(split.image_class)
    arrays = ClassArrays(ranked[:, 0] == truth, (ranked == truth[:, None]).any(1))
    top1, top5 = float(arrays.top1.mean()), float(arrays.top5.mean())
    return Evaluation(top1, top5, {"all": AreaScore(top1, top5, float("nan"), len(truth), arrays)})
