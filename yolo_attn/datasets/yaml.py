"""Dataset YAMLs: reading one, the ONE dataset resolver (:func:`resolve_dataset`), class names.

Every yolo_attn command that takes a dataset YAML (``train``, ``compare``, ``check-data``, ``study``,
``search``, ``diagnose``) resolves it through :func:`resolve_dataset`, which follows Ultralytics 8.4's
``check_det_dataset`` rules:

* the root is ``path:`` when given, else the YAML's folder; a relative ``path:`` is taken against the
  working directory and, when not found there, against Ultralytics' ``DATASETS_DIR``. Where neither
  holds it, yolo_attn also tries the YAML's own folder (and ``~``), says so in a note, and writes the
  folder it found into its copy, so training sees the same folder;
* a split (``train``, ``val``, ``test``, ``minival``) is ``root / entry``, resolved; a string entry that
  does not exist and starts with ``../`` is retried without it (Roboflow exports: ``train: ../train/images``
  beside a ``data.yaml`` without ``path:``); a list of entries is resolved entry by entry;
* ``validation:`` stands for ``val:``; ``names`` (a list or a mapping) and ``nc`` are judged by
  Ultralytics itself (``names: {0: a, 5: b}`` is refused as it is at training).

A dataset YAML's ``download:`` entry (a URL, a shell command or Python code that Ultralytics runs when a
split is missing) is never run: the resolver writes a *checked copy* of the YAML without it and with
absolute paths, and that copy is what Ultralytics gets. ``yolo-attn train --trust`` is the one way to let
Ultralytics run it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .._io import atomic_write
from .files import image_files, not_utf8, shown

SPLIT_KEYS = ("train", "val", "test", "minival")  # the split keys Ultralytics resolves against the root
COPY_HEADER = "# yolo_attn's checked copy of"


class DatasetError(ValueError):
    """A dataset YAML that Ultralytics would refuse (or that yolo_attn refuses to hand it); names the file."""


def cache_dir() -> Path:
    """yolo_attn's scratch folder (not "yolo_attn": a folder of that name in the cwd would shadow the package)."""
    return Path(tempfile.gettempdir()) / "yolo-attn"


def load_data_yaml(path: str | Path) -> dict:
    """The mapping of dataset YAML ``path``; FileNotFoundError / ValueError naming the file otherwise."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"dataset YAML not found: {path}")
    try:
        data = yaml.safe_load(p.read_text(errors="replace"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset YAML must be a mapping")
    return data


def class_names(data: dict) -> dict[int, str]:
    """``{index: name}`` from a dataset mapping's ``names`` (list or mapping) or, failing that, ``nc``
    (``class_0``, ``class_1``, ... as Ultralytics names them)."""
    names = data.get("names")
    if isinstance(names, dict):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise ValueError(f"'names' keys must be integers, got {list(names)[:5]}") from None
    if isinstance(names, (list, tuple)):
        return dict(enumerate(map(str, names)))
    if "nc" in data:
        try:
            return {i: f"class_{i}" for i in range(int(data["nc"]))}
        except (TypeError, ValueError):
            raise ValueError(f"'nc' must be an integer, got {data['nc']!r}") from None
    raise ValueError("dataset YAML has neither 'names' nor 'nc'")


@dataclass(frozen=True)
class Dataset:
    """A resolved dataset YAML: its checked copy, root, split entries and class names."""

    source: Path  # the YAML the user named
    yaml: Path  # the checked copy (absolute paths, no download:) that Ultralytics is given
    root: Path
    splits: dict[str, tuple[Path, ...]]  # every split the YAML lists, entries resolved
    names: dict[int, str]
    download: str | None = None  # the YAML's download: entry, left out of the copy
    notes: tuple[str, ...] = field(default_factory=tuple)

    def missing(self, split: str) -> list[Path]:
        """The entries of ``split`` that do not exist."""
        return [p for p in self.splits.get(split, ()) if not p.exists()]

    def missing_message(self, split: str) -> str:
        """Why ``split`` cannot be read: the missing entries and, when the YAML has one, its unrun download."""
        gone = ", ".join(map(str, self.missing(split)))
        msg = f"'{split}' path not found: {gone}"
        if self.download:
            first = str(self.download).strip().splitlines()[0][:60] if str(self.download).strip() else ""
            msg += (f" (its YAML has a download: entry, {first!r}, which yolo_attn does not run: "
                    "it is a URL, a shell command or Python code from the YAML. Fetch the data yourself, or let "
                    "`yolo-attn train ... --trust` have Ultralytics run it)")
        return msg

    def images(self, split: str) -> list[str]:
        """Image files of ``split`` as Ultralytics' loader lists them (bounded: see :mod:`.files`)."""
        if split not in self.splits:
            raise DatasetError(f"{self.source}: no '{split}' split (it declares {', '.join(self.splits) or 'none'})")
        return image_files(self.root, [str(p) for p in self.splits[split]], what=f"'{split}' of {self.source}")


def locate_yaml(path: str | Path) -> Path:
    """The dataset YAML file ``path`` names: a file, or a bare name Ultralytics ships (``coco8.yaml``)."""
    text = str(path)
    if "://" in text:
        raise DatasetError(f"{text}: a dataset YAML given as a URL is not fetched; download it and pass the file")
    p = Path(text).expanduser()
    if p.is_file():
        return p.resolve()
    if not p.is_absolute() and len(p.parts) == 1:
        from .._ultralytics import find_packaged_file

        found = find_packaged_file(text if p.suffix in (".yaml", ".yml") else text + ".yaml")
        if found:
            return Path(found).resolve()
    raise FileNotFoundError(f"dataset YAML not found: {path}")


def classification_folder(path: str | Path) -> Path | None:
    """The classification dataset folder ``path`` names: a folder, or a bare name that no shipped dataset YAML has
    (``mnist160``) and that is a folder in Ultralytics' datasets folder, where ``data=mnist160`` finds it; else None."""
    p = Path(str(path)).expanduser()
    if p.is_dir():
        return p
    if "://" in str(path) or p.is_absolute() or len(p.parts) != 1 or p.suffix.lower() in (".yaml", ".yml") \
            or p.exists():
        return None
    from .._ultralytics import datasets_dir, find_packaged_file

    if find_packaged_file(f"{p}.yaml"):
        return None
    found = datasets_dir() / p
    return found if found.is_dir() else None


def _check_types(src: Path, data: dict) -> None:
    if data.get("path") is not None and not isinstance(data["path"], str):
        raise DatasetError(f"{src}: 'path' must be a string, not {type(data['path']).__name__}")
    for k in SPLIT_KEYS:
        v = data.get(k)
        if v is not None and not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
            raise DatasetError(f"{src}: '{k}' must be a path or a list of paths, not {v!r:.60}")


def _root(src: Path, data: dict) -> tuple[Path, tuple[str, ...]]:
    """The dataset root by Ultralytics' rule, then (only where that finds nothing) the YAML's folder or ``~``."""
    given = data.get("path")
    root = Path(given) if given else src.parent
    if not root.exists() and not root.is_absolute():
        from .._ultralytics import datasets_dir

        root = datasets_dir() / root
    if root.exists() or not given or Path(given).is_absolute():
        return Path(os.path.abspath(root)), ()
    for other, where in ((src.parent / given, "the YAML's folder"), (Path(given).expanduser(), "your home folder")):
        if other.exists():
            note = (f"path: {given} is not in the working directory nor in Ultralytics' datasets folder; using it "
                    f"relative to {where} ({os.path.abspath(other)}), written absolute into the copy Ultralytics reads")
            return Path(os.path.abspath(other)), (note,)
    return Path(os.path.abspath(root)), (f"path: {given} not found (looked in the working directory, Ultralytics' "
                                          "datasets folder and the YAML's folder)",)


def _resolved(src: Path, path: Path, what: str) -> Path:
    """``path`` resolved; a :class:`DatasetError` naming the YAML ``src`` and its entry ``what`` for a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: Python < 3.13's "Symlink loop from ..."
        raise DatasetError(f"{src}: {what} {path} is a symbolic link loop (or a chain of links too long to "
                           f"follow): {exc}") from None


def _entries(src: Path, root: Path, key: str, spec) -> tuple[Path, ...]:
    """Ultralytics' resolution of one split value: ``root / entry``, and for a string the ``../`` retry."""
    if isinstance(spec, list):
        return tuple(_resolved(src, root / x, f"{key}:") for x in spec)
    x = _resolved(src, root / spec, f"{key}:")
    if not x.exists() and spec.startswith("../"):
        x = _resolved(src, root / spec[3:], f"{key}:")
    return (x,)


def _splits(src: Path, data: dict) -> tuple[Path, dict[str, tuple[Path, ...]], tuple[str, ...]]:
    """The root (a symlink loop refused, naming ``src``), the resolved entries of every split and the notes."""
    root, notes = _root(src, data)
    _resolved(src, root, "path:" if data.get("path") else "the dataset folder")
    splits = {k: _entries(src, root, k, data[k]) for k in SPLIT_KEYS if data.get(k)}
    for where, path in [("the dataset folder", root)] + [(f"'{k}'", p) for k, ps in splits.items() for p in ps]:
        if not_utf8(path):
            raise DatasetError(f"{shown(src)}: {where} {shown(path)}: its name is not UTF-8; Ultralytics cannot "
                               "train on it: rename it")
    return root, splits, notes


def _copy_text(src: Path, data: dict, root: Path, splits: dict, dropped_download: bool) -> str:
    out = dict(data)
    out["path"] = str(root)
    for k, entries in splits.items():
        out[k] = [str(p) for p in entries] if isinstance(data[k], list) else str(entries[0])
    head = f"{COPY_HEADER} {src}: absolute paths"
    if dropped_download:
        head += "; the download: entry is left out (yolo_attn never runs one)"
    return head + "\n" + yaml.safe_dump(out, sort_keys=False, allow_unicode=True)


def _write_copy(src: Path, text: str, out_dir: str | Path | None) -> Path:
    """Write the checked copy; a checked copy resolved again (no ``out_dir``) is its own copy."""
    if out_dir is None:
        own = src.read_text(errors="replace").split("\n", 1)
        if own[0].startswith(COPY_HEADER) and own[1:] == text.split("\n", 1)[1:]:
            return src
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    dst = Path(out_dir or cache_dir()) / f"{src.stem}-{digest}.yaml"
    if not dst.is_file() or dst.read_text() != text:
        atomic_write(dst, text)
    return dst


def _ultralytics_names(src: Path, copy: Path, data: dict) -> dict[int, str]:
    """Class names as Ultralytics reads them from the copy; its refusals as :class:`DatasetError` naming ``src``."""
    from .._ultralytics import check_dataset_yaml

    try:
        return dict(check_dataset_yaml(copy)["names"])
    except FileNotFoundError:  # a split is missing: raised after the names were accepted; check-data reports it
        return class_names(data)
    except (SyntaxError, KeyError, TypeError, ValueError) as exc:
        msg = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).replace(str(copy), str(src))
        msg = re.sub("[\u2600-\u27bf\ufe0f\U0001f300-\U0001faff]", "", msg).strip()  # Ultralytics' emoji decorations
        raise DatasetError(f"{src}: Ultralytics refuses this dataset YAML: {msg}") from None


def _download_trusted(src: Path) -> None:
    """``--trust`` only: let Ultralytics run the YAML's download: entry (a URL, a shell command or Python code)."""
    from .._ultralytics import check_dataset_yaml

    print(f"[datasets] --trust: Ultralytics runs the download: entry of {src}", flush=True)
    check_dataset_yaml(src, autodownload=True)


def resolve_dataset(path: str | Path, out_dir: str | Path | None = None, trust: bool = False) -> Dataset:
    """Resolve a dataset YAML the way Ultralytics does and write its checked copy (see the module docstring).

    The copy goes to ``out_dir`` (default: :func:`cache_dir`) under a name derived from its content, so
    repeated calls reuse one file. Missing split folders are not an error here (``check-data`` reports
    them; :meth:`Dataset.missing_message` says why); a YAML Ultralytics would refuse is a :class:`DatasetError`.
    ``trust``: when a train/val entry is missing and the YAML has a ``download:``, Ultralytics runs it first.
    A folder is a classification dataset (:func:`yolo_attn.datasets.tasks.classify.folder_dataset`: no copy), and
    so is a bare name of one in Ultralytics' datasets folder (:func:`classification_folder`).
    """
    folder = classification_folder(path)
    if folder is not None:
        from .tasks.classify import folder_dataset

        return folder_dataset(folder)
    src = locate_yaml(path)
    if not_utf8(src):
        raise DatasetError(f"{shown(src)}: the path of this YAML is not UTF-8; Ultralytics cannot train on it: "
                           "rename its folder or itself")
    data = load_data_yaml(src)
    if "val" not in data and "validation" in data:
        data["val"] = data.pop("validation")
    _check_types(src, data)
    for k in ("train", "val"):
        if k not in data:
            raise DatasetError(f"{src}: no '{k}:' key ('train' and 'val' are required in every dataset YAML)")
    root, splits, notes = _splits(src, data)
    download = data.pop("download", None)
    if trust and download and any(not p.exists() for k in ("train", "val") for p in splits.get(k, ())):
        _download_trusted(src)
        root, splits, notes = _splits(src, data)
    copy = _write_copy(src, _copy_text(src, data, root, splits, download is not None), out_dir)
    names = _ultralytics_names(src, copy, data)
    return Dataset(src, copy, root, splits, names, None if download is None else str(download), notes)


def dataset_yaml(path: str | Path, out_dir: str | Path | None = None) -> Path:
    """The checked copy of dataset YAML ``path`` (:func:`resolve_dataset`): absolute paths, no ``download:``."""
    return resolve_dataset(path, out_dir).yaml
