"""Dataset check (every problem caught, with its file) and the COCO / VOC importers on small samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from yolo_attn.cli import main
from yolo_attn.datasets import check_data, import_coco, import_voc


def _img(path: Path, w=64, h=48, colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), colour, np.uint8)).save(path)


def _dataset(root: Path, labels: dict[str, str | None], split="train", nc=2) -> Path:
    """images/<split>/<name>.jpg with labels/<split>/<name>.txt (None: no label file); val = one clean image."""
    for name, text in labels.items():
        _img(root / "images" / split / f"{name}.jpg")
        if text is not None:
            p = root / "labels" / split / f"{name}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    _img(root / "images" / "val" / "v0.jpg")
    (root / "labels" / "val").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "val" / "v0.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    y = root / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(root), "train": f"images/{split}", "val": "images/val",
                                 "names": {i: f"c{i}" for i in range(nc)}}))
    return y


def _find(rep, severity, fragment, file_fragment):
    return [p for p in rep.problems if p.severity == severity and fragment in p.message and file_fragment in p.file]


def test_clean_dataset_passes(tmp_path, capsys):
    y = _dataset(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"})
    rep = check_data(y)
    assert rep.ok and not rep.problems, rep.summary()
    assert rep.counts["train"] == {"images": 1, "boxes": 2, "labelled": 1, "empty": 0, "missing": 0, "tiny": 0}
    assert main(["check-data", str(y)]) == 0


def test_every_problem_is_caught_with_its_file(tmp_path):
    y = _dataset(tmp_path, {
        "ok": "0 0.5 0.5 0.2 0.2\n",
        "missing": None,
        "empty": "",
        "outside": "0 0.95 0.5 0.3 0.2\n",  # right edge at 1.10: 10% outside
        "edge": "0 0.5 0.5 1.01 0.2\n",  # 0.5% outside each side: clipped, warning (coordinate 1.01 > 1 -> fatal)
        "slight": "0 0.996 0.5 0.01 0.2\n",  # right edge 1.001: warning only
        "badclass": "2 0.5 0.5 0.2 0.2\n-1 0.5 0.5 0.2 0.2\n0.5 0.5 0.5 0.2 0.2\n",
        "malformed": "0 0.5 0.5 0.2\n0 a 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n",
        "notnorm": "1 32 24 10 10\n",
        "dup": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",
        "zero": "0 0.5 0.5 0 0.2\n",
    })
    (tmp_path / "images" / "train" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "labels" / "train" / "broken.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    rep = check_data(y)
    assert not rep.ok
    assert _find(rep, "warning", "missing label file", "missing.txt")
    assert _find(rep, "warning", "empty label file", "empty.txt")
    assert _find(rep, "fatal", "box outside the image", "outside.txt:1")
    assert _find(rep, "warning", "sticks out", "slight.txt:1")
    assert _find(rep, "fatal", "outside [0, 1]", "edge.txt:1")
    assert len(_find(rep, "fatal", "unknown class id", "badclass.txt")) == 3
    assert _find(rep, "fatal", "expected 'cls xc yc w h'", "malformed.txt:1")
    assert _find(rep, "fatal", "not all numbers", "malformed.txt:2")
    assert _find(rep, "fatal", "NaN", "malformed.txt:3")
    assert _find(rep, "fatal", "not normalised", "notnorm.txt:1")
    assert _find(rep, "warning", "duplicate", "dup.txt:2")
    assert _find(rep, "warning", "zero-size", "zero.txt:1")
    assert _find(rep, "fatal", "unreadable image", "broken.jpg")
    assert not [p for p in rep.problems if "ok.txt" in p.file or "ok.jpg" in p.file]
    assert main(["check-data", str(y)]) == 1


def test_structural_problems(tmp_path):
    assert not check_data(tmp_path / "nope.yaml").ok
    y = _dataset(tmp_path / "d", {"a": None, "b": None})  # a split with no labels at all
    rep = check_data(y)
    assert _find(rep, "fatal", "none of its 2 images has labels", "data.yaml")
    d = yaml.safe_load(y.read_text())
    d["val"] = "images/missing"
    y.write_text(yaml.safe_dump(d))
    assert _find(check_data(y), "fatal", "'val' path not found", "data.yaml")
    (tmp_path / "d" / "images" / "empty").mkdir()
    d["val"] = "images/empty"
    y.write_text(yaml.safe_dump(d))
    assert _find(check_data(y), "fatal", "has no images", "data.yaml")
    d["nc"] = 5  # refused by Ultralytics itself, before any split is read
    y.write_text(yaml.safe_dump(d))
    assert _find(check_data(y), "fatal", "'names' length 2 and 'nc: 5' must match", "data.yaml")


# ------------------------------------------------------------------------------------------------
# importers
# ------------------------------------------------------------------------------------------------
def _labels(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()]).reshape(-1, 5)


def test_import_coco(tmp_path):
    src = tmp_path / "coco"
    for i in range(6):
        _img(src / "imgs" / f"{i:04d}.jpg", w=100, h=50)
    js = {
        "images": [{"id": 10 + i, "file_name": f"{i:04d}.jpg", "width": 100, "height": 50} for i in range(6)]
        + [{"id": 99, "file_name": "absent.jpg", "width": 100, "height": 50}],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],  # non-contiguous, unsorted
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 3, "bbox": [10, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [90, 40, 20, 20], "iscrowd": 0},  # clipped
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # crowd: skipped
            {"id": 4, "image_id": 12, "category_id": 3, "bbox": [5, 5, 0, 10], "iscrowd": 0},  # degenerate
        ],
    }
    (src / "instances.json").write_text(json.dumps(js))
    out = tmp_path / "out"
    assert main(["import-data", "coco", str(src / "instances.json"), str(src / "imgs"), str(out), "--split", "train"]) == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"} and data["nc"] == 2 and Path(data["path"]) == out.resolve()
    lab = _labels(out / "labels" / "train" / "0000.txt")
    np.testing.assert_allclose(lab, [[0, 0.2, 0.2, 0.2, 0.2], [1, 0.95, 0.9, 0.1, 0.2]], atol=1e-6)
    assert (out / "labels" / "train" / "0001.txt").read_text() == ""
    assert len(list((out / "images" / "train").iterdir())) == 6
    rep = import_coco(src / "instances.json", src / "imgs", tmp_path / "auto", val_fraction=0.5)
    assert rep.skipped["crowd"] == 1 and rep.skipped["degenerate box"] == 1 and rep.skipped["missing image file"] == 1
    assert rep.images["train"] + rep.images["val"] == 6 and rep.images["val"] > 0
    assert all("has labels" in p.message for p in check_data(rep.yaml).fatal)  # only the all-background split


def _voc_xml(name, w, h, objs):
    o = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objs
    )
    return f"<annotation><filename>{name}.jpg</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{o}</annotation>"


def test_import_voc(tmp_path):
    voc = tmp_path / "VOC"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    objs = {
        "a": [("person", 0, (1, 1, 50, 25)), ("car", 1, (10, 10, 20, 20))],  # car difficult: skipped
        "b": [("car", 0, (51, 26, 100, 50))],
        "c": [("person", 0, (11, 6, 30, 20))],
    }
    for n, ob in objs.items():
        _img(voc / "JPEGImages" / f"{n}.jpg", w=100, h=50)
        (voc / "Annotations" / f"{n}.xml").write_text(_voc_xml(n, 100, 50, ob))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("c\n")
    out = tmp_path / "out"
    assert main(["import-data", "voc", str(voc), str(out)]) == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "car", 1: "person"} and data["train"] == "images/train" and data["val"] == "images/val"
    # VOC is 1-based inclusive: (1, 1, 50, 25) covers [0, 50] x [0, 25]
    np.testing.assert_allclose(_labels(out / "labels" / "train" / "a.txt"), [[1, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(_labels(out / "labels" / "train" / "b.txt"), [[0, 0.75, 0.75, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(_labels(out / "labels" / "val" / "c.txt"), [[1, 0.2, 0.25, 0.2, 0.3]], atol=1e-6)
    rep = import_voc(voc, tmp_path / "out2", include_difficult=True)
    assert _labels(tmp_path / "out2" / "labels" / "train" / "a.txt").shape == (2, 5) and rep.skipped.get("difficult", 0) == 0
    with pytest.raises(FileNotFoundError):
        import_voc(tmp_path / "nothing", tmp_path / "o3")
