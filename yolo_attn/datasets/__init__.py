"""Datasets: import (YOLO exports, COCO JSON, Pascal VOC / LabelImg XML, LabelMe JSON, CVAT XML), check, YAML
helpers, the shapes dataset.

* :mod:`.yaml` -- reading a dataset YAML, the one resolver (:func:`resolve_dataset`: Ultralytics' rules, a
  checked copy with absolute paths and no ``download:``), class names, :func:`dataset_yaml` (that copy);
* :mod:`.files` -- the files Ultralytics reads: split listing, label paths, image sizes, label rows;
* :mod:`.check` -- :func:`check_data` (``yolo-attn check-data``);
* :mod:`.importers` (shared: splits, unique names, writing, skips), one module per source layout:
  :mod:`.yolo_folder`, :mod:`.coco`, :mod:`.voc`, :mod:`.labelme`, :mod:`.cvat`
  -- ``yolo-attn import-data yolo|coco|voc|labelme|cvat``;
* :mod:`.shapes` -- the synthetic shapes dataset (``yolo-attn make-shapes``); :func:`shapes_yaml` is the
  copy shipped in the repository's ``data/shapes`` (generated into a cache when ``data/`` is absent);
  :func:`shapes_data` the dataset of any task (generated into the cache);
* :mod:`.tasks` -- what differs per Ultralytics task (label rows, YAML keys, synthetic labels, the classification
  folder layout), one module per task behind :class:`~.tasks.TaskData`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .check import CheckReport, DataCheckFailed, Problem, check_data, checked_dataset, require_dataset
from .coco import import_coco, import_coco_export
from .cvat import import_cvat
from .files import IMG_FORMATS, ListingError, image_files, image_size, label_path, read_yolo_labels, split_images
from .importers import ImportReport
from .labelme import import_labelme
from .shapes import CLASSES, GENERATOR_VERSION, ShapesConfig, render, verify, write_dataset
from .tasks import TASK_NAMES, task_data
from .voc import import_voc
from .yaml import Dataset, DatasetError, cache_dir, class_names, dataset_yaml, load_data_yaml, resolve_dataset
from .yolo_folder import import_yolo

REPO_DATA = Path(__file__).resolve().parents[2] / "data"  # the repository's data/ (editable installs, checkouts)
SHAPES_DIR = REPO_DATA / "shapes"
SHAPES_YAML = REPO_DATA / "shapes.yaml"

__all__ = [
    "CLASSES",
    "IMG_FORMATS",
    "SHAPES_DIR",
    "SHAPES_YAML",
    "TASK_NAMES",
    "CheckReport",
    "DataCheckFailed",
    "Dataset",
    "DatasetError",
    "ImportReport",
    "ListingError",
    "Problem",
    "ShapesConfig",
    "check_data",
    "checked_dataset",
    "class_names",
    "dataset_yaml",
    "image_files",
    "image_size",
    "import_coco",
    "import_coco_export",
    "import_cvat",
    "import_labelme",
    "import_voc",
    "import_yolo",
    "label_path",
    "load_data_yaml",
    "read_yolo_labels",
    "render",
    "require_dataset",
    "resolve_dataset",
    "shapes_data",
    "shapes_yaml",
    "split_images",
    "task_data",
    "verify",
    "write_dataset",
]


def shapes_yaml() -> Path:
    """Absolute-path dataset YAML of the shipped shapes dataset (generated into a cache if ``data/`` is absent)."""
    if SHAPES_YAML.is_file() and (SHAPES_DIR / "manifest.json").is_file():
        return dataset_yaml(SHAPES_YAML)
    cfg = ShapesConfig()
    out = cache_dir() / f"shapes-seed{cfg.seed}-v{GENERATOR_VERSION}"
    yaml_file = out.with_name(out.name + ".yaml")
    if not yaml_file.is_file():
        write_dataset(out, cfg, yaml_file)
    return dataset_yaml(yaml_file)


def _look_tag(t) -> str:
    """A cache-name suffix for a task whose synthetic images are drawn otherwise than detection's (classify)."""
    from .shapes import DETECTION_LOOK

    if t.look == DETECTION_LOOK:
        return ""
    return "-" + "-".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in asdict(t.look).items())


def shapes_data(task: str = "detect") -> Path:
    """The synthetic shapes dataset of ``task`` with the default settings: for detection :func:`shapes_yaml`; for
    segment, pose and obb the absolute-path copy of its dataset YAML; for classify its folder (of class folders).
    Generated once into the cache (``<cache>/shapes-<task>-seed0-v<version>``)."""
    t = task_data(task)
    if t.name == "detect":
        return shapes_yaml()
    cfg = t.default_config()  # classify: its own sizes and look (a new cache folder: not the earlier draw)
    out = cache_dir() / f"shapes-{t.name}-seed{cfg.seed}-v{GENERATOR_VERSION}{_look_tag(t)}"
    done = out if t.folder_layout else out.with_name(out.name + ".yaml")
    if not (out / "manifest.json").is_file() or not done.exists():
        write_dataset(out, cfg, task=t)
    return out if t.folder_layout else dataset_yaml(done)
