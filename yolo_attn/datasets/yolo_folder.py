"""``yolo-attn import-data yolo``: a YOLO-format folder without a dataset YAML -> Ultralytics layout.

This is what labelling tools export: images with one ``cls xc yc w h`` text file each, and the class
names in ``classes.txt`` (LabelImg, Label Studio), ``obj.names`` / ``*.names`` (CVAT, Darknet) or given
with ``--names``. Every image under ``DIR`` is taken; its label is found the way Ultralytics finds it
(the last ``images`` folder of its path replaced by ``labels``), else beside it. An image without a
label file is a background image (reported). Label lines that are malformed or name a class outside
the names are left out, each listed with its file and line.

Splits come from the folders when the images lie under both a ``train`` and a ``val`` (or ``valid``)
folder (Ultralytics' ``images/train``, Roboflow's ``train/images``); images under ``test`` are then
left out (counted). Otherwise exactly ``round(N * val_fraction)`` images become the validation split,
stratified by class.
"""

from __future__ import annotations

from pathlib import Path

from .files import IMG_FORMATS, label_path
from .importers import ImportReport, Item, Skips, check_fraction, number, prepare_output, write_dataset

NAME_FILES = ("classes.txt", "obj.names", "_darknet.labels")
SPLIT_DIRS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def read_names(folder: Path) -> list[str]:
    """Class names from the shallowest ``classes.txt`` / ``obj.names`` / ``*.names`` under ``folder``."""
    found = sorted((p for p in folder.rglob("*") if p.is_file() and (p.name.lower() in NAME_FILES
                                                                     or p.suffix.lower() == ".names")),
                   key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise FileNotFoundError(f"{folder}: no classes.txt (or obj.names) with the class names; give them with --names")
    names = [ln.strip() for ln in found[0].read_text(encoding="utf-8-sig", errors="replace").splitlines() if ln.strip()]
    if not names:
        raise ValueError(f"{found[0]}: no class names in it")
    return names


def _label_file(img: Path) -> Path | None:
    for lbl in (label_path(img), img.with_suffix(".txt")):
        if lbl.is_file():
            return lbl
    return None


def _rows(lbl: Path, nc: int, skips: Skips) -> list[str]:
    rows = []
    for no, line in enumerate(lbl.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        vals = [number(v) for v in parts]
        where = f"{lbl}:{no}"
        if (len(parts) != 5 and not (len(parts) >= 7 and len(parts) % 2 == 1)) or None in vals:
            skips.add("malformed label line", where, repr(line.strip()[:60]))
        elif vals[0] != int(vals[0]) or not 0 <= vals[0] < nc:
            skips.add("unknown class id", where, f"{parts[0]} (names give {nc} classes: 0..{nc - 1})")
        elif any(not 0 <= v <= 1 for v in vals[1:]):
            skips.add("coordinates outside [0, 1]", where, repr(line.strip()[:60]))
        else:
            rows.append(" ".join([str(int(vals[0]))] + parts[1:]))
    return rows


def _folder_split(rel: Path) -> str | None:
    return next((SPLIT_DIRS[p.lower()] for p in rel.parts[:-1] if p.lower() in SPLIT_DIRS), None)


def import_yolo(src_dir: str | Path, out: str | Path, names: list[str] | None = None, val_fraction: float = 0.2,
                link: bool = False, force: bool = False) -> ImportReport:
    """YOLO-format folder -> Ultralytics layout with a dataset YAML (see the module docstring)."""
    src = Path(src_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a folder")
    check_fraction(val_fraction)
    prepare_output(out, force, [src])
    names = list(names) if names else read_names(src)
    out_abs = Path(out).resolve()
    images = sorted(p for p in src.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS and p.is_file()
                    and out_abs not in p.resolve().parents)
    skips, items, unlabelled = Skips(), [], []
    for img in images:
        rel = img.relative_to(src)
        lbl = _label_file(img)
        if lbl is None:
            unlabelled.append(str(rel))
        items.append(Item(img, rel.as_posix(), _rows(lbl, len(names), skips) if lbl else [], _folder_split(rel)))
    if unlabelled:
        skips.warnings.append(f"{len(unlabelled)} image(s) have no label file and are imported as background "
                              f"images: {', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}")
    if not {"train", "val"} <= {it.split for it in items}:
        for it in items:
            it.split = None
    for it in items:
        if it.split == "test":
            skips.add("test split (not imported)", it.src)
    items = [it for it in items if it.split != "test"]
    return write_dataset(items, out, dict(enumerate(names)), skips, str(src), val_fraction, link)
