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

``task``: ``detect`` (the default) writes each annotation's ``bbox``; ``segment`` writes its ``segmentation``
polygons (an object drawn in several parts joined into one polygon row; a run-length mask, as crowd annotations
carry, skipped and listed with its reason); ``pose`` writes its ``bbox`` and ``keypoints`` (``kpt_shape`` from the
categories' ``keypoints`` names, ``flip_idx`` when every ``left``/``right`` name has its mirror, else left out with a
note: Ultralytics then trains without flips).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np

from .importers import (Classes, ImportOptions, ImportReport, Item, Skips, check_fractions, inside, number,
                        prepare_output, split_of, write_dataset, yolo_row)
from .tasks.pose import flip_index, keypoint_text
from .tasks.segment import merge_parts, polygon_row

IMPORT_TASKS = ("detect", "segment", "pose")

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


def _annotations(instances: Path, js: dict, cmap: dict, skips: Skips, task: str = "detect") -> dict:
    """Valid non-crowd annotations grouped by image id as (class, [x, y, w, h], annotation); the rest counted in
    ``skips`` (crowd annotations listed too for a task that reads the masks or keypoints)."""
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
            if task == "detect":
                skips.counts["crowd"] += 1
            else:
                skips.add("crowd", where, "a crowd region (run-length mask), not one object")
        elif "category_id" not in a:
            skips.add("malformed annotation", where, "no category_id")
        elif not isinstance(a["category_id"], (int, str)) or a["category_id"] not in cmap:
            skips.add("unknown category", where, f"category_id {a['category_id']!r}")
        else:
            box = [number(v) for v in a.get("bbox")] if isinstance(a.get("bbox"), (list, tuple)) else []
            if len(box) != 4 or None in box:
                skips.add("malformed annotation", where, f"bbox must be 4 numbers, got {a.get('bbox')!r:.60}")
                continue
            by_image.setdefault(a["image_id"], []).append((cmap[a["category_id"]], box, a))
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


def _box_row(c: int, box: list, ann: dict, wh: tuple, where, skips: Skips) -> str | None:
    x, y, bw, bh = box
    row = yolo_row(c, x, y, x + bw, y + bh, *wh)
    if row is None:
        skips.add("degenerate box", where, f"bbox {[x, y, bw, bh]} has no area inside the image")
    return row


def _polygon_row(c: int, box: list, ann: dict, wh: tuple, where, skips: Skips) -> str | None:
    """The segment row of an annotation's polygons (several parts joined into one), or None with the reason."""
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        skips.add("run-length mask", f"{where} (annotation id {ann.get('id')})", "segmentation is RLE, not polygons")
        return None
    parts = []
    for p in seg if isinstance(seg, list) else []:
        vals = [number(v) for v in p] if isinstance(p, list) else []
        if len(vals) >= 6 and len(vals) % 2 == 0 and None not in vals:
            parts.append(np.array(vals, dtype=float).reshape(-1, 2))
    if not parts:
        skips.add("no polygon", f"{where} (annotation id {ann.get('id')})", f"segmentation {seg!r:.60}")
        return None
    pts = merge_parts(parts)
    xs, ys = np.clip(pts[:, 0], 0, wh[0]), np.clip(pts[:, 1], 0, wh[1])
    if xs.max() - xs.min() <= 0 or ys.max() - ys.min() <= 0:
        skips.add("degenerate polygon", f"{where} (annotation id {ann.get('id')})", "no area inside the image")
        return None
    return polygon_row(c, zip(xs.tolist(), ys.tolist()), *wh).rstrip("\n")


def _pose_row(c: int, box: list, ann: dict, wh: tuple, where, skips: Skips, k: int) -> str | None:
    """The pose row of an annotation (box, then its ``k`` keypoints), or None with the reason."""
    kpts = ann.get("keypoints")
    vals = [number(v) for v in kpts] if isinstance(kpts, list) else []
    text = keypoint_text(vals, *wh) if len(vals) == 3 * k and None not in vals else None
    if text is None:
        skips.add("malformed keypoints", f"{where} (annotation id {ann.get('id')})",
                  f"keypoints must be {k} x,y,v triplets (v 0, 1 or 2), got {kpts!r:.60}")
        return None
    row = _box_row(c, box, ann, wh, where, skips)
    return None if row is None else row + text


def _row_maker(task: str, classes: Classes):
    """``row(class, bbox, annotation, (w, h), where, skips)``: the label row of one annotation for ``task``."""
    if task == "pose":
        return partial(_pose_row, k=classes.yaml_keys["kpt_shape"][0])
    return {"detect": _box_row, "segment": _polygon_row}[task]


def _items(instances: Path, js: dict, images_dir: Path, cmap: dict, skips: Skips, split: str | None,
           row=_box_row) -> list[Item]:
    """The images of one instances file with their YOLO rows (``row``: :func:`_row_maker`); what cannot be used is
    counted in ``skips``."""
    anns = _annotations(instances, js, cmap, skips, "detect" if row is _box_row else "other")
    items = []
    for i, im in enumerate(js["images"]):
        got = _image_item(im, images_dir, f"{instances}: images[{i}]", skips)
        if got is None:
            continue
        item, w, h = got
        for c, box, ann in anns.get(im["id"], []):
            text = row(c, box, ann, (w, h), item.src, skips)
            if text is not None:
                item.rows.append(text)
        item.split = split
        items.append(item)
    return items


def _classes(files: dict[Path, dict], names: dict[int, str], task: str, skips: Skips) -> Classes:
    """The classes and, for pose, ``kpt_shape`` and ``flip_idx`` from the categories' ``keypoints`` names."""
    if task != "pose":
        return Classes(names)
    found = {tuple(c["keypoints"]) for js in files.values() for c in js["categories"]
             if isinstance(c, dict) and isinstance(c.get("keypoints"), list) and c["keypoints"]}
    if not found:
        raise ValueError(f"{', '.join(map(str, files))}: no category names 'keypoints': not a COCO keypoints file")
    if len({len(k) for k in found}) > 1:
        raise ValueError(f"{', '.join(map(str, files))}: categories have different numbers of keypoints "
                         f"({sorted({len(k) for k in found})}); one dataset has one kpt_shape")
    kpts = [str(k) for k in sorted(found)[0]]
    keys = {"kpt_shape": [len(kpts), 3]}
    flip = flip_index(kpts) if len(found) == 1 else None
    if flip is None:
        skips.warnings.append(f"flip_idx left out: the keypoint names ({', '.join(kpts[:6])}...) do not pair every "
                              "left one with a right one; Ultralytics trains without flips (add flip_idx to data.yaml)")
    else:
        keys["flip_idx"] = flip
    return Classes(names, keys)


def _task(task: str) -> str:
    if task not in IMPORT_TASKS:
        raise ValueError(f"import-data coco reads the tasks {', '.join(IMPORT_TASKS)}, not {task!r}")
    return task


def import_coco(instances: str | Path, images_dir: str | Path, out: str | Path, split: str = "auto",
                task: str = "detect", **options) -> ImportReport:
    """COCO instances JSON + its image folder -> Ultralytics layout under ``out`` (see the module docstring).

    ``split``: ``train``, ``val``, or ``auto`` (exactly ``round(N * val_fraction)`` validation images,
    stratified by class; see :func:`yolo_attn.datasets.importers.assign_splits`). ``options``: those of
    :class:`~yolo_attn.datasets.importers.ImportOptions` (``val_fraction``, ``link``, ``force``, ``test_fraction``).
    """
    opt = ImportOptions.of(options)
    instances, images_dir = Path(instances), Path(images_dir)
    if split not in ("auto", "train", "val"):
        raise ValueError(f"split must be auto, train or val, got {split!r}")
    check_fractions(opt.val_fraction, opt.test_fraction)
    prepare_output(out, opt.force, [instances, images_dir])
    js = _read(instances)
    skips = Skips(roots=(images_dir,))
    cmap, names = _categories({instances: js}, skips)
    classes = _classes({instances: js}, names, _task(task), skips)
    items = _items(instances, js, images_dir, cmap, skips, None if split == "auto" else split, _row_maker(task, classes))
    return write_dataset(items, out, classes, skips, str(instances), opt.val_fraction, opt.link, opt.test_fraction)


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
                       force: bool = False, test_fraction: float | None = None, task: str = "detect") -> ImportReport:
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
    classes = _classes(js, names, _task(task), skips)
    row, items = _row_maker(task, classes), []
    for f, sp in files.items():
        prefix = f.parent.relative_to(folder).as_posix()
        for it in _items(f, js[f], f.parent, cmap, skips, sp, row):
            it.rel = it.rel if prefix == "." else f"{prefix}/{it.rel}"
            items.append(it)
    if not keep_fixed_splits(items) and any(sp for sp in files.values()):
        skips.warnings.append(f"{folder}: split folders {sorted({sp for sp in files.values() if sp})} have no train "
                              "and val pair; every image was split here")
    return write_dataset(items, out, classes, skips, str(folder), val_fraction, link, test_fraction)
