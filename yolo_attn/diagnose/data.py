"""Images and ground truth of one dataset split, letterboxed once and kept in memory for every section.

Every section of the diagnosis runs on the same tensors: images read with OpenCV, resized keeping the
aspect ratio so the long side is ``imgsz``, padded to a square with grey (114) and scaled to [0, 1]. The
ground truth stays in original pixels (COCO's size classes are defined there); predictions are mapped
back through each image's scale and padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..scoring import cocoeval
from ..datasets import Dataset, ListingError, label_path, resolve_dataset


class DiagnoseError(ValueError):
    """Bad input to the diagnosis; the message names the file or layer."""


@dataclass
class Split:
    """One split, letterboxed: ``images`` (N, 3, S, S) in [0, 1]; ``gt`` in original pixels."""

    name: str
    files: list[Path]
    images: torch.Tensor
    gt: list[cocoeval.GtImage]
    scale: np.ndarray  # (N,) letterbox scale
    pad: np.ndarray  # (N, 2) left, top padding in letterboxed pixels
    image_class: np.ndarray | None = None  # (N,) the class of each image (classification: its folder's), else None
    dataset: dict | None = None  # the dataset YAML's mapping (a pose scorer reads its kpt_shape, kpt_oks_sigmas)

    def __len__(self) -> int:
        return len(self.files)

    def ratio_pad(self, i: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Image ``i``'s letterbox as Ultralytics states one: ``((gain, gain), (pad_w, pad_h))``, each pad half the
        axis's padding (:func:`letterbox` puts the odd pixel right and below)."""
        r, g, size = float(self.scale[i]), self.gt[i], self.images.shape[-1]
        nw, nh = max(1, round(g.width * r)), max(1, round(g.height * r))
        return (r, r), ((size - nw) / 2, (size - nh) / 2)

    def dominant_class(self) -> np.ndarray:
        """The most frequent class of each image (-1 if it has no object); a classification image's own class."""
        if self.image_class is not None:
            return np.asarray(self.image_class)
        out = []
        for g in self.gt:
            c = g.labels[:, 0].astype(int)
            out.append(int(np.bincount(c).argmax()) if c.size else -1)
        return np.array(out)


@dataclass
class DiagData:
    yaml: Path
    names: dict[int, str]
    imgsz: int
    val: Split
    train: Split | None


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize (long side = ``size``) and pad to ``size`` x ``size``; returns image, scale and (left, top)."""
    import cv2

    h, w = img.shape[:2]
    r = size / max(h, w)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    left, top = (size - nw) // 2, (size - nh) // 2
    out = np.full((size, size, *img.shape[2:]), 114, dtype=np.uint8)
    out[top : top + nh, left : left + nw] = img
    return out, r, (left, top)


def _subset(files: list[Path], n: int | None, seed: int) -> list[Path]:
    if n is None or n >= len(files):
        return files
    idx = np.random.default_rng(seed).choice(len(files), n, replace=False)
    return [files[i] for i in sorted(idx)]


def _ground_truth(task: str):
    """``(image file, width, height) -> (labels, geometry, class folder or None)``: the label rows of ``task`` as its
    scorer reads them (``cls xc yc w h``: a polygon's or keypoint row's box) with each row's own geometry
    (``GtImage.segments``: polygons in pixels, keypoint values; None for boxes), or a classification image's folder."""
    from ..scoring import SCORERS

    s = SCORERS.get(task, SCORERS["detect"])
    label_of = s.label_of or label_path

    def read(f: Path, w: int, h: int):
        labels, extra = s.read_ground_truth(label_of(f), w, h)
        if s.label_of is not None:  # a classification image: its class folder
            return np.asarray(labels, dtype=float).reshape(-1, 5), None, (extra[0] if extra else None)
        return np.asarray(labels, dtype=float).reshape(-1, 5), extra, None

    return read


def _image_classes(files: list[Path], folders: list, names: dict[int, str], source) -> np.ndarray | None:
    if all(f is None for f in folders):
        return None
    index = {str(v): int(k) for k, v in names.items()}
    missing = [f for f, c in zip(files, folders) if c not in index]
    if missing:
        raise DiagnoseError(f"{source}: {missing[0]}: its class folder is none of the dataset's classes")
    return np.array([index[c] for c in folders])


def load_split(ds: Dataset, name: str, imgsz: int, n: int | None = None, seed: int = 0, task: str = "detect") -> Split:
    """Read split ``name`` of a resolved dataset (``n`` images drawn with ``seed``, all if None), the labels read as
    ``task``'s."""
    import cv2

    yaml_path = ds.source
    if name not in ds.splits:
        raise DiagnoseError(f"{yaml_path}: the dataset has no '{name}' split")
    if ds.missing(name):
        raise DiagnoseError(f"{yaml_path}: {ds.missing_message(name)}")
    try:
        files = sorted({Path(f) for f in ds.images(name)})
    except ListingError as exc:
        raise DiagnoseError(str(exc)) from None
    if not files:
        raise DiagnoseError(f"{yaml_path}: the '{name}' split holds no images")
    files = _subset(files, n, seed)
    images, gts, scales, pads, folders = [], [], [], [], []
    read = _ground_truth(task)
    mapping = _mapping(yaml_path)
    gray = int((mapping or {}).get("channels") or 3) == 1  # read as Ultralytics reads a 'channels: 1' set
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
        if img is None:
            raise DiagnoseError(f"{f}: unreadable image")
        h, w = img.shape[:2]
        boxed, r, pad = letterbox(img, imgsz)
        images.append(torch.from_numpy(boxed[None] if gray else boxed[:, :, ::-1].copy().transpose(2, 0, 1)))
        labels, geometry, folder = read(f, w, h)
        gts.append(cocoeval.GtImage(str(f), w, h, labels, geometry))
        folders.append(folder)
        scales.append(r)
        pads.append(pad)
    x = torch.stack(images).float() / 255.0
    return Split(name, files, x, gts, np.array(scales), np.array(pads, dtype=float),
                 _image_classes(files, folders, ds.names, yaml_path), mapping)


def _mapping(source: Path) -> dict | None:
    """The dataset YAML's mapping (None for a classification folder)."""
    from ..datasets.yaml import load_data_yaml

    return load_data_yaml(source) if Path(source).is_file() else None


def load_data(yaml_path: str | Path, imgsz: int, n_val: int | None = None, n_train: int | None = None,
              seed: int = 0, need_train: bool = True, task: str = "detect") -> DiagData:
    """Both splits of a dataset YAML or classification folder (train only if ``need_train``), labels read as
    ``task``'s; errors name the dataset."""
    yaml_path = Path(yaml_path)
    try:
        ds = resolve_dataset(yaml_path)
    except (FileNotFoundError, ValueError) as exc:  # the message names the YAML
        raise DiagnoseError(str(exc)) from None
    val = load_split(ds, "val", imgsz, n_val, seed, task)
    train = load_split(ds, "train", imgsz, n_train, seed, task) if need_train else None
    return DiagData(yaml_path, ds.names, imgsz, val, train)
