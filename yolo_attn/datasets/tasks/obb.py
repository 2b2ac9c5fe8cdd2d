"""Oriented boxes (``task=obb``): rows ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four corners normalised.

Ultralytics reads the corners as a 4-point polygon and refuses an OBB dataset with box rows.
"""

from __future__ import annotations

from ._base import PolygonRows, polygon_columns


class OBB(PolygonRows):
    name = "obb"
    objects = "rotated boxes"
    suffix = "obb"
    coordinates = "corner coordinates"

    def columns_problem(self, n: int) -> str | None:
        if n == 5:
            return polygon_columns(n, "obb")
        return polygon_columns(n, "obb", points=4)

    def keep_inside(self, cls, r, c, s):
        from ..shapes import rotated_box_offsets

        return rotated_box_offsets(cls, r, c, s)

    def label_text(self, shapes, n: int) -> str:
        from ..shapes import rotated_box_offsets
        from .segment import polygon_row

        return "".join(polygon_row(sh.cls, [(sh.cx + x, sh.cy + y) for x, y in rotated_box_offsets(
            sh.cls, sh.r, sh.c, sh.s)], n, n) for sh in shapes)
