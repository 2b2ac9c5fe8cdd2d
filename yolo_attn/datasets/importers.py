"""What the importers (COCO JSON, Pascal VOC / LabelImg XML, YOLO-format folders, LabelMe JSON, CVAT XML) share.

An importer turns its input into a list of :class:`Item` (one image file, or the image's bytes, and its
YOLO label rows) and hands it to :func:`write_dataset`, which

* splits the images (:func:`assign_splits`: exactly ``round(N * f)`` validation images and, with a test
  fraction, exactly ``round(N * t)`` test images, deterministic, stratified by each image's rarest class)
  unless the input fixes the splits; a test fraction on an input whose splits are fixed (train and val,
  no test) carves the test images out of its training images (:func:`carve_test`);
* names them uniquely (:func:`unique_names`: ``a/x.jpg`` and ``b/x.jpg`` become ``a_x.jpg`` and ``b_x.jpg``);
* builds the whole dataset in a hidden folder beside ``OUT`` and renames it into place, so an interrupted
  import leaves nothing half-written (a build folder left by a killed import is removed, with a message,
  by the next import into ``OUT``: :func:`remove_stale_builds`) and nothing of the input is ever deleted or overwritten (an output
  folder that holds an input is refused; a non-empty one needs ``force``; a symlink is refused: the import
  replaces the folder as a whole);
* never takes an image whose name is not UTF-8 (Ultralytics cannot train on it) or that is a symlink to a file
  outside the input folders (:meth:`Skips.usable`): each is skipped with its reason.

Ultralytics layout written::

    OUT/images/{train,val,test}/<name>.<ext>
    OUT/labels/{train,val,test}/<name>.txt     # "cls xc yc w h", normalised to [0, 1]
    OUT/data.yaml                               # path: OUT (absolute), train/val (/test), names
    OUT/import-report.txt                  # every skipped file or box, with the reason
"""

from __future__ import annotations

import hashlib
import os
from glob import escape as glob_escape
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from .._io import OverwriteError, atomic_write, refuse_overwrite
from .files import not_utf8, shown

SPLITS = ("train", "val", "test")
# folder (or CVAT subset) names that fix a split, compared ignoring case
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


@dataclass
class Item:
    """One image to import: its file, its name relative to the images folder, its YOLO label rows."""

    src: Path
    rel: str
    rows: list[str] = field(default_factory=list)
    split: str | None = None  # fixed by the input (ImageSets, --split, split folders); None: automatic
    data: bytes | None = None  # the image itself when the input embeds it (LabelMe imageData); src is then its name

    def classes(self) -> set[int]:
        return {int(r.split()[0]) for r in self.rows}


@dataclass
class Skips:
    """Everything left out of an import: a count per reason and one line per file (or box) with its reason."""

    counts: Counter = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    roots: tuple = ()  # the input folders: an image may not lead out of them (a symlink to a file elsewhere)

    def add(self, reason: str, where, detail: str = "") -> None:
        self.counts[reason] += 1
        self.lines.append(shown(f"{where}: {reason}" + (f" ({detail})" if detail else "")))

    def usable(self, src: Path, where=None) -> bool:
        """Whether image file ``src`` may be imported: its name is UTF-8 and, followed through any symlink, it
        lies inside one of :attr:`roots`; else False with the reason listed (``where`` names it, default ``src``)."""
        if not_utf8(src):
            self.add("file name is not UTF-8", where or src, "Ultralytics cannot train on it: rename it")
            return False
        try:
            real = src.resolve()
            roots = [Path(r).resolve() for r in self.roots if r is not None]
            outside = roots and not any(real == r or r in real.parents for r in roots)
        except (OSError, RuntimeError) as exc:  # a symlink loop
            self.add("unreadable image", where or src, str(exc))
            return False
        if outside:
            self.add("symlink to a file outside the input", where or src,
                     f"{real}; copy the file into the input folder to import it")
            return False
        return True

    def image_size(self, src: Path) -> tuple[int, int] | None:
        """``(width, height)`` of image ``src``, or None with the file listed as unreadable."""
        from .files import image_size

        try:
            return image_size(src)
        except (ValueError, OSError) as exc:
            self.add("unreadable image", src, str(exc))
            return None


@dataclass(frozen=True)
class ImportOptions:
    """What every importer takes besides its input: the automatic split shares, links, overwriting."""

    val_fraction: float = 0.2
    link: bool = False
    force: bool = False
    test_fraction: float | None = None

    @classmethod
    def of(cls, options: dict) -> "ImportOptions":
        """The options of keyword arguments ``options``; TypeError naming an unknown one."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown import option(s): {', '.join(unknown)}")
        return cls(**options)


@dataclass
class Classes:
    """The class names of an import and the task keys its dataset YAML needs besides them (``kpt_shape``,
    ``flip_idx``)."""

    names: dict[int, str]
    yaml_keys: dict = field(default_factory=dict)


@dataclass
class ImportReport:
    out: Path
    yaml: Path
    images: dict[str, int]
    boxes: int
    skipped: dict[str, int]
    names: dict[int, str]
    problems: list[str] = field(default_factory=list)  # one line per skipped file or box
    warnings: list[str] = field(default_factory=list)

    def summary(self, max_lines: int = 20) -> str:
        sk = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()) if v) or "none"
        im = ", ".join(f"{k}: {v}" for k, v in self.images.items())
        lines = [f"skipped: {p}" for p in self.problems[:max_lines]]
        if len(self.problems) > max_lines:
            lines.append(f"... {len(self.problems) - max_lines} more in {self.out / 'import-report.txt'}")
        lines += [f"WARNING: {w}" for w in self.warnings]
        lines.append(f"wrote {self.yaml} ({len(self.names)} classes; images {im}; {self.boxes} boxes; skipped {sk})")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def check_fraction(val_fraction: float, option: str = "--val-fraction") -> float:
    f = float(val_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"{option} must be between 0 and 1 (exclusive), got {val_fraction}")
    return f


def check_fractions(val_fraction: float, test_fraction: float | None) -> None:
    """Both shares in (0, 1) and, together, leaving training images."""
    check_fraction(val_fraction)
    if test_fraction is not None:
        check_fraction(test_fraction, "--test-fraction")
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(f"--val-fraction {val_fraction} + --test-fraction {test_fraction} must be below 1 "
                             "(images must be left for training)")


def split_of(parts) -> str | None:
    """The split a path names by one of its folders (``train``, ``valid``, ``test``, ...), else None."""
    return next((SPLIT_NAMES[p.lower()] for p in parts if p.lower() in SPLIT_NAMES), None)


def keep_fixed_splits(items: list["Item"]) -> bool:
    """Keep the splits the input names only when it names both a train and a val split; else make all automatic."""
    if {"train", "val"} <= {it.split for it in items}:
        return True
    for it in items:
        it.split = None
    return False


def inside(root: Path, name: str) -> Path | None:
    """``root / name`` when ``name`` is a relative path that stays inside ``root`` (no ``..`` escape); else None."""
    name = str(name).replace("\\", "/")
    if not name or "\x00" in name or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return None
    norm = os.path.normpath(name)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return root / norm


def number(value) -> float | None:
    """``value`` as a finite float (numbers and numeric strings), else None."""
    try:
        v = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def yolo_row(c: int, x1: float, y1: float, x2: float, y2: float, w: float, h: float) -> str | None:
    """A YOLO label line for pixel box (x1, y1, x2, y2) clipped to a ``w`` x ``h`` image; None if nothing is left."""
    x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
    y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def _contains(folder: Path, path: Path) -> bool:
    folder, path = folder.resolve(), path.resolve()
    return path == folder or folder in path.parents


def prepare_output(out: str | Path, force: bool, inputs) -> Path:
    """Refuse an output folder that is a symlink or is or holds an input (always) or is not empty (unless ``force``)."""
    out = Path(out)
    if out.is_symlink():  # the import renames its finished folder into place: it would replace the link itself
        raise OverwriteError(f"output folder {out} is a symbolic link (to {os.readlink(out)}); an import replaces "
                             "the output folder as a whole: give the folder it points to, or another path")
    for src in inputs:
        if src is not None and _contains(out, Path(src)):
            raise OverwriteError(f"output folder {out} holds the input {src}; an import never writes over its "
                                 "input: choose another output folder")
    if out.exists() and not out.is_dir():
        raise OverwriteError(f"output {out} is a file, not a folder")
    return refuse_overwrite(out, force, what="output")


# --------------------------------------------------------------------------------------------
# Splits and names
# --------------------------------------------------------------------------------------------
def val_count(n: int, val_fraction: float) -> int:
    """``round(n * f)`` (halves up), kept within [1, n - 1] so that neither split is empty."""
    k = int(n * check_fraction(val_fraction) + 0.5)
    return min(max(k, 1), n - 1)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _quotas(sizes: dict, k: int, n: int) -> dict:
    """Largest-remainder apportionment of ``k`` validation images over strata of ``sizes`` (sum ``n``)."""
    ideal = {s: size * k / n for s, size in sizes.items()}
    quota = {s: int(v) for s, v in ideal.items()}
    by_remainder = sorted(sizes, key=lambda s: (-(ideal[s] - quota[s]), str(s)))
    for s in by_remainder[: k - sum(quota.values())]:
        quota[s] += 1
    return quota


def _pick(pool: list[Item], k: int) -> list[Item]:
    """Exactly ``k`` items of ``pool``, stratified and deterministic (see :func:`assign_splits`)."""
    if k <= 0:
        return []
    freq = Counter(c for it in pool for c in it.classes())
    strata: dict = {}
    for it in pool:
        cls = it.classes()
        stratum = min(cls, key=lambda c: (freq[c], c)) if cls else -1
        strata.setdefault(stratum, []).append(it)
    quota = _quotas({s: len(v) for s, v in strata.items()}, k, len(pool))
    return [it for s, members in strata.items() for it in sorted(members, key=lambda it: _key(it.rel))[: quota[s]]]


def test_count(n: int, test_fraction: float, others: int = 2) -> int:
    """``round(n * t)`` (halves up), leaving at least ``others`` images for the other splits."""
    k = int(n * check_fraction(test_fraction, "--test-fraction") + 0.5)
    return min(max(k, 1), n - others)


def assign_splits(items: list[Item], val_fraction: float, test_fraction: float | None = None) -> None:
    """Give every item without a fixed split ``train``, ``val`` (or ``test``): exactly ``val_count`` validation
    images and, with ``test_fraction``, exactly ``test_count`` test images, both counted on the free images.

    Stratified: each image belongs to the stratum of its rarest class (fewest images; background images
    form their own stratum), each stratum gives its share of the held-out images (largest remainder),
    and within a stratum the images are ordered by a hash of their name, so the split is deterministic
    and does not depend on the order of the input. The test images are drawn first, then the validation
    images from the rest (strata counted again).
    """
    free = [it for it in items if it.split is None]
    if not free:
        return
    need = 3 if test_fraction else 2
    if len(free) < need:
        raise ValueError(f"{len(free)} image(s) to split: need at least {need} for train, validation"
                         + (" and test splits" if test_fraction else " splits"))
    n = len(free)
    n_test = test_count(n, test_fraction) if test_fraction else 0
    for it in _pick(free, n_test):
        it.split = "test"
    rest = [it for it in free if it.split is None]
    for it in _pick(rest, min(val_count(n, val_fraction), len(rest) - 1)):
        it.split = "val"
    for it in rest:
        if it.split is None:
            it.split = "train"


def carve_test(items: list[Item], test_fraction: float, source: str) -> None:
    """``--test-fraction`` on an input that fixes train and val: exactly ``round(N_train * t)`` of its training
    images (stratified) become the test split; the validation images stay as published."""
    if any(it.split == "test" for it in items):
        raise ValueError(f"{source} has its own test split: --test-fraction would add a second one; leave it out")
    train = [it for it in items if it.split == "train"]
    if len(train) < 2:
        raise ValueError(f"{source}: {len(train)} training image(s), too few to carve a test split from")
    for it in train:
        it.split = None
    for it in _pick(train, test_count(len(train), test_fraction, others=1)):
        it.split = "test"
    for it in train:
        if it.split is None:
            it.split = "train"


def unique_names(rels: list[str]) -> list[str]:
    """A distinct output file name per image: its own name, or its relative path joined by ``_`` on a collision.

    Names are compared by stem, ignoring case, since ``x.jpg`` and ``x.png`` would share the label ``x.txt``.
    """
    paths = [PurePosixPath(r.replace("\\", "/")) for r in rels]
    stems = Counter(p.stem.lower() for p in paths)
    wanted = [p.name if stems[p.stem.lower()] == 1 else "_".join(p.with_suffix("").parts) + p.suffix for p in paths]
    taken, names = set(), []
    for name in wanted:
        stem, suffix, i = PurePosixPath(name).stem, PurePosixPath(name).suffix, 1
        while (stem if i == 1 else f"{stem}-{i}").lower() in taken:
            i += 1
        stem = stem if i == 1 else f"{stem}-{i}"
        taken.add(stem.lower())
        names.append(stem + suffix)
    return names


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _yaml_text(out: Path, classes: Classes, splits: list[str], source: str) -> str:
    fit = [s for s in splits if s != "test"]
    data = {"path": str(out.resolve()), "train": f"images/{fit[0]}", "val": f"images/{fit[-1]}"}
    if "test" in splits:
        data["test"] = "images/test"
    names = classes.names
    data.update(nc=len(names), names={int(k): v for k, v in sorted(names.items())}, **classes.yaml_keys)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return f"# imported by yolo-attn import-data from {source}\n" + body


def _fill(build: Path, items: list[Item], link: bool) -> None:
    for it, name in zip(items, unique_names([it.rel for it in items])):
        img = build / "images" / it.split / name
        img.parent.mkdir(parents=True, exist_ok=True)
        if it.data is not None:
            img.write_bytes(it.data)
        elif link:
            os.symlink(it.src.resolve(), img)
        else:
            shutil.copy2(it.src, img)
        lbl = build / "labels" / it.split / (PurePosixPath(name).stem + ".txt")
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("".join(r + "\n" for r in it.rows))


def _swap_in(build: Path, out: Path) -> None:
    """Rename the finished ``build`` folder to ``out``; an existing ``out`` (checked by prepare_output) goes last."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    if old.exists():
        shutil.rmtree(old)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_builds(out: Path) -> list[str]:
    """Remove the hidden build folders beside ``out`` left by imports that were killed; one message per folder.

    A build folder is ``.OUT.importing-PID`` (or ``.OUT.old-PID`` while swapping in); it is stale when
    process PID no longer runs. A folder of a running import is left alone.
    """
    notes = []
    for prefix in (f".{out.name}.importing-", f".{out.name}.old-"):
        for build in sorted(out.parent.glob(glob_escape(prefix) + "*")):
            pid = build.name[len(prefix):]
            if build.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(build)
                notes.append(f"removed {build}, left by an interrupted import (process {pid} no longer runs)")
    return notes


def _writable(item: Item, skips: Skips) -> bool:
    """The last check of every importer's items: an image taken from a file must be :meth:`Skips.usable` and every
    image needs a UTF-8 name to be written under."""
    if item.data is None:
        return skips.usable(item.src)
    if not_utf8(item.rel):
        skips.add("file name is not UTF-8", item.src, "Ultralytics cannot train on it: rename it")
        return False
    return True


def write_dataset(items: list[Item], out: str | Path, names: dict[int, str] | Classes, skips: Skips, source: str,
                  val_fraction: float = 0.2, link: bool = False, test_fraction: float | None = None) -> ImportReport:
    """Split, name and write ``items`` as an Ultralytics dataset in ``out`` (see the module docstring); ``names``
    may carry the task keys of the dataset YAML (:class:`Classes`)."""
    classes = names if isinstance(names, Classes) else Classes(names)
    names = classes.names
    out = Path(out).absolute()
    items = [it for it in items if _writable(it, skips)]
    if not items:
        raise ValueError(f"{source}: no image could be imported ({sum(skips.counts.values())} skipped: "
                         + "; ".join(skips.lines[:5]) + ")")
    if test_fraction and all(it.split is not None for it in items):
        carve_test(items, test_fraction, source)
    assign_splits(items, val_fraction, test_fraction)
    counts = {s: sum(it.split == s for it in items) for s in SPLITS}
    if not counts["test"]:
        del counts["test"]
    splits = [s for s in SPLITS if counts.get(s)]
    if len([s for s in splits if s != "test"]) == 1:
        skips.warnings.append(f"every image went to '{splits[0]}': the YAML's val is the training images "
                              "(VALIDATION = TRAINING); import with automatic splits to get a real validation set")
    out.parent.mkdir(parents=True, exist_ok=True)
    for note in remove_stale_builds(out):
        print(f"[import-data] {note}", flush=True)
        skips.warnings.append(note)
    skips.warnings = [shown(w) for w in skips.warnings]  # they may name files whose names are not UTF-8
    build = out.with_name(f".{out.name}.importing-{os.getpid()}")
    try:
        _fill(build, items, link)
        atomic_write(build / "data.yaml", _yaml_text(out, classes, splits, source))
        atomic_write(build / "import-report.txt", "".join(f"{ln}\n" for ln in skips.lines + skips.warnings))
        _swap_in(build, out)
    finally:
        if build.exists():
            shutil.rmtree(build)
    return ImportReport(out, out / "data.yaml", counts, sum(len(it.rows) for it in items), dict(skips.counts), names,
                        skips.lines, skips.warnings)
