"""What every task's data module provides (:class:`TaskData`), and the row helpers they share.

A task's data module answers, for one Ultralytics task:

* ``check-data``: the dataset YAML's task keys (:meth:`TaskData.yaml_problems`), the column count of a label
  row (:meth:`TaskData.columns_problem`), its coordinates and the box it covers (:meth:`TaskData.row_box`),
  and what one file of rows may not mix (:meth:`TaskData.file_problem`);
* ``make-shapes``: the points a shape's label needs inside the image (:meth:`TaskData.keep_inside`), its label
  rows (:meth:`TaskData.label_text`) and the dataset YAML's task keys (:meth:`TaskData.yaml_lines`).

A dataset of a task that reads a folder of class folders instead of a YAML and label files (classify) says so
with :attr:`TaskData.folder_layout` and brings its own check and writer.
"""

from __future__ import annotations

import numpy as np

Corners = tuple[float, float, float, float]


class TaskData:
    """The detection defaults; each task overrides what differs."""

    name = "detect"
    objects = "boxes"  # what a label row is, in the check's summary
    suffix = ""  # Ultralytics' dataset-name suffix for the task (coco8-seg, coco8-pose): make-shapes' default folder
    folder_layout = False  # a folder of class folders (classify), not a YAML with label files

    def __init__(self, data: dict | None = None):
        self.data = data or {}

    # ---- check-data -------------------------------------------------------------------------------------
    def yaml_problems(self) -> list[tuple[str, str]]:
        """``(severity, message)`` for the task keys of the dataset YAML (``kpt_shape``, ``flip_idx``)."""
        return []

    def rows_readable(self) -> bool:
        """Whether the YAML lets the label rows be read at all (pose: a valid ``kpt_shape``)."""
        return True

    def columns_problem(self, n: int) -> str | None:
        """Why a row of ``n`` columns is malformed for this task, else None."""
        if n == 5 or (n >= 7 and n % 2 == 1):
            return None
        return f"expected 'cls xc yc w h' (5 columns), got {n}"

    def row_box(self, rep, where: str, line: str, vals: list[float]) -> Corners | None:
        """Report the coordinate problems of a well-formed row; the box it covers, or None after a fatal one."""
        coords = np.array(vals[1:])
        if not in_unit(rep, where, line, coords, tolerance=0.0 if len(vals) == 5 else POINT_TOLERANCE):
            return None
        return xywh_corners(coords) if len(vals) == 5 else polygon_corners(coords)

    def file_problem(self, widths: list[int]) -> tuple[str, str] | None:
        """``(severity, message)`` when the rows of one file (their column counts) may not stand together."""
        if 5 in widths and any(w > 6 for w in widths):
            return ("warning", "labels mix box rows and polygon rows: Ultralytics 8.4 ignores this image as corrupt "
                               "(older releases read the polygons as boxes)")
        return None

    def count_line(self, split: str, c: dict) -> str:
        """One split's counts in the check's summary."""
        return (f"{split}: {c['images']} images, {c['boxes']} {self.objects}, {c['labelled']} with labels, "
                f"{c['empty']} empty label files, {c['missing']} without a label file, "
                f"{c['tiny']} zero-size or sub-pixel boxes")

    # ---- make-shapes ------------------------------------------------------------------------------------
    def keep_inside(self, cls: int, r: float, c: float, s: float) -> list[tuple[float, float]]:
        """Points (relative to a shape's centre) that its label needs inside the image besides the shape itself."""
        return []

    def label_text(self, shapes, n: int) -> str:
        """The label file of one synthetic image (``shapes``: :class:`~yolo_attn.datasets.shapes.Shape`)."""
        from ..shapes import label_text

        return label_text([sh.yolo_box(n) for sh in shapes])

    def yaml_lines(self) -> str:
        """The task keys of the synthetic dataset's YAML (after ``names:``)."""
        return ""

    def shape_class(self, index: int) -> int | None:
        """The class of every shape of synthetic image ``index`` (None: drawn at random)."""
        return None

    def shapes_config(self, cfg):
        """The generator settings this task's synthetic dataset is made with (classify: one shape per image)."""
        return cfg

    shapes_defaults: dict = {}  # make-shapes' defaults for this task where they differ from ShapesConfig's

    def default_config(self, **given):
        """The generator settings of ``make-shapes --task NAME``: this task's defaults, then the ``given`` ones."""
        from ..shapes import ShapesConfig

        return ShapesConfig(**{**self.shapes_defaults, **given})

    @property
    def look(self):
        """How the synthetic images are drawn (:class:`~yolo_attn.datasets.shapes.Look`; detection's by default)."""
        from ..shapes import DETECTION_LOOK

        return DETECTION_LOOK

    def sample_files(self, split: str, stem: str, shapes, n: int) -> tuple[str, dict[str, bytes]]:
        """Where one synthetic image goes (relative to the dataset folder) and its label files."""
        return f"images/{split}/{stem}.jpg", {f"labels/{split}/{stem}.txt": self.label_text(shapes, n).encode()}

    def sample_folders(self, out, splits) -> list[tuple]:
        """``(folder, relative prefix)`` of every folder the synthetic dataset writes files into."""
        return [(out / sub / split, f"{sub}/{split}/") for sub in ("images", "labels") for split in splits]


class PolygonRows(TaskData):
    """A task whose rows are polygons (segment, obb): every coordinate in [0, 1], a box row refused on its own."""

    coordinates = "polygon coordinates"  # what the coordinates are, in messages

    def row_box(self, rep, where, line, vals):
        coords = np.array(vals[1:])
        return polygon_corners(coords) if in_unit(rep, where, line, coords, self.coordinates, POINT_TOLERANCE) else None

    def file_problem(self, widths):
        return None  # a box row is already fatal on its own


POINT_TOLERANCE = 0.01  # a polygon vertex, corner or keypoint may lie this far outside [0, 1]: Ultralytics takes it


def in_unit(rep, where: str, line: str, coords: np.ndarray, what: str = "coordinates", tolerance: float = 0.0) -> bool:
    """Fatal problem when a coordinate lies outside [0, 1] by more than ``tolerance`` (not normalised, or outside
    the image)."""
    if ((coords < -tolerance) | (coords > 1 + tolerance)).any():
        rep.add("fatal", where, f"{what} outside [0, 1]{f' by more than {tolerance:.0%}' if tolerance else ''} "
                                f"(not normalised or outside the image): {line.strip()!r}")
        return False
    return True


def xywh_corners(coords) -> Corners:
    xc, yc, w, h = coords[:4]
    return xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2


def polygon_corners(coords) -> Corners:
    xs, ys = coords[0::2], coords[1::2]
    return xs.min(), ys.min(), xs.max(), ys.max()


def polygon_columns(n: int, what: str, points: int | None = None) -> str | None:
    """Why ``n`` columns are no polygon row (class + x,y pairs; at least 3 points, or exactly ``points``)."""
    if points is not None and n != 1 + 2 * points:
        return f"expected 'cls' and {points} x,y corners ({1 + 2 * points} numbers), got {n}"
    if n == 5:
        return f"a box row ('cls xc yc w h') in a {what} dataset: it has no polygon, and Ultralytics refuses a {what} " \
               "dataset with box rows"
    if n % 2 == 0:
        return f"a polygon row is 'cls x1 y1 x2 y2 ...' (an odd number of columns: the class and x,y pairs), got {n}"
    if n < 7:
        return f"a polygon needs at least 3 points (7 columns), got {(n - 1) // 2}"
    return None
