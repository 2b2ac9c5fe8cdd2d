"""``yolo-attn import-data coco``: COCO instances JSON -> Ultralytics layout.

Two inputs:

* one instances file and its image folder (``instances_val2017.json val2017/``), its images split here
  (or all sent to ``--split``);
* a whole export folder with one ``_annotations.coco.json`` per split folder and the images beside it
  (Roboflow's "COCO" export: ``train/``, ``valid/``, ``test/``), each folder keeping its split.

Categories become classes 0..K-1 in ascending COCO category id (the union over the split files of an
export; one id must have one name in all of them). A category that has no annotation and is only the
``supercategory`` of other categories (Roboflow writes one such umbrella category, id 0) is not a class:
it is left out, with a note; two categories of one name are refused (one class, two indices). Skipped, each
listed with its reason and counted: crowd annotations, boxes with no area after clipping, annotations without
an image, a category or a 4-number ``bbox``, annotations whose ``image_id`` is no image's id, images whose
``file_name`` is absolute or leaves the images folder (``../``), images that are missing or unreadable, or
symlinks to a file outside the images folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from .importers import (ImportReport, Item, Skips, check_fractions, inside, number, prepare_output, split_of,
                        write_dataset, yolo_row)

EXPORT_JSON = "_annotations.coco.json"  # Roboflow's name for each split's instances file


def _read(instances: Path) -> dict:
    try:
        js = json.loads(instances.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{instances}: not valid JSON: {exc}") from exc
    if not isinstance(js, dict) or not isinstance(js.get("images"), list) or not isinstance(js.get("categories"), list):
        raise ValueError(f"{instances}: not a COCO instances file (needs lists 'images' and 'categories')")
    return js


def _category_list(instances: Path, cats: list) -> list[tuple[int, str, str | None]]:
    """(id, name, supercategory) of every category; ValueError naming the bad category."""
    out = []
    for i, c in enumerate(cats):
        cid = c.get("id") if isinstance(c, dict) else None
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ValueError(f"{instances}: categories[{i}] has no integer 'id' ({c!r:.80})")
        sup = c.get("supercategory")
        out.append((cid, str(c.get("name", cid)), str(sup) if sup is not None else None))
    if len({cid for cid, _, _ in out}) != len(out):
        raise ValueError(f"{instances}: repeated category ids")
    return out


def _unique_names(files: dict[Path, dict], names: dict[int, str]) -> None:
    """ValueError naming the file(s) when two category ids share a name (they would be one class twice)."""
    ids: dict[str, list[int]] = {}
    for cid, name in names.items():
        ids.setdefault(name, []).append(cid)
    repeated = {name: cids for name, cids in ids.items() if len(cids) > 1}
    if repeated:
        which = "; ".join(f"category name {name!r} is used by ids {' and '.join(map(str, cids))}"
                          for name, cids in repeated.items())
        raise ValueError(f"{', '.join(map(str, files))}: {which}; one name must be one class: merge or rename them")


def _categories(files: dict[Path, dict], skips: Skips) -> tuple[dict, dict[int, str]]:
    """``{category id: class index}`` and ``{class index: name}`` over every instances file of the input.

    The categories of several files are merged by id (one id, one name). A category with no annotation
    that is the supercategory of another category is an umbrella, not a class: left out, with a warning.
    """
    by_id: dict[int, str] = {}
    sups: set[str] = set()
    used: set = set()
    for path, js in files.items():
        for cid, name, sup in _category_list(path, js["categories"]):
            if by_id.get(cid, name) != name:
                raise ValueError(f"{path}: category id {cid} is {name!r} here but {by_id[cid]!r} in another split's "
                                 "file; the splits of one export must share their categories")
            by_id[cid] = name
            if sup is not None and sup != name:
                sups.add(sup)
        used |= {a.get("category_id") for a in js.get("annotations") or [] if isinstance(a, dict)}
    umbrella = sorted(cid for cid, name in by_id.items() if name in sups and cid not in used)
    for cid in umbrella:
        skips.warnings.append(f"category {cid} ({by_id[cid]!r}) has no annotation and is the supercategory of other "
                              "categories: left out of the classes")
    ids = sorted(cid for cid in by_id if cid not in umbrella)
    _unique_names(files, {cid: by_id[cid] for cid in ids})
    return {cid: k for k, cid in enumerate(ids)}, {k: by_id[cid] for k, cid in enumerate(ids)}


def _annotations(instances: Path, js: dict, cmap: dict, skips: Skips) -> dict:
    """Valid non-crowd annotations grouped by image id as (class, x, y, w, h); the rest counted in ``skips``."""
    anns = js.get("annotations", [])
    image_ids = {im.get("id") for im in js["images"] if isinstance(im, dict) and isinstance(im.get("id"), (int, str))}
    by_image: dict = {}
    for i, a in enumerate(anns if isinstance(anns, list) else []):
        where = f"{instances}: annotations[{i}]" + (f" (id {a.get('id')})" if isinstance(a, dict) else "")
        if not isinstance(a, dict) or not isinstance(a.get("image_id"), (int, str)):
            skips.add("malformed annotation", where, "no image_id")
        elif a["image_id"] not in image_ids:
            skips.add("annotation of no image", where, f"image_id {a['image_id']!r} is no entry of 'images'")
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
    if not skips.usable(src, where):
        return None
    size = skips.image_size(src)
    if size is None:
        return None
    w0, h0 = size
    w, h = number(im.get("width")), number(im.get("height"))
    if not (w and h and w > 0 and h > 0):
        w, h = w0, h0
    return Item(src, im["file_name"]), w, h


def _items(instances: Path, js: dict, images_dir: Path, cmap: dict, skips: Skips, split: str | None) -> list[Item]:
    """The images of one instances file with their YOLO rows; what cannot be used is counted in ``skips``."""
    anns = _annotations(instances, js, cmap, skips)
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
        item.split = split
        items.append(item)
    return items


def import_coco(instances: str | Path, images_dir: str | Path, out: str | Path, split: str = "auto",
                val_fraction: float = 0.2, link: bool = False, force: bool = False,
                test_fraction: float | None = None) -> ImportReport:
    """COCO instances JSON + its image folder -> Ultralytics layout under ``out`` (see the module docstring).

    ``split``: ``train``, ``val``, or ``auto`` (exactly ``round(N * val_fraction)`` validation images,
    stratified by class; see :func:`yolo_attn.datasets.importers.assign_splits`).
    """
    instances, images_dir = Path(instances), Path(images_dir)
    if split not in ("auto", "train", "val"):
        raise ValueError(f"split must be auto, train or val, got {split!r}")
    check_fractions(val_fraction, test_fraction)
    prepare_output(out, force, [instances, images_dir])
    js = _read(instances)
    skips = Skips(roots=(images_dir,))
    cmap, names = _categories({instances: js}, skips)
    items = _items(instances, js, images_dir, cmap, skips, None if split == "auto" else split)
    return write_dataset(items, out, names, skips, str(instances), val_fraction, link, test_fraction)


def export_files(folder: Path) -> dict[Path, str | None]:
    """``{instances file: split}`` of a COCO export folder: ``_annotations.coco.json`` in the folder itself
    (split chosen here) or in split folders (``train/``, ``valid/``, ``test/``; another folder name is an error)."""
    found = sorted(folder.rglob(EXPORT_JSON))
    if not found:
        raise FileNotFoundError(f"{folder}: no {EXPORT_JSON} in the folder or its sub-folders (a COCO export has one "
                                "per split folder); for a single instances file give: INSTANCES.json IMAGES OUT")
    files = {}
    for f in found:
        rel = f.parent.relative_to(folder).parts
        sp = split_of(rel)
        if rel and sp is None:
            raise ValueError(f"{f}: in folder {f.parent.name!r}, which names no split (train, valid/val, test)")
        files[f] = sp
    if len(files) > 1 and None in files.values():
        raise ValueError(f"{folder}: {EXPORT_JSON} both at the top and in split folders; import one or the other")
    return files


def import_coco_export(folder: str | Path, out: str | Path, val_fraction: float = 0.2, link: bool = False,
                       force: bool = False, test_fraction: float | None = None) -> ImportReport:
    """A COCO export folder (one ``_annotations.coco.json`` per split folder, images beside it) -> Ultralytics
    layout, keeping the export's splits when it has a train and a val split (see the module docstring)."""
    from .importers import keep_fixed_splits

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    check_fractions(val_fraction, test_fraction)
    prepare_output(out, force, [folder])
    files = export_files(folder)
    js = {f: _read(f) for f in files}
    skips = Skips(roots=(folder,))
    cmap, names = _categories(js, skips)
    items = []
    for f, sp in files.items():
        prefix = f.parent.relative_to(folder).as_posix()
        for it in _items(f, js[f], f.parent, cmap, skips, sp):
            it.rel = it.rel if prefix == "." else f"{prefix}/{it.rel}"
            items.append(it)
    if not keep_fixed_splits(items) and any(sp for sp in files.values()):
        skips.warnings.append(f"{folder}: split folders {sorted({sp for sp in files.values() if sp})} have no train "
                              "and val pair; every image was split here")
    return write_dataset(items, out, names, skips, str(folder), val_fraction, link, test_fraction)
