"""Classification: the class probabilities of each image, scored by top-1 (the sweep's metric) and top-5 accuracy.

The validation pass's probabilities are logged image by image by the bridge (``(1, nc)`` per image file); the ground
truth is read here, independently of Ultralytics' dataset objects: an image's class is the folder it lies in
(``DIR/val/<class>/<image>``), looked up among the model's class names. The independent figure counts, per image,
whether the class ranked first (top-1) or among the first five (top-5; all classes when there are fewer) by the
logged probabilities is its folder's class, and averages over the images; Ultralytics' ``ClassifyMetrics.top1`` and
``top5`` rank the very same probabilities, so the two agree but for ties of probabilities, which each side orders
its own way (the report flags a gap above its tolerance).

Each image's two outcomes (:class:`ClassArrays`) are what the image bootstrap resamples: the accuracy of a multiset
of images is the weighted mean of their outcomes (:meth:`ClassArrays.replicates`), with the same image samples for
every model and seed as in the other tasks. In the trial's records the two figures fill the slots the box tasks
fill with mAP: ``map`` is top-1, ``map50`` top-5 (:attr:`Scorer.figures` names them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Scorer

TOP_K = 5  # Ultralytics' top-5


def accuracy_metrics(validator) -> dict[str, float]:
    """Ultralytics' top-1 and top-5 accuracy of a validation pass."""
    m = validator.metrics
    return {"map": float(m.top1), "map50": float(m.top5)}


def read_class_folder(image_file, width: int, height: int) -> tuple[np.ndarray, list[str]]:
    """No box rows, and the name of the folder ``image_file`` lies in: its class."""
    return np.zeros((0, 5)), [Path(image_file).parent.name]


def _ground_truth(images, names) -> dict:
    """Every image with its class (``category_id``: class + 1), by its folder's name among the model's classes."""
    index = {str(v): int(k) for k, v in dict(names).items()}
    out = {"info": {"description": "yolo_attn compare ground truth (classification)"}, "images": [],
           "categories": [{"id": int(k) + 1, "name": str(v)} for k, v in sorted(dict(names).items())]}
    for i, im in enumerate(images, 1):
        folder = (im.segments or [""])[0]
        if folder not in index:
            raise ValueError(f"{im.key}: its class folder {folder!r} is none of the model's classes "
                             f"({', '.join(list(index)[:10])})")
        out["images"].append({"id": i, "file_name": im.key, "width": int(im.width), "height": int(im.height),
                              "category_id": index[folder] + 1})
    return out


def _detections(gt: dict, rows: dict, extras: dict | None = None) -> list[dict]:
    """Per image its five most probable classes (1-based ids) and their probabilities, most probable first (ties:
    the lower class first)."""
    nc = len(gt["categories"])
    out = []
    for im in gt["images"]:
        probs = np.asarray(rows.get(im["file_name"], np.zeros((0, nc))), dtype=np.float64)
        if probs.shape != (1, nc):
            raise ValueError(f"{im['file_name']}: the validation pass logged class probabilities of shape "
                             f"{probs.shape}, expected (1, {nc})")
        top = np.argsort(-probs[0], kind="stable")[:TOP_K]
        out.append({"image_id": im["id"], "category_ids": (top + 1).tolist(), "scores": probs[0, top].tolist()})
    return out


@dataclass
class ClassArrays:
    """Per image (in the ground truth's image order): whether its class was ranked first (``top1``) and among the
    first five (``top5``)."""

    top1: np.ndarray  # (N,) bool
    top5: np.ndarray  # (N,) bool

    @property
    def n_images(self) -> int:
        return len(self.top1)

    def save(self, path: Path) -> None:
        from .._io import atomic_save

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: numpy would append ".npz" to a temporary name
                np.savez_compressed(f, task="classify", top1=self.top1, top5=self.top5)

        atomic_save(path, write)

    @classmethod
    def load(cls, path: Path) -> "ClassArrays":
        from .._io import read_arrays

        z = read_arrays(path)
        return cls(z["top1"].astype(bool), z["top5"].astype(bool))

    def replicates(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-5 and top-1 accuracy of each row of ``weights`` (B x N: how often each image is in the sample)."""
        W = np.atleast_2d(np.asarray(weights, dtype=float))
        n = np.maximum(W.sum(1), 1e-12)
        return W @ self.top5 / n, W @ self.top1 / n


@dataclass
class AccuracyResult:
    """The independent figures (in the slots of mAP: ``map`` top-1, ``map50`` top-5) and the per-image outcomes."""

    map50: float
    map: float
    arrays: ClassArrays


def evaluate(gt: dict, dets: list[dict], max_det: int = 300, **_) -> AccuracyResult:
    """Top-1 and top-5 accuracy of ``dets`` (:func:`_detections`) against ``gt`` (:func:`_ground_truth`)."""
    truth = {im["id"]: im["category_id"] for im in gt["images"]}
    ranked = {d["image_id"]: d["category_ids"] for d in dets}
    missing = [im["file_name"] for im in gt["images"] if im["id"] not in ranked]
    if missing:
        raise ValueError(f"no class probabilities for {len(missing)} image(s), e.g. {missing[0]}")
    top1 = np.array([ranked[i][0] == c for i, c in truth.items()], dtype=bool)
    top5 = np.array([c in ranked[i][:TOP_K] for i, c in truth.items()], dtype=bool)
    if not len(top1):
        return AccuracyResult(0.0, 0.0, ClassArrays(top1, top5))
    return AccuracyResult(float(top5.mean()), float(top1.mean()), ClassArrays(top1, top5))


def replicates(path: Path, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ClassArrays.load(path).replicates(weights)


SCORER = Scorer(task="classify", output="class", iou_type="top-k", ultra=accuracy_metrics,
                read_ground_truth=read_class_folder, ground_truth=_ground_truth, detections=_detections,
                label_of=Path, evaluate=evaluate, replicates=replicates,
                figures=("top-1", "top-5"), metric_name="top-1 accuracy",
                independent_name=("top-1 and top-5 recounted by yolo_attn from the logged class probabilities of every "
                                  "image against its class folder", "recount"),
                columns={"map": "metrics/accuracy_top1", "map50": "metrics/accuracy_top5"})
