"""``yolo-attn check-data``: every problem of an Ultralytics dataset, each with its file.

The check reads exactly the files Ultralytics will train on (:func:`yolo_attn.datasets.files.image_files`,
which follows directory symlinks as Ultralytics does) and reports:

=============================================  =========
problem                                        severity
=============================================  =========
YAML unreadable / no names / split missing     fatal
split with no images                           fatal
unreadable, empty (0 bytes) or < 10 px image   fatal
listed image that does not exist               fatal
image file name that is not UTF-8              fatal (Ultralytics cannot train on it; OpenCV would crash on it)
the same image listed twice in a split         fatal (a directory symlink loop, or a .txt list repeating it)
label line malformed (columns, numbers)        fatal
class id not an integer in [0, nc)             fatal
coordinate outside [0, 1] (not normalised)     fatal (a polygon vertex, corner or keypoint: by more than 1%,
                                               as Ultralytics reads them; within 1% a box edge warning)
box extends outside the image by > 1%          fatal
box extends outside the image by <= 1%         warning (Ultralytics clips it)
zero-size box, box under one pixel wide/high   warning (counted per split: ``tiny``)
missing label file                             warning (background image); fatal if a split has no labels at all
empty label file                               warning (background image; counted per split: ``empty``)
duplicate label line                           warning
validation images that are also training ones  warning, and ``val_overlap`` (their fraction) in the report
test images that are also training ones        fatal (a test score on them measures nothing held out)
test images that are also validation ones      warning
                                               (every pair of splits: ``overlaps`` in the report, one fraction
                                               per pair, e.g. ``test/train``; the same file by any path)
val/test images that look like training ones   warning (perceptual hash, :mod:`.near_duplicates`), counts in
                                               ``near_duplicates``
a test folder beside val that the YAML omits   warning
=============================================  =========

The labels are read as the dataset's Ultralytics task (:mod:`.tasks`, one module per task): ``task=`` (``check-data
--task``), else pose when the YAML has ``kpt_shape``, else detection (which reads polygon rows as their boxes):

=============================================  =========
segment: a box row, an even column count       fatal (no mask; Ultralytics refuses the dataset or drops the file)
(odd coordinates), fewer than 3 points,
a coordinate outside [0, 1]
pose: kpt_shape not [K, 2|3]                   fatal (no row can be read)
pose: a row not 5 + K x D columns, box or      fatal
keypoint x,y outside [0, 1], a visibility
other than 0, 1, 2
pose: flip_idx of the wrong length or no       fatal; missing, or not undoing itself: warning
permutation of 0..K-1
pose: kpt_oks_sigmas not K positive numbers    fatal (the OKS of every keypoint reads them)
obb: a row not ``cls`` + 4 corners (9          fatal
numbers), a corner outside [0, 1]
detect: a file mixing box and polygon rows     warning (Ultralytics 8.4 drops it as corrupt)
=============================================  =========

A classification dataset is a folder (``check_data(DIR)``, :mod:`.tasks.classify`): no ``train/`` or no class
folder in it, no ``val/`` (nor ``test/``), a split without images, an unreadable image are fatal; an empty class
folder, a file that is no image, an image outside the class folders, a class folder train/ lacks, a hidden folder
(a class to Ultralytics) are warnings; the split overlaps and near-duplicates are checked as for a YAML.

A file listed in several splits is checked (and its problems reported) once. The summary prints
:data:`SHOWN_PER_KIND` problems of a repeated kind (empty label files, say) and then their count.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .files import IMG_FORMATS, MIN_IMAGE_SIDE, NOT_UTF8, ListingError, image_size, label_path, not_utf8, shown
from .near_duplicates import MAX_BITS, near_duplicates, train_hashes
from .tasks import TaskData, task_data, task_of
from .yaml import Dataset, classification_folder, load_data_yaml, resolve_dataset

SHOWN_PER_KIND = 5  # the summary prints this many problems of one kind, then their count


class DataCheckFailed(ValueError):
    """The dataset check found fatal problems (the message lists them)."""


EDGE_TOLERANCE = 0.01  # boxes may stick out of the image by this fraction before it is fatal


@dataclass
class Problem:
    severity: str  # "fatal" | "warning"
    file: str
    message: str
    kind: str = ""  # problems of one kind (e.g. "empty label file") are counted together in the summary

    def __str__(self) -> str:
        return f"{self.severity.upper():8s}{self.file}: {self.message}"


@dataclass
class CheckReport:
    data: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict] = field(default_factory=dict)
    val_overlap: float = 0.0  # fraction of validation images that are also training images (same file)
    overlaps: dict[str, float] = field(default_factory=dict)  # "test/train": fraction of test images that are train ones
    near_duplicates: dict[str, int] = field(default_factory=dict)  # per split: images close to a training image
    task: str = "detect"  # the Ultralytics task the labels were checked as

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "fatal"]

    @property
    def ok(self) -> bool:
        return not self.fatal

    def add(self, severity: str, file, message: str, kind: str = "") -> None:
        self.problems.append(Problem(severity, shown(file), shown(message), kind))

    def summary(self) -> str:
        lines, seen = [], {}
        for p in self.problems:
            key = (p.severity, p.kind)
            seen[key] = seen.get(key, 0) + 1
            if not p.kind or seen[key] <= SHOWN_PER_KIND:
                lines.append(str(p))
        for (severity, kind), n in seen.items():
            if kind and n > SHOWN_PER_KIND:
                lines.append(f"{severity.upper():8s}... {n - SHOWN_PER_KIND} more: {kind} ({n} in all; --json lists them)")
        task = task_data(self.task)
        for split, c in self.counts.items():
            lines.append(task.count_line(split, c))
        n_w = len(self.problems) - len(self.fatal)
        verdict = "" if self.ok else " -- FAILED"
        lines.append(f"{self.data}: {len(self.fatal)} fatal problem(s), {n_w} warning(s){verdict}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"data": self.data, "ok": self.ok, "task": self.task, "counts": self.counts, "val_overlap": self.val_overlap,
                "overlaps": self.overlaps, "near_duplicates": self.near_duplicates,
                "problems": [p.__dict__ for p in self.problems]}


@dataclass
class _Pair:
    """What one image and its label file hold: boxes, label state, zero-size or sub-pixel boxes."""

    boxes: int = 0
    state: str = "labelled"  # labelled | empty | missing (no label file) | absent (no image)
    tiny: int = 0
    readable: bool = True  # the image may be opened: a UTF-8 name, it exists, it opened and is not too large


def _tiny_box(rep: CheckReport, where: str, x1, y1, x2, y2, size: tuple[int, int] | None) -> bool:
    """Warn about a box without area or under one pixel wide or high (``size``: the image's, when known)."""
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        rep.add("warning", where, "zero-size box (nothing to learn or find; validation still counts it as an object)",
                "zero-size box")
        return True
    if size is not None and min((x2 - x1) * size[0], (y2 - y1) * size[1]) < 1 - 1e-6:
        rep.add("warning", where, f"sub-pixel box ({(x2 - x1) * size[0]:.2f} x {(y2 - y1) * size[1]:.2f} px in a "
                                  f"{size[0]}x{size[1]} image)", "sub-pixel box")
        return True
    return False


def _check_line(rep: CheckReport, where: str, line: str, nc: int, size=None, task: TaskData | None = None) -> tuple | None:
    """Report the problems of one label line as ``task`` reads it (default detection); its values (and whether it
    is tiny) when it is well formed, else None."""
    task = task or task_data()
    parts = line.split()
    malformed = task.columns_problem(len(parts))
    if malformed:
        rep.add("fatal", where, f"malformed line {line.strip()!r}: {malformed}")
        return None
    try:
        vals = [float(v) for v in parts]
    except ValueError:
        rep.add("fatal", where, f"malformed line {line.strip()!r}: not all numbers")
        return None
    if not all(np.isfinite(vals)):
        rep.add("fatal", where, f"malformed line {line.strip()!r}: NaN or infinite value")
        return None
    c = vals[0]
    if c != int(c) or not 0 <= c < nc:
        rep.add("fatal", where, f"unknown class id {parts[0]} (dataset has {nc} classes: 0..{nc - 1})")
    corners = task.row_box(rep, where, line, vals)
    if corners is None:
        return None
    x1, y1, x2, y2 = corners
    out = max(-x1, -y1, x2 - 1, y2 - 1, 0.0)
    if out > EDGE_TOLERANCE:
        rep.add("fatal", where, f"box outside the image by {out:.1%} of its size: {line.strip()!r}")
    elif out > 1e-6:
        rep.add("warning", where, f"box sticks out of the image by {out:.2%} (clipped by Ultralytics)", "box sticks out")
    tiny = _tiny_box(rep, where, x1, y1, x2, y2, size)
    return tuple(round(v, 6) for v in vals), tiny


def _check_label_file(rep: CheckReport, lbl: Path, nc: int, size=None, task: TaskData | None = None) -> _Pair:
    """Report the problems of one label file; its boxes."""
    task = task or task_data()
    lines = [ln for ln in lbl.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines:
        rep.add("warning", lbl, "empty label file (image used as background)", "empty label file")
        return _Pair(0, "empty")
    mixed = task.file_problem([len(ln.split()) for ln in lines])
    if mixed:
        rep.add(mixed[0], lbl, mixed[1], "mixed label rows")
    pair, seen = _Pair(), set()
    for no, line in enumerate(lines, 1):
        got = _check_line(rep, f"{lbl}:{no}", line, nc, size, task)
        if got is None:
            continue
        key, tiny = got
        if key in seen:
            rep.add("warning", f"{lbl}:{no}", "duplicate label line", "duplicate label line")
        seen.add(key)
        pair.boxes += 1
        pair.tiny += tiny
    return pair


def _check_image(rep: CheckReport, img: str) -> tuple[int, int] | None:
    """Report an unreadable or too small image; its (width, height) when it can be read."""
    try:
        w, h = image_size(img)
    except (ValueError, OSError) as exc:
        rep.add("fatal", img, str(exc))
        return None
    if min(w, h) < MIN_IMAGE_SIDE:
        rep.add("fatal", img, f"image is {w}x{h} pixels; Ultralytics drops images under {MIN_IMAGE_SIDE} pixels a side")
    return w, h


def _repeated(rep: CheckReport, split: str, images: list[str]) -> None:
    """Fatal problem for every file listed more than once in a split (Ultralytics would train on each copy)."""
    paths: dict[str, list[str]] = {}
    for img in images:
        paths.setdefault(os.path.realpath(img), []).append(img)
    for real, listed in paths.items():
        if len(listed) > 1:
            rep.add("fatal", listed[1], f"'{split}' lists {real} {len(listed)} times (directory symlink loop or "
                                        f"repeated entry; first as {listed[0]}): Ultralytics would train on every copy")


def _check_pair(rep: CheckReport, img: str, nc: int, check_images: bool, task: TaskData) -> _Pair:
    """Report the problems of one image and its label file."""
    if not_utf8(img):  # before anything opens it: Ultralytics fails on it, OpenCV crashes the process
        rep.add("fatal", img, NOT_UTF8, "file name not UTF-8")
        return _Pair(0, "absent", readable=False)
    if not os.path.isfile(img):
        rep.add("fatal", img, "listed image does not exist")
        return _Pair(0, "absent", readable=False)
    size = _check_image(rep, img) if check_images else None
    lbl = label_path(img)
    if not lbl.is_file():
        rep.add("warning", lbl, f"missing label file for {Path(img).name} (image used as background)",
                "missing label file")
        pair = _Pair(0, "missing")
    else:
        pair = _check_label_file(rep, lbl, nc, size, task)
    pair.readable = size is not None or not check_images
    return pair


def _check_split(rep: CheckReport, split: str, images: list[str], nc: int, check_images: bool, done: dict,
                 task: TaskData) -> None:
    """Check one split's files; ``done`` (path -> _Pair) holds files an earlier split checked, reported once."""
    _repeated(rep, split, images)
    c = {"images": len(images), "boxes": 0, "labelled": 0, "empty": 0, "missing": 0, "tiny": 0}
    for img in dict.fromkeys(images):
        if img not in done:
            done[img] = _check_pair(rep, img, nc, check_images, task)
        pair = done[img]
        c["boxes"] += pair.boxes
        c["tiny"] += pair.tiny
        c["labelled"] += pair.boxes > 0
        c["empty"] += pair.state == "empty"
        c["missing"] += pair.state == "missing"
    if c["labelled"] == 0:
        rep.add("fatal", rep.data, f"'{split}' split: none of its {len(images)} images has labels (wrong layout?)")
    rep.counts[split] = c


# Every pair of splits (later, earlier) is compared: (severity, wording when all, wording when some)
_PAIRS = {
    ("val", "train"): ("warning", "VALIDATION = TRAINING: every validation image is a training image, so the metrics "
                                  "measure fit to the training data, not generalisation",
                       "{n} of {m} validation images ({f:.0%}) are also training images"),
    ("test", "train"): ("fatal", "TEST = TRAINING: every 'test' image is a 'train' image, so a test score measures fit "
                                 "to the training data; point 'test:' at held-out images or remove it",
                        "{n} of {m} 'test' images ({f:.0%}) are also 'train' images, so a test score is not held "
                        "out; remove them from 'test:'"),
    ("test", "val"): ("warning", "TEST = VALIDATION: every 'test' image is a validation image (the images training "
                                 "chose its best epoch on), so the test score is the validation score",
                      "{n} of {m} 'test' images ({f:.0%}) are also validation images"),
}


def _overlaps(rep: CheckReport, listed: dict[str, list[str]]) -> None:
    """``overlaps``: for every pair of listed splits, the fraction of the later split's images that are images of
    the earlier one (the same file, by any path: one folder, a symlink, a .txt list); reported as :data:`_PAIRS`
    says. ``val_overlap`` is the ``val/train`` fraction."""
    real = {split: {os.path.realpath(f) for f in files} for split, files in listed.items() if files}
    for (later, earlier), (severity, all_, some) in _PAIRS.items():
        if later not in real or earlier not in real:
            continue
        n, m = len(real[later] & real[earlier]), len(real[later])
        frac = rep.overlaps[f"{later}/{earlier}"] = n / m
        if n:
            rep.add(severity, rep.data, all_ if n == m else some.format(n=n, m=m, f=frac), "split overlap")
    rep.val_overlap = rep.overlaps.get("val/train", 0.0)


def _split_images(rep: CheckReport, ds: Dataset, split: str) -> list[str] | None:
    """The images of one listed split, or None after reporting why it cannot be read."""
    if ds.missing(split):
        rep.add("fatal", ds.source, ds.missing_message(split))
        return None
    try:
        images = ds.images(split)
    except ListingError as exc:
        rep.add("fatal", ds.source, str(exc))
        return None
    if not images:
        rep.add("fatal", ds.source, f"'{split}' split has no images")
        return None
    return images


def _classification(rep: CheckReport, root: Path, splits, check_images: bool) -> CheckReport:
    """Check a classification dataset folder (:mod:`.tasks.classify`), its split overlaps and near-duplicates."""
    from .tasks.classify import check_folder

    rep.task = "classify"
    if not root.is_dir():
        rep.add("fatal", root, "a classification dataset is a folder (DIR/train/<class>/<images>, DIR/val/...), "
                               "not a file" if root.exists() else "no such folder")
        return rep
    listed = check_folder(rep, root, splits, _image_check if check_images else None)
    _overlaps(rep, listed)
    bad = {p.file for p in rep.fatal}
    if check_images:
        _near_duplicates(rep, {s: [f for f in files if f not in bad] for s, files in listed.items()})
    return rep


def _image_check(rep: CheckReport, img: str) -> None:
    _check_image(rep, img)


def _task_of(rep: CheckReport, ds: Dataset, task: str | None) -> TaskData | None:
    """The task the labels are checked as (``task``, else from the YAML); None after reporting why none can be."""
    if task == "classify":
        rep.add("fatal", ds.source, "a classification dataset is a folder of class folders (DIR/train/<class>/"
                                    "<images>), not a dataset YAML: give the folder")
        return None
    t = task_of(load_data_yaml(ds.yaml), task)
    rep.task = t.name
    for severity, message in t.yaml_problems():
        rep.add(severity, ds.source, message)
    return t


def check_data(data_yaml: str | Path | Dataset, splits=("train", "val", "test"), check_images: bool = True,
               task: str | None = None) -> CheckReport:
    """Check an Ultralytics dataset YAML (or a resolved one), or a classification dataset folder; every problem is
    reported with its file (see the module table). ``task``: the Ultralytics task the labels are read as (default:
    pose when the YAML has ``kpt_shape``, else detection; classify for a folder)."""
    rep = CheckReport(shown(data_yaml.source if isinstance(data_yaml, Dataset) else data_yaml))
    folder = None if isinstance(data_yaml, Dataset) else classification_folder(data_yaml)
    if not isinstance(data_yaml, Dataset) and (task == "classify" and not str(data_yaml).endswith((".yaml", ".yml"))
                                               or folder is not None):
        if task not in (None, "classify"):
            rep.add("fatal", data_yaml, f"a folder is a classification dataset; a {task} dataset is given by its YAML")
            return rep
        return _classification(rep, folder or Path(data_yaml), splits, check_images)
    try:
        ds = data_yaml if isinstance(data_yaml, Dataset) else resolve_dataset(data_yaml)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        rep.add("fatal", data_yaml, str(exc))
        return rep
    for note in ds.notes:
        rep.add("warning", ds.source, note)
    checked_as = _task_of(rep, ds, task)
    if checked_as is None or not checked_as.rows_readable():
        return rep
    nc = len(ds.names)
    listed: dict[str, list[str]] = {}
    done: dict[str, _Pair] = {}
    for split in splits:
        if split not in ds.splits:
            if split in ("train", "val"):
                rep.add("fatal", ds.source, f"no '{split}' split")
            continue
        images = _split_images(rep, ds, split)
        if images is not None:
            listed[split] = images
            _check_split(rep, split, images, nc, check_images, done, checked_as)
    _overlaps(rep, listed)
    if check_images:  # only images that opened (a file OpenCV would crash on, or a huge one, never reaches it)
        _near_duplicates(rep, {s: [f for f in files if done[f].readable] for s, files in listed.items()})
    _unlisted_test(rep, ds)
    return rep


def _near_duplicates(rep: CheckReport, listed: dict[str, list[str]]) -> None:
    """Warn about validation / test images that look like a training image (:mod:`.near_duplicates`)."""
    if "train" not in listed or not any(s in listed for s in ("val", "test")):
        return
    hashes = train_hashes(sorted(set(listed["train"])))
    for split in ("val", "test"):
        if split not in listed:
            continue
        found = near_duplicates([], split, sorted(set(listed[split])), train_hashes=hashes)
        found.pairs = [p for p in found.pairs if os.path.realpath(p[0]) != os.path.realpath(p[1])]  # same file: val_overlap
        rep.near_duplicates[split] = len(found.pairs)
        if found.pairs:
            eg = "; ".join(f"{Path(a).name} ~ {Path(b).name} ({d} bits)" for a, b, d in found.pairs[:3])
            rep.add("warning", rep.data, f"{len(found.pairs)} of {found.checked} '{split}' images look like near-duplicates "
                                         f"of training images (perceptual hash within {MAX_BITS} of 256 bits: the same "
                                         f"scene, e.g. consecutive shots or frames of one video), so '{split}' metrics "
                                         f"partly measure memory of the training set. Examples: {eg}", "near-duplicate")


def _unlisted_test(rep: CheckReport, ds: Dataset) -> None:
    """Warn when the YAML names no test split but a ``test`` folder beside the validation one holds images."""
    if "test" in ds.splits or len(ds.splits.get("val", ())) != 1:
        return
    val = ds.splits["val"][0]
    parts = list(val.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() in ("val", "valid", "validation"):
            test = Path(*parts[:i], "test", *parts[i + 1:])
            if test.is_dir() and any(f.suffix[1:].lower() in IMG_FORMATS for f in test.iterdir()):
                rel = os.path.relpath(test, ds.root)
                rep.add("warning", ds.source, f"the YAML names no test split, but {test} holds images (the export's "
                                              f"test split?); add 'test: {rel}' to the YAML to check and use it")
            return


def _file_state(ds: Dataset, task: str | None = None) -> str:
    """A digest of the checked copy and of every listed image and label file (name, size, modification time), and
    of the task named for the check (a check as another task is not the same check)."""
    h = hashlib.sha256(ds.yaml.read_bytes())
    if task:
        h.update(f"task:{task}\n".encode())
    for split in ds.splits:
        for img in ([] if ds.missing(split) else ds.images(split)):
            for f in (img, label_path(img)):
                try:
                    st = os.stat(f)
                    h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
                except OSError:
                    h.update(f"{f}:-\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def checked_dataset(data: str | Path, out_dir: str | Path | None = None, trust: bool = False,
                    recheck: bool = True, task: str | None = None) -> tuple[Dataset, CheckReport | None]:
    """Resolve dataset YAML ``data`` (its checked copy goes to ``out_dir``) and check it (labels read as ``task``,
    default: from the YAML, see :func:`check_data`).

    A passed check leaves a stamp beside the copy; with ``recheck=False`` a check of unchanged files is not
    repeated (the report is then None) -- each trial of a sweep trains through ``train()``, which checks.
    """
    ds = resolve_dataset(data, out_dir, trust)
    if ds.yaml.is_dir():  # a classification dataset folder: checked every time (no copy to keep a stamp beside)
        return ds, check_data(ds.yaml, task=task)
    stamp = ds.yaml.with_name(ds.yaml.name + ".checked")
    state = None if recheck else _file_state(ds, task)
    if state is not None and stamp.is_file() and stamp.read_text() == state:
        return ds, None
    rep = check_data(ds, task=task)
    if rep.ok:
        atomic_write(stamp, state or _file_state(ds, task))
    return ds, rep


def require_dataset(data: str | Path, trust: bool = False, task: str | None = None) -> Dataset:
    """The resolved dataset when its check passes (repeated only if files changed; labels read as ``task``, default
    from the YAML); DataCheckFailed otherwise."""
    ds, rep = checked_dataset(data, trust=trust, recheck=False, task=task)
    if rep is not None and not rep.ok:
        raise DataCheckFailed(f"{ds.source}: dataset check failed ({len(rep.fatal)} fatal problems; "
                              f"run yolo-attn check-data {ds.source}):\n" + "\n".join(str(p) for p in rep.fatal[:20]))
    return ds


def require_data(data: str | Path, trust: bool = False, task: str = "detect") -> str:
    """What Ultralytics is given as ``data=`` for a run of ``task`` once its check passed: the checked copy of the
    dataset YAML (:func:`require_dataset`), or for classify the dataset folder itself; DataCheckFailed otherwise."""
    if task != "classify":
        return str(require_dataset(data, trust=trust, task=task).yaml)
    rep = check_data(data, task="classify")
    if not rep.ok:
        raise DataCheckFailed(f"{data}: dataset check failed ({len(rep.fatal)} fatal problems; run yolo-attn "
                              f"check-data {data}):\n" + "\n".join(str(p) for p in rep.fatal[:20]))
    return str((classification_folder(data) or Path(data)).resolve())
