"""Importers on the layouts people have (LabelImg folders, YOLO exports) and on hostile input.

Every layout is built here in tmp_path; nothing is shipped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from yolo_attn._io import OverwriteError
from yolo_attn.cli import main
from conftest import read_label_rows, write_image
from yolo_attn.datasets import check_data, import_coco, import_voc, import_yolo
from yolo_attn.datasets.importers import Item, assign_splits, unique_names, val_count




def _labelimg_xml(filename: str, objs, w=100, h=50, path=None, box_tag=True) -> str:
    """An XML as LabelImg writes it: <folder>, <filename>, <path> of the annotator's computer, <source>, <size>."""
    path = path or rf"C:\Users\annotator\Desktop\dataset\images\{filename}"
    o = ""
    for name, box in objs:
        bb = ("<bndbox>" + "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
              + "</bndbox>") if box_tag and box is not None else ""
        o += f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>{bb}</object>"
    return (f"<annotation><folder>images</folder><filename>{filename}</filename><path>{path}</path>"
            f"<source><database>Unknown</database></source><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size><segmented>0</segmented>{o}</annotation>")


def _all_labels(out: Path) -> dict[str, np.ndarray]:
    return {p.stem: read_label_rows(p) for p in sorted((out / "labels").rglob("*.txt"))}


# ------------------------------------------------------------------------------------------------
# VOC / LabelImg layouts
# ------------------------------------------------------------------------------------------------
def _labelimg_objects():
    return {"dog1": [("dog", (1, 1, 50, 25))], "cat1": [("cat", (51, 26, 100, 50))],
            "dog2": [("dog", (11, 6, 30, 20)), ("cat", (1, 1, 100, 50))], "cat2": [("cat", (21, 11, 40, 30))]}


@pytest.mark.parametrize("layout", ["beside", "siblings", "nested", "images-flag"])
def test_labelimg_folder_with_foreign_paths(tmp_path, layout, capsys):
    """A flat LabelImg export: <path> points to another computer; the image is found from <filename>."""
    root = tmp_path / "pets"
    ann = {"beside": root, "siblings": root / "annotations", "nested": root / "annotations" / "xmls",
           "images-flag": root / "Annotations"}[layout]
    imgs = {"beside": root, "siblings": root / "Images", "nested": root / "images",
            "images-flag": tmp_path / "elsewhere" / "pics"}[layout]
    for stem, objs in _labelimg_objects().items():
        write_image(imgs / f"{stem}.jpg", w=100, h=50)
        (ann.mkdir(parents=True, exist_ok=True), (ann / f"{stem}.xml").write_text(_labelimg_xml(f"{stem}.jpg", objs)))
    (ann / "lost.xml").write_text(_labelimg_xml("lost.jpg", [("dog", (1, 1, 10, 10))]))  # its image is nowhere
    out = tmp_path / "out"
    extra = ["--images", str(imgs)] if layout == "images-flag" else []
    assert main(["import-data", "voc", str(root), str(out), "--val-fraction", "0.25", *extra]) == 0
    text = capsys.readouterr().out
    assert "lost.xml: image not found" in text and "image not found: 1" in text
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"}
    labels = _all_labels(out)
    assert sorted(labels) == ["cat1", "cat2", "dog1", "dog2"]
    assert len(list((out / "images" / "val").iterdir())) == 1  # round(4 x 0.25)
    np.testing.assert_allclose(labels["dog1"], [[1, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(labels["dog2"], [[1, 0.2, 0.25, 0.2, 0.3], [0, 0.5, 0.5, 1.0, 1.0]], atol=1e-6)
    assert "lost.xml: image not found" in (out / "import-report.txt").read_text()


def test_voc_filename_case_and_missing_extension(tmp_path):
    root = tmp_path / "d"
    write_image(root / "JPEGImages" / "Photo_01.JPG", w=100, h=50)
    write_image(root / "JPEGImages" / "photo_02.png", w=100, h=50)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "a.xml").write_text(_labelimg_xml("photo_01.jpg", [("x", (1, 1, 10, 10))]))
    (root / "annotations" / "b.xml").write_text(_labelimg_xml("photo_02", [("x", (1, 1, 10, 10))]))
    rep = import_voc(root, tmp_path / "out")
    assert sum(rep.images.values()) == 2 and rep.boxes == 2 and not rep.problems


def test_voc_refuses_paths_outside_the_images_folder(tmp_path):
    root = tmp_path / "d"
    write_image(tmp_path / "secret.jpg", colour=(1, 2, 3))  # a file outside the dataset that a hostile XML points at
    write_image(root / "ok.jpg")
    (root / "ok.xml").write_text(_labelimg_xml("ok.jpg", [("x", (1, 1, 10, 10))], w=64, h=48))
    (root / "up.xml").write_text(_labelimg_xml("../secret.jpg", [("x", (1, 1, 10, 10))]))
    (root / "abs.xml").write_text(_labelimg_xml(str(tmp_path / "secret.jpg"), [("x", (1, 1, 10, 10))]))
    write_image(root / "b.jpg")
    (root / "b.xml").write_text(_labelimg_xml("b.jpg", [("x", (1, 1, 10, 10))], w=64, h=48))
    rep = import_voc(root, tmp_path / "out")
    assert rep.skipped["path outside the images folder"] == 2
    assert sum(rep.images.values()) == 2
    copied = [np.asarray(Image.open(p))[0, 0].tolist() for p in (tmp_path / "out" / "images").rglob("*.jpg")]
    assert len(copied) == 2 and all(abs(c[0] - 1) > 50 for c in copied)  # the secret image's colour is not among them


def test_voc_malformed_input_is_listed_not_a_traceback(tmp_path):
    root = tmp_path / "d"
    for s in ("a", "b", "c", "d"):
        write_image(root / f"{s}.jpg", w=100, h=50)
    (root / "a.xml").write_text(_labelimg_xml("a.jpg", [("x", None), ("x", (1, 1, 10, 10))]))  # object without a box
    (root / "b.xml").write_text(_labelimg_xml("b.jpg", [("x", ("one", 1, 10, 10))]))  # not a number
    (root / "c.xml").write_text("<annotation><filename>c.jpg</filename>")  # truncated XML
    (root / "d.xml").write_text(_labelimg_xml("d.jpg", [("x", (5, 5, 4, 20))]))  # no width: VOC boxes are 1-based inclusive
    (root / "e.jpg").write_bytes(b"")  # zero-byte image
    (root / "e.xml").write_text(_labelimg_xml("e.jpg", [("x", (1, 1, 10, 10))]))
    rep = import_voc(root, tmp_path / "out")
    assert rep.skipped == {"object without a box": 2, "malformed XML": 1, "degenerate box": 1, "unreadable image": 1}
    assert any("a.xml: object 1" in p for p in rep.problems) and any("e.jpg" in p and "0 bytes" in p for p in rep.problems)
    assert sorted(p.stem for p in (tmp_path / "out" / "images").rglob("*.jpg")) == ["a", "b", "d"]
    assert rep.boxes == 1


def test_voc_without_annotations_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["import-data", "voc", str(tmp_path / "d"), str(tmp_path / "o")]) == 1
    assert "no XML annotations" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# YOLO-format folders without a YAML
# ------------------------------------------------------------------------------------------------
def test_yolo_folder_labelimg_style(tmp_path, capsys):
    """LabelImg's YOLO mode: images and .txt side by side, classes.txt; bad lines listed and left out."""
    src = tmp_path / "export"
    for i in range(10):
        write_image(src / f"im{i}.jpg")
        (src / f"im{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")
    (src / "im0.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n1 0.5 0.5\n")
    (src / "im1.txt").unlink()  # a background image
    (src / "classes.txt").write_text("helmet\nhead\n")
    out = tmp_path / "out"
    assert main(["import-data", "yolo", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "im0.txt:2: unknown class id" in printed and "im0.txt:3: malformed label line" in printed
    assert "1 image(s) have no label file" in printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "helmet", 1: "head"}
    labels = _all_labels(out)
    assert len(labels) == 10 and len(list((out / "images" / "val").iterdir())) == 2
    np.testing.assert_allclose(labels["im0"], [[0, 0.5, 0.5, 0.2, 0.2]])
    assert labels["im1"].shape == (0, 5) and labels["im3"][0, 0] == 1


def test_yolo_folder_split_folders_and_names(tmp_path):
    """Roboflow-style train/valid/test folders keep their splits; --names replaces a missing classes.txt."""
    src = tmp_path / "rf"
    for split, n in (("train", 4), ("valid", 2), ("test", 1)):
        for i in range(n):
            write_image(src / split / "images" / f"x{i}.jpg")
            (src / split / "labels").mkdir(parents=True, exist_ok=True)
            (src / split / "labels" / f"x{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(FileNotFoundError, match="classes.txt"):
        import_yolo(src, tmp_path / "o1")
    rep = import_yolo(src, tmp_path / "o2", names=["ball"])
    assert rep.images == {"train": 4, "val": 2, "test": 1} and rep.skipped == {}
    assert yaml.safe_load(rep.yaml.read_text())["test"] == "images/test"
    names = sorted(p.name for p in (tmp_path / "o2" / "images" / "train").iterdir())
    assert names == ["train_images_x0.jpg", "train_images_x1.jpg", "x2.jpg", "x3.jpg"]  # x0, x1 also in valid/
    assert check_data(rep.yaml).ok


# ------------------------------------------------------------------------------------------------
# COCO: collisions, traversal, malformed entries, inputs never touched
# ------------------------------------------------------------------------------------------------
def _coco(src: Path, images: list[dict], annotations: list[dict], cats=None) -> Path:
    js = {"images": images, "annotations": annotations, "categories": cats or [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    p = src / "instances.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(js))
    return p


def test_coco_name_collisions_keep_every_image_and_box(tmp_path):
    src = tmp_path / "coco"
    write_image(src / "imgs" / "a" / "x.jpg", w=100, h=50)
    write_image(src / "imgs" / "b" / "x.jpg", w=200, h=100)
    write_image(src / "imgs" / "c" / "x.png", w=100, h=100)
    ims = [{"id": 1, "file_name": "a/x.jpg", "width": 100, "height": 50},
           {"id": 2, "file_name": "b/x.jpg", "width": 200, "height": 100},
           {"id": 3, "file_name": "c/x.png", "width": 100, "height": 100}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 25]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 50, 25]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [100, 50, 100, 50]},
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10]}]
    rep = import_coco(_coco(src, ims, anns), src / "imgs", tmp_path / "out", split="train")
    assert rep.images["train"] == 3 and rep.boxes == 4
    labels = _all_labels(tmp_path / "out")
    np.testing.assert_allclose(labels["a_x"], [[0, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(labels["b_x"], [[1, 0.125, 0.125, 0.25, 0.25], [0, 0.75, 0.75, 0.5, 0.5]], atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir()) == ["a_x.jpg", "b_x.jpg", "c_x.png"]
    assert any("VALIDATION = TRAINING" in w for w in rep.warnings)  # --split train: val is the training images


def test_unique_names():
    assert unique_names(["x.jpg", "y.jpg"]) == ["x.jpg", "y.jpg"]
    assert unique_names(["a/x.jpg", "b/x.JPG", "a_x.png"]) == ["a_x.jpg", "b_x.JPG", "a_x-2.png"]


def test_coco_refuses_paths_outside_the_images_folder(tmp_path):
    src = tmp_path / "coco"
    write_image(src / "imgs" / "ok.jpg")
    write_image(tmp_path / "passwd.jpg")
    ims = [{"id": 1, "file_name": "ok.jpg"}, {"id": 2, "file_name": "../../passwd.jpg"},
           {"id": 3, "file_name": str(tmp_path / "passwd.jpg")}, {"id": 4, "file_name": "sub/../../passwd.jpg"}]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in (1, 2, 3, 4)]
    rep = import_coco(_coco(src, ims, anns), src / "imgs", tmp_path / "out", split="train")
    assert rep.skipped["path outside the images folder"] == 3 and rep.images["train"] == 1
    assert [p.name for p in (tmp_path / "out" / "images" / "train").iterdir()] == ["ok.jpg"]


def test_coco_malformed_entries_are_listed_not_a_traceback(tmp_path):
    src = tmp_path / "coco"
    for i in range(3):
        write_image(src / "imgs" / f"{i}.jpg", w=100, h=50)
    ims = [{"id": 0, "file_name": "0.jpg", "width": "100", "height": "50"},  # sizes as strings
           {"id": 1, "file_name": "1.jpg", "width": "wide", "height": None},  # unusable sizes: read from the image
           {"id": 2}, {"file_name": "2.jpg"}]  # no file_name / no id
    anns = [{"id": 1, "image_id": 0, "bbox": [0, 0, 50, 25]},  # no category_id
            {"id": 2, "image_id": 0, "category_id": 1, "bbox": [0, 0, 50]},  # 3 numbers
            {"id": 3, "image_id": 0, "category_id": 1, "bbox": ["0", "0", "50", "25"]},
            {"id": 4, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5]},  # unknown category
            {"id": 5, "image_id": 1, "category_id": 2, "bbox": [50, 25, 50, 25]}]
    rep = import_coco(_coco(src, ims, anns), src / "imgs", tmp_path / "out", split="val")
    assert rep.skipped == {"malformed annotation": 2, "unknown category": 1, "malformed image entry": 2}
    assert any("annotations[0] (id 1)" in p and "no category_id" in p for p in rep.problems)
    labels = _all_labels(tmp_path / "out")
    np.testing.assert_allclose(labels["0"], [[0, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(labels["1"], [[1, 0.75, 0.75, 0.5, 0.5]], atol=1e-6)
    with pytest.raises(ValueError, match=r"categories\[0\] has no integer 'id'"):
        import_coco(_coco(src, ims, anns, cats=[{"name": "a"}]), src / "imgs", tmp_path / "out2")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_coco_never_deletes_or_overwrites_its_input(tmp_path, capsys):
    """The images folder lies inside the output layout (OUT/images/train)."""
    out = tmp_path / "ds"
    for i in range(4):
        write_image(out / "images" / "train" / f"{i}.jpg")
    ims = [{"id": i, "file_name": f"{i}.jpg"} for i in range(4)]
    js = _coco(tmp_path / "ann", ims, [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(4)])
    before = _snapshot(out)
    for force in ([], ["--force"]):
        assert main(["import-data", "coco", str(js), str(out / "images" / "train"), str(out), "--split", "train", *force]) == 1
        assert "holds the input" in capsys.readouterr().err
        assert _snapshot(out) == before


def test_import_into_a_non_empty_folder_needs_force(tmp_path, capsys):
    """Old labels must never be read against a new class list."""
    src = tmp_path / "coco"
    for i in range(4):
        write_image(src / "imgs" / f"{i}.jpg")
    js = _coco(src, [{"id": i, "file_name": f"{i}.jpg"} for i in range(4)],
               [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(4)])
    out = tmp_path / "out"
    (out / "labels" / "train").mkdir(parents=True)
    (out / "labels" / "train" / "stale.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    args = ["import-data", "coco", str(js), str(src / "imgs"), str(out)]
    assert main(args) == 1
    assert "not empty; pass --force" in capsys.readouterr().err
    assert (out / "labels" / "train" / "stale.txt").is_file()
    with pytest.raises(OverwriteError):
        import_coco(js, src / "imgs", out)
    assert main(args + ["--force"]) == 0
    assert not (out / "labels" / "train" / "stale.txt").exists()
    assert sum(1 for _ in (out / "images").rglob("*.jpg")) == 4 and len(_snapshot(src)) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no build or old folder left


# ------------------------------------------------------------------------------------------------
# splits
# ------------------------------------------------------------------------------------------------
def _items(classes: list[int | None]) -> list[Item]:
    return [Item(Path(f"{i}.jpg"), f"img{i:04d}.jpg", [] if c is None else [f"{c} 0.5 0.5 0.1 0.1"])
            for i, c in enumerate(classes)]


def test_split_is_exact_deterministic_and_stratified():
    classes = [0] * 180 + [1] * 20  # imbalanced
    items = _items(classes)
    assign_splits(items, 0.2)
    val = [it for it in items if it.split == "val"]
    assert len(val) == 40  # round(200 x 0.2); the hash split gave 50 before
    assert Counter(it.classes().pop() for it in val) == {0: 36, 1: 4}
    again = _items(classes)[::-1]  # input order does not matter
    assign_splits(again, 0.2)
    assert sorted(it.rel for it in again if it.split == "val") == sorted(it.rel for it in val)
    for n, f in [(7, 0.3), (10, 0.25), (1000, 0.1), (3, 0.5), (101, 0.5)]:
        items = _items([i % 3 if i % 5 else None for i in range(n)])
        assign_splits(items, f)
        assert sum(it.split == "val" for it in items) == int(n * f + 0.5) == val_count(n, f)
    assert val_count(5, 0.01) == 1 and val_count(5, 0.99) == 4  # neither split is ever empty


def test_split_keeps_a_rare_class_in_validation():
    classes = [0] * 95 + [1] * 5
    items = _items(classes)
    assign_splits(items, 0.2)
    assert sum(it.split == "val" and it.classes() == {1} for it in items) == 1


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.2", "nan", "x"])
def test_val_fraction_is_validated(tmp_path, fraction, capsys):
    (tmp_path / "d").mkdir()
    with pytest.raises(SystemExit):
        main(["import-data", "yolo", str(tmp_path / "d"), str(tmp_path / "o"), "--val-fraction", fraction])
    assert "--val-fraction" in capsys.readouterr().err
    with pytest.raises(ValueError, match="between 0 and 1"):
        import_yolo(tmp_path / "d", tmp_path / "o", names=["a"], val_fraction=float(fraction) if fraction != "x" else 2)


def test_build_folder_of_a_killed_import_is_removed_on_rerun(tmp_path, capsys):
    """kill -9 during an import leaves .OUT.importing-PID beside OUT; the next import removes it and says so,
    and leaves the build folder of an import that still runs."""
    import subprocess
    import sys

    src = tmp_path / "export"
    for i in range(4):
        write_image(src / f"im{i}.jpg")
        (src / f"im{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (src / "classes.txt").write_text("a\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "out"
    stale = tmp_path / f".out.importing-{gone.pid}"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "half.jpg").write_bytes(b"half")
    running = tmp_path / f".out.importing-{os.getppid()}"  # a live process: not ours to remove
    running.mkdir()
    assert main(["import-data", "yolo", str(src), str(out), "--no-check"]) == 0
    printed = capsys.readouterr().out
    assert not stale.exists() and running.is_dir() and (out / "data.yaml").is_file()
    assert f"removed {stale}, left by an interrupted import (process {gone.pid} no longer runs)" in printed
