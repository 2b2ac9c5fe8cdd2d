"""The data side of each Ultralytics task, one module per task behind one interface (:class:`TaskData`).

``check-data``, ``make-shapes`` and ``import-data`` ask the task's module what differs (label rows, YAML keys,
the synthetic labels, the layout); a new task is a new module here and one line in :data:`TASKS`.

* :mod:`.detect` -- ``cls xc yc w h`` (polygon rows read as their boxes);
* :mod:`.segment` -- ``cls x1 y1 x2 y2 ...`` polygons;
* :mod:`.pose` -- box then ``kpt_shape`` keypoints, ``flip_idx``;
* :mod:`.obb` -- ``cls`` and four corners;
* :mod:`.classify` -- a folder of class folders, no YAML.
"""

from __future__ import annotations

from ._base import TaskData
from .classify import Classify
from .detect import Detect
from .obb import OBB
from .pose import Pose
from .segment import Segment

TASKS: dict[str, type[TaskData]] = {t.name: t for t in (Detect, Segment, Pose, OBB, Classify)}
TASK_NAMES = tuple(TASKS)


def task_data(name: str | None = None, data: dict | None = None) -> TaskData:
    """The data module of task ``name`` (default detection) for a dataset YAML mapping ``data``."""
    name = name or "detect"
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: one of {', '.join(TASKS)}")
    return TASKS[name](data)


def task_of(data: dict, name: str | None = None) -> TaskData:
    """The task a dataset YAML mapping is checked as: ``name`` when given, else pose when it has ``kpt_shape``,
    else detection (a segment or OBB dataset reads as detection too: name the task to check its polygons)."""
    return task_data(name or ("pose" if "kpt_shape" in data else "detect"), data)


__all__ = ["TASKS", "TASK_NAMES", "TaskData", "task_data", "task_of"]
