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
  using them (and an unreadable embedded image is skipped with its reason).
* An image whose size differs from the JSON's ``imageWidth``/``imageHeight`` is skipped: its points were
  drawn on another size and would land in the wrong place.
* Classes: ``--classes`` in that order (other labels skipped as unknown), else every rectangle label
  found, sorted. Splits: from ``train``/``val``/``test`` folders when there are a train and a val folder,
  else chosen here.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .files import IMG_FORMATS
from .importers import (ImportReport, Item, Skips, check_fractions, inside, keep_fixed_splits, number, prepare_output,
                        split_of, write_dataset, yolo_row)


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


def _rectangle(shape) -> tuple[str, list[float]] | str:
    """(label, [x1, y1, x2, y2]) of a rectangle shape, else the reason it is skipped."""
    if not isinstance(shape, dict):
        return "malformed shape"
    kind = str(shape.get("shape_type") or "polygon")  # LabelMe's old files leave polygons untyped
    if kind != "rectangle":
        return f"{kind} shape (only rectangles are imported)"
    pts = shape.get("points")
    flat = [number(v) for p in pts for v in p] if isinstance(pts, list) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in pts) else []
    if len(flat) != 4 or None in flat:
        return "malformed rectangle"
    x1, y1, x2, y2 = flat
    return str(shape.get("label", "")).strip(), [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


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


def _embedded(lm: LabelmeFile, skips: Skips) -> tuple[bytes, str] | None:
    """The embedded image's bytes and a file suffix for them; None (reason in ``skips``) when unusable."""
    from PIL import Image

    try:
        raw = base64.b64decode(lm.image_data, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            fmt = (im.format or "png").lower()
    except (binascii.Error, ValueError, OSError) as exc:
        skips.add("unreadable embedded image", lm.path, f"imageData: {exc}")
        return None
    suffix = Path(lm.image_path).suffix.lower()
    if suffix[1:] not in IMG_FORMATS:
        suffix = ".jpg" if fmt in ("jpeg", "mpo") else f".{fmt}"
    return raw, suffix


def _item(lm: LabelmeFile, root: Path, finder: _Finder, skips: Skips) -> tuple[Item, float, float] | None:
    rel_json = lm.path.relative_to(root)
    src = finder.find(lm)
    if src is not None:
        size = skips.image_size(src)
        if size is None:
            return None
        w, h = size
        src = src.resolve()
        base = next(r for r in finder.roots if r in src.parents)
        item = Item(src, src.relative_to(base).as_posix(), split=split_of(rel_json.parts[:-1]))
    elif lm.image_data:
        got = _embedded(lm, skips)
        if got is None:
            return None
        raw, suffix = got
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
        rel = rel_json.with_suffix(suffix).as_posix()
        item = Item(lm.path.with_suffix(suffix), rel, split=split_of(rel_json.parts[:-1]), data=raw)
        skips.warnings.append(f"{lm.path}: image {lm.image_path!r} not found; imported from the JSON's embedded imageData")
    else:
        skips.add("image not found", lm.path, f"imagePath {lm.image_path!r}, and no imageData in the JSON")
        return None
    if lm.width and lm.height and (round(lm.width), round(lm.height)) != (w, h):
        skips.add("image size differs from the JSON", lm.path,
                  f"imageWidth x imageHeight {lm.width:g} x {lm.height:g}, image {w} x {h}: points drawn on another size")
        return None
    return item, w, h


def import_labelme(src_dir: str | Path, out: str | Path, classes: list[str] | None = None, images: str | Path | None = None,
                   val_fraction: float = 0.2, link: bool = False, force: bool = False,
                   test_fraction: float | None = None) -> ImportReport:
    """A folder of LabelMe JSON files -> Ultralytics layout (see the module docstring)."""
    root = Path(src_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    images_dir = Path(images) if images else None
    if images_dir is not None and not images_dir.is_dir():
        raise FileNotFoundError(f"--images {images_dir}: not a folder")
    check_fractions(val_fraction, test_fraction)
    prepare_output(out, force, [root, images_dir])
    out_abs = Path(out).resolve()
    skips = Skips()
    parsed = [lm for p in sorted(root.rglob("*.json")) if p.is_file() and out_abs not in p.resolve().parents
              and (lm := _read(p, skips)) is not None]
    if not parsed:
        raise FileNotFoundError(f"{root}: no LabelMe JSON (a .json with 'shapes') in the folder or its sub-folders")
    rects = {lm.path: [_rectangle(s) for s in lm.shapes] for lm in parsed}
    if classes is None:
        classes = sorted({r[0] for rs in rects.values() for r in rs if isinstance(r, tuple)} - {""})
    cmap = {c: i for i, c in enumerate(classes)}
    finder, items, seen = _Finder(root, images_dir), [], {}
    for lm in parsed:
        got = _item(lm, root, finder, skips)
        if got is None:
            continue
        item, w, h = got
        if item.data is None and item.src in seen:
            skips.add("image labelled by another JSON too", lm.path, f"{item.src} is imported with {seen[item.src]}")
            continue
        seen[item.src] = lm.path
        for k, r in enumerate(rects[lm.path], 1):
            where = f"{lm.path}: shape {k}"
            if isinstance(r, str):
                skips.add(r, where, str(lm.shapes[k - 1].get("label", "")) if isinstance(lm.shapes[k - 1], dict) else "")
            elif r[0] not in cmap:
                skips.add("unknown class", where, repr(r[0]))
            elif (row := yolo_row(cmap[r[0]], *r[1], w, h)) is None:
                skips.add("degenerate box", where, f"points {r[1]} have no area inside the image")
            else:
                item.rows.append(row)
        items.append(item)
    keep_fixed_splits(items)
    return write_dataset(items, out, dict(enumerate(classes)), skips, str(root), val_fraction, link, test_fraction)
