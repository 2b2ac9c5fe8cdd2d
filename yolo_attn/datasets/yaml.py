"""Dataset YAMLs: reading one, the ONE dataset-root resolver, class names, and an absolute-path copy."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import yaml

from .._io import atomic_write


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


def dataset_root(path: str | Path, data: dict | None = None) -> Path:
    """The dataset root of YAML ``path`` (absolute).

    Its ``path:`` when given -- a relative value is tried against the YAML's folder, then against the
    current directory -- and otherwise the YAML's own folder, which is what Ultralytics uses when
    ``path:`` is absent. Every yolo_attn command resolves a dataset root through this function.
    """
    src = Path(path).expanduser().resolve()
    data = load_data_yaml(src) if data is None else data
    root = data.get("path")
    if not root:
        return src.parent
    root = Path(str(root)).expanduser()
    if root.is_absolute():
        return root
    beside = (src.parent / root).resolve()
    return beside if beside.exists() else root.resolve()


def class_names(data: dict) -> dict[int, str]:
    """``{index: name}`` from a dataset mapping's ``names`` (list or mapping) or, failing that, ``nc``."""
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
            return {i: f"class{i}" for i in range(int(data["nc"]))}
        except (TypeError, ValueError):
            raise ValueError(f"'nc' must be an integer, got {data['nc']!r}") from None
    raise ValueError("dataset YAML has neither 'names' nor 'nc'")


def dataset_yaml(path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write a copy of dataset YAML ``path`` whose ``path:`` is absolute (:func:`dataset_root`); return the copy.

    The copy goes to ``out_dir`` (default: :func:`cache_dir`) under a name derived from its content, so
    repeated calls reuse one file, and it resolves the same from every working directory.
    """
    src = Path(path).expanduser().resolve()
    data = load_data_yaml(src)
    data["path"] = str(dataset_root(src, data))
    text = f"# absolute-path copy of {src}\n" + yaml.safe_dump(data, sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    dst = Path(out_dir or cache_dir()) / f"{src.stem}-{digest}.yaml"
    if not dst.is_file() or dst.read_text() != text:
        atomic_write(dst, text)
    return dst
