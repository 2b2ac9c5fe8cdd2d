"""Pose (``task=pose``): rows ``cls xc yc w h`` then ``kpt_shape[0]`` keypoints of ``kpt_shape[1]`` numbers each
(``x y`` or ``x y visibility``), all normalised but the visibility.

The dataset YAML names ``kpt_shape: [K, D]`` (D 2 or 3) and, for flipped training images, ``flip_idx``: the
index each keypoint takes in a mirrored image (a permutation of 0..K-1; without it Ultralytics turns flips off).
Visibility is COCO's: 0 not labelled, 1 labelled but hidden, 2 visible.
"""

from __future__ import annotations

import re

import numpy as np

from ._base import POINT_TOLERANCE, TaskData, in_unit, xywh_corners

VISIBILITY = (0.0, 1.0, 2.0)
SHAPE_KEYPOINTS = ("top", "right", "bottom", "left")  # make-shapes: the shape's extreme points, in this order


def _ints(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def _sigmas_ok(sigmas, n: int) -> bool:
    """Whether ``kpt_oks_sigmas`` is ``n`` positive numbers (as Ultralytics' pose validator flattens and checks it)."""
    try:
        s = np.asarray(sigmas, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return False
    return len(s) == n and bool((s > 0).all()) and bool(np.isfinite(s).all())


class Pose(TaskData):
    name = "pose"
    objects = "poses"
    suffix = "pose"

    def kpt_shape(self) -> tuple[int, int] | None:
        """``(K, D)`` when the YAML's ``kpt_shape`` is valid, else None."""
        shape = self.data.get("kpt_shape")
        if _ints(shape) and len(shape) == 2 and shape[0] > 0 and shape[1] in (2, 3):
            return shape[0], shape[1]
        return None

    def rows_readable(self) -> bool:
        return self.kpt_shape() is not None

    def yaml_problems(self):
        shape = self.kpt_shape()
        if shape is None:
            return [("fatal", f"kpt_shape must be [number of keypoints, 2 or 3] (x,y or x,y,visibility), got "
                              f"{self.data.get('kpt_shape')!r}")]
        if not _sigmas_ok(self.data.get("kpt_oks_sigmas", [1.0] * shape[0]), shape[0]):
            return [("fatal", f"kpt_oks_sigmas must be {shape[0]} positive numbers, one per keypoint of kpt_shape "
                              f"{list(shape)} (the OKS sigma of each, which scoring reads), got "
                              f"{self.data['kpt_oks_sigmas']!r:.80}")]
        flip = self.data.get("flip_idx")
        if flip is None:
            return [("warning", "no flip_idx: Ultralytics turns off the left-right (and up-down) flip augmentation")]
        if not _ints(flip) or len(flip) != shape[0]:
            return [("fatal", f"flip_idx must be a list of {shape[0]} keypoint indices (one per keypoint of "
                              f"kpt_shape {list(shape)}), got {flip!r}")]
        if sorted(flip) != list(range(shape[0])):
            return [("fatal", f"flip_idx {flip} is not a permutation of 0..{shape[0] - 1}: a mirrored image would "
                              "lose or repeat keypoints")]
        if any(flip[flip[i]] != i for i in range(len(flip))):
            return [("warning", f"flip_idx {flip} does not undo itself (flip_idx[flip_idx[i]] != i): a left-right "
                                "pair should swap both ways")]
        return []

    def columns_problem(self, n: int) -> str | None:
        shape = self.kpt_shape()
        if shape is None:
            return "kpt_shape of the dataset YAML is not valid: rows cannot be read"
        want = 5 + shape[0] * shape[1]
        if n != want:
            return f"expected 'cls xc yc w h' and {shape[0]} keypoints of {shape[1]} numbers ({want} columns, " \
                   f"kpt_shape {list(shape)}), got {n}"
        return None

    def row_box(self, rep, where, line, vals):
        k, d = self.kpt_shape()
        box = np.array(vals[1:5])
        kpts = np.array(vals[5:]).reshape(k, d)
        if not in_unit(rep, where, line, box, "box coordinates"):
            return None
        if not in_unit(rep, where, line, kpts[:, :2].reshape(-1), "keypoint x,y", POINT_TOLERANCE):
            return None
        if d == 3 and not np.isin(kpts[:, 2], VISIBILITY).all():
            bad = sorted({f"{v:g}" for v in kpts[:, 2] if v not in VISIBILITY})
            rep.add("fatal", where, f"keypoint visibility must be 0 (not labelled), 1 (hidden) or 2 (visible), got "
                                    f"{', '.join(bad)}: {line.strip()!r}")
            return None
        return xywh_corners(box)

    def file_problem(self, widths):
        return None

    # ---- make-shapes ------------------------------------------------------------------------------------
    def label_text(self, shapes, n: int) -> str:
        from ..shapes import extremes

        rows = []
        for sh in shapes:
            c, x, y, w, h = sh.yolo_box(n)
            kpts = "".join(f" {px / n:.6f} {py / n:.6f} 2" for px, py in extremes(sh))
            rows.append(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}{kpts}\n")
        return "".join(rows)

    def yaml_lines(self) -> str:
        names = ", ".join(SHAPE_KEYPOINTS)
        flip = flip_index(list(SHAPE_KEYPOINTS))
        return f"# keypoints: {names} (the shape's extreme points)\nkpt_shape: [{len(SHAPE_KEYPOINTS)}, 3]\n" \
               f"flip_idx: [{', '.join(map(str, flip))}]\n"


_SIDES = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _mirror(name: str) -> str | None:
    """``name`` with its left/right word swapped (``left_eye`` -> ``right_eye``, ``L-knee`` -> ``R-knee``),
    the name itself when it names no side."""
    parts = re.split(r"([^A-Za-z]+|(?<=[a-z])(?=[A-Z]))", name)  # words, separators kept; camelCase split
    out = []
    for p in parts:
        side = _SIDES.get(p.lower())
        out.append(p if side is None else (side.upper() if p.isupper() else side.capitalize() if p[0].isupper()
                                           else side))
    return "".join(out)


def flip_index(names: list[str]) -> list[int] | None:
    """``flip_idx`` from keypoint names (each left one swapped with its right one, the others kept), or None when a
    name's mirror is missing or no name says left or right (the pairing cannot be known)."""
    index = {n: i for i, n in enumerate(names)}
    flip = [index.get(_mirror(n)) for n in names]
    if None in flip or flip == list(range(len(names))) and len(names) > 1:
        return None
    return flip


def keypoint_text(values, w: float, h: float) -> str | None:
    """`` x y v`` of every keypoint of a COCO ``keypoints`` list (x, y, v triplets in pixels), normalised and clipped;
    a keypoint not labelled (v 0) is ``0 0 0``. None when the list is malformed."""
    if len(values) % 3:
        return None
    out = []
    for x, y, v in zip(values[0::3], values[1::3], values[2::3]):
        if v not in VISIBILITY:
            return None
        x, y = (0.0, 0.0) if v == 0 else (min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0))
        out.append(f" {x:.6f} {y:.6f} {int(v)}")
    return "".join(out)
