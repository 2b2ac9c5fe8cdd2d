"""Detection (``task=detect``): rows ``cls xc yc w h``; polygon rows are read as their boxes, as Ultralytics does."""

from __future__ import annotations

from ._base import TaskData


class Detect(TaskData):
    """Boxes. A dataset YAML with ``kpt_shape`` checked as detection: Ultralytics keeps the box of each pose row."""

    def _pose_width(self) -> int | None:
        shape = self.data.get("kpt_shape")
        if isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape):
            return 5 + shape[0] * shape[1]
        return None

    def columns_problem(self, n: int) -> str | None:
        return None if n == self._pose_width() else super().columns_problem(n)

    def row_box(self, rep, where, line, vals):
        if len(vals) == self._pose_width():
            vals = vals[:5]  # Ultralytics drops the keypoints of a pose row for a box task
        return super().row_box(rep, where, line, vals)
