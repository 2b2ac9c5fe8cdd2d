"""AP and AR by object size: COCO's small / medium / large and the dataset's own size tertiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import Split
from .evaluate import COCO_AREAS, Evaluation

SIZE_CLASSES = ("small", "medium", "large")
TERTILES = ("T1", "T2", "T3")


def size_ranges(split: Split, areas: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """COCO's area ranges plus the tertiles of this split's object ``areas`` (original pixels; None: its boxes'
    areas, as a detection evaluation compares them)."""
    if areas is None:
        areas = np.array([w * h * g.width * g.height for g in split.gt for _c, _x, _y, w, h in g.labels.reshape(-1, 5)])
    out = {k: COCO_AREAS[k] for k in SIZE_CLASSES}
    if areas.size >= 3:
        q1, q2 = np.quantile(areas, [1 / 3, 2 / 3])
        out.update({"T1": (0.0, float(q1)), "T2": (float(q1), float(q2)), "T3": (float(q2), 1e10)})
    return out


def size_histogram(split: Split, bins: int = 10, areas: np.ndarray | None = None) -> dict:
    """Histogram of sqrt(object area) in original pixels (the dataset's own sense of small and large): ``areas``, or
    None: the boxes'."""
    if areas is None:
        areas = [w * h * g.width * g.height for g in split.gt for _c, _x, _y, w, h in g.labels.reshape(-1, 5)]
    side = np.sqrt(np.asarray(areas, dtype=float))
    counts, edges = np.histogram(side, bins=bins) if side.size else (np.zeros(0), np.zeros(0))
    return {"sqrt_area_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


@dataclass
class SizeScore:
    range: str
    ap: float
    ap50: float
    ar: float
    n_gt: int


def by_size(ev: Evaluation) -> list[SizeScore]:
    return [SizeScore(k, s.ap, s.ap50, s.ar, s.n_gt) for k, s in ev.areas.items() if k != "all"]
