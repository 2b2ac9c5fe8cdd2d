"""Datasets as Ultralytics reads them (used by yolo_attn/datasets/ and its tests)."""

from __future__ import annotations

from .fonts import install_offline_font

# Ultralytics replaces PIL.Image.open with a version that pip-installs a HEIF plugin when Pillow cannot identify a
# file, and keeps Pillow's own function as ``ultralytics.utils.patches._image_open``. Its split listing is the
# method ``BaseDataset.get_img_files``; the tests compare yolo_attn's own listing (datasets/files.image_files)
# with it.


def pil_open():
    """Pillow's ``Image.open`` as it was before Ultralytics patched it (no pip install on a broken image)."""
    from PIL import Image
    from ultralytics.utils import patches

    return getattr(patches, "_image_open", Image.open)


def ultralytics_image_files(img_path) -> list[str]:
    """The image files Ultralytics' loader lists for a split entry (a folder, a .txt list, or a list of them)."""
    from types import SimpleNamespace
    from unittest import mock

    from ultralytics.data import base

    stand_in = SimpleNamespace(prefix="", fraction=1.0)  # the two attributes get_img_files reads
    with mock.patch.object(base, "check_file_speeds", lambda *a, **k: None):  # timing only; it also draws from random
        return base.BaseDataset.get_img_files(stand_in, img_path)


def datasets_dir():
    """Ultralytics' ``DATASETS_DIR`` (from its settings), where it looks for a relative ``path:`` not found in the cwd."""
    from pathlib import Path

    from ultralytics.data import utils

    return Path(utils.DATASETS_DIR)


def find_packaged_file(name: str) -> str | None:
    """The file Ultralytics finds for a bare name such as ``coco8.yaml`` (searched in its package), never downloaded."""
    from ultralytics.utils.checks import check_file

    found = check_file(str(name), download=False, hard=False)
    return str(found) if found else None


def check_dataset_yaml(yaml_path, autodownload: bool = False) -> dict:
    """Ultralytics' own ``check_det_dataset`` verdict on a dataset YAML (the mapping it trains with).

    yolo_attn calls it with ``autodownload=False`` on its sanitised copy (no ``download:`` key), so nothing
    in the YAML runs; ``autodownload=True`` only for ``yolo-attn train --trust``. Ultralytics also fetches the
    plot font for the class names here; a check draws nothing, so that lookup (a matplotlib font scan, about a
    second the first time in a process) is skipped: the trainer's own dataset check still resolves the font
    offline for its plots.
    """
    from ultralytics.data import utils

    install_offline_font()
    font_lookup = utils.check_font
    utils.check_font = _no_font_needed
    try:
        return utils.check_det_dataset(str(yaml_path), autodownload=autodownload)
    finally:
        utils.check_font = font_lookup


def _no_font_needed(font: str = "Arial.ttf"):
    return None
