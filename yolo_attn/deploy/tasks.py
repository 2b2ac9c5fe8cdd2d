"""What ``yolo-attn export-check`` compares for each task: the named parts of a head's outputs, the tolerance each
is held to, and the agreement after post-processing.

Every task's head (Ultralytics' Detect, Segment, Pose, OBB, Classify and their YOLO26 forms) is read as
Ultralytics' predictor reads it (:func:`yolo_attn._ultralytics.export.task_outputs`):

- detect: ``(B, 4 + nc, anchors)``: boxes (pixels), class scores;
- segment: the same with the mask coefficients after the scores, and the mask prototypes ``(B, nm, h, w)``;
- pose: the keypoints after the scores (x, y in pixels, and a visibility score where ``kpt_shape`` has 3 values);
- obb: the angle (radians) after the scores; the boxes are centre, width, height (rotated);
- classify: ``(B, nc)`` class probabilities.

A head that is not one of these (YOLOE, YOLO-World, RT-DETR) is refused before anything is exported. An
end-to-end head (YOLO26's, ``end2end``) returns its detections ``(B, max_det, 6 + extra)`` ranked by score: their
rows are paired (PyTorch's confident rows with the exported model's nearest row of the same class) and the same
parts compared on the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

SCORE_TOL = 2e-3  # probabilities (class scores, keypoint visibility): FP32 formats
BOX_TOL = 1e-3  # pixels (boxes, keypoints): a fraction of the image size or of the largest coordinate, whichever is larger
REL_TOL = 1e-3  # unbounded values (mask coefficients, prototypes): a fraction of PyTorch's largest magnitude (at least 1)
ANGLE_TOL = 3e-3  # radians (oriented boxes' angle)
TASKS = ("detect", "segment", "pose", "obb", "classify")

# part -> (how its tolerance scales, the base tolerance)
PARTS = {
    "boxes": ("pixels", BOX_TOL), "scores": ("absolute", SCORE_TOL), "keypoints": ("pixels", BOX_TOL),
    "keypoint visibility": ("absolute", SCORE_TOL), "mask coefficients": ("relative", REL_TOL),
    "prototypes": ("relative", REL_TOL), "angle": ("absolute", ANGLE_TOL), "probabilities": ("absolute", SCORE_TOL),
}


@dataclass(frozen=True)
class Head:
    """What a model's head returns: its task, class name, class count, whether it is end-to-end, its keypoint shape."""

    task: str = "detect"
    name: str = "Detect"
    nc: int = 80
    end2end: bool = False
    kpt_shape: tuple[int, int] | None = None

    @property
    def n_outputs(self) -> int:
        return 2 if self.task == "segment" else 1

    @property
    def rotated(self) -> bool:
        return self.task == "obb"


def head_of(model, where: str = "model") -> Head:
    """The :class:`Head` of a built model; a ValueError naming ``where`` and the head for a head not checked."""
    from .._ultralytics.export import export_head

    h = export_head(model)
    if h is None:
        layers = getattr(model, "model", None)
        name = type(layers[-1]).__name__ if layers is not None and len(layers) else type(model).__name__
        raise ValueError(f"{where}: export-check compares the outputs of Ultralytics' Detect, Segment, Pose, OBB and "
                         f"Classify heads (and their YOLO26 forms); this model's head is {name}")
    return Head(h["task"], h["head"], h["nc"], h["end2end"], h["kpt_shape"])


def tolerance(part: str, scale: float, imgsz: int) -> float:
    """The largest |difference| allowed for ``part`` whose PyTorch values reach ``scale`` in magnitude."""
    kind, tol = PARTS[part]
    if kind == "pixels":
        return tol * max(imgsz, scale)
    if kind == "relative":
        return tol * max(1.0, scale)
    return tol


@dataclass
class Agreement:
    """Top-1 classes (classify), summed over the images: the same class, or a tie in PyTorch's probabilities."""

    images: int = 0
    same: int = 0

    def __str__(self) -> str:
        return f"top-1 class same on {self.same}/{self.images} images"


@dataclass
class Diffs:
    """The largest |difference| and PyTorch's largest magnitude per part, over every input compared."""

    diff: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, ref: torch.Tensor, exp: torch.Tensor) -> None:
        if not ref.numel():
            self.diff.setdefault(part, 0.0)
            self.scale.setdefault(part, 0.0)
            return
        self.diff[part] = max(self.diff.get(part, 0.0), float((exp - ref).abs().max()))
        self.scale[part] = max(self.scale.get(part, 0.0), float(ref.abs().max()))

    def over(self, imgsz: int) -> list[str]:
        """Each part over its tolerance, in words."""
        out = []
        for part, d in self.diff.items():
            tol = tolerance(part, self.scale[part], imgsz)
            if d > tol:
                out.append(f"{part} {d:.3g} (tolerance {tol:.3g})")
        return out


def extra_parts(extra: torch.Tensor, head: Head, dim: int) -> dict[str, torch.Tensor]:
    """The task's channels after the class scores (along ``dim``) by name."""
    if head.task == "segment":
        return {"mask coefficients": extra}
    if head.task == "obb":
        return {"angle": extra}
    if head.task == "pose" and head.kpt_shape:
        nk, ndim = head.kpt_shape
        idx = torch.arange(nk * ndim)
        out = {"keypoints": extra.index_select(dim, idx[idx % ndim < 2])}
        if ndim == 3:
            out["keypoint visibility"] = extra.index_select(dim, idx[idx % ndim == 2])
        return out
    return {}


def raw_parts(pred: torch.Tensor, head: Head) -> dict[str, torch.Tensor]:
    """The parts of a (not end-to-end) head's output ``(B, 4 + nc + extra, anchors)``, or of Classify's ``(B, nc)``."""
    if head.task == "classify":
        return {"probabilities": pred}
    return {"boxes": pred[:, :4], "scores": pred[:, 4:4 + head.nc], **extra_parts(pred[:, 4 + head.nc:], head, 1)}


def row_parts(rows: torch.Tensor, head: Head) -> dict[str, torch.Tensor]:
    """The parts of detection rows ``(n, 6 + extra)``: boxes, score, the task's channels (the class is matched)."""
    return {"boxes": rows[:, :4], "scores": rows[:, 4], **extra_parts(rows[:, 6:], head, 1)}


def pair_rows(ref: torch.Tensor, exp: torch.Tensor, confident: float) -> tuple[torch.Tensor, torch.Tensor]:
    """End-to-end rows: each of PyTorch's rows scoring above ``confident`` with the exported model's row of the same
    class whose box is nearest (largest coordinate difference); ``(ref rows, exp rows)`` of the pairs."""
    ref = ref[ref[:, 4] > confident]
    if not len(ref) or not len(exp):
        return ref[:0], exp[:0]
    dist = (ref[:, None, :4] - exp[None, :, :4]).abs().amax(-1)
    dist[ref[:, None, 5] != exp[None, :, 5]] = float("inf")
    best = dist.argmin(1)
    keep = torch.isfinite(dist.gather(1, best[:, None]).squeeze(1))
    return ref[keep], exp[best[keep]]


def top1_agreement(ref: torch.Tensor, exp: torch.Tensor, margin: float) -> Agreement:
    """Classify: per image, the exported model's top class is PyTorch's, or scores within ``margin`` of PyTorch's top."""
    ref_top = ref.max(1).values
    exp_cls = exp.argmax(1)
    same = ref.gather(1, exp_cls[:, None]).squeeze(1) >= ref_top - margin
    return Agreement(images=len(ref), same=int(same.sum()))
