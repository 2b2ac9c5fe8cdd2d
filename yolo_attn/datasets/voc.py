"""``yolo-attn import-data voc``: Pascal VOC / LabelImg XML annotations -> Ultralytics layout.

Layouts taken (folder names compared ignoring case):

* VOCdevkit: ``DIR/Annotations/*.xml``, ``DIR/JPEGImages/``, optional ``DIR/ImageSets/Main/{train,val}.txt``
  (and ``test.txt``, VOC2007's test split);
* a folder of LabelImg XML files (``DIR`` itself, ``DIR/annotations/``, ``DIR/xml/``,
  ``DIR/annotations/xmls/``, ...) with the images beside them, in a sibling folder (``images/``,
  ``JPEGImages/``, ``imgs/``, ...), or in ``--images DIR``.

The image of an XML is found from its ``<filename>`` relative to those folders (falling back to the
XML's own name with an image suffix); ``<path>`` is never used, since it holds the annotator's
absolute path on another computer. A ``<filename>`` that is absolute or leaves its folder (``../``)
is refused. Every XML or object left out (malformed XML, image not found or unreadable, object
without a box or with an unknown class, ``difficult`` objects) is counted and listed in the report.
VOC pixel coordinates are 1-based inclusive, so a box covers ``[xmin - 1, xmax]``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .files import IMG_FORMATS
from .importers import (ImportReport, Item, Skips, check_fractions, inside, number, prepare_output, write_dataset,
                        yolo_row)

ANNOTATION_DIRS = ("annotations", "annotation", "xml", "xmls", "labels")
IMAGE_DIRS = ("jpegimages", "images", "image", "imgs", "img", "pictures", "photos")


def _child(folder: Path, names) -> Path | None:
    """The first sub-folder of ``folder`` whose name (ignoring case) is in ``names``, in the order of ``names``."""
    subs = {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_dir()} if folder.is_dir() else {}
    return next((subs[n] for n in names if n in subs), None)


def _xmls(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xml")


def find_folders(voc: Path, images: Path | None = None) -> tuple[Path, list[Path]]:
    """(annotation folder, image folders to search in order) of a VOC or LabelImg dataset at ``voc``."""
    if not voc.is_dir():
        raise FileNotFoundError(f"{voc}: not a folder")
    named = _child(voc, ANNOTATION_DIRS)
    nested = _child(named, ANNOTATION_DIRS) if named is not None else None  # e.g. Oxford-IIIT Pet's annotations/xmls/
    ann = next((d for d in (named, nested, voc) if d is not None and _xmls(d)), None)
    if ann is None:
        raise FileNotFoundError(f"{voc}: no XML annotations, neither in the folder nor in an Annotations/ sub-folder "
                                "(is this a Pascal VOC / LabelImg dataset?)")
    if images is not None:
        if not images.is_dir():
            raise FileNotFoundError(f"--images {images}: not a folder")
        return ann, [images]
    found = [_child(voc, IMAGE_DIRS), _child(ann.parent, IMAGE_DIRS), ann, voc]  # beside the XML or in a sibling
    return ann, list(dict.fromkeys(p for p in found if p is not None))


def _fixed_splits(voc: Path) -> dict[str, str]:
    sets = _child(voc, ("imagesets",))
    main = _child(sets, ("main",)) if sets else None
    files = {p.name.lower(): p for p in main.iterdir()} if main else {}
    if "train.txt" not in files or "val.txt" not in files:
        return {}
    return {stem: sp for sp in ("train", "val", "test") if f"{sp}.txt" in files
            for stem in files[f"{sp}.txt"].read_text(errors="replace").split()}


class ImageIndex:
    """The image files of the search folders, by name and by stem (both ignoring case), listed once."""

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self.by_name: list[dict[str, Path]] = []
        self.by_stem: list[dict[str, Path]] = []
        for folder in folders:
            files = sorted(p for p in folder.iterdir() if p.suffix[1:].lower() in IMG_FORMATS and p.is_file())
            self.by_name.append({p.name.lower(): p for p in reversed(files)})
            self.by_stem.append({p.stem.lower(): p for p in reversed(files)})

    def find(self, root: ET.Element, xml: Path, skips: Skips) -> Path | None:
        """The image of ``xml``: its ``<filename>`` in the first folder holding it, else by stem; None if not found."""
        fname = (root.findtext("filename") or "").strip()
        if fname and inside(Path("."), fname) is None:
            skips.add("path outside the images folder", xml, f"<filename> {fname!r} refused")
            return None
        for i, folder in enumerate(self.folders):
            if fname and (folder / fname).is_file():
                return inside(folder, fname)
            hit = self.by_name[i].get(fname.lower()) or self.by_stem[i].get(Path(fname).stem.lower() if fname else "")
            if hit is not None or (hit := self.by_stem[i].get(xml.stem.lower())) is not None:
                return hit
        skips.add("image not found", xml, f"<filename> {fname!r} in none of " + ", ".join(map(str, self.folders)))
        return None


def _size(root: ET.Element, src: Path, xml: Path, skips: Skips) -> tuple[float, float] | None:
    size = skips.image_size(src)
    if size is None:
        return None
    w0, h0 = size
    size = root.find("size")
    w, h = (number(size.findtext("width")), number(size.findtext("height"))) if size is not None else (None, None)
    return (w, h) if w and h and w > 0 and h > 0 else (w0, h0)


def _rows(root: ET.Element, xml: Path, cmap: dict, wh, include_difficult: bool, skips: Skips) -> list[str]:
    rows = []
    for k, o in enumerate(root.iter("object"), 1):
        name = (o.findtext("name") or "").strip()
        where = f"{xml}: object {k} ({name or 'no name'})"
        if name not in cmap:
            skips.add("unknown class", where)
            continue
        if not include_difficult and (o.findtext("difficult") or "0").strip() == "1":
            skips.counts["difficult"] += 1
            continue
        bb = o.find("bndbox")
        box = [number(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")] if bb is not None else [None]
        if None in box:
            skips.add("object without a box", where, "needs <bndbox> with numeric xmin, ymin, xmax, ymax")
            continue
        row = yolo_row(cmap[name], box[0] - 1, box[1] - 1, box[2], box[3], *wh)
        if row is None:
            skips.add("degenerate box", where, f"box {box} has no area inside the image")
        else:
            rows.append(row)
    return rows


def _parse(xmls: list[Path], skips: Skips) -> list[tuple[Path, ET.Element]]:
    parsed = []
    for xml in xmls:
        try:
            parsed.append((xml, ET.parse(xml).getroot()))
        except (ET.ParseError, OSError) as exc:
            skips.add("malformed XML", xml, str(exc))
    return parsed


def import_voc(voc_dir: str | Path, out: str | Path, classes: list[str] | None = None, val_fraction: float = 0.2,
               include_difficult: bool = False, link: bool = False, images: str | Path | None = None,
               force: bool = False, test_fraction: float | None = None) -> ImportReport:
    """VOC or LabelImg folder -> Ultralytics layout (see the module docstring).

    Classes: ``classes`` if given, else every object name found, sorted. Splits: ``ImageSets/Main/train.txt``
    and ``val.txt`` when both exist, else exactly ``round(N * val_fraction)`` validation images, stratified
    by class. ``difficult`` objects are skipped unless ``include_difficult``.
    """
    voc = Path(voc_dir)
    check_fractions(val_fraction, test_fraction)
    ann, folders = find_folders(voc, Path(images) if images else None)
    prepare_output(out, force, [voc, images])
    skips = Skips(roots=(voc, *folders))  # the image folders searched (a LabelImg one may be beside voc)
    parsed = _parse(_xmls(ann), skips)
    if classes is None:
        classes = sorted({(o.findtext("name") or "").strip() for _, r in parsed for o in r.iter("object")} - {""})
    cmap = {c: i for i, c in enumerate(classes)}
    fixed = _fixed_splits(voc)
    index, items = ImageIndex(folders), []
    for xml, root in parsed:
        if fixed and xml.stem not in fixed:
            skips.add("not in ImageSets", xml)
            continue
        src = index.find(root, xml, skips)
        wh = _size(root, src, xml, skips) if src is not None and skips.usable(src, xml) else None
        if wh is None:
            continue
        rel = str(src.relative_to(folders[0])) if folders[0] in src.parents else src.name
        items.append(Item(src, rel, _rows(root, xml, cmap, wh, include_difficult, skips), fixed.get(xml.stem)))
    return write_dataset(items, out, dict(enumerate(classes)), skips, str(voc), val_fraction, link, test_fraction)
