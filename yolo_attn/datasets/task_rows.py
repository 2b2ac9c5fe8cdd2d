"""What the LabelMe and CVAT importers share for ``--task pose`` and ``--task obb``: the dataset YAML's keypoint keys,
the pose row of one object, the oriented-box row of four corners, and CVAT's rotated box as its corners.

Pose rows are ``cls xc yc w h`` then ``x y v`` per keypoint (normalised; ``v``: 0 not labelled, 1 labelled but not
visible, 2 visible), in the order of the keypoint names; OBB rows are ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the corners
normalised and clipped to the image (Ultralytics refuses coordinates outside [0, 1]).
"""

from __future__ import annotations

import math

from .importers import Classes, Skips, yolo_row
from .tasks.pose import flip_index, keypoint_text
from .tasks.segment import polygon_row

POSE_OBB_TASKS = ("pose", "obb")


def keypoint_names(names: list[str] | None, source: str) -> list[str]:
    """The keypoint names in order, checked: at least one, no repeats."""
    names = [str(n).strip() for n in names or []]
    if not names:
        raise ValueError(f"{source}: --task pose needs the keypoint names in order (--keypoints NAME ...)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup or "" in names:
        raise ValueError(f"--keypoints: each name once and none empty (repeated: {', '.join(dup) or 'an empty name'})")
    return names


def pose_classes(names: dict[int, str], kpts: list[str], skips: Skips) -> Classes:
    """The classes with ``kpt_shape: [K, 3]`` and ``flip_idx`` from the names' left/right pairs.

    Without such pairs ``flip_idx`` is left out with a warning, as the COCO import does: Ultralytics then trains
    without horizontal flips (it says so itself) rather than flipping the image while keeping each keypoint's
    meaning, which an identity ``flip_idx`` would do (a left eye would become a right one)."""
    keys = {"kpt_shape": [len(kpts), 3]}
    flip = flip_index(kpts)
    if flip is None:
        skips.warnings.append(f"flip_idx left out: the keypoint names ({', '.join(kpts[:6])}"
                              f"{', ...' if len(kpts) > 6 else ''}) do not pair every left one with a right one; "
                              "Ultralytics trains without flips (add flip_idx to data.yaml if the keypoints have mirrors)")
    else:
        keys["flip_idx"] = flip
    return Classes(names, keys)


def pose_row(c: int, box, keypoints: dict[str, tuple[float, float, int]], kpts: list[str], wh) -> str | None:
    """The pose row of one object: pixel ``box`` (x1, y1, x2, y2; None: the labelled keypoints' extent), its keypoints
    by name (x, y, visibility 1 or 2; the names not there are 0 0 0); None when the box has no area in the image."""
    if box is None:
        pts = [(x, y) for x, y, v in keypoints.values() if v]
        if not pts:
            return None
        box = (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))
    row = yolo_row(c, *box, *wh)
    if row is None:
        return None
    flat = []
    for name in kpts:
        flat += list(keypoints.get(name, (0.0, 0.0, 0)))
    return row + keypoint_text(flat, *wh)


def obb_row(c: int, corners, w: float, h: float) -> str | None:
    """The OBB row of four pixel corners (clipped to the image); None when nothing of it is inside."""
    pts = [(min(max(x, 0.0), w), min(max(y, 0.0), h)) for x, y in corners]
    if len({x for x, _ in pts}) < 2 or len({y for _, y in pts}) < 2:
        return None
    return polygon_row(c, pts, w, h).rstrip("\n")


def rotated_corners(x1: float, y1: float, x2: float, y2: float, degrees: float) -> list[tuple[float, float]]:
    """The corners of box (x1, y1, x2, y2) turned by ``degrees`` about its centre, clockwise on the image (y down),
    as CVAT draws a box's ``rotation``."""
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    out = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        dx, dy = x - cx, y - cy
        out.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
    return out
