"""The files Ultralytics reads for a detection dataset, found and read the way it does.

* :func:`image_files` lists a split exactly as Ultralytics' loader does (``tests/test_datasets_files.py``
  compares the two through :func:`yolo_attn._ultralytics.ultralytics_image_files`): a folder is searched
  recursively with :func:`glob.glob` (``**/*.*``), which follows directory symlinks -- a symlink loop
  therefore lists the same image under many paths; a ``.txt`` list gives one path per line, a line
  starting with ``./`` being relative to the list's folder; files are kept by extension and sorted.
* :func:`label_path` is the label of an image: the last ``images`` folder of its path becomes ``labels``.
* :func:`image_size` opens an image without Ultralytics' Pillow patch, which answers an unidentified file
  (a zero-byte JPEG, say) by pip-installing a HEIF plugin.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import numpy as np

# Ultralytics 8.4's image suffixes (checked against ultralytics.data.utils.IMG_FORMATS by the tests)
IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})
MIN_IMAGE_SIDE = 10  # Ultralytics drops images smaller than this (in either dimension) as corrupt


def _entry_files(p: Path) -> list[str]:
    if p.is_dir():
        return glob.glob(os.path.join(glob.escape(str(p)), "**", "*.*"), recursive=True)
    if p.is_file():
        lines = p.read_text(encoding="utf-8-sig", errors="replace").strip().splitlines()
        parent = str(p.parent) + os.sep
        return [ln.replace("./", parent, 1) if ln.startswith("./") else ln for ln in lines]
    raise FileNotFoundError(str(p))


def image_files(root: Path, spec) -> list[str]:
    """Image paths of one split entry (a folder, a ``.txt`` list, or a list of either) in Ultralytics' order.

    Relative entries are taken against the dataset ``root``; duplicates (a symlink loop) are kept, as
    Ultralytics keeps them. FileNotFoundError for an entry that does not exist.
    """
    files: list[str] = []
    for s in spec if isinstance(spec, (list, tuple)) else [spec]:
        p = Path(str(s)).expanduser()
        files += _entry_files(p if p.is_absolute() else Path(root) / p)
    return sorted(f.replace("/", os.sep) for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)


def split_images(root: Path, spec) -> list[Path]:
    """The distinct image paths of one split entry (see :func:`image_files`), sorted."""
    return sorted({Path(f) for f in image_files(root, spec)})


def label_path(image: str | Path) -> Path:
    """Ultralytics' convention: the last ``images`` folder of the path replaced by ``labels``, suffix ``.txt``."""
    parts = list(Path(image).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _pil_open():
    """Pillow's own ``Image.open``, also after Ultralytics replaced it (see the module docstring)."""
    from PIL import Image

    if "ultralytics.utils.patches" in sys.modules:
        from .._ultralytics import pil_open

        return pil_open()
    return Image.open


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image; ValueError with the reason when it cannot be read."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError("unreadable image: empty file (0 bytes)")
        open_ = _pil_open()
        with open_(path) as im:
            im.verify()
        with open_(path) as im:
            im.load()
            w, h = im.size
    except ValueError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise ValueError(f"unreadable image: {exc.__class__.__name__}: {exc}") from None
    if w < 1 or h < 1:
        raise ValueError("image has zero size")
    return int(w), int(h)


def read_yolo_labels(path: str | Path) -> np.ndarray:
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
