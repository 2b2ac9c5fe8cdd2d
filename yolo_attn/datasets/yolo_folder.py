"""``yolo-attn import-data yolo``: a YOLO-format export -> Ultralytics layout with a checked dataset YAML.

This is what labelling tools export: images with one ``cls xc yc w h`` text file each, and the class
names in the export's ``data.yaml`` (Roboflow "YOLOv5 PyTorch", Ultralytics exports: its ``names``),
``classes.txt`` (LabelImg, Label Studio), ``obj.names`` / ``*.names`` (CVAT, Darknet) or given with
``--names`` (that order of precedence: ``--names``, then a YAML at the top of ``DIR`` with ``names``, then
a names file). Every image under ``DIR`` is taken; its label is found the way Ultralytics finds it (the
last ``images`` folder of its path replaced by ``labels``), else beside it. An image without a label
file is a background image (reported). Label lines that are malformed or name a class outside the names
are left out, each listed with its file and line.

A dataset of another Ultralytics task keeps its rows as they are: polygons (segment) and 4-corner rows (obb), a
vertex or corner up to 1% outside the image as Ultralytics takes it, and, when the export's YAML has ``kpt_shape``,
pose rows of exactly ``5 + K x D`` numbers (visibility 0, 1 or 2), the YAML's keypoint keys (:data:`TASK_KEYS`)
written into the new one.

Splits come from the folders when the images lie under both a ``train`` and a ``val`` (or ``valid``)
folder (Ultralytics' ``images/train``, Roboflow's ``train/images``); images under a ``test`` folder are
then the test split, written as ``images/test`` and named by the YAML's ``test:``. Otherwise exactly
``round(N * val_fraction)`` images become the validation split (and ``round(N * test_fraction)`` the
test split), stratified by class.
"""

from __future__ import annotations

from pathlib import Path

from .files import IMG_FORMATS, label_path
from .importers import (Classes, ImportReport, Item, Skips, check_fractions, keep_fixed_splits, number,
                        prepare_output, split_of, write_dataset)
from .tasks import TaskData, task_of
from .yaml import class_names, load_data_yaml

NAME_FILES = ("classes.txt", "obj.names", "_darknet.labels")
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
TASK_KEYS = ("kpt_shape", "flip_idx", "kpt_names", "kpt_oks_sigmas", "channels")  # carried into the new YAML


def yaml_names(folder: Path) -> tuple[list[str], Path] | None:
    """Class names (in index order) from the dataset YAML at the top of ``folder`` that has ``names``, and that
    YAML; None when there is none. ValueError naming the YAML when its names are not usable."""
    found = [folder / n for n in YAML_NAMES if (folder / n).is_file()]
    found += sorted(p for p in folder.glob("*.y*ml") if p.is_file() and p not in found)
    for path in found:
        try:
            data = load_data_yaml(path)
        except ValueError:
            continue
        if "names" not in data:
            continue
        try:
            names = class_names(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if sorted(names) != list(range(len(names))):
            raise ValueError(f"{path}: 'names' must number the classes 0..{len(names) - 1}, got {sorted(names)[:8]}")
        if "nc" in data and str(data["nc"]).strip() != str(len(names)):
            raise ValueError(f"{path}: nc: {data['nc']} but {len(names)} names")
        return [names[i] for i in range(len(names))], path
    return None


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


def _rows(lbl: Path, nc: int, skips: Skips, task: TaskData) -> list[str]:
    """The rows of label file ``lbl`` that ``task`` (detection, or pose by the YAML's ``kpt_shape``) reads."""
    rows = []
    for no, line in enumerate(lbl.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        vals = [number(v) for v in parts]
        where = f"{lbl}:{no}"
        if task.columns_problem(len(parts)) or None in vals:
            skips.add("malformed label line", where, repr(line.strip()[:60]))
        elif vals[0] != int(vals[0]) or not 0 <= vals[0] < nc:
            skips.add("unknown class id", where, f"{parts[0]} (names give {nc} classes: 0..{nc - 1})")
        elif _coordinates_problem(task, where, line, vals):
            skips.add("coordinates outside [0, 1]", where, repr(line.strip()[:60]))
        else:
            rows.append(" ".join([str(int(vals[0]))] + parts[1:]))
    return rows


def _coordinates_problem(task: TaskData, where: str, line: str, vals: list[float]) -> bool:
    """Whether the task's row check finds a fatal coordinate (or keypoint visibility) in a well-formed row."""
    from .check import CheckReport  # the dataset check's own report: the same row rules as check-data

    found = CheckReport(where)
    return task.row_box(found, where, line, vals) is None or not found.ok


def _task_keys(src: Path) -> dict:
    """The keypoint (and channel) keys of the export's dataset YAML, the one its names came from."""
    try:
        from_yaml = yaml_names(src)
    except ValueError:  # names not usable (given with --names instead)
        return {}
    if from_yaml is None:
        return {}
    data = load_data_yaml(from_yaml[1])
    return {k: data[k] for k in TASK_KEYS if k in data}


def _names(src: Path, names: list[str] | None) -> tuple[list[str], str]:
    """The class names and where they came from."""
    if names:
        return list(names), "--names"
    from_yaml = yaml_names(src)
    if from_yaml is not None:
        return from_yaml[0], str(from_yaml[1])
    return read_names(src), "a names file"


def import_yolo(src_dir: str | Path, out: str | Path, names: list[str] | None = None, val_fraction: float = 0.2,
                link: bool = False, force: bool = False, test_fraction: float | None = None) -> ImportReport:
    """YOLO-format folder -> Ultralytics layout with a dataset YAML (see the module docstring)."""
    src = Path(src_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a folder")
    check_fractions(val_fraction, test_fraction)
    prepare_output(out, force, [src])
    names, names_from = _names(src, names)
    keys = _task_keys(src)
    task = task_of(keys)
    problems = [msg for severity, msg in task.yaml_problems() if severity == "fatal"]
    if problems:
        raise ValueError(f"{src}: its dataset YAML: {problems[0]}")
    out_abs = Path(out).resolve()
    images = sorted(p for p in src.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS and p.is_file()
                    and out_abs not in p.resolve().parents)
    skips, items, unlabelled = Skips(roots=(src,)), [], []
    for img in images:
        if not skips.usable(img):
            continue
        rel = img.relative_to(src)
        lbl = _label_file(img)
        if lbl is None:
            unlabelled.append(str(rel))
        rows = _rows(lbl, len(names), skips, task) if lbl else []
        items.append(Item(img, rel.as_posix(), rows, split_of(rel.parts[:-1])))
    if unlabelled:
        skips.warnings.append(f"{len(unlabelled)} image(s) have no label file and are imported as background "
                              f"images: {', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}")
    fixed = keep_fixed_splits(items)
    print(f"[import-data] {src}: {len(names)} class names from {names_from}; splits "
          + ("from the export's folders" if fixed else "chosen here (no train and val folders)"), flush=True)
    classes = Classes(dict(enumerate(names)), keys)
    return write_dataset(items, out, classes, skips, str(src), val_fraction, link, test_fraction)
