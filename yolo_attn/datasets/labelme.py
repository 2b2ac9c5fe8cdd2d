"""``yolo-attn import-data labelme``: a folder of LabelMe JSON files -> Ultralytics layout.

LabelMe writes one JSON per image: ``shapes`` (each ``{label, points, shape_type}``), ``imagePath``
(the image, relative to the JSON), ``imageWidth``/``imageHeight`` and, unless the annotator turned it off,
``imageData`` (the image itself, base64). Every ``*.json`` under ``DIR`` that has ``shapes`` is read.

* ``rectangle`` shapes become boxes (two points, any two opposite corners in any order); every other
  shape type (polygon, circle, line, linestrip, point, mask, ...) is skipped, listed with its type.
* The image is the file ``imagePath`` names relative to the JSON's folder, when that stays inside ``DIR``
  (or ``--images``), else a file of that name beside the JSON or in ``--images``, else one named like the
  JSON. A JSON whose image file is nowhere but that embeds ``imageData`` is imported from the embedded
  image, written into the dataset: the labels were drawn on exactly those pixels, so nothing is lost by
  using them. An embedded image that is no image, or whose header gives more than
  :data:`~yolo_attn.datasets.files.MAX_IMAGE_PIXELS` pixels, is skipped with its reason before it is decoded
  (and never through Ultralytics' Pillow patch, which would pip-install a HEIF plugin); so is a JSON over
  :data:`MAX_JSON_BYTES`.
* An image whose size differs from the JSON's ``imageWidth``/``imageHeight`` is skipped: its points were
  drawn on another size and would land in the wrong place.
* ``task="segment"`` (``--task segment``): ``polygon`` shapes (and untyped ones, LabelMe's old polygons) become
  segment rows, a ``rectangle`` its four corners; the other shape types are skipped, listed with their type, and
  a polygon of fewer than 3 points too.
* ``task="obb"`` (``--task obb``): ``polygon`` shapes of exactly 4 points (the corners, in drawing order) become
  oriented-box rows, a ``rectangle`` its four corners (angle 0); other polygons and shape types are skipped with the
  reason. Corners outside the image are clipped to it.
* ``task="pose"`` (``--task pose``, with ``--keypoints NAME ...`` in the model's keypoint order): an object is a
  ``rectangle`` (or a polygon: its extent) giving its box and class, and the ``point`` shapes with the same
  ``group_id`` whose labels are keypoint names; a keypoint drawn is visible (2), one not drawn is ``0 0 0``
  (LabelMe records no visibility). Points without a ``group_id`` belong to the file's only rectangle without one
  (with several, they are skipped: which object is theirs is unknown). ``kpt_shape`` is ``[K, 3]``; ``flip_idx`` is
  written when every left/right name has its mirror (``left_eye``/``right_eye``), else left out with a warning
  (Ultralytics then trains without flips).
* Classes: ``--classes`` in that order (other labels skipped as unknown), else every rectangle label
  of the imported files, sorted: a skipped file adds no class, and a shape without a label (``label: null``,
  empty) is skipped. Splits: from ``train``/``val``/``test`` folders when there are a train and a val folder,
  else chosen here.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .files import IMG_FORMATS, ImageTooLarge, open_image
from .importers import (ImportOptions, ImportReport, Item, Skips, check_fractions, inside, keep_fixed_splits, number,
                        prepare_output, split_of, write_dataset, yolo_row)
from .task_rows import keypoint_names, obb_row, pose_classes, pose_row
from .tasks.segment import polygon_row

IMPORT_TASKS = ("detect", "segment", "obb", "pose")


MAX_JSON_BYTES = 256 * 2**20  # a larger LabelMe JSON (its embedded image, base64) is skipped, never read


@dataclass
class LabelmeFile:
    """One parsed LabelMe JSON."""

    path: Path
    shapes: list
    image_path: str
    width: float | None
    height: float | None
    image_data: str | None


def _read(path: Path, skips: Skips) -> LabelmeFile | None:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            skips.add("JSON too large", path, f"{path.stat().st_size:,} bytes, over the {MAX_JSON_BYTES:,} read")
            return None
        js = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        skips.add("malformed JSON", path, str(exc))
        return None
    if not isinstance(js, dict) or not isinstance(js.get("shapes"), list):
        return None  # not a LabelMe file (another JSON in the folder): not ours to report
    img = js.get("imagePath")
    data = js.get("imageData")
    return LabelmeFile(path, js["shapes"], img.replace("\\", "/") if isinstance(img, str) else "",
                       number(js.get("imageWidth")), number(js.get("imageHeight")), data if isinstance(data, str) else None)


def _points(shape) -> tuple[str, list[float]] | str:
    """(shape type, flat x,y list: None for a value that is no number) of a shape, else the reason it is skipped."""
    if not isinstance(shape, dict):
        return "malformed shape"
    kind = str(shape.get("shape_type") or "polygon")  # LabelMe's old files leave polygons untyped
    pts = shape.get("points")
    flat = [number(v) for p in pts for v in p] if isinstance(pts, list) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in pts) else []
    return kind, flat


def _label(shape) -> str | None:
    label = shape.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)) or not str(label).strip():
        return None
    return str(label).strip()


def _rectangle(shape) -> tuple[str, list[float]] | str:
    """(label, [x1, y1, x2, y2]) of a rectangle shape, else the reason it is skipped."""
    got = _points(shape)
    if isinstance(got, str):
        return got
    kind, flat = got
    if kind != "rectangle":
        return f"{kind} shape (only rectangles are imported)"
    if len(flat) != 4 or None in flat:
        return "malformed rectangle"
    label = _label(shape)
    if label is None:
        return "shape without a label"
    x1, y1, x2, y2 = flat
    return label, [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


def _corners(shape, what: str) -> tuple[str, list[float]] | str:
    """(kind, [x1, y1, x2, y2, ...]) of a polygon (a rectangle: its four corners), else the reason it is skipped
    (``what``: which shapes the task imports, for that reason)."""
    got = _points(shape)
    if isinstance(got, str):
        return got
    kind, flat = got
    if kind == "rectangle" and len(flat) == 4:
        x1, y1, x2, y2 = flat
        flat = [x1, y1, x2, y1, x2, y2, x1, y2]
    elif kind != "polygon":
        return f"{kind} shape (only {what})"
    return f"malformed {kind}" if None in flat else (kind, flat)


def _polygon(shape) -> tuple[str, list[float]] | str:
    """(label, [x1, y1, x2, y2, ...]) of a polygon (a rectangle: its four corners), else the reason it is skipped."""
    got = _corners(shape, "polygons and rectangles are imported for segment")
    if isinstance(got, str):
        return got
    flat = got[1]
    if len(flat) < 6:
        return f"polygon of {len(flat) // 2} point(s) (a mask needs 3)"
    label = _label(shape)
    return "shape without a label" if label is None else (label, flat)


def _oriented(shape) -> tuple[str, list[float]] | str:
    """(label, the 4 corners x1, y1, ... x4, y4) of a 4-point polygon or a rectangle, else the reason it is skipped."""
    got = _corners(shape, "4-point polygons and rectangles are imported for obb")
    if isinstance(got, str):
        return got
    flat = got[1]
    if len(flat) != 8:
        return f"polygon of {len(flat) // 2} point(s) (an oriented box is a polygon of 4 corners)"
    label = _label(shape)
    return "shape without a label" if label is None else (label, flat)


def _obb_text(c: int, flat: list[float], w: float, h: float) -> str | None:
    return obb_row(c, list(zip(flat[0::2], flat[1::2])), w, h)


def _polygon_text(c: int, flat: list[float], w: float, h: float) -> str | None:
    """The segment row of a pixel polygon clipped to the image; None when nothing of it is inside."""
    xs = [min(max(x, 0.0), w) for x in flat[0::2]]
    ys = [min(max(y, 0.0), h) for y in flat[1::2]]
    if max(xs) - min(xs) <= 0 or max(ys) - min(ys) <= 0:
        return None
    return polygon_row(c, zip(xs, ys), w, h).rstrip("\n")


class _Finder:
    """The image file of a LabelMe JSON (see the module docstring), never outside the allowed folders."""

    def __init__(self, root: Path, images: Path | None):
        self.roots = [r.resolve() for r in (root, images) if r is not None]
        self.images = images

    def allowed(self, p: Path) -> bool:
        rp = p.resolve()
        return any(rp == r or r in rp.parents for r in self.roots)

    def find(self, lm: LabelmeFile) -> Path | None:
        name = lm.image_path
        cands = []
        if name and not Path(name).is_absolute():
            cands.append(lm.path.parent / name)
        base = Path(name).name if name else ""
        for folder in (lm.path.parent, self.images):
            if folder is not None and base and inside(folder, base) is not None:
                cands.append(folder / base)
        for folder in (lm.path.parent, self.images):
            if folder is not None:
                cands += [folder / f"{lm.path.stem}.{ext}" for ext in sorted(IMG_FORMATS)]
        return next((c for c in cands if c.is_file() and self.allowed(c)), None)


def _embedded(lm: LabelmeFile, skips: Skips) -> tuple[bytes, str, int, int] | None:
    """The embedded image's bytes, a file suffix for them and its size; None (reason in ``skips``) when unusable."""
    try:
        raw = base64.b64decode(lm.image_data, validate=False)
        with open_image(io.BytesIO(raw)) as im:  # the header first: a huge image is refused before decoding
            im.load()
            fmt, (w, h) = (im.format or "png").lower(), im.size
    except ImageTooLarge as exc:
        skips.add("embedded image too large", lm.path, str(exc))
        return None
    except Exception as exc:  # binascii.Error, Pillow's many error types for data that is no image
        skips.add("unreadable embedded image", lm.path, f"imageData: {exc.__class__.__name__}: {exc}")
        return None
    suffix = Path(lm.image_path).suffix.lower()
    if suffix[1:] not in IMG_FORMATS:
        suffix = ".jpg" if fmt in ("jpeg", "mpo") else f".{fmt}"
    return raw, suffix, w, h


def _from_file(src: Path, rel_json: Path, finder: _Finder, skips: Skips) -> tuple | None:
    if not skips.usable(src):
        return None
    size = skips.image_size(src)
    if size is None:
        return None
    src = src.resolve()
    base = next(r for r in finder.roots if r in src.parents)
    return Item(src, src.relative_to(base).as_posix(), split=split_of(rel_json.parts[:-1])), *size


def _from_data(lm: LabelmeFile, rel_json: Path, skips: Skips) -> tuple | None:
    if not skips.usable(lm.path):  # the image is named after the JSON
        return None
    got = _embedded(lm, skips)
    if got is None:
        return None
    raw, suffix, w, h = got
    item = Item(lm.path.with_suffix(suffix), rel_json.with_suffix(suffix).as_posix(),
                split=split_of(rel_json.parts[:-1]), data=raw)
    skips.warnings.append(f"{lm.path}: image {lm.image_path!r} not found; imported from the JSON's embedded imageData")
    return item, w, h


def _item(lm: LabelmeFile, root: Path, finder: _Finder, skips: Skips) -> tuple[Item, float, float] | None:
    rel_json = lm.path.relative_to(root)
    src = finder.find(lm)
    if src is not None:
        got = _from_file(src, rel_json, finder, skips)
    elif lm.image_data:
        got = _from_data(lm, rel_json, skips)
    else:
        skips.add("image not found", lm.path, f"imagePath {lm.image_path!r}, and no imageData in the JSON")
        return None
    if got is None:
        return None
    item, w, h = got
    if lm.width and lm.height and (round(lm.width), round(lm.height)) != (w, h):
        skips.add("image size differs from the JSON", lm.path,
                  f"imageWidth x imageHeight {lm.width:g} x {lm.height:g}, image {w} x {h}: points drawn on another size")
        return None
    return item, w, h


def _imported(parsed: list[LabelmeFile], root: Path, finder: _Finder, skips: Skips) -> list[tuple]:
    """(JSON, item, width, height) of every JSON whose image is imported; the others listed in ``skips``."""
    kept, seen = [], {}
    for lm in parsed:
        got = _item(lm, root, finder, skips)
        if got is None:
            continue
        item = got[0]
        if item.data is None and item.src in seen:
            skips.add("image labelled by another JSON too", lm.path, f"{item.src} is imported with {seen[item.src]}")
            continue
        seen[item.src] = lm.path
        kept.append((lm, *got))
    return kept


def _add_rows(lm: LabelmeFile, item: Item, wh: tuple, rects: list, cmap: dict, skips: Skips, obb: bool = False) -> None:
    """The rows of one JSON's shapes (boxes, polygons of 3 points or more, or ``obb``: oriented boxes)."""
    polygon_text = _obb_text if obb else _polygon_text
    for k, r in enumerate(rects, 1):
        where = f"{lm.path}: shape {k}"
        if isinstance(r, str):
            shape = lm.shapes[k - 1]
            skips.add(r, where, str(shape.get("label", "")) if isinstance(shape, dict) else "")
        elif r[0] not in cmap:
            skips.add("unknown class", where, repr(r[0]))
        elif (row := yolo_row(cmap[r[0]], *r[1], *wh) if len(r[1]) == 4 else polygon_text(cmap[r[0]], r[1], *wh)) is None:
            skips.add("degenerate box" if len(r[1]) == 4 else "degenerate polygon", where,
                      f"points {r[1]} have no area inside the image")
        else:
            item.rows.append(row)


class _Object:
    """One pose object of a LabelMe file: its class and box (a rectangle or polygon) and its keypoints by name."""

    def __init__(self, label: str, box: list[float], where: str):
        self.label, self.box, self.where = label, box, where
        self.points: dict[str, tuple[float, float, int]] = {}


def _pose_shape(shape, where: str, kpts: list[str], skips: Skips):
    """``("box", label, xyxy)``, ``("point", name, (x, y))`` or None (the reason in ``skips``)."""
    got = _points(shape)
    if isinstance(got, str):
        skips.add(got, where)
        return None
    kind, flat = got
    label = _label(shape)
    if kind not in ("rectangle", "polygon", "point"):
        skips.add(f"{kind} shape (pose imports rectangles and their point shapes)", where, label or "")
    elif label is None:
        skips.add("shape without a label", where)
    elif None in flat or len(flat) < (2 if kind == "point" else 4) or kind == "point" and len(flat) != 2:
        skips.add(f"malformed {kind}", where, f"points {shape.get('points')!r:.60}")
    elif kind != "point":
        return "box", label, [min(flat[0::2]), min(flat[1::2]), max(flat[0::2]), max(flat[1::2])]
    elif label not in kpts:
        skips.add("unknown keypoint", where, f"{label!r} is not among --keypoints")
    else:
        return "point", label, tuple(flat)
    return None


def _pose_objects(lm: LabelmeFile, kpts: list[str], skips: Skips) -> list[_Object]:
    """The objects of one file: boxes by ``group_id`` with the point shapes of their group (module docstring)."""
    objects: dict = {}
    loose: list[_Object] = []  # boxes without a group_id
    points: list[tuple] = []
    for k, shape in enumerate(lm.shapes, 1):
        gid = shape.get("group_id") if isinstance(shape, dict) else None
        gid = gid if gid is None or isinstance(gid, (int, str)) else repr(gid)  # a hashable key, whatever was written
        where = f"{lm.path}: shape {k}" + (f" (group_id {gid})" if gid is not None else "")
        got = _pose_shape(shape, where, kpts, skips)
        if got is None:
            continue
        if got[0] == "point":
            points.append((gid, got[1], got[2], where))
        elif gid is None:
            loose.append(_Object(got[1], got[2], where))
        elif gid in objects:
            skips.add("second box in one group", where, f"group_id {gid} already has {objects[gid].where}")
        else:
            objects[gid] = _Object(got[1], got[2], where)
    for gid, name, (x, y), where in points:
        obj = objects.get(gid) if gid is not None else (loose[0] if len(loose) == 1 else None)
        if obj is None:
            skips.add("keypoint without its object", where,
                      f"no rectangle with group_id {gid}" if gid is not None else
                      f"no group_id, and the file has {len(loose)} rectangles without one")
        elif name in obj.points:
            skips.add("keypoint repeated in its object", where, repr(name))
        else:
            obj.points[name] = (x, y, 2)
    return list(objects.values()) + loose


def _pose_import(kept: list, classes: list[str] | None, kpts: list[str], skips: Skips):
    """Every kept file's pose rows; returns the :class:`Classes` with the keypoint keys."""
    objects = {lm.path: _pose_objects(lm, kpts, skips) for lm, *_ in kept}
    if classes is None:
        classes = sorted({o.label for objs in objects.values() for o in objs})
    cmap = {c: i for i, c in enumerate(classes)}
    for lm, item, w, h in kept:
        for o in objects[lm.path]:
            if o.label not in cmap:
                skips.add("unknown class", o.where, repr(o.label))
            elif (row := pose_row(cmap[o.label], o.box, o.points, kpts, (w, h))) is None:
                skips.add("degenerate box", o.where, f"box {o.box} has no area inside the image")
            else:
                item.rows.append(row)
    return pose_classes(dict(enumerate(classes)), kpts, skips)


def import_labelme(src_dir: str | Path, out: str | Path, classes: list[str] | None = None, images: str | Path | None = None,
                   task: str = "detect", keypoints: list[str] | None = None, **options) -> ImportReport:
    """A folder of LabelMe JSON files -> Ultralytics layout (see the module docstring); ``keypoints``: the keypoint
    names in order (``task="pose"``). ``options``: those of :class:`~yolo_attn.datasets.importers.ImportOptions`
    (``val_fraction``, ``link``, ``force``, ``test_fraction``)."""
    opt = ImportOptions.of(options)
    if task not in IMPORT_TASKS:
        raise ValueError(f"import-data labelme reads the tasks {', '.join(IMPORT_TASKS)}, not {task!r}")
    kpts = keypoint_names(keypoints, str(src_dir)) if task == "pose" else None
    if keypoints and task != "pose":
        raise ValueError(f"--keypoints goes with --task pose (not {task})")
    root = Path(src_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    images_dir = Path(images) if images else None
    if images_dir is not None and not images_dir.is_dir():
        raise FileNotFoundError(f"--images {images_dir}: not a folder")
    check_fractions(opt.val_fraction, opt.test_fraction)
    prepare_output(out, opt.force, [root, images_dir])
    out_abs = Path(out).resolve()
    skips = Skips(roots=(root, images_dir))
    parsed = [lm for p in sorted(root.rglob("*.json")) if p.is_file() and out_abs not in p.resolve().parents
              and (lm := _read(p, skips)) is not None]
    if not parsed:
        raise FileNotFoundError(f"{root}: no LabelMe JSON (a .json with 'shapes') in the folder or its sub-folders")
    kept = _imported(parsed, root, _Finder(root, images_dir), skips)
    items = [item for _, item, _, _ in kept]
    if task == "pose":
        names = _pose_import(kept, classes, kpts, skips)
    else:
        names = dict(enumerate(_shape_rows(kept, classes, task, skips)))
    keep_fixed_splits(items)
    return write_dataset(items, out, names, skips, str(root), opt.val_fraction, opt.link, opt.test_fraction)


def _shape_rows(kept: list, classes: list[str] | None, task: str, skips: Skips) -> list[str]:
    """The detect, segment or obb rows of every kept file (one shape, one row); returns the classes."""
    shape = {"segment": _polygon, "obb": _oriented}.get(task, _rectangle)
    rects = {lm.path: [shape(s) for s in lm.shapes] for lm, *_ in kept}
    if classes is None:  # the labels of the imported files only: a skipped file adds no class
        classes = sorted({r[0] for rs in rects.values() for r in rs if isinstance(r, tuple)})
    cmap = {c: i for i, c in enumerate(classes)}
    for lm, item, w, h in kept:
        _add_rows(lm, item, (w, h), rects[lm.path], cmap, skips, obb=task == "obb")
    return classes
