"""``yolo-attn import-data cvat``: a "CVAT for images 1.1" XML export -> Ultralytics layout.

The input is the export's ``annotations.xml`` or the folder it was unzipped into (``annotations.xml`` and
``images/``). In the XML, ``<image id name width height [subset]>`` holds the image's shapes:

* ``<box label xtl ytl xbr ybr occluded ...>`` becomes a YOLO box (occluded boxes included); a box with a
  non-zero ``rotation`` is skipped (its axis-aligned box is not what was drawn);
* ``<polygon>``, ``<polyline>``, ``<points>``, ``<ellipse>``, ``<cuboid>``, ``<mask>``, ``<skeleton>`` and
  ``<tag>`` are skipped, each listed with its kind;
* with ``task="segment"`` (``--task segment``) a ``<polygon points="x1,y1;x2,y2;...">`` becomes a segment row
  and a ``<box>`` its four corners (a rotated one still skipped); a polygon of fewer than 3 points is skipped;
* with ``task="obb"`` (``--task obb``) a ``<box>`` becomes an oriented-box row of its corners turned by its
  ``rotation`` (degrees, clockwise on the image, about the box's centre, as CVAT draws it), and a ``<polygon>`` of
  exactly 4 points its corners; corners outside the image are clipped to it;
* with ``task="pose"`` (``--task pose``) a ``<skeleton label>`` is one object: its ``<points label>`` elements are
  its keypoints (``outside="1"``: not labelled, ``0 0 0``; ``occluded="1"``: labelled but not visible, 1; else 2),
  its box the extent of its labelled keypoints (as CVAT's own YOLO pose export makes it). A ``<points>`` element
  outside a skeleton with exactly one point per keypoint is one object too, its points in keypoint order. The
  keypoint names: ``--keypoints`` in that order, else the skeleton's points in the XML's ``<meta>`` (the labels
  whose ``<parent>`` is a skeleton label, in order); ``kpt_shape`` is ``[K, 3]``, ``flip_idx`` is written when every
  left/right name has its mirror, else left out with a warning (Ultralytics then trains without flips).

Classes: ``--classes`` in that order, else the labels of ``<meta><task><labels>`` or
``<meta><project><labels>`` in the XML's order, else every box label found, sorted; a box whose label is
not a class is skipped. The image is ``name`` relative to ``--images``, the XML's folder or its
``images/`` folder (also under the image's subset folder), else a file of that base name in one of them;
a name that is absolute or leaves its folder (``../``) is refused. An image whose size differs from the
XML's ``width``/``height`` is skipped (its boxes were drawn on another size). Splits: from the images'
``subset`` (Train, Validation, Test) when there are a train and a val subset, else chosen here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .files import IMG_FORMATS
from .importers import (ImportOptions, ImportReport, Item, Skips, check_fractions, inside, keep_fixed_splits, number,
                        prepare_output, split_of, write_dataset, yolo_row)
from .task_rows import keypoint_names, obb_row, pose_classes, pose_row, rotated_corners
from .tasks.segment import polygon_row

OTHER_SHAPES = ("polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton", "tag", "box")
IMPORT_TASKS = ("detect", "segment", "obb", "pose")
# the elements each task reads (the others are skipped, listed with their kind)
TAKEN = {"detect": ("box",), "segment": ("box", "polygon"), "obb": ("box", "polygon"), "pose": ("skeleton", "points")}
SKIP_NOTE = {"detect": "boxes", "segment": "polygons and boxes", "obb": "boxes and 4-point polygons",
             "pose": "skeletons and points"}


def find_xml(src: Path) -> Path:
    """The annotations XML of ``src``: the file itself, or ``annotations.xml`` (or the only .xml) in the folder."""
    if src.is_file():
        return src
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if (src / "annotations.xml").is_file():
        return src / "annotations.xml"
    xmls = sorted(p for p in src.glob("*.xml") if p.is_file())
    if len(xmls) == 1:
        return xmls[0]
    raise FileNotFoundError(f"{src}: no annotations.xml" + (f" (and {len(xmls)} other XML files: name one)" if xmls else ""))


def _parse(xml: Path) -> ET.Element:
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ValueError(f"{xml}: not valid XML: {exc}") from None
    if root.tag != "annotations" or root.find("image") is None and root.find("track") is None:
        raise ValueError(f"{xml}: not a CVAT for images export (needs <annotations> with <image> elements)")
    if root.find("image") is None:
        raise ValueError(f"{xml}: holds <track> elements only, a 'CVAT for video' export; export the task as "
                         "'CVAT for images 1.1'")
    return root


def meta_labels(root: ET.Element) -> list[str]:
    """Label names of ``<meta><task|project><labels>`` in order (also a project's tasks), without repeats."""
    names = []
    for path in ("./meta/task/labels/label", "./meta/project/labels/label", "./meta/project/tasks/task/labels/label"):
        names += [(lbl.findtext("name") or "").strip() for lbl in root.findall(path)]
    return [n for n in dict.fromkeys(names) if n]


class _Images:
    """Where the images of one export are looked for, and an index of their base names (ignoring case)."""

    def __init__(self, xml: Path, images: Path | None):
        folders = [images] if images is not None else [xml.parent / "images", xml.parent]
        self.folders = [f for f in folders if f.is_dir()]
        self._by_name: dict[str, Path] | None = None

    def by_name(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            for folder in reversed(self.folders):
                for p in sorted(folder.rglob("*"), reverse=True):
                    if p.suffix[1:].lower() in IMG_FORMATS and p.is_file():
                        self._by_name[p.name.lower()] = p
        return self._by_name

    def find(self, name: str, subset: str) -> Path | None:
        for folder in self.folders:
            for cand in (inside(folder, name), inside(folder / subset, name) if subset else None):
                if cand is not None and cand.is_file():
                    return cand
        return self.by_name().get(Path(name.replace("\\", "/")).name.lower())

    def rel(self, src: Path) -> str:
        return next((src.relative_to(f).as_posix() for f in self.folders if f in src.parents), src.name)


def _box_row(box: ET.Element, cmap: dict, wh, where: str, skips: Skips) -> str | None:
    label = (box.get("label") or "").strip()
    if label not in cmap:
        skips.add("unknown label", where, repr(label))
        return None
    rot = number(box.get("rotation") or 0)
    if rot:
        skips.add("rotated box", where, f"rotation {rot:g} degrees")
        return None
    xyxy = [number(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
    if None in xyxy:
        skips.add("malformed box", where, "needs numeric xtl, ytl, xbr, ybr")
        return None
    x1, y1, x2, y2 = xyxy
    row = yolo_row(cmap[label], min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), *wh)
    if row is None:
        skips.add("degenerate box", where, f"box {xyxy} has no area inside the image")
    return row


def _polygon_row(shape: ET.Element, cmap: dict, wh, where: str, skips: Skips) -> str | None:
    """The segment row of a ``<polygon>`` (or of a ``<box>``'s corners), or None with the reason."""
    if shape.tag == "box":
        row = _box_row(shape, cmap, wh, where, skips)  # the same checks: label, rotation, numbers, area
        if row is None:
            return None
        x1, y1, x2, y2 = (number(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
        pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    else:
        label = (shape.get("label") or "").strip()
        if label not in cmap:
            skips.add("unknown label", where, repr(label))
            return None
        pairs = [p.split(",") for p in (shape.get("points") or "").split(";") if p.strip()]
        pts = [(number(p[0]), number(p[1])) if len(p) == 2 else (None, None) for p in pairs]
        if len(pts) < 3 or any(v is None for p in pts for v in p):
            skips.add("malformed polygon", where, f"points {shape.get('points')!r:.60} (a mask needs 3 x,y points)")
            return None
    w, h = wh
    pts = [(min(max(x, 0.0), w), min(max(y, 0.0), h)) for x, y in pts]
    if len({x for x, _ in pts}) < 2 or len({y for _, y in pts}) < 2:
        skips.add("degenerate polygon", where, "no area inside the image")
        return None
    return polygon_row(cmap[(shape.get("label") or "").strip()], pts, w, h).rstrip("\n")


def _xy_list(text: str | None) -> list[tuple[float | None, float | None]]:
    pairs = [p.split(",") for p in (text or "").split(";") if p.strip()]
    return [(number(p[0]), number(p[1])) if len(p) == 2 else (None, None) for p in pairs]


def _obb_row(shape: ET.Element, cmap: dict, wh, where: str, skips: Skips) -> str | None:
    """The OBB row of a ``<box>`` (its corners turned by its ``rotation``) or of a 4-point ``<polygon>``."""
    label = (shape.get("label") or "").strip()
    if label not in cmap:
        skips.add("unknown label", where, repr(label))
        return None
    if shape.tag == "box":
        xyxy = [number(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
        rot = number(shape.get("rotation") or 0)
        if None in xyxy or rot is None:
            skips.add("malformed box", where, "needs numeric xtl, ytl, xbr, ybr (and rotation)")
            return None
        pts = rotated_corners(*xyxy, rot)
    else:
        pts = _xy_list(shape.get("points"))
        if any(v is None for p in pts for v in p):
            skips.add("malformed polygon", where, f"points {shape.get('points')!r:.60}")
            return None
        if len(pts) != 4:
            skips.add(f"polygon of {len(pts)} point(s) (an oriented box is a polygon of 4 corners)", where)
            return None
    row = obb_row(cmap[label], pts, *wh)
    if row is None:
        skips.add("degenerate box", where, "no area inside the image")
    return row


def _keypoints(shape: ET.Element, kpts: list[str], where: str, skips: Skips) -> dict | None:
    """name -> (x, y, visibility) of a ``<skeleton>``'s points, or of a ``<points>`` element's points in keypoint order."""
    if shape.tag == "points":
        pts = _xy_list(shape.get("points"))
        if len(pts) != len(kpts) or any(v is None for p in pts for v in p):
            skips.add("points element is no object", where,
                      f"{len(pts)} point(s) where an object has {len(kpts)} keypoints ({', '.join(kpts[:4])}...)")
            return None
        v = 1 if shape.get("occluded") == "1" else 2
        return {name: (x, y, v) for name, (x, y) in zip(kpts, pts)}
    out = {}
    for p in shape.findall("points"):
        name, xy = (p.get("label") or "").strip(), _xy_list(p.get("points"))
        if name not in kpts:
            skips.add("unknown keypoint", where, f"{name!r} is not among the keypoints")
        elif len(xy) != 1 or None in xy[0]:
            skips.add("malformed keypoint", where, f"{name}: points {p.get('points')!r:.40}")
        elif p.get("outside") != "1":
            out[name] = (*xy[0], 1 if p.get("occluded") == "1" else 2)
    return out


def _pose_row(shape: ET.Element, cmap: dict, wh, where: str, skips: Skips, kpts: list[str]) -> str | None:
    label = (shape.get("label") or "").strip()
    if label not in cmap:
        skips.add("unknown label", where, repr(label))
        return None
    points = _keypoints(shape, kpts, where, skips)
    if points is None:
        return None
    row = pose_row(cmap[label], None, points, kpts, wh)
    if row is None:
        skips.add("degenerate box", where, "the labelled keypoints span no area inside the image")
    return row


def _shape_rows(el: ET.Element, xml: Path, item: Item, wh, cmap: dict, skips: Skips, task: str,
                kpts: list[str] | None = None) -> None:
    """The rows of one image's shapes for ``task``; every other shape listed in ``skips`` with its kind."""
    taken = TAKEN[task]
    make = {"detect": _box_row, "segment": _polygon_row, "obb": _obb_row}.get(task)
    for k, shape in enumerate(el, 1):
        where = f"{xml}: image id {el.get('id')}, {shape.tag} {k} ({shape.get('label') or 'no label'})"
        if shape.tag in taken:
            row = make(shape, cmap, wh, where, skips) if make else _pose_row(shape, cmap, wh, where, skips, kpts)
            if row is not None:
                item.rows.append(row)
        elif shape.tag in OTHER_SHAPES:
            skips.add(f"{shape.tag} (only {SKIP_NOTE[task]} are imported{'' if task == 'detect' else ' for ' + task})",
                      where)


def _image(el: ET.Element, xml: Path, finder: _Images, skips: Skips) -> tuple[Item, tuple[int, int]] | None:
    name, subset = (el.get("name") or "").strip(), (el.get("subset") or "").strip()
    where = f"{xml}: image id {el.get('id')} ({name or 'no name'})"
    if not name or inside(Path("."), name) is None:
        skips.add("path outside the images folder" if name else "malformed image entry", where,
                  f"name {name!r} refused" if name else "no name")
        return None
    src = finder.find(name, subset)
    if src is None:
        skips.add("image not found", where, "in none of " + ", ".join(map(str, finder.folders)))
        return None
    if not skips.usable(src, where):
        return None
    size = skips.image_size(src)
    if size is None:
        return None
    w, h = size
    xw, xh = number(el.get("width")), number(el.get("height"))
    if xw and xh and (round(xw), round(xh)) != (w, h):
        skips.add("image size differs from the XML", where, f"XML {xw:g} x {xh:g}, image {w} x {h}")
        return None
    return Item(src, finder.rel(src), split=split_of([subset]) if subset else None), (w, h)


def skeleton_keypoints(root: ET.Element) -> list[str]:
    """The keypoint names of the XML's skeleton labels: the ``<meta>`` labels whose ``<parent>`` is a label, in order."""
    names = []
    for path in ("./meta/task/labels/label", "./meta/project/labels/label", "./meta/project/tasks/task/labels/label"):
        names += [(lbl.findtext("name") or "").strip() for lbl in root.findall(path) if (lbl.findtext("parent") or "").strip()]
    return [n for n in dict.fromkeys(names) if n]


def _classes(root: ET.Element, task: str) -> list[str]:
    """The XML's own labels of the objects ``task`` reads (the skeletons' points are no classes), else those drawn."""
    drawn = [b for tag in TAKEN[task] for b in root.iter(tag)]
    if task == "pose":
        drawn = [el for img in root.findall("image") for el in img if el.tag in TAKEN[task]]
    parents = set(skeleton_keypoints(root))
    meta = [n for n in meta_labels(root) if n not in parents]
    return meta or sorted({(b.get("label") or "").strip() for b in drawn} - {""})


def import_cvat(src: str | Path, out: str | Path, classes: list[str] | None = None, images: str | Path | None = None,
                task: str = "detect", keypoints: list[str] | None = None, **options) -> ImportReport:
    """A CVAT for images 1.1 XML (or its export folder) -> Ultralytics layout (see the module docstring);
    ``keypoints``: the keypoint names in order (``task="pose"``; default: the skeleton's, from the XML). ``options``:
    those of :class:`~yolo_attn.datasets.importers.ImportOptions` (``val_fraction``, ``link``, ``force``,
    ``test_fraction``)."""
    opt = ImportOptions.of(options)
    if task not in IMPORT_TASKS:
        raise ValueError(f"import-data cvat reads the tasks {', '.join(IMPORT_TASKS)}, not {task!r}")
    if keypoints and task != "pose":
        raise ValueError(f"--keypoints goes with --task pose (not {task})")
    xml = find_xml(Path(src))
    images_dir = Path(images) if images else None
    if images_dir is not None and not images_dir.is_dir():
        raise FileNotFoundError(f"--images {images_dir}: not a folder")
    check_fractions(opt.val_fraction, opt.test_fraction)
    prepare_output(out, opt.force, [xml.parent, images_dir])
    root = _parse(xml)
    kpts = keypoint_names(keypoints or skeleton_keypoints(root), f"{xml} (no skeleton in its <meta>)") if task == "pose" else None
    if classes is None:
        classes = _classes(root, task)
    cmap = {c: i for i, c in enumerate(classes)}
    finder, skips, items = _Images(xml, images_dir), Skips(roots=(xml.parent, images_dir)), []
    for el in root.findall("image"):
        got = _image(el, xml, finder, skips)
        if got is None:
            continue
        item, wh = got
        _shape_rows(el, xml, item, wh, cmap, skips, task, kpts)
        items.append(item)
    if root.find("track") is not None:
        skips.warnings.append(f"{xml}: <track> elements (video annotations) are not imported")
    keep_fixed_splits(items)
    names = pose_classes(dict(enumerate(classes)), kpts, skips) if task == "pose" else dict(enumerate(classes))
    return write_dataset(items, out, names, skips, str(xml), opt.val_fraction, opt.link, opt.test_fraction)
