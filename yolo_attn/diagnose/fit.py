"""Fit regime: the same evaluator (and Ultralytics' own loss) on training and validation images; the gap says
over- or underfit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _ultralytics
from .data import DiagData, Split
from .evaluate import Evaluation, evaluate


@dataclass
class FitResult:
    train_map: float
    val_map: float
    train_map50: float
    val_map50: float
    train_loss: float | None = None  # box + cls + dfl, batches of 32 (None: the model has no Ultralytics loss)
    val_loss: float | None = None

    @property
    def gap(self) -> float:
        return self.train_map - self.val_map


def targets(split: Split, start: int, stop: int) -> torch.Tensor:
    """(image index, class, xc, yc, w, h) rows of images ``start:stop``, normalised to the letterboxed images."""
    size = split.images.shape[-1]
    rows = []
    for i in range(start, min(stop, len(split))):
        g, r, (left, top) = split.gt[i], split.scale[i], split.pad[i]
        for c, xc, yc, w, h in g.labels.reshape(-1, 5):
            rows.append([i - start, c, (xc * g.width * r + left) / size, (yc * g.height * r + top) / size,
                         w * g.width * r / size, h * g.height * r / size])
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def split_loss(model, split: Split, batch: int = 32) -> float | None:
    """Loss (box + cls + dfl) over the split in batches of ``batch``, batch-size weighted.

    Ultralytics normalises its loss per batch (by the batch's assigned target scores), so the figure depends
    on the batch size; every model and split of a diagnosis uses the same one.
    """
    total, n = 0.0, 0
    for i in range(0, len(split), batch):
        items = _ultralytics.detection_loss(model, split.images[i : i + batch], targets(split, i, i + batch))
        if items is None:
            return None
        b = min(batch, len(split) - i)
        total, n = total + sum(items.values()) * b, n + b
    return total / n if n else None


def fit_regime(model, data: DiagData, val: Evaluation, evaluator=evaluate, loss: bool = True) -> FitResult:
    """Train metric (``evaluator``'s: mAP, or top-1 for classify) and, with ``loss``, Ultralytics' detection loss on
    ``data.train`` (a subset of the training images) against the validation ones."""
    train_split = data.train if data.train is not None else data.val
    train = evaluator(model, train_split, data.names) if data.train is not None else val
    losses = (split_loss(model, train_split), split_loss(model, data.val)) if loss else (None, None)
    return FitResult(train.map, val.map, train.map50, val.map50, *losses)
