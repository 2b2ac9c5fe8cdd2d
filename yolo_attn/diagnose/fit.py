"""Fit regime: the same evaluator on the training and the validation images; the gap says over- or underfit."""

from __future__ import annotations

from dataclasses import dataclass

from .data import DiagData
from .evaluate import Evaluation, evaluate


@dataclass
class FitResult:
    train_map: float
    val_map: float
    train_map50: float
    val_map50: float

    @property
    def gap(self) -> float:
        return self.train_map - self.val_map


def fit_regime(model, data: DiagData, val: Evaluation) -> FitResult:
    """Train mAP on ``data.train`` (a subset of the training images) against the validation evaluation."""
    train = evaluate(model, data.train, data.names) if data.train is not None else val
    return FitResult(train.map, val.map, train.map50, val.map50)
