"""Classification (``task=classify``): a folder, not a YAML: ``DIR/train/<class>/*.jpg``, ``DIR/val/<class>/*.jpg``
(``val`` may be ``validation`` or ``valid``; ``test/`` optional), the classes being the folders of ``train/``.

Ultralytics reads each split with torchvision's ``ImageFolder``: every sub-folder of the split is a class (a hidden
one too), the images anywhere under it are its samples, files that are no image are skipped, and images directly in
the split folder are not used. Without ``train/`` it splits the images it finds into new folders itself; the check
refuses that layout instead of letting a training run write into the dataset.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..files import IMG_FORMATS, NOT_UTF8, not_utf8
from ..yaml import Dataset, DatasetError
from ._base import TaskData

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}  # Ultralytics' order


class Classify(TaskData):
    name = "classify"
    objects = "images"
    suffix = "cls"
    folder_layout = True

    def count_line(self, split: str, c: dict) -> str:
        return (f"{split}: {c['images']} images in {c['classes']} class folders, {c['empty']} empty class folders, "
                f"{c['other']} files that are no image, {c['unused']} images outside the class folders")

    # ---- make-shapes: one shape per image, the image in the folder of its class ------------------------
    # A from-scratch yolo11n-cls did not learn the detection look (a small shape of any colour, lighter or darker than
    # its textured background, anywhere, turned) in 8 epochs: top-1 stayed at chance even with large centred shapes
    # on flat backgrounds and no augmentation. What it learned in ~2000 steps at imgsz 64: large, nearly centred,
    # upright shapes always lighter than the background (colours, sizes, positions and textures still random;
    # the class is the geometry only). docs/tasks.md has the measurements.
    shapes_defaults = {"n_train": 2000, "n_val": 400, "imgsz": 64, "min_size": 24, "max_size": 48}

    @property
    def look(self):
        from ..shapes import Look

        return Look(light_on_dark=True, upright=True, centre=0.5)

    def shapes_config(self, cfg):
        return replace(cfg, min_objects=1, max_objects=1)

    def shape_class(self, index: int) -> int:
        from ..shapes import CLASSES

        return index % len(CLASSES)  # every class in every split, as evenly as the counts allow

    def sample_files(self, split, stem, shapes, n):
        from ..shapes import CLASSES

        return f"{split}/{CLASSES[shapes[0].cls]}/{stem}.jpg", {}

    def sample_folders(self, out, splits):
        return [(d, f"{split}/{d.name}/") for split in splits if (out / split).is_dir()
                for d in sorted((out / split).iterdir()) if d.is_dir()]


class FolderDataset(Dataset):
    """A classification dataset folder (:func:`folder_dataset`)."""

    def images(self, split: str) -> list[str]:
        """The images of ``split`` as Ultralytics' ImageFolder takes them: those in its class folders."""
        if split not in self.splits:
            raise DatasetError(f"{self.source}: no {split}/ folder (it has {', '.join(self.splits) or 'none'})")
        return [str(f) for folder in self.splits[split] for d in sorted(folder.iterdir()) if d.is_dir()
                for f in _files(d) if is_image(f)]


def folder_dataset(root) -> FolderDataset:
    """A classification dataset folder as the sweep reads a dataset (:class:`~yolo_attn.datasets.yaml.Dataset`): no
    YAML, Ultralytics is given the folder itself (``yaml``); the splits are its split folders, the classes the
    folders of ``train/`` in sorted order (Ultralytics' class indices)."""
    root = Path(os.path.abspath(Path(root).expanduser()))
    found = split_folders(root)
    found.setdefault("val", found.get("test"))  # no val/: Ultralytics validates on test/ (None: neither, dropped)
    found = {k: v for k, v in found.items() if v is not None}
    train = found.get("train")
    classes = sorted(d.name for d in train.iterdir() if d.is_dir()) if train is not None else []
    return FolderDataset(root, root, root, {k: (v,) for k, v in found.items()}, dict(enumerate(classes)))


def split_folders(root: Path) -> dict[str, Path]:
    """The split folders Ultralytics takes from a classification dataset folder."""
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((root / n for n in names if (root / n).is_dir()), None)
        if folder is not None:
            found[split] = folder
    return found


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (directory symlinks followed, as ImageFolder walks), sorted."""
    out = []
    for top, _dirs, names in os.walk(folder, followlinks=True):
        out += [Path(top) / n for n in names]
    return sorted(out)


def is_image(path: Path) -> bool:
    return path.name.rpartition(".")[-1].lower() in IMG_FORMATS


def _class_folder(rep, split: str, d: Path, classes: list[str], image_check, c: dict) -> list[str]:
    """Report one class folder's problems; its images."""
    files = _files(d)
    images = [str(f) for f in files if is_image(f)]
    for f in files:
        if not is_image(f):
            rep.add("warning", f, "not an image (Ultralytics skips it)", "file that is no image")
    c["other"] += len(files) - len(images)
    if d.name.startswith("."):
        rep.add("warning", d, f"hidden folder {d.name!r} is a class to Ultralytics (every sub-folder of "
                              f"'{split}' is one): remove it")
    if split != "train" and d.name not in classes:
        rep.add("warning", d, f"class folder {d.name!r} is no class of train/: Ultralytics skips its "
                              f"{len(images)} images")
    if not images:
        rep.add("warning", d, f"empty class folder: no {split} images of class {d.name!r}", "empty class folder")
        c["empty"] += 1
    for img in images:
        if not_utf8(img):
            rep.add("fatal", img, NOT_UTF8, "file name not UTF-8")
        elif image_check is not None:
            image_check(rep, img)
    return images


def _check_split(rep, split: str, folder: Path, classes: list[str], image_check) -> list[str]:
    """Report one split folder's problems; its images in the class folders."""
    c = {"images": 0, "classes": 0, "empty": 0, "other": 0, "unused": 0}
    images: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            c["classes"] += 1
            images += _class_folder(rep, split, entry, classes, image_check, c)
        elif is_image(entry):
            rep.add("warning", entry, f"image directly in {split}/, in no class folder: Ultralytics does not use it",
                    "image outside the class folders")
            c["unused"] += 1
    absent = [k for k in classes if not (folder / k).is_dir()]
    if absent and split != "train":
        rep.add("warning", folder, f"no {split} folder for classes {', '.join(absent)}: they are not "
                                   f"{'validated' if split == 'val' else 'tested'}")
    if not images:
        rep.add("fatal", folder, f"'{split}' split: no images in class folders ({split}/<class>/<image>)")
    c["images"] = len(images)
    rep.counts[split] = c
    return images


def check_folder(rep, root: Path, splits, image_check=None) -> dict[str, list[str]]:
    """Report the problems of classification dataset folder ``root`` (see the module docstring); the images of every
    split checked. ``image_check(rep, path)`` reports an unreadable image (None: images are not opened)."""
    found = split_folders(root)
    if "train" not in found:
        rep.add("fatal", root, "no train/ folder: a classification dataset is DIR/train/<class>/<images> and "
                               "DIR/val/<class>/<images> (Ultralytics would split the images it finds into new "
                               "folders inside the dataset itself)")
        return {}
    classes = sorted(d.name for d in found["train"].iterdir() if d.is_dir())
    if not classes:
        rep.add("fatal", found["train"], "no class folders in train/ (train/<class>/<images>)")
        return {}
    if "val" not in found:
        severity, msg = ("warning", "no val/ folder: Ultralytics validates on test/") if "test" in found else (
            "fatal", "no val/ (or validation/, valid/) folder: nothing to validate on")
        rep.add(severity, root, msg)
    return {split: _check_split(rep, split, found[split], classes, image_check)
            for split in splits if split in found}
