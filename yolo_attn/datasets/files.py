"""The files Ultralytics reads for a detection dataset, found and read the way it does.

* :func:`image_files` lists a split exactly as Ultralytics' loader does (``tests/test_datasets_check.py``
  compares the two through :func:`yolo_attn._ultralytics.ultralytics_image_files`): a folder is searched
  recursively as :func:`glob.glob` (``**/*.*``) does, following directory symlinks -- a symlink loop
  therefore lists the same image under many paths; a ``.txt`` list gives one path per line, a line
  starting with ``./`` being relative to the list's folder; files are kept by extension and sorted.
  The walk is bounded where Ultralytics' is not: a folder on a pseudo filesystem (/proc, /sys) is refused,
  and a walk past :data:`MAX_WALK_ENTRIES` entries or :data:`MAX_WALK_SECONDS` stops, both with a
  :class:`ListingError`; a long walk reports its progress on stderr.
* :func:`label_path` is the label of an image: the last ``images`` folder of its path becomes ``labels``.
* :func:`image_size` opens an image without Ultralytics' Pillow patch, which answers an unidentified file
  (a zero-byte JPEG, say) by pip-installing a HEIF plugin, and reads its header before decoding it: an image
  over :data:`MAX_IMAGE_PIXELS` is refused (:class:`ImageTooLarge`) without allocating it (:func:`open_image`).
* :func:`not_utf8` finds a path whose name is not UTF-8 (Latin-1 bytes, as Windows zips write ``café.jpg``):
  Ultralytics cannot train on it (it hashes and caches the file names as UTF-8) and OpenCV's ``imread`` crashes
  the process on it, so the check and the importers refuse it first; :func:`shown` prints such a path with its
  odd bytes escaped (``caf\\xe9.jpg``).
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Ultralytics 8.4's image suffixes (checked against ultralytics.data.utils.IMG_FORMATS by the tests)
IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})
MIN_IMAGE_SIDE = 10  # Ultralytics drops images smaller than this (in either dimension) as corrupt
# The largest image read (Pillow's own bound for a decompression bomb; Ultralytics lifts Pillow's in places): about
# 0.5 GB decoded as RGB. A larger one is refused from its header, before any pixel is decoded.
MAX_IMAGE_PIXELS = 178_956_970
NOT_UTF8 = ("file name is not UTF-8 (as Windows zips write accented names); Ultralytics cannot train on it and "
            "OpenCV crashes on it: rename it")


# Bounds on listing one split folder: Ultralytics lists every file under it, recursively, so a YAML whose
# split is ``.`` under ``path: /`` would walk the whole machine. yolo_attn stops and says why instead.
MAX_WALK_ENTRIES = 5_000_000  # directory entries looked at, per split entry
MAX_WALK_SECONDS = 300.0
PROGRESS_SECONDS = 10.0  # a long walk reports its progress on stderr this often
PSEUDO_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
    "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "sysfs",
    "tracefs"})


class ListingError(ValueError):
    """A split entry that cannot be listed the way Ultralytics would list it (too large, a pseudo filesystem)."""


def _pseudo_devices() -> dict[int, tuple[str, str]]:
    """``{st_dev: (mount point, type)}`` of the mounted pseudo filesystems (/proc, /sys, ...); empty off Linux."""
    found: dict[int, tuple[str, str]] = {}
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] in PSEUDO_FILESYSTEMS:
            point = parts[1].replace("\\040", " ")
            try:
                found.setdefault(os.stat(point).st_dev, (point, parts[2]))
            except OSError:
                continue
    return found


@dataclass
class _Walk:
    """The state of one bounded listing: entries seen, the clock, the progress line."""

    top: str
    what: str
    pseudo: dict[int, tuple[str, str]]
    entries: int = 0
    images: int = 0
    t0: float = field(default_factory=time.monotonic)
    last_report: float = field(default_factory=time.monotonic)

    def enter(self, folder: str) -> None:
        """Refuse a folder on a pseudo filesystem before listing it."""
        try:
            dev = os.stat(folder).st_dev
        except OSError:
            return
        if dev in self.pseudo:
            point, kind = self.pseudo[dev]
            raise ListingError(f"{self.what}: {self.top} reaches {folder}, on the {kind} pseudo filesystem mounted at "
                               f"{point}; Ultralytics lists every file under a split folder recursively, so a split "
                               "must name the images folder itself (or a .txt list of images)")

    def tick(self) -> None:
        self.entries += 1
        if self.entries % 4096:
            return
        now = time.monotonic()
        if self.entries > MAX_WALK_ENTRIES or now - self.t0 > MAX_WALK_SECONDS:
            raise ListingError(f"{self.what}: stopped listing {self.top} after {self.entries:,} entries and "
                               f"{now - self.t0:.0f} s ({self.images:,} images so far; limits {MAX_WALK_ENTRIES:,} "
                               f"entries, {MAX_WALK_SECONDS:.0f} s). Ultralytics lists every file under a split folder "
                               "recursively: point the split at the images folder, or list the images in a .txt file")
        if now - self.last_report >= PROGRESS_SECONDS:
            self.last_report = now
            print(f"[datasets] listing {self.what} ({self.top}): {self.entries:,} entries, {self.images:,} images, "
                  f"{now - self.t0:.0f} s", file=sys.stderr, flush=True)


def _walk_folder(top: Path, what: str) -> list[str]:
    """Every non-hidden path under ``top`` whose name has a dot: what ``glob(top/**/*.*, recursive=True)`` lists
    (directory symlinks followed, hidden names skipped), within the bounds above."""
    walk = _Walk(str(top), what, _pseudo_devices())
    found: list[str] = []
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        walk.enter(folder)
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:  # unreadable, a symlink loop too deep (ELOOP), a path too long: glob skips these silently
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            walk.tick()
            path = os.path.join(folder, e.name)
            if "." in e.name:
                found.append(path)
                walk.images += e.name.rpartition(".")[-1].lower() in IMG_FORMATS
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(path)
    return found


def _entry_files(p: Path, what: str) -> list[str]:
    if p.is_dir():
        return _walk_folder(p, what)
    if p.is_file():
        lines = p.read_text(encoding="utf-8-sig", errors="replace").strip().splitlines()
        parent = str(p.parent) + os.sep
        return [ln.replace("./", parent, 1) if ln.startswith("./") else ln for ln in lines]
    raise FileNotFoundError(str(p))


def image_files(root: Path, spec, what: str = "split") -> list[str]:
    """Image paths of one split entry (a folder, a ``.txt`` list, or a list of either) in Ultralytics' order.

    Relative entries are taken against the dataset ``root``; duplicates (a symlink loop) are kept, as
    Ultralytics keeps them. FileNotFoundError for an entry that does not exist; :class:`ListingError` for a
    folder that reaches a pseudo filesystem or exceeds the walk's bounds (``what`` names the split in messages).
    """
    files: list[str] = []
    for s in spec if isinstance(spec, (list, tuple)) else [spec]:
        p = Path(str(s)).expanduser()
        files += _entry_files(p if p.is_absolute() else Path(root) / p, what)
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


def shown(path) -> str:
    """``path`` as messages print it: valid UTF-8 as it is, the bytes of a name that is not escaped
    (``caf\\xe9.jpg``), so that printing it or writing it to a report never fails."""
    text = str(path)
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file system byte stands for
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def not_utf8(path) -> bool:
    """Whether ``path`` (a str from the file system: odd bytes are surrogates) holds a name that is not UTF-8."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ImageTooLarge(ValueError):
    """An image whose header gives more than :data:`MAX_IMAGE_PIXELS` pixels (never decoded)."""


def pil_open():
    """Pillow's own ``Image.open``, also after Ultralytics replaced it (see the module docstring)."""
    from PIL import Image

    if "ultralytics.utils.patches" in sys.modules:
        from .._ultralytics import pil_open as original

        return original()
    return Image.open


def open_image(source):
    """A Pillow image of ``source`` (a path or a binary file) with only its header read; :class:`ImageTooLarge`
    when it holds more than :data:`MAX_IMAGE_PIXELS` pixels, Pillow's errors for a file that is no image."""
    from PIL import Image

    try:
        im = pil_open()(source)
    except Image.DecompressionBombError as exc:  # Pillow's own bound, checked from the header too
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLarge(f"{int(found[1]):,} pixels, over the {MAX_IMAGE_PIXELS:,} yolo_attn reads" if found
                            else str(exc)) from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise ImageTooLarge(f"{w} x {h} = {w * h:,} pixels, over the {MAX_IMAGE_PIXELS:,} yolo_attn reads")
    return im


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image; ValueError with the reason when it cannot be read or is too large."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError("unreadable image: empty file (0 bytes)")
        with open_image(path) as im:
            im.verify()
        with open_image(path) as im:
            im.load()
            w, h = im.size
    except ImageTooLarge as exc:
        raise ImageTooLarge(f"image too large: {exc}") from None
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
