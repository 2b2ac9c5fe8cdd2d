"""A small synthetic detection dataset that a CPU model learns in minutes: coloured shapes on textures.

Every image shows 1-4 filled shapes (``circle``, ``square``, ``triangle``, ``cross``) of random colour,
size and rotation on a random background texture (smooth colour noise, stripes, checkerboard or a
gradient, always with per-pixel noise) crossed by a few unlabelled thin lines. The class depends on
the shape only, never on the colour, so a detector has to learn shapes.

Generation is bit-deterministic for a given seed and configuration, on any platform:

* each image has its own ``numpy.random.RandomState`` seeded with ``[seed, split, index]``
  (the legacy ``RandomState`` stream is frozen by NumPy's compatibility policy), so image ``k`` does
  not depend on how many images are generated;
* pixels are computed with ``+ - * /``, comparisons, floors and integer sums only (IEEE-exact
  everywhere): no trigonometry, logarithms or library drawing routines. Rotations use the rational
  parametrisation ``cos = (1 - t^2) / (1 + t^2)``, ``sin = 2t / (1 + t^2)``; edges are anti-aliased by
  4x4 supersampling and counting covered samples;
* images are encoded with Pillow's JPEG encoder at fixed settings; ``manifest.json`` records the
  SHA-256 of every image's raw RGB pixels (codec independent) and of every written file.

Output layout (Ultralytics/YOLO format)::

    OUT/images/{train,val}/000000.jpg
    OUT/labels/{train,val}/000000.txt      # "class xc yc w h", normalised, one line per shape
    OUT/manifest.json                      # configuration and hashes, see :func:`verify`
    OUT.yaml                               # dataset YAML next to OUT (no 'path:' key: Ultralytics then
                                           # resolves train/val against the YAML's own folder)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from .._io import atomic_write

CLASSES = ("circle", "square", "triangle", "cross")
SPLITS = ("train", "val")
GENERATOR_VERSION = 1  # bump when a change alters the generated pixels or labels
_SS = 4  # supersampling factor per axis for anti-aliased edges
_SQRT3_2 = 0.8660254037844386  # sqrt(3) / 2, written out so no libm call is involved


@dataclass(frozen=True)
class ShapesConfig:
    """What :func:`write_dataset` generates. The defaults are the dataset shipped in ``data/shapes``."""

    seed: int = 0
    n_train: int = 320
    n_val: int = 80
    imgsz: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: int = 16  # object scale in pixels (circle diameter; other shapes comparable)
    max_size: int = 44
    clutter: int = 3  # at most this many unlabelled thin lines per image
    noise: int = 12  # at most +-noise per-pixel intensity noise
    max_iou: float = 0.15  # shapes overlap at most this much
    quality: int = 85  # JPEG quality (4:2:0 chroma subsampling)

    def __post_init__(self):
        checks = {
            "seed": self.seed >= 0,
            "n_train": self.n_train >= 1,
            "n_val": self.n_val >= 1,
            "imgsz": 32 <= self.imgsz <= 4096,
            "min_objects": 1 <= self.min_objects <= self.max_objects,
            "max_objects": self.max_objects <= 32,
            "min_size": 6 <= self.min_size <= self.max_size,
            "max_size": self.max_size <= self.imgsz - 4,
            "clutter": self.clutter >= 0,
            "noise": 0 <= self.noise <= 64,
            "max_iou": 0.0 <= self.max_iou <= 1.0,
            "quality": 1 <= self.quality <= 100,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"ShapesConfig: invalid {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val}[split]


# --------------------------------------------------------------------------------------------
# Geometry (exact arithmetic only)
# --------------------------------------------------------------------------------------------
def _rotation(rs: np.random.RandomState) -> tuple[float, float]:
    t = rs.uniform(-1.0, 1.0)
    d = 1.0 + t * t
    return (1.0 - t * t) / d, 2.0 * t / d


def _rotate(points: list[tuple[float, float]], c: float, s: float) -> list[tuple[float, float]]:
    return [(c * x - s * y, s * x + c * y) for x, y in points]


def _outline(cls: int, r: float, c: float, s: float) -> list[list[tuple[float, float]]]:
    """Convex polygons (centred at the origin) whose union is the shape; a circle is ``[]``."""
    if cls == 0:
        return []
    if cls == 1:
        h = 0.85 * r
        return [_rotate([(-h, -h), (h, -h), (h, h), (-h, h)], c, s)]
    if cls == 2:
        R = 1.15 * r
        return [_rotate([(0.0, -R), (R * _SQRT3_2, 0.5 * R), (-R * _SQRT3_2, 0.5 * R)], c, s)]
    a, b = r, 0.34 * r  # arm half-length, arm half-width
    return [_rotate([(-a, -b), (a, -b), (a, b), (-a, b)], c, s), _rotate([(-b, -a), (b, -a), (b, a), (-b, a)], c, s)]


def _extent(cls: int, r: float, polys) -> tuple[float, float, float, float]:
    if cls == 0:
        return -r, -r, r, r
    xs = [x for p in polys for x, _ in p]
    ys = [y for p in polys for _, y in p]
    return min(xs), min(ys), max(xs), max(ys)


def _samples(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Supersample coordinates (pixel units) covering pixels [x0, x1) x [y0, y1)."""
    off = (np.arange(_SS, dtype=np.float64) + 0.5) / _SS
    xs = (np.arange(x0, x1, dtype=np.float64)[:, None] + off[None, :]).reshape(-1)
    ys = (np.arange(y0, y1, dtype=np.float64)[:, None] + off[None, :]).reshape(-1)
    return xs[None, :], ys[:, None]


def _coverage(inside: np.ndarray) -> np.ndarray:
    """Fraction of covered supersamples per pixel (integer count / 16, exact)."""
    h, w = inside.shape[0] // _SS, inside.shape[1] // _SS
    return inside.reshape(h, _SS, w, _SS).sum(axis=(1, 3), dtype=np.int64) / float(_SS * _SS)


def _inside_convex(xs: np.ndarray, ys: np.ndarray, poly: list[tuple[float, float]]) -> np.ndarray:
    area2 = sum(poly[i][0] * poly[i - 1][1] - poly[i - 1][0] * poly[i][1] for i in range(len(poly)))
    sign = 1.0 if area2 < 0 else -1.0  # orientation-independent half-plane test
    inside = np.ones(np.broadcast_shapes(xs.shape, ys.shape), dtype=bool)
    for i in range(len(poly)):
        (ax, ay), (bx, by) = poly[i - 1], poly[i]
        inside &= sign * ((bx - ax) * (ys - ay) - (by - ay) * (xs - ax)) >= 0.0
    return inside


def _paint(img: np.ndarray, cov: np.ndarray, x0: int, y0: int, colour: np.ndarray) -> None:
    h, w = cov.shape
    win = img[y0 : y0 + h, x0 : x0 + w]
    a = cov[:, :, None]
    win[...] = win * (1.0 - a) + colour[None, None, :] * a


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------
def _colour(rs: np.random.RandomState) -> np.ndarray:
    return rs.randint(0, 256, size=3).astype(np.float64)


def _smooth_noise(rs: np.random.RandomState, n: int, cells: int) -> np.ndarray:
    """Bilinearly interpolated random grid (values in [0, 1]), n x n."""
    grid = rs.random_sample((cells + 1, cells + 1))
    u = (np.arange(n, dtype=np.float64) + 0.5) * (cells / n)
    i = np.minimum(np.floor(u).astype(np.int64), cells - 1)
    f = u - i
    gy = grid[i, :] * (1.0 - f)[:, None] + grid[i + 1, :] * f[:, None]  # rows interpolated
    return gy[:, i] * (1.0 - f)[None, :] + gy[:, i + 1] * f[None, :]


def _background(rs: np.random.RandomState, n: int) -> np.ndarray:
    kind = rs.randint(0, 4)
    a, b = _colour(rs), _colour(rs)
    if kind == 0:  # smooth colour noise
        m = _smooth_noise(rs, n, rs.randint(2, 7))
    elif kind == 1:  # stripes at a random angle
        c, s = _rotation(rs)
        period = rs.uniform(6.0, 20.0)
        x = np.arange(n, dtype=np.float64) + 0.5
        p = (x[None, :] * c + x[:, None] * s) / period
        m = ((p - np.floor(p)) < 0.5).astype(np.float64)
    elif kind == 2:  # checkerboard
        cell = rs.randint(6, 24)
        x = np.arange(n, dtype=np.int64) // cell
        m = ((x[None, :] + x[:, None]) % 2).astype(np.float64)
    else:  # linear gradient
        c, s = _rotation(rs)
        x = (np.arange(n, dtype=np.float64) + 0.5) / n
        m = x[None, :] * c + x[:, None] * s
        lo, hi = m.min(), m.max()
        m = (m - lo) / (hi - lo)
    b = a + (b - a) * rs.uniform(0.2, 0.6)  # keep texture contrast below shape contrast
    return a[None, None, :] * (1.0 - m[:, :, None]) + b[None, None, :] * m[:, :, None]


def _clutter(rs: np.random.RandomState, img: np.ndarray, count: int) -> None:
    n = img.shape[0]
    for _ in range(count):
        ax, ay, bx, by = rs.uniform(0.0, n, size=4)
        half = rs.uniform(0.4, 1.0)  # half thickness in pixels
        colour = _colour(rs)
        x0, y0 = max(int(min(ax, bx) - 2), 0), max(int(min(ay, by) - 2), 0)
        x1, y1 = min(int(max(ax, bx) + 3), n), min(int(max(ay, by) + 3), n)
        xs, ys = _samples(x0, y0, x1, y1)
        dx, dy = bx - ax, by - ay
        u = np.clip(((xs - ax) * dx + (ys - ay) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
        ex, ey = xs - ax - u * dx, ys - ay - u * dy
        _paint(img, _coverage(ex * ex + ey * ey <= half * half), x0, y0, colour)


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------
def _luma(rgb) -> int:
    r, g, b = (int(v) for v in rgb)
    return 299 * r + 587 * g + 114 * b  # x1000


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _seed_for(seed: int, split: str, index: int) -> list[int]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [seed, SPLITS.index(split), index]


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its class, centre, scale ``r`` and rotation ``(c, s)`` (pixels), and its exact extent."""

    cls: int
    cx: float
    cy: float
    r: float
    c: float
    s: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels

    def yolo_box(self, n: int) -> tuple[int, float, float, float, float]:
        """``(class, x_center, y_center, width, height)`` normalised by the image side ``n``."""
        b = self.box
        return self.cls, (b[0] + b[2]) / 2 / n, (b[1] + b[3]) / 2 / n, (b[2] - b[0]) / n, (b[3] - b[1]) / n


@dataclass(frozen=True)
class Look:
    """How the shapes of an image are drawn, where a task needs it otherwise than detection (classify's look).

    ``light_on_dark``: the background at half brightness, every shape a light colour (each channel 128-255), so a
    shape is always lighter than what lies under it; ``upright``: no turn; ``centre``: the shape's centre keeps this
    fraction of its random offset from the middle of where it fits (1: anywhere it fits, 0: in the middle).
    """

    light_on_dark: bool = False
    upright: bool = False
    centre: float = 1.0


DETECTION_LOOK = Look()


def _placement(extent, extra) -> tuple[float, float, float, float]:
    """The extent a shape's centre is placed by: its own, grown to hold the ``extra`` points its label needs."""
    if not extra:
        return extent
    xs, ys = [x for x, _ in extra], [y for _, y in extra]
    return min(extent[0], *xs), min(extent[1], *ys), max(extent[2], *xs), max(extent[3], *ys)


def _draw(rs, img: np.ndarray, ground: np.ndarray, sh: Shape, light: bool = False) -> None:
    """Paint shape ``sh`` in a colour that stands out from the background under it (``light``: a light colour)."""
    n = img.shape[0]
    x0, y0 = int(np.floor(sh.box[0])), int(np.floor(sh.box[1]))
    x1, y1 = min(int(np.floor(sh.box[2])) + 1, n), min(int(np.floor(sh.box[3])) + 1, n)
    patch = ground[y0:y1, x0:x1].reshape(-1, 3).sum(axis=0) // ((y1 - y0) * (x1 - x0))
    base = _luma(patch)
    for _attempt in range(20):
        colour = 128.0 + rs.randint(0, 128, size=3).astype(np.float64) if light else _colour(rs)
        if abs(_luma(colour) - base) >= 70_000:
            break
    else:
        colour = np.zeros(3) if base > 127_500 else np.full(3, 255.0)
    xs, ys = _samples(x0, y0, x1, y1)
    if sh.cls == 0:
        dx, dy = xs - sh.cx, ys - sh.cy
        inside = dx * dx + dy * dy <= sh.r * sh.r
    else:
        inside = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
        for p in _outline(sh.cls, sh.r, sh.c, sh.s):
            inside |= _inside_convex(xs, ys, [(px + sh.cx, py + sh.cy) for px, py in p])
    _paint(img, _coverage(inside), x0, y0, colour)


def _place(rs, cfg: ShapesConfig, boxes: list, keep_inside=None, cls_wanted: int | None = None,
           look: Look = DETECTION_LOOK) -> Shape | None:
    """A shape (of class ``cls_wanted`` when given) that overlaps none of ``boxes`` beyond ``cfg.max_iou`` (30 tries),
    else None."""
    n = cfg.imgsz
    for _attempt in range(30):
        cls = rs.randint(0, len(CLASSES))
        cls = cls if cls_wanted is None else cls_wanted
        r = rs.uniform(cfg.min_size, cfg.max_size) / 2.0
        c, s = _rotation(rs)
        c, s = (1.0, 0.0) if look.upright else (c, s)
        extent = _extent(cls, r, _outline(cls, r, c, s))
        px0, py0, px1, py1 = _placement(extent, keep_inside(cls, r, c, s) if keep_inside else None)
        if max(px1 - px0, py1 - py0) > n - 2.0:
            raise ValueError(f"ShapesConfig: max_size={cfg.max_size} is too large for imgsz={cfg.imgsz}: a "
                             f"{CLASSES[cls]} of size {2 * r:.1f} px needs {max(px1 - px0, py1 - py0):.1f} px, more "
                             f"than the {n - 2} px the image leaves; lower max_size (or raise imgsz)")
        cx = rs.uniform(1.0 - px0, n - 1.0 - px1)
        cy = rs.uniform(1.0 - py0, n - 1.0 - py1)
        if look.centre != 1.0:  # toward the middle of the range it was drawn from, so it still fits
            mx, my = (n - px0 - px1) / 2.0, (n - py0 - py1) / 2.0
            cx, cy = mx + (cx - mx) * look.centre, my + (cy - my) * look.centre
        box = (cx + extent[0], cy + extent[1], cx + extent[2], cy + extent[3])
        if all(_iou(box, o) <= cfg.max_iou for o in boxes):
            return Shape(cls, cx, cy, r, c, s, box)
    return None


def render_shapes(cfg: ShapesConfig, split: str, index: int, keep_inside=None,
                  cls: int | None = None, look: Look = DETECTION_LOOK) -> tuple[np.ndarray, list[Shape]]:
    """Image ``index`` of ``split`` and the :class:`Shape` s drawn on it.

    ``keep_inside(cls, r, c, s)``: points (relative to the centre) that must also lie in the image (a rotated
    box's corners); ``cls``: the class of every shape (classify's balanced folders); ``look``: how it is drawn
    (:class:`Look`). The random draws are the same with or without them, so without them the image is the detection
    dataset's.
    """
    rs = np.random.RandomState(_seed_for(cfg.seed, split, index))
    n = cfg.imgsz
    img = _background(rs, n)
    if look.light_on_dark:
        img *= 0.5
    _clutter(rs, img, rs.randint(0, cfg.clutter + 1))
    ground = np.clip(np.floor(img + 0.5), 0, 255).astype(np.int64)  # background as quantised, for contrast
    shapes: list[Shape] = []
    for _ in range(rs.randint(cfg.min_objects, cfg.max_objects + 1)):
        sh = _place(rs, cfg, [o.box for o in shapes], keep_inside, cls, look)
        if sh is None:
            continue  # no room for another shape
        _draw(rs, img, ground, sh, look.light_on_dark)
        shapes.append(sh)
    if cfg.noise:
        img += rs.randint(-cfg.noise, cfg.noise + 1, size=(n, n, 1))  # luminance noise
        img += rs.randint(-(cfg.noise // 3), cfg.noise // 3 + 1, size=(n, n, 3))  # colour noise
    return np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8), shapes


def render(cfg: ShapesConfig, split: str, index: int) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Image ``index`` of ``split``: an ``imgsz x imgsz x 3`` uint8 RGB array and its YOLO labels.

    Labels are ``(class, x_center, y_center, width, height)`` normalised to [0, 1]; boxes are the exact
    extents of the drawn shapes.
    """
    img, shapes = render_shapes(cfg, split, index)
    return img, [sh.yolo_box(cfg.imgsz) for sh in shapes]


# --------------------------------------------------------------------------------------------
# Geometry of a drawn shape, for the labels of the other tasks (exact arithmetic only)
# --------------------------------------------------------------------------------------------
# cos of 0, 15, ..., 90 degrees, written out: a 24-gon inscribed in a circle without a libm call
_COS15 = (1.0, 0.9659258262890683, _SQRT3_2, 0.7071067811865476, 0.5, 0.25881904510252074, 0.0)
_UNIT24 = [(q * _COS15[k] - p * _COS15[6 - k], p * _COS15[k] + q * _COS15[6 - k])
           for q, p in ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)) for k in range(6)]


def _cross_outline(a: float, b: float) -> list[tuple[float, float]]:
    """The 12 corners of a cross of arm half-length ``a`` and half-width ``b``, in order around it."""
    q = [(b, -a), (b, -b), (a, -b)]
    return q + [(-y, x) for x, y in q] + [(-x, -y) for x, y in q] + [(y, -x) for x, y in q]


def outline(sh: Shape) -> list[tuple[float, float]]:
    """The shape's outline as one polygon in pixels (a circle: the inscribed 24-gon), in order around it."""
    if sh.cls == 0:
        pts = [(sh.r * x, sh.r * y) for x, y in _UNIT24]
    elif sh.cls == 3:
        pts = _rotate(_cross_outline(sh.r, 0.34 * sh.r), sh.c, sh.s)
    else:
        pts = _outline(sh.cls, sh.r, sh.c, sh.s)[0]
    return [(sh.cx + x, sh.cy + y) for x, y in pts]


def extremes(sh: Shape) -> list[tuple[float, float]]:
    """The shape's topmost, rightmost, bottommost and leftmost points (pixels; ties broken by the other axis)."""
    if sh.cls == 0:
        return [(sh.cx, sh.cy - sh.r), (sh.cx + sh.r, sh.cy), (sh.cx, sh.cy + sh.r), (sh.cx - sh.r, sh.cy)]
    pts = outline(sh)
    return [min(pts, key=lambda p: (p[1], p[0])), max(pts, key=lambda p: (p[0], p[1])),
            max(pts, key=lambda p: (p[1], -p[0])), min(pts, key=lambda p: (p[0], -p[1]))]


def rotated_box_offsets(cls: int, r: float, c: float, s: float) -> list[tuple[float, float]]:
    """The four corners (relative to the centre, in order) of the smallest box turned with the shape that
    holds it; a circle, which has no visible turn, gets its upright box."""
    if cls == 0:
        return [(-r, -r), (r, -r), (r, r), (-r, r)]
    if cls == 1:
        x0, y0, x1, y1 = -0.85 * r, -0.85 * r, 0.85 * r, 0.85 * r
    elif cls == 2:
        R = 1.15 * r
        x0, y0, x1, y1 = -R * _SQRT3_2, -R, R * _SQRT3_2, 0.5 * R
    else:
        x0, y0, x1, y1 = -r, -r, r, r
    return _rotate([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], c, s)


def label_text(labels) -> str:
    return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 array (Pillow, baseline, 4:2:0, fixed settings, no metadata)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=quality, subsampling=2, optimize=False, progressive=False)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iter_dataset(cfg: ShapesConfig) -> Iterator[tuple[str, int, np.ndarray, list]]:
    """``(split, index, image, labels)`` for every image of the dataset, train first."""
    for split in SPLITS:
        for i in range(cfg.count(split)):
            yield (split, i, *render(cfg, split, i))


def _task(task):
    """The data module of ``task`` (a name, or one already looked up)."""
    from .tasks import task_data

    return task_data(task) if task is None or isinstance(task, str) else task


# --------------------------------------------------------------------------------------------
# Writing and checking a dataset folder
# --------------------------------------------------------------------------------------------
def dataset_yaml_text(cfg: ShapesConfig, root: str, task=None) -> str:
    """Dataset YAML whose train/val paths are ``root`` (relative to the YAML's folder) + images/<split>."""
    task = _task(task)
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    settings = ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in fields(cfg))
    kind = "detection" if task.name == "detect" else task.name
    return (
        f"# Synthetic shapes {kind} dataset generated by yolo_attn (yolo-attn make-shapes).\n"
        f"# Generator v{GENERATOR_VERSION}: {settings}\n"
        "# No 'path:' key on purpose: Ultralytics then resolves train/val against this file's folder,\n"
        "# so the YAML works from any working directory. yolo_attn.datasets.dataset_yaml() writes a copy\n"
        "# with an absolute 'path:' for tools that need one.\n"
        f"train: {root}/images/train\n"
        f"val: {root}/images/val\n"
        f"nc: {len(CLASSES)}\n"
        f"names:\n{names}\n" + task.yaml_lines()
    )


def _generate(cfg: ShapesConfig, task, progress=None) -> Iterator[tuple[str, np.ndarray, bytes, dict[str, bytes]]]:
    """``(image_relpath, pixels, jpg_bytes, {label_relpath: bytes})`` for every image."""
    for split in SPLITS:
        for i in range(cfg.count(split)):
            img, shapes = render_shapes(cfg, split, i, task.keep_inside, task.shape_class(i), task.look)
            rel, labels = task.sample_files(split, f"{i:06d}", shapes, cfg.imgsz)
            yield rel, img, encode_jpeg(img, cfg.quality), labels
            if progress:
                progress(split, i)


def build_manifest(cfg: ShapesConfig, progress=None, task=None) -> tuple[dict, dict[str, bytes]]:
    """The manifest and the bytes of every file of the dataset (relative path -> bytes), in memory."""
    task = _task(task)
    cfg = task.shapes_config(cfg)
    files, entries = {}, {}
    for jpg, img, jpg_bytes, labels in _generate(cfg, task, progress):
        files[jpg] = jpg_bytes
        entries[jpg] = {"sha256": _sha(jpg_bytes), "pixels_sha256": _sha(img.tobytes())}
        for txt, txt_bytes in labels.items():
            files[txt] = txt_bytes
            entries[txt] = {"sha256": _sha(txt_bytes)}
    manifest = {
        "generator": "yolo_attn.datasets.shapes",
        "generator_version": GENERATOR_VERSION,
        "config": asdict(cfg),
        "classes": list(CLASSES),
        "files": entries,
    }
    if task.name != "detect":  # the detection manifest keeps its keys (data/shapes is unchanged)
        manifest["task"] = task.name
    if task.look != DETECTION_LOOK:
        manifest["look"] = asdict(task.look)
    return manifest, files


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def default_yaml(out: Path, task=None) -> Path | None:
    """The dataset YAML beside folder ``out`` (``<out>.yaml``); None for a task whose dataset is the folder itself."""
    return None if _task(task).folder_layout else out.with_name(out.name + ".yaml")


def write_dataset(out: str | Path, cfg: ShapesConfig | None = None, yaml_path: str | Path | None = None,
                  progress=None, task=None) -> Path:
    """Generate the dataset of ``task`` (default detection) into ``out`` and its YAML (default ``<out>.yaml``
    beside it); return the YAML path, or ``out`` for a task whose dataset is a folder (classify: no YAML).

    Stale files from an earlier generation (images or labels no longer part of the dataset) are removed;
    Ultralytics' ``*.cache`` files are left alone.
    """
    task = _task(task)
    cfg = task.default_config() if cfg is None else cfg  # classify: its own defaults (make-shapes --task classify)
    out = Path(out)
    yaml_path = Path(yaml_path) if yaml_path and not task.folder_layout else default_yaml(out, task)
    manifest, files = build_manifest(cfg, progress, task)
    for folder, prefix in task.sample_folders(out, SPLITS):
        if folder.is_dir():
            for f in folder.iterdir():
                if f.is_file() and f"{prefix}{f.name}" not in files:
                    f.unlink()
    for rel, data in files.items():
        atomic_write(out / rel, data)
    atomic_write(out / "manifest.json", manifest_bytes(manifest))
    if yaml_path is None:
        return out
    root = Path(os.path.relpath(out.resolve(), yaml_path.resolve().parent)).as_posix()
    atomic_write(yaml_path, dataset_yaml_text(task.shapes_config(cfg), root, task).encode())
    return yaml_path


def read_config(out: str | Path) -> ShapesConfig:
    """The configuration recorded in ``out/manifest.json``."""
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    return ShapesConfig(**manifest["config"])


def read_task(out: str | Path) -> str:
    """The task recorded in ``out/manifest.json`` (detection when it names none)."""
    return json.loads((Path(out) / "manifest.json").read_text()).get("task", "detect")


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def _compare_file(out: Path, rel: str, new: dict | None, old: dict | None, fresh: bytes | None,
                  jpeg_tolerance: float) -> list[str]:
    """The differences of one file between a fresh generation (``new``, ``fresh``), the manifest and the disk."""
    if new is None or old is None:
        return [f"{rel}: {'not generated any more' if new is None else 'missing from the manifest'}"]
    problems = []
    if new.get("pixels_sha256") != old.get("pixels_sha256"):
        problems.append(f"{rel}: regenerated pixels differ from the manifest")
    path = out / rel
    if not path.is_file():
        return problems + [f"{rel}: file missing"]
    if _sha(path.read_bytes()) != old["sha256"]:
        problems.append(f"{rel}: file on disk differs from the manifest")
    elif new["sha256"] != old["sha256"]:
        if rel.endswith(".jpg") and new.get("pixels_sha256") == old.get("pixels_sha256"):
            err = float(np.abs(_decode(path.read_bytes()) - _decode(fresh)).mean())
            if err <= jpeg_tolerance:
                return problems + [f"note: {rel}: JPEG bytes differ (other libjpeg build), pixels within {err:.2f}"]
        problems.append(f"{rel}: regenerated file differs")
    return problems


def verify(out: str | Path, yaml_path: str | Path | None = None, jpeg_tolerance: float = 1.0) -> list[str]:
    """Regenerate the dataset recorded in ``out/manifest.json`` and list every difference (empty: identical).

    Checks that the regenerated raw pixels and labels equal the recorded hashes, that every file on
    disk matches the manifest, and that no extra image or label files exist. JPEG bytes are compared
    exactly; if only the JPEG bytes differ (a different libjpeg build) while the raw pixels match, the
    committed JPEG must decode to within ``jpeg_tolerance`` (mean absolute difference) of a fresh
    encoding, and the difference is reported as a note prefixed ``"note:"``. The dataset YAML
    (default ``<out>.yaml`` when it exists) must equal what :func:`write_dataset` writes. The task is the
    one the manifest records.
    """
    out = Path(out)
    recorded = json.loads((out / "manifest.json").read_text())
    cfg, task = ShapesConfig(**recorded["config"]), _task(recorded.get("task", "detect"))
    problems = []
    if recorded.get("generator_version") != GENERATOR_VERSION:
        problems.append(f"manifest has generator_version {recorded.get('generator_version')}, this code {GENERATOR_VERSION}")
    fresh, files = build_manifest(cfg, task=task)
    rec_files = recorded.get("files", {})
    for rel in sorted(set(fresh["files"]) | set(rec_files)):
        problems += _compare_file(out, rel, fresh["files"].get(rel), rec_files.get(rel), files.get(rel), jpeg_tolerance)
    for folder, prefix in task.sample_folders(out, SPLITS):
        for f in sorted(folder.iterdir()) if folder.is_dir() else []:
            if f.suffix in (".jpg", ".txt") and f"{prefix}{f.name}" not in rec_files:
                problems.append(f"{prefix}{f.name}: extra file not in the manifest")
    yaml_path = Path(yaml_path) if yaml_path else default_yaml(out, task)
    if yaml_path is not None and yaml_path.is_file():
        root = Path(os.path.relpath(out.resolve(), yaml_path.resolve().parent)).as_posix()
        if yaml_path.read_text() != dataset_yaml_text(cfg, root, task):
            problems.append(f"{yaml_path.name}: differs from the generated dataset YAML")
    return problems
