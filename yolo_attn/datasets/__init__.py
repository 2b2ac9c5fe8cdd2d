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
  copy shipped in the repository's ``data/shapes`` (generated into a cache when ``data/`` is absent).
"""

from __future__ import annotations

from pathlib import Path

from .check import CheckReport, DataCheckFailed, Problem, check_data, checked_dataset, require_dataset
from .coco import import_coco, import_coco_export
from .cvat import import_cvat
from .files import IMG_FORMATS, ListingError, image_files, image_size, label_path, read_yolo_labels, split_images
from .importers import ImportReport
from .labelme import import_labelme
from .shapes import CLASSES, GENERATOR_VERSION, ShapesConfig, render, verify, write_dataset
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
    "shapes_yaml",
    "split_images",
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
