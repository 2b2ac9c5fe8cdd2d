"""Dataset importers (COCO JSON, Pascal VOC XML -> Ultralytics layout) and a dataset check.

Ultralytics layout written by the importers::

    OUT/images/{train,val}/<name>.jpg
    OUT/labels/{train,val}/<name>.txt     # "cls xc yc w h", normalised to [0, 1]
    OUT/data.yaml                          # path: OUT (absolute), train/val, names

:func:`check_data` reads any Ultralytics dataset YAML and reports every problem with its file:

=========================================  =========
problem                                    severity
=========================================  =========
YAML unreadable / no names / split missing fatal
split with no images                       fatal
unreadable or empty image                  fatal
label line malformed (columns, numbers)    fatal
class id not an integer in [0, nc)         fatal
coordinate outside [0, 1] (not normalised) fatal
box extends outside the image by > 1%      fatal
box extends outside the image by <= 1%     warning (Ultralytics clips it)
zero-size box                              warning
missing label file                         warning (background image); fatal if a split has no labels at all
empty label file                           warning (background image)
duplicate label line                       warning
=========================================  =========
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

IMG_FORMATS = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
EDGE_TOLERANCE = 0.01  # boxes may stick out of the image by this fraction before it is fatal


# --------------------------------------------------------------------------------------------
# Dataset YAML helpers
# --------------------------------------------------------------------------------------------
def load_data_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dataset YAML not found: {path}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset YAML must be a mapping")
    return data


def dataset_root(path: str | Path, data: dict | None = None) -> Path:
    """The dataset root of YAML ``path``: its ``path:`` (relative: against the YAML's folder, then the cwd) or its folder."""
    src = Path(path).resolve()
    data = load_data_yaml(src) if data is None else data
    root = data.get("path")
    if not root:
        return src.parent
    root = Path(str(root)).expanduser()
    if root.is_absolute():
        return root
    beside = (src.parent / root).resolve()
    return beside if beside.exists() else root.resolve()


def absolute_data_yaml(path: str | Path, out_dir: str | Path) -> Path:
    """A copy of dataset YAML ``path`` with an absolute ``path:`` in ``out_dir`` (resolves from any cwd)."""
    try:  # the datasets module of yolo_attn does the same; prefer it when present
        from ..datasets import dataset_yaml

        return dataset_yaml(path, out_dir)
    except ImportError:  # pragma: no cover - older checkouts
        pass
    data = load_data_yaml(path)
    data["path"] = str(dataset_root(path, data))
    text = f"# absolute-path copy of {Path(path).resolve()}\n" + yaml.safe_dump(data, sort_keys=False)
    out = Path(out_dir) / f"{Path(path).stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def class_names(data: dict) -> dict[int, str]:
    names = data.get("names")
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, (list, tuple)):
        return dict(enumerate(map(str, names)))
    if "nc" in data:
        return {i: f"class{i}" for i in range(int(data["nc"]))}
    raise ValueError("dataset YAML has neither 'names' nor 'nc'")


def split_images(root: Path, spec) -> list[Path]:
    """Image files of one split entry (a folder, a .txt list of files, or a list of either)."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    files: list[Path] = []
    for s in specs:
        p = Path(str(s))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS]
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text().splitlines():
                line = line.strip()
                if line:
                    q = Path(line)
                    files.append(q if q.is_absolute() else (p.parent / q).resolve())
        else:
            raise FileNotFoundError(str(p))
    return sorted(set(files))


def label_path(image: Path) -> Path:
    """Ultralytics' convention: the last ``images`` folder of the path replaced by ``labels``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image; raises ValueError if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as exc:  # PIL raises many types for broken files
        raise ValueError(f"unreadable image: {exc.__class__.__name__}: {exc}") from None
    if w < 1 or h < 1:
        raise ValueError("image has zero size")
    return int(w), int(h)


def read_yolo_labels(path: Path) -> np.ndarray:
    """(n, 5) rows ``cls xc yc w h`` of a YOLO label file (polygons become their boxes; exact duplicates dropped,
    as Ultralytics does); (0, 5) when the file is missing or empty."""
    if not Path(path).is_file():
        return np.zeros((0, 5))
    rows = []
    for line in Path(path).read_text().splitlines():
        v = [float(x) for x in line.split()]
        if len(v) == 5:
            rows.append(v)
        elif len(v) >= 7:
            xs, ys = np.array(v[1::2]), np.array(v[2::2])
            x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
            rows.append([v[0], (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
    if not rows:
        return np.zeros((0, 5))
    arr = np.array(rows, dtype=float)
    _, first = np.unique(arr, axis=0, return_index=True)
    return arr[np.sort(first)]


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------
@dataclass
class Problem:
    severity: str  # "fatal" | "warning"
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():8s}{self.file}: {self.message}"


@dataclass
class CheckReport:
    data: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict] = field(default_factory=dict)

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "fatal"]

    @property
    def ok(self) -> bool:
        return not self.fatal

    def add(self, severity: str, file, message: str) -> None:
        self.problems.append(Problem(severity, str(file), message))

    def summary(self) -> str:
        lines = [str(p) for p in self.problems]
        for split, c in self.counts.items():
            lines.append(f"{split}: {c['images']} images, {c['boxes']} boxes, {c['labelled']} with labels")
        n_w = len(self.problems) - len(self.fatal)
        lines.append(f"{self.data}: {len(self.fatal)} fatal problem(s), {n_w} warning(s)" + ("" if self.ok else " -- FAILED"))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"data": self.data, "ok": self.ok, "counts": self.counts,
                "problems": [p.__dict__ for p in self.problems]}


def _check_label_file(rep: CheckReport, lbl: Path, nc: int, seen: set) -> int:
    text = lbl.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        rep.add("warning", lbl, "empty label file (image used as background)")
        return 0
    n = 0
    seen_lines = set()
    for no, line in enumerate(lines, 1):
        where = f"{lbl}:{no}"
        parts = line.split()
        if len(parts) != 5 and not (len(parts) >= 7 and len(parts) % 2 == 1):
            rep.add("fatal", where, f"malformed line {line.strip()!r}: expected 'cls xc yc w h' (5 columns), got {len(parts)}")
            continue
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            rep.add("fatal", where, f"malformed line {line.strip()!r}: not all numbers")
            continue
        if not all(np.isfinite(vals)):
            rep.add("fatal", where, f"malformed line {line.strip()!r}: NaN or infinite value")
            continue
        c = vals[0]
        if c != int(c) or not 0 <= c < nc:
            rep.add("fatal", where, f"unknown class id {parts[0]} (dataset has {nc} classes: 0..{nc - 1})")
        coords = np.array(vals[1:])
        if ((coords < 0) | (coords > 1)).any():
            rep.add("fatal", where, f"coordinates outside [0, 1] (not normalised or outside the image): {line.strip()!r}")
            continue
        if len(parts) == 5:
            xc, yc, w, h = coords
            x1, y1, x2, y2 = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
        else:  # segment polygon: its bounding box
            xs, ys = coords[0::2], coords[1::2]
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
            w, h = x2 - x1, y2 - y1
        out = max(-x1, -y1, x2 - 1, y2 - 1, 0.0)
        if out > EDGE_TOLERANCE:
            rep.add("fatal", where, f"box outside the image by {out:.1%} of its size: {line.strip()!r}")
        elif out > 1e-6:
            rep.add("warning", where, f"box sticks out of the image by {out:.2%} (clipped by Ultralytics)")
        if w <= 0 or h <= 0:
            rep.add("warning", where, "zero-size box")
        key = tuple(round(v, 6) for v in vals)
        if key in seen_lines:
            rep.add("warning", where, "duplicate label line")
        seen_lines.add(key)
        n += 1
    return n


def check_data(data_yaml: str | Path, splits=("train", "val", "test"), check_images: bool = True) -> CheckReport:
    """Check an Ultralytics dataset YAML; every problem is reported with its file (see the module table)."""
    rep = CheckReport(str(data_yaml))
    try:
        data = load_data_yaml(data_yaml)
        names = class_names(data)
    except (FileNotFoundError, ValueError) as exc:
        rep.add("fatal", data_yaml, str(exc))
        return rep
    nc = int(data.get("nc", len(names)))
    if nc != len(names):
        rep.add("fatal", data_yaml, f"nc={nc} but {len(names)} names")
    root = dataset_root(data_yaml, data)
    for split in splits:
        if split not in data or data[split] in (None, ""):
            if split in ("train", "val"):
                rep.add("fatal", data_yaml, f"no '{split}' split")
            continue
        try:
            images = split_images(root, data[split])
        except FileNotFoundError as exc:
            rep.add("fatal", data_yaml, f"'{split}' path not found: {exc}")
            continue
        if not images:
            rep.add("fatal", data_yaml, f"'{split}' split has no images")
            continue
        boxes = labelled = 0
        for img in images:
            if check_images:
                try:
                    image_size(img)
                except ValueError as exc:
                    rep.add("fatal", img, str(exc))
            lbl = label_path(img)
            if not lbl.is_file():
                rep.add("warning", lbl, f"missing label file for {img.name} (image used as background)")
                continue
            n = _check_label_file(rep, lbl, nc, set())
            boxes += n
            labelled += n > 0
        if labelled == 0:
            rep.add("fatal", data_yaml, f"'{split}' split: none of its {len(images)} images has labels (wrong layout?)")
        rep.counts[split] = {"images": len(images), "boxes": boxes, "labelled": labelled}
    return rep


# --------------------------------------------------------------------------------------------
# Importers
# --------------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    out: Path
    yaml: Path
    images: dict[str, int]
    boxes: int
    skipped: dict[str, int]
    names: dict[int, str]

    def summary(self) -> str:
        sk = ", ".join(f"{k}: {v}" for k, v in self.skipped.items() if v) or "none"
        im = ", ".join(f"{k}: {v}" for k, v in self.images.items())
        return f"wrote {self.yaml} ({len(self.names)} classes; images {im}; {self.boxes} boxes; skipped {sk})"


def _auto_split(name: str, val_fraction: float) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def _place(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if link:
        os.symlink(src.resolve(), dst)
    else:
        shutil.copy2(src, dst)


def _yolo_row(c: int, x1: float, y1: float, x2: float, y2: float, w: int, h: int) -> str | None:
    x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
    y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def _write_yaml(out: Path, names: dict[int, str], source: str) -> Path:
    splits = [s for s in ("train", "val") if (out / "images" / s).is_dir()]
    if not splits:
        raise ValueError(f"{out}: nothing imported")
    data = {"path": str(out.resolve()), "train": f"images/{splits[0]}", "val": f"images/{splits[-1]}",
            "nc": len(names), "names": {int(k): v for k, v in sorted(names.items())}}
    text = f"# imported by yolo-attn import-data from {source}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    p = out / "data.yaml"
    p.write_text(text)
    return p


def import_coco(instances: str | Path, images_dir: str | Path, out: str | Path, split: str = "auto",
                val_fraction: float = 0.2, link: bool = False) -> ImportReport:
    """COCO instances JSON + its image folder -> Ultralytics layout under ``out`` (see the module docstring).

    Categories become classes 0..K-1 in ascending COCO category id; crowd annotations and boxes of zero
    area after clipping are skipped (counted in the report). ``split``: ``train``, ``val``, or ``auto``
    (a deterministic ``val_fraction`` of the images, by hashed file name).
    """
    instances, images_dir, out = Path(instances), Path(images_dir), Path(out)
    try:
        js = json.loads(instances.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{instances}: not valid JSON: {exc}") from exc
    if not isinstance(js, dict) or "images" not in js or "categories" not in js:
        raise ValueError(f"{instances}: not a COCO instances file (needs 'images' and 'categories')")
    cats = sorted(js["categories"], key=lambda c: c["id"])
    cmap = {c["id"]: i for i, c in enumerate(cats)}
    names = {i: str(c.get("name", c["id"])) for i, c in enumerate(cats)}
    anns: dict[int, list] = {}
    for a in js.get("annotations", []):
        anns.setdefault(a["image_id"], []).append(a)
    skipped = {"crowd": 0, "degenerate box": 0, "unknown category": 0, "missing image file": 0}
    counts = {"train": 0, "val": 0}
    boxes = 0
    for im in js["images"]:
        src = images_dir / im["file_name"]
        if not src.is_file():
            skipped["missing image file"] += 1
            continue
        w, h = im.get("width"), im.get("height")
        if not w or not h:
            w, h = image_size(src)
        sp = _auto_split(im["file_name"], val_fraction) if split == "auto" else split
        name = Path(im["file_name"]).name
        _place(src, out / "images" / sp / name, link)
        rows = []
        for a in anns.get(im["id"], []):
            if a.get("iscrowd", 0):
                skipped["crowd"] += 1
                continue
            if a["category_id"] not in cmap:
                skipped["unknown category"] += 1
                continue
            x, y, bw, bh = a["bbox"]
            row = _yolo_row(cmap[a["category_id"]], x, y, x + bw, y + bh, w, h)
            if row is None:
                skipped["degenerate box"] += 1
                continue
            rows.append(row)
        lbl = out / "labels" / sp / (Path(name).stem + ".txt")
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("".join(r + "\n" for r in rows))
        counts[sp] = counts.get(sp, 0) + 1
        boxes += len(rows)
    y = _write_yaml(out, names, str(instances))
    return ImportReport(out, y, counts, boxes, skipped, names)


def import_voc(voc_dir: str | Path, out: str | Path, classes: list[str] | None = None, val_fraction: float = 0.2,
               include_difficult: bool = False, link: bool = False) -> ImportReport:
    """Pascal VOC folder (``Annotations/*.xml``, ``JPEGImages/``, optional ``ImageSets/Main/{train,val}.txt``) -> Ultralytics layout.

    Classes: ``classes`` if given, else every object name found, sorted. Splits: ``ImageSets/Main/train.txt``
    and ``val.txt`` when both exist, else a deterministic ``val_fraction`` by hashed name. VOC pixel
    coordinates are 1-based inclusive, so a box covers ``[xmin - 1, xmax]``. ``difficult`` objects are
    skipped unless ``include_difficult``.
    """
    voc, out = Path(voc_dir), Path(out)
    ann_dir, img_dir = voc / "Annotations", voc / "JPEGImages"
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"{voc}: no Annotations/ folder (is this a VOC dataset?)")
    parsed = []
    for xml in sorted(ann_dir.glob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            raise ValueError(f"{xml}: malformed XML: {exc}") from exc
        parsed.append((xml, root))
    if classes is None:
        classes = sorted({(o.findtext("name") or "").strip() for _, r in parsed for o in r.iter("object")} - {""})
    cmap = {c: i for i, c in enumerate(classes)}
    sets = voc / "ImageSets" / "Main"
    fixed = {}
    if (sets / "train.txt").is_file() and (sets / "val.txt").is_file():
        for sp in ("train", "val"):
            for line in (sets / f"{sp}.txt").read_text().split():
                fixed[line.strip()] = sp
    skipped = {"difficult": 0, "unknown class": 0, "degenerate box": 0, "missing image file": 0, "not in ImageSets": 0}
    counts = {"train": 0, "val": 0}
    boxes = 0
    for xml, root in parsed:
        fname = root.findtext("filename") or (xml.stem + ".jpg")
        src = img_dir / fname
        if not src.is_file():
            cands = list(img_dir.glob(xml.stem + ".*"))
            if not cands:
                skipped["missing image file"] += 1
                continue
            src = cands[0]
        stem = xml.stem
        if fixed:
            if stem not in fixed:
                skipped["not in ImageSets"] += 1
                continue
            sp = fixed[stem]
        else:
            sp = _auto_split(stem, val_fraction)
        size = root.find("size")
        try:
            w, h = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            assert w > 0 and h > 0
        except Exception:
            w, h = image_size(src)
        rows = []
        for o in root.iter("object"):
            name = (o.findtext("name") or "").strip()
            if name not in cmap:
                skipped["unknown class"] += 1
                continue
            if not include_difficult and (o.findtext("difficult") or "0").strip() == "1":
                skipped["difficult"] += 1
                continue
            bb = o.find("bndbox")
            x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            row = _yolo_row(cmap[name], x1 - 1, y1 - 1, x2, y2, w, h)
            if row is None:
                skipped["degenerate box"] += 1
                continue
            rows.append(row)
        _place(src, out / "images" / sp / src.name, link)
        lbl = out / "labels" / sp / (src.stem + ".txt")
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("".join(r + "\n" for r in rows))
        counts[sp] += 1
        boxes += len(rows)
    names = dict(enumerate(classes))
    y = _write_yaml(out, names, str(voc))
    return ImportReport(out, y, counts, boxes, skipped, names)
