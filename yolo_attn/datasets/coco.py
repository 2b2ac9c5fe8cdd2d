"""``yolo-attn import-data coco``: a COCO instances JSON and its image folder -> Ultralytics layout.

Categories become classes 0..K-1 in ascending COCO category id. Skipped, each listed with its reason
and counted: crowd annotations, boxes with no area after clipping, annotations without an image,
a category or a 4-number ``bbox``, images whose ``file_name`` is absolute or leaves the images folder
(``../``), images that are missing or unreadable.
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import image_size
from .importers import (ImportReport, Item, Skips, check_fraction, inside, number, prepare_output, write_dataset,
                        yolo_row)


def _read(instances: Path) -> dict:
    try:
        js = json.loads(instances.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{instances}: not valid JSON: {exc}") from exc
    if not isinstance(js, dict) or not isinstance(js.get("images"), list) or not isinstance(js.get("categories"), list):
        raise ValueError(f"{instances}: not a COCO instances file (needs lists 'images' and 'categories')")
    return js


def _categories(instances: Path, cats: list) -> tuple[dict, dict[int, str]]:
    """``{category id: class index}`` and ``{class index: name}``; ValueError naming the bad category."""
    ids = []
    for i, c in enumerate(cats):
        cid = c.get("id") if isinstance(c, dict) else None
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ValueError(f"{instances}: categories[{i}] has no integer 'id' ({c!r:.80})")
        ids.append((cid, str(c.get("name", cid))))
    if len({cid for cid, _ in ids}) != len(ids):
        raise ValueError(f"{instances}: repeated category ids")
    ids.sort()
    return {cid: k for k, (cid, _) in enumerate(ids)}, {k: name for k, (_, name) in enumerate(ids)}


def _annotations(instances: Path, anns, cmap: dict, skips: Skips) -> dict:
    """Valid non-crowd annotations grouped by image id as (class, x, y, w, h); the rest counted in ``skips``."""
    by_image: dict = {}
    for i, a in enumerate(anns if isinstance(anns, list) else []):
        where = f"{instances}: annotations[{i}]" + (f" (id {a.get('id')})" if isinstance(a, dict) else "")
        if not isinstance(a, dict) or not isinstance(a.get("image_id"), (int, str)):
            skips.add("malformed annotation", where, "no image_id")
        elif a.get("iscrowd", 0):
            skips.counts["crowd"] += 1
        elif "category_id" not in a:
            skips.add("malformed annotation", where, "no category_id")
        elif not isinstance(a["category_id"], (int, str)) or a["category_id"] not in cmap:
            skips.add("unknown category", where, f"category_id {a['category_id']!r}")
        else:
            box = [number(v) for v in a.get("bbox")] if isinstance(a.get("bbox"), (list, tuple)) else []
            if len(box) != 4 or None in box:
                skips.add("malformed annotation", where, f"bbox must be 4 numbers, got {a.get('bbox')!r:.60}")
                continue
            by_image.setdefault(a["image_id"], []).append((cmap[a["category_id"]], *box))
    return by_image


def _image_item(im, images_dir: Path, where: str, skips: Skips) -> tuple[Item, float, float] | None:
    if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) or not isinstance(im.get("id"), (int, str)):
        skips.add("malformed image entry", where, "needs 'id' and 'file_name'")
        return None
    src = inside(images_dir, im["file_name"])
    if src is None:
        skips.add("path outside the images folder", where, f"file_name {im['file_name']!r} refused")
        return None
    if not src.is_file():
        skips.add("missing image file", src)
        return None
    try:
        w0, h0 = image_size(src)
    except (ValueError, OSError) as exc:
        skips.add("unreadable image", src, str(exc))
        return None
    w, h = number(im.get("width")), number(im.get("height"))
    if not (w and h and w > 0 and h > 0):
        w, h = w0, h0
    return Item(src, im["file_name"]), w, h


def import_coco(instances: str | Path, images_dir: str | Path, out: str | Path, split: str = "auto",
                val_fraction: float = 0.2, link: bool = False, force: bool = False) -> ImportReport:
    """COCO instances JSON + its image folder -> Ultralytics layout under ``out`` (see the module docstring).

    ``split``: ``train``, ``val``, or ``auto`` (exactly ``round(N * val_fraction)`` validation images,
    stratified by class; see :func:`yolo_attn.datasets.importers.assign_splits`).
    """
    instances, images_dir = Path(instances), Path(images_dir)
    if split not in ("auto", "train", "val"):
        raise ValueError(f"split must be auto, train or val, got {split!r}")
    check_fraction(val_fraction)
    prepare_output(out, force, [instances, images_dir])
    js = _read(instances)
    cmap, names = _categories(instances, js["categories"])
    skips = Skips()
    anns = _annotations(instances, js.get("annotations", []), cmap, skips)
    items = []
    for i, im in enumerate(js["images"]):
        got = _image_item(im, images_dir, f"{instances}: images[{i}]", skips)
        if got is None:
            continue
        item, w, h = got
        for c, x, y, bw, bh in anns.get(im["id"], []):
            row = yolo_row(c, x, y, x + bw, y + bh, w, h)
            if row is None:
                skips.add("degenerate box", item.src, f"bbox {[x, y, bw, bh]} has no area inside the image")
            else:
                item.rows.append(row)
        item.split = None if split == "auto" else split
        items.append(item)
    return write_dataset(items, out, names, skips, str(instances), val_fraction, link)
