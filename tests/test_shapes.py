"""The synthetic shapes dataset: determinism, label validity, the committed copy, the CLI and YAML helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from yolo_attn.cli import main
from yolo_attn.datasets import SHAPES_DIR, SHAPES_YAML, dataset_yaml, shapes_yaml
from yolo_attn.datasets.shapes import CLASSES, ShapesConfig, read_config, render, verify, write_dataset

SMALL = ShapesConfig(seed=3, n_train=6, n_val=3, imgsz=64, min_size=10, max_size=30)


def test_render_is_deterministic_and_seed_dependent():
    a_img, a_lab = render(ShapesConfig(), "train", 5)
    b_img, b_lab = render(ShapesConfig(), "train", 5)
    assert a_img.dtype == np.uint8 and a_img.shape == (128, 128, 3)
    assert np.array_equal(a_img, b_img) and a_lab == b_lab
    c_img, _ = render(ShapesConfig(seed=1), "train", 5)
    d_img, _ = render(ShapesConfig(), "val", 5)
    assert not np.array_equal(a_img, c_img) and not np.array_equal(a_img, d_img)
    # an image does not depend on how many images are generated
    e_img, e_lab = render(ShapesConfig(n_train=10), "train", 5)
    assert np.array_equal(a_img, e_img) and a_lab == e_lab


def test_labels_are_valid_boxes_of_every_class():
    cfg = ShapesConfig()
    seen = set()
    for i in range(40):
        img, labels = render(cfg, "train", i)
        assert cfg.min_objects <= len(labels) <= cfg.max_objects
        for c, x, y, w, h in labels:
            seen.add(c)
            assert 0 <= c < len(CLASSES)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= x - w / 2 and x + w / 2 <= 1 and 0 <= y - h / 2 and y + h / 2 <= 1
            assert w * cfg.imgsz >= cfg.min_size * 0.8 - 1  # smallest: an unrotated square, 0.85 * size
    assert seen == set(range(len(CLASSES)))


def test_shapes_differ_from_background():
    """Each box holds high-contrast pixels (the shape is actually drawn)."""
    img, labels = render(ShapesConfig(noise=0, clutter=0), "val", 2)
    n = img.shape[0]
    for _, x, y, w, h in labels:
        assert np.ptp(img[int((y - h / 2) * n) : int((y + h / 2) * n), int((x - w / 2) * n) : int((x + w / 2) * n)]) > 30


@pytest.mark.parametrize("bad", [dict(n_train=0), dict(min_size=40, max_size=20), dict(max_size=200), dict(quality=0)])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="ShapesConfig: invalid"):
        ShapesConfig(**bad)


def test_shape_too_large_to_turn_inside_the_image_is_a_clear_error():
    """max_size <= imgsz - 4 passes the config check, but a square turned 45 degrees is 1.2x its size: that draw is
    refused with the sizes named (it used to fail with a numpy broadcast error deep in the drawing)."""
    from yolo_attn.datasets.shapes import render_shapes

    cfg = ShapesConfig(imgsz=64, min_size=56, max_size=60, min_objects=1, max_objects=1)
    render_shapes(cfg, "train", 0, cls=0)  # a circle of that size fits
    with pytest.raises(ValueError, match=r"max_size=60 is too large for imgsz=64: a square of size .* needs"):
        render_shapes(cfg, "train", 0, cls=1)


def test_committed_dataset_equals_a_fresh_generation():
    """data/shapes and data/shapes.yaml are exactly what `yolo-attn make-shapes --out data/shapes --seed 0` writes."""
    assert (SHAPES_DIR / "manifest.json").is_file(), "data/shapes is missing; run: yolo-attn make-shapes --out data/shapes"
    assert read_config(SHAPES_DIR) == ShapesConfig(), "data/shapes was not generated with the default settings"
    problems = verify(SHAPES_DIR, SHAPES_YAML)
    errors = [p for p in problems if not p.startswith("note:")]
    assert not errors, "\n".join(errors[:20])
    n_img = len(list((SHAPES_DIR / "images" / "train").glob("*.jpg")))
    assert n_img == ShapesConfig().n_train
    size = sum(p.stat().st_size for p in SHAPES_DIR.rglob("*") if p.suffix in (".jpg", ".txt", ".json"))
    assert size < 5e6, f"shipped dataset grew to {size / 1e6:.1f} MB"


def test_make_shapes_cli_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "toy"
    argv = ["make-shapes", "--out", str(out), "--seed", "3", "--n-train", "6", "--n-val", "3", "--imgsz", "64",
            "--min-size", "10", "--max-size", "30"]
    assert main(argv) == 0
    assert read_config(out) == SMALL
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 6
    assert len(list((out / "labels" / "val").glob("*.txt"))) == 3
    data = yaml.safe_load((tmp_path / "toy.yaml").read_text())
    assert data["train"] == "toy/images/train" and data["names"] == dict(enumerate(CLASSES)) and "path" not in data
    assert main(["make-shapes", "--out", str(out), "--check"]) == 0

    # a second generation is byte-identical
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_dataset(out, SMALL)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    # tampering is detected
    label = out / "labels" / "train" / "000001.txt"
    label.write_text(label.read_text().replace("0.", "0.1", 1))
    (out / "images" / "val" / "000099.jpg").write_bytes(b"")
    capsys.readouterr()
    assert main(["make-shapes", "--out", str(out), "--check"]) == 1
    report = capsys.readouterr().out
    assert "labels/train/000001.txt: file on disk differs" in report and "000099.jpg: extra file" in report


def test_make_shapes_bad_option_is_an_error(tmp_path, capsys):
    assert main(["make-shapes", "--out", str(tmp_path / "x"), "--n-train", "0"]) == 1
    assert "n_train=0" in capsys.readouterr().err


def test_write_dataset_removes_stale_files(tmp_path):
    write_dataset(tmp_path / "d", SMALL)
    smaller = ShapesConfig(**{**SMALL.__dict__, "n_train": 4})
    write_dataset(tmp_path / "d", smaller)
    assert len(list((tmp_path / "d" / "images" / "train").glob("*.jpg"))) == 4
    assert not verify(tmp_path / "d")


def test_dataset_yaml_is_absolute_and_works_from_any_cwd(tmp_path, monkeypatch):
    from ultralytics.data.utils import check_det_dataset

    copy = dataset_yaml(SHAPES_YAML, out_dir=tmp_path)
    data = yaml.safe_load(copy.read_text())
    assert Path(data["path"]).is_absolute() and Path(data["path"]) == SHAPES_YAML.parent
    assert dataset_yaml(SHAPES_YAML, out_dir=tmp_path) == copy  # same content, same file
    monkeypatch.chdir(tmp_path)
    for yml in (copy, SHAPES_YAML):  # the committed YAML (no 'path:') also resolves from elsewhere
        info = check_det_dataset(str(yml))
        assert Path(info["train"]) == SHAPES_DIR / "images" / "train"
        assert info["nc"] == 4 and info["names"][3] == "cross"
    import yolo_attn.datasets as datasets  # the session's copy of the shipped data (tests/conftest.py)

    assert Path(yaml.safe_load(shapes_yaml().read_text())["path"]) == datasets.SHAPES_YAML.parent


def test_dataset_yaml_resolves_relative_path_key(tmp_path):
    (tmp_path / "sub").mkdir()
    src = tmp_path / "sub" / "ds.yaml"
    src.write_text("path: ../root\ntrain: images/train\nval: images/val\nnames: {0: a}\n")
    (tmp_path / "root").mkdir()
    data = yaml.safe_load(dataset_yaml(src, out_dir=tmp_path).read_text())
    assert data["path"] == str((tmp_path / "root").resolve())
    with pytest.raises(FileNotFoundError):
        dataset_yaml(tmp_path / "missing.yaml")


def test_manifest_records_pixels_and_files():
    manifest = json.loads((SHAPES_DIR / "manifest.json").read_text())
    entry = manifest["files"]["images/train/000000.jpg"]
    img, _ = render(ShapesConfig(), "train", 0)
    import hashlib

    assert entry["pixels_sha256"] == hashlib.sha256(img.tobytes()).hexdigest()
    assert os.path.getsize(SHAPES_DIR / "images" / "train" / "000000.jpg") > 0
