"""Instance segmentation (``task=segment``): rows ``cls x1 y1 x2 y2 ...``, one polygon per object, normalised.

Ultralytics reads a row of more than 6 columns as a polygon (its x,y pairs), refuses a segment dataset with
box rows (no mask), and drops a file whose polygon has an odd number of coordinates as corrupt.
"""

from __future__ import annotations

import numpy as np

from ._base import PolygonRows, polygon_columns


class Segment(PolygonRows):
    name = "segment"
    objects = "polygons"
    suffix = "seg"

    def columns_problem(self, n: int) -> str | None:
        return polygon_columns(n, "segment")

    def label_text(self, shapes, n: int) -> str:
        from ..shapes import outline

        return "".join(polygon_row(sh.cls, outline(sh), n, n) for sh in shapes)


def polygon_row(c: int, points, w: float, h: float) -> str:
    """The segment row of polygon ``points`` (pixels) in a ``w`` x ``h`` image, clipped to it; a line."""
    xy = "".join(f" {min(max(x / w, 0.0), 1.0):.6f} {min(max(y / h, 0.0), 1.0):.6f}" for x, y in points)
    return f"{c}{xy}\n"


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon for an object drawn in several parts (``(k, 2)`` arrays): each next part joins the polygon at
    its nearest pair of vertices and goes round and back there (a zero-width cut), so one row holds them all."""
    merged = parts[0]
    for part in parts[1:]:
        d = ((merged[:, None, :] - part[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(d.argmin()), d.shape)
        loop = np.concatenate([part[j:], part[: j + 1]])
        merged = np.concatenate([merged[: i + 1], loop, merged[i:]])
    return merged
