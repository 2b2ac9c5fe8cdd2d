"""import-data on what people export: Roboflow YOLO and COCO folders, LabelMe JSON, CVAT XML, --test-fraction.

Every export is written here in tmp_path, laid out as the tool writes it; names with spaces and brackets
are used throughout.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from yolo_attn.cli import main
from conftest import read_label_rows, write_image
from yolo_attn.datasets import check_data, import_coco_export, import_cvat, import_labelme, import_yolo
from yolo_attn.datasets.importers import Item, assign_splits

ODD = "my photo (1) [copy]"  # spaces and brackets (glob's special characters)




def _files(out: Path, split: str) -> list[str]:
    return sorted(p.name for p in (out / "images" / split).iterdir())


# ------------------------------------------------------------------------------------------------ yolo
def _roboflow_yolo(root: Path, counts=(("train", 6), ("valid", 3), ("test", 2))) -> Path:
    """Roboflow 'YOLOv5 PyTorch': data.yaml (train: ../train/images, ...), split folders with images/ labels/."""
    for split, n in counts:
        for i in range(n):
            stem = f"{ODD} {split}{i}" if i == 0 else f"{split}{i}_jpg.rf.{i:032x}"
            write_image(root / split / "images" / f"{stem}.jpg")
            (root / split / "labels").mkdir(parents=True, exist_ok=True)
            (root / split / "labels" / f"{stem}.txt").write_text(f"{i % 3} 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
                                    "nc: 3\nnames: ['fish', 'jelly fish', 'shark']\n")
    return root


def test_yolo_roboflow_export_keeps_its_splits_and_yaml_names(tmp_path, capsys):
    src = _roboflow_yolo(tmp_path / "rf export")
    out = tmp_path / "out [v1]"
    assert main(["import-data", "yolo", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"3 class names from {src / 'data.yaml'}" in printed and "splits from the export's folders" in printed
    assert "images train: 6, val: 3, test: 2" in printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "fish", 1: "jelly fish", 2: "shark"}
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    assert f"{ODD} test0.jpg" in _files(out, "test") and len(_files(out, "val")) == 3
    np.testing.assert_allclose(read_label_rows(out / "labels" / "test" / f"{ODD} test0.txt"), [[0, 0.5, 0.5, 0.2, 0.2]])
    rep = check_data(out / "data.yaml")
    assert rep.ok and not [p for p in rep.problems if "test" in str(p) and "not" in str(p)]


def test_yolo_names_precedence_and_bad_yaml_names(tmp_path):
    src = _roboflow_yolo(tmp_path / "rf")
    (src / "classes.txt").write_text("a\nb\nc\n")
    assert import_yolo(src, tmp_path / "o1", names=["x", "y", "z"]).names == {0: "x", 1: "y", 2: "z"}
    assert import_yolo(src, tmp_path / "o2").names[1] == "jelly fish"  # data.yaml before classes.txt
    (src / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 4\nnames: [a, b, c]\n")
    with pytest.raises(ValueError, match=r"data.yaml: nc: 4 but 3 names"):
        import_yolo(src, tmp_path / "o3")


def test_yolo_test_fraction_is_refused_beside_the_exports_own_test_split(tmp_path):
    src = _roboflow_yolo(tmp_path / "rf")
    with pytest.raises(ValueError, match="has its own test split"):
        import_yolo(src, tmp_path / "o", test_fraction=0.2)


def test_yolo_test_fraction_carves_test_out_of_the_exports_training_images(tmp_path):
    src = _roboflow_yolo(tmp_path / "rf", counts=(("train", 10), ("valid", 3)))
    rep = import_yolo(src, tmp_path / "o", test_fraction=0.3)
    assert rep.images == {"train": 7, "val": 3, "test": 3}  # round(10 x 0.3) of train; val as published
    val = {n.split("_")[0] for n in _files(tmp_path / "o", "val")}
    assert val <= {"valid1", "valid2", f"{ODD} valid0.jpg".split("_")[0]}


# ------------------------------------------------------------------------------------------------ --test-fraction
def _items(classes) -> list[Item]:
    return [Item(Path(f"{i}.jpg"), f"img{i:04d}.jpg", [] if c is None else [f"{c} 0.5 0.5 0.1 0.1"])
            for i, c in enumerate(classes)]


def test_test_fraction_is_exact_stratified_and_deterministic():
    classes = [0] * 160 + [1] * 30 + [2] * 10
    items = _items(classes)
    assign_splits(items, 0.2, 0.1)
    by = Counter(it.split for it in items)
    assert by == {"train": 140, "val": 40, "test": 20}  # round(200 x 0.1) test, round(200 x 0.2) val
    test_classes = Counter(it.classes().pop() for it in items if it.split == "test")
    assert test_classes == {0: 16, 1: 3, 2: 1}
    again = _items(classes)[::-1]
    assign_splits(again, 0.2, 0.1)
    assert sorted(it.rel for it in again if it.split == "test") == sorted(it.rel for it in items if it.split == "test")
    plain = _items(classes)  # without a test fraction the validation split is what it was
    assign_splits(plain, 0.2)
    assert Counter(it.split for it in plain) == {"train": 160, "val": 40}
    for n, v, t in [(7, 0.3, 0.2), (10, 0.25, 0.25), (101, 0.1, 0.15), (3, 0.3, 0.3)]:
        items = _items([i % 3 if i % 5 else None for i in range(n)])
        assign_splits(items, v, t)
        c = Counter(it.split for it in items)
        assert c["test"] == min(max(int(n * t + 0.5), 1), n - 2) and c["train"] >= 1 and c["val"] >= 1


def test_test_fraction_on_the_command_line(tmp_path, capsys):
    src = tmp_path / "flat"
    for i in range(20):
        write_image(src / f"{ODD} {i}.jpg")
        (src / f"{ODD} {i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")
    (src / "classes.txt").write_text("a\nb\n")
    out = tmp_path / "o"
    assert main(["import-data", "yolo", str(src), str(out), "--val-fraction", "0.2", "--test-fraction", "0.15"]) == 0
    assert "images train: 13, val: 4, test: 3" in capsys.readouterr().out
    assert yaml.safe_load((out / "data.yaml").read_text())["test"] == "images/test"
    with pytest.raises(SystemExit):
        main(["import-data", "yolo", str(src), str(tmp_path / "o2"), "--test-fraction", "1.5"])
    with pytest.raises(ValueError, match="must be below 1"):
        import_yolo(src, tmp_path / "o3", val_fraction=0.5, test_fraction=0.5)


# ------------------------------------------------------------------------------------------------ coco export
def _coco_split(folder: Path, names: list[str], start_id: int, cats) -> None:
    ims, anns = [], []
    for k, name in enumerate(names):
        write_image(folder / name, w=100, h=50)
        ims.append({"id": k, "file_name": name, "width": 100, "height": 50})
        anns.append({"id": k, "image_id": k, "category_id": 1 + k % 2, "bbox": [10, 5, 50, 25], "area": 1250, "iscrowd": 0})
    (folder / "_annotations.coco.json").write_text(json.dumps({"images": ims, "annotations": anns, "categories": cats}))


ROBOFLOW_CATS = [{"id": 0, "name": "creatures", "supercategory": "none"},
                 {"id": 1, "name": "fish", "supercategory": "creatures"},
                 {"id": 2, "name": "sea star", "supercategory": "creatures"}]


def test_coco_export_folder_keeps_splits_and_drops_the_umbrella_category(tmp_path, capsys):
    root = tmp_path / "coco export"
    _coco_split(root / "train", [f"{ODD}.jpg"] + [f"t{i}.jpg" for i in range(5)], 0, ROBOFLOW_CATS)
    _coco_split(root / "valid", [f"{ODD}.jpg", "v1.jpg"], 0, ROBOFLOW_CATS)  # same name as in train
    _coco_split(root / "test", ["x0.jpg"], 0, ROBOFLOW_CATS)
    out = tmp_path / "out"
    assert main(["import-data", "coco", str(root), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "category 0 ('creatures') has no annotation and is the supercategory" in printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "fish", 1: "sea star"} and data["test"] == "images/test"
    assert len(_files(out, "train")) == 6 and len(_files(out, "val")) == 2 and _files(out, "test") == ["x0.jpg"]
    assert "train_my photo (1) [copy].jpg" in _files(out, "train")  # the name collision with valid/ is resolved
    np.testing.assert_allclose(read_label_rows(out / "labels" / "val" / "v1.txt"), [[1, 0.35, 0.35, 0.5, 0.5]], atol=1e-6)
    assert check_data(out / "data.yaml").ok


def test_coco_export_folder_errors_name_the_file(tmp_path, capsys):
    root = tmp_path / "exp"
    _coco_split(root / "train", ["a.jpg", "b.jpg"], 0, ROBOFLOW_CATS)
    _coco_split(root / "valid", ["c.jpg"], 0, [{"id": 1, "name": "other"}, {"id": 2, "name": "sea star"}])
    with pytest.raises(ValueError, match=r"valid/_annotations.coco.json: category id 1 is 'other'"):
        import_coco_export(root, tmp_path / "o")
    (root / "valid" / "_annotations.coco.json").unlink()
    _coco_split(root / "misc", ["d.jpg"], 0, ROBOFLOW_CATS)
    with pytest.raises(ValueError, match="names no split"):
        import_coco_export(root, tmp_path / "o")
    assert main(["import-data", "coco", str(root), str(tmp_path / "o"), str(tmp_path / "x")]) == 1
    assert "takes EXPORT OUT" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ labelme
def _labelme(path: Path, image_path: str | None, shapes, w=100, h=50, data: bytes | None = None) -> Path:
    js = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
          "imageData": base64.b64encode(data).decode() if data else None, "imageHeight": h, "imageWidth": w}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(js))
    return path


def _shape(label, points, kind="rectangle"):
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind, "flags": {}}


def _png_bytes(w=100, h=50) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), (10, 200, 10), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_labelme_rectangles_any_corner_order_other_shapes_skipped(tmp_path, capsys):
    root = tmp_path / "labelme"
    write_image(root / "images" / f"{ODD}.jpg", w=100, h=50)
    _labelme(root / "json" / f"{ODD}.json", f"../images/{ODD}.jpg", [
        _shape("cat", [[60, 50], [10, 0]]),  # bottom-right first
        _shape("dog", [[0, 50], [50, 0]]),  # bottom-left, top-right
        _shape("cat", [[1, 1], [5, 5], [9, 1]], "polygon"),
        _shape("dog", [[20, 20], [30, 30]], "circle"),
        _shape("dog", [[5, 5]], "point")])
    for i in range(4):
        write_image(root / "images" / f"b{i}.jpg", w=100, h=50)
        _labelme(root / "json" / f"b{i}.json", f"..\\images\\b{i}.jpg", [_shape("dog", [[0, 0], [50, 25]])])
    _labelme(root / "json" / "embedded.json", "C:\\Users\\me\\gone.png", [_shape("cat", [[0, 0], [100, 50]])],
             data=_png_bytes())
    _labelme(root / "json" / "nothing.json", "missing.jpg", [_shape("cat", [[0, 0], [10, 10]])])
    write_image(root / "images" / "resized.jpg", w=50, h=25)
    _labelme(root / "json" / "resized.json", "../images/resized.jpg", [_shape("cat", [[0, 0], [10, 10]])])
    out = tmp_path / "out"
    assert main(["import-data", "labelme", str(root), str(out), "--val-fraction", "0.2"]) == 0
    printed = capsys.readouterr().out
    for reason in ("polygon shape (only rectangles are imported)", "circle shape", "point shape",
                   "nothing.json: image not found", "resized.json: image size differs from the JSON"):
        assert reason in printed, reason
    assert "imported from the JSON's embedded imageData" in printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"}
    labels = {p.stem: read_label_rows(p) for p in (out / "labels").rglob("*.txt")}
    assert sorted(labels) == sorted([ODD, "b0", "b1", "b2", "b3", "embedded"])
    np.testing.assert_allclose(labels[ODD], [[0, 0.35, 0.5, 0.5, 1.0], [1, 0.25, 0.5, 0.5, 1.0]], atol=1e-6)
    embedded = next((out / "images").rglob("embedded.png"))
    assert np.asarray(Image.open(embedded))[0, 0].tolist() == [10, 200, 10]
    assert check_data(out / "data.yaml").ok
    report = (out / "import-report.txt").read_text()
    assert report.count("shape (only rectangles") == 3


def test_labelme_unknown_class_and_traversal(tmp_path):
    root = tmp_path / "lm"
    write_image(tmp_path / "secret.jpg", colour=(1, 2, 3), w=100, h=50)
    for i in range(3):
        write_image(root / f"a{i}.jpg", w=100, h=50)
        _labelme(root / f"a{i}.json", f"a{i}.jpg", [_shape("cat", [[0, 0], [10, 10]]), _shape("bird", [[0, 0], [5, 5]])])
    _labelme(root / "up.json", "../secret.jpg", [_shape("cat", [[0, 0], [10, 10]])])
    rep = import_labelme(root, tmp_path / "out", classes=["cat"])
    assert rep.skipped == {"unknown class": 3, "image not found": 1}
    colours = [np.asarray(Image.open(p))[0, 0].tolist() for p in (tmp_path / "out" / "images").rglob("*.jpg")]
    assert len(colours) == 3 and [1, 2, 3] not in colours


# ------------------------------------------------------------------------------------------------ cvat
def _cvat_xml(images: list[tuple[str, str, list[str]]], labels: list[str] | None, where="task", w=100, h=50) -> str:
    meta = ""
    if labels is not None:
        ls = "".join(f"<label><name>{n}</name><color>#ff0000</color><type>any</type><attributes></attributes></label>"
                     for n in labels)
        meta = f"<meta><{where}><id>1</id><name>t</name><labels>{ls}</labels></{where}><dumped>x</dumped></meta>"
    body = "".join(f'<image id="{i}" name="{name}" subset="{subset}" width="{w}" height="{h}">{"".join(shapes)}</image>'
                   for i, (name, subset, shapes) in enumerate(images))
    return f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>{meta}{body}</annotations>'


def _box(label, x1, y1, x2, y2, extra=""):
    return (f'<box label="{label}" source="manual" occluded="1" xtl="{x1}" ytl="{y1}" xbr="{x2}" ybr="{y2}" '
            f'z_order="0"{extra}></box>')


def test_cvat_export_boxes_subsets_meta_labels(tmp_path, capsys):
    root = tmp_path / "cvat export"
    entries = []
    for i, subset in enumerate(["Train"] * 5 + ["Validation"] * 2 + ["Test"]):
        name = f"{ODD} {i}.jpg" if i == 0 else f"frame_{i:06d}.jpg"
        write_image(root / "images" / subset / name, w=100, h=50)
        entries.append((name, subset, [_box("car", 10, 5, 60, 30)]))
    entries[1][2].extend(['<polygon label="car" source="manual" occluded="0" points="1,1;5,5;9,1" z_order="0"></polygon>',
                          '<polyline label="car" points="1,1;5,5" z_order="0"></polyline>',
                          '<points label="person" points="3,3" z_order="0"></points>',
                          _box("car", 0, 0, 10, 10, ' rotation="30.0"'), _box("tree", 0, 0, 10, 10)])
    (root / "annotations.xml").write_text(_cvat_xml(entries, ["person", "car"], where="project"))
    out = tmp_path / "out"
    assert main(["import-data", "cvat", str(root), str(out)]) == 0
    printed = capsys.readouterr().out
    for reason in ("polygon (only boxes are imported)", "polyline (only boxes", "points (only boxes",
                   "rotated box", "unknown label"):
        assert reason in printed, reason
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "person", 1: "car"}  # the project's label order, not the boxes'
    assert (len(_files(out, "train")), len(_files(out, "val")), len(_files(out, "test"))) == (5, 2, 1)
    np.testing.assert_allclose(read_label_rows(out / "labels" / "train" / f"{ODD} 0.txt"), [[1, 0.35, 0.35, 0.5, 0.5]], atol=1e-6)
    assert check_data(out / "data.yaml").ok


def test_cvat_without_meta_labels_missing_and_hostile_images(tmp_path):
    root = tmp_path / "c"
    for i in range(3):
        write_image(root / f"{i} [a].png", w=100, h=50)
    write_image(tmp_path / "secret.png", colour=(1, 2, 3), w=100, h=50)
    write_image(root / "small.png", w=40, h=20)
    entries = [(f"{i} [a].png", "", [_box("zebra" if i else "ant", 0, 0, 50, 25)]) for i in range(3)]
    entries += [("../secret.png", "", [_box("ant", 0, 0, 5, 5)]), ("gone.png", "", []),
                ("small.png", "", [_box("ant", 0, 0, 5, 5)])]
    (root / "task.xml").write_text(_cvat_xml(entries, None))
    rep = import_cvat(root / "task.xml", tmp_path / "out")
    assert rep.names == {0: "ant", 1: "zebra"}
    assert rep.skipped == {"path outside the images folder": 1, "image not found": 1, "image size differs from the XML": 1}
    assert sum(rep.images.values()) == 3 and rep.boxes == 3
    with pytest.raises(ValueError, match="not a CVAT for images export"):
        (root / "bad.xml").write_text("<annotation><filename>x</filename></annotation>")
        import_cvat(root / "bad.xml", tmp_path / "out2")


# ------------------------------------------------------------------------------------------------ voc test split
def test_voc2007_imagesets_test_split_is_kept(tmp_path):
    from yolo_attn.datasets import import_voc

    root = tmp_path / "VOC2007"
    sets = {"train": ["a", "b", "c"], "val": ["d"], "test": ["e", "f"]}
    for split, stems in sets.items():
        for stem in stems:
            write_image(root / "JPEGImages" / f"{stem}.jpg", w=100, h=50)
            (root / "Annotations").mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / f"{stem}.xml").write_text(
                f"<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>50</height></size>"
                "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax>"
                "<ymax>25</ymax></bndbox></object></annotation>")
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    rep = import_voc(root, tmp_path / "out")
    assert rep.images == {"train": 3, "val": 1, "test": 2}
    assert _files(tmp_path / "out", "test") == ["e.jpg", "f.jpg"]
