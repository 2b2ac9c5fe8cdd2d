"""The data of Ultralytics' other tasks (issue 39): make-shapes --task, check-data of segment / pose / obb labels
and classification folders, import-data of COCO polygons and keypoints and of LabelMe / CVAT polygons.

Every dataset is made here in tmp_path; the synthetic ones are read back with Ultralytics' own dataset readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import write_image
from yolo_attn.cli import main
from yolo_attn.datasets import check_data, import_coco, import_cvat, import_labelme
from yolo_attn.datasets.shapes import CLASSES, ShapesConfig, render, render_shapes, verify, write_dataset
from yolo_attn.datasets.tasks import TASK_NAMES, task_data
from yolo_attn.datasets.tasks.pose import flip_index

SMALL = ["--seed", "2", "--n-train", "4", "--n-val", "4", "--imgsz", "64", "--min-size", "10", "--max-size", "28"]
SMALL_CFG = ShapesConfig(seed=2, n_train=4, n_val=4, imgsz=64, min_size=10, max_size=28)
WIDTH = {"segment": None, "pose": 5 + 4 * 3, "obb": 9}  # columns of a row (segment: any odd count >= 7)


def _rows(folder: Path) -> list[list[float]]:
    return [[float(v) for v in ln.split()] for f in sorted(folder.glob("*.txt")) for ln in f.read_text().splitlines()]


def _problems(rep, severity: str, text: str) -> list:
    return [p for p in rep.problems if p.severity == severity and text in p.message]


# ------------------------------------------------------------------------------------------------ make-shapes
@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_make_shapes_task_loads_with_ultralytics_and_checks_clean(tmp_path, task):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    out = tmp_path / task
    assert main(["make-shapes", "--task", task, "-o", str(out), *SMALL]) == 0
    y = tmp_path / f"{task}.yaml"
    rows = _rows(out / "labels" / "train")
    assert rows and all(len(r) == WIDTH[task] if WIDTH[task] else len(r) >= 7 and len(r) % 2 for r in rows)
    coords = [v for r in rows for k, v in enumerate(r[1:]) if task != "pose" or k < 4 or (k - 4) % 3 != 2]
    assert all(0 <= v <= 1 for v in coords)
    if task == "pose":
        assert {r[k] for r in rows for k in range(7, 17, 3)} == {2.0}  # every keypoint visible
    rep = check_data(y, task=task)
    assert rep.ok and not rep.problems and rep.task == task, rep.summary()
    data = check_det_dataset(str(y), autodownload=False)
    ds = build_yolo_dataset(get_cfg(overrides={"task": task, "imgsz": 64}), data["val"], 2, data, mode="val")
    item = ds[0]
    n = len(item["cls"])
    assert n >= 1 and len(ds) == 4
    if task == "segment":
        assert item["masks"].shape[0] == 1 and item["masks"].sum() > 0  # overlapping masks: one index map
    if task == "pose":
        assert data["kpt_shape"] == [4, 3] and data["flip_idx"] == [0, 3, 2, 1]
        assert tuple(item["keypoints"].shape) == (n, 4, 3)
    if task == "obb":
        assert tuple(item["bboxes"].shape) == (n, 5)  # x, y, w, h, angle


@pytest.mark.parametrize("task", ["segment", "pose", "obb", "classify"])
def test_make_shapes_task_is_deterministic_and_verifiable(tmp_path, task):
    out = tmp_path / "d"
    write_dataset(out, SMALL_CFG, task=task)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    write_dataset(out, SMALL_CFG, task=task)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert json.loads((out / "manifest.json").read_text())["task"] == task
    assert main(["make-shapes", "--check", "-o", str(out)]) == 0
    extra = next(out.rglob("*.jpg")).with_name("999999.jpg")
    extra.write_bytes(b"")
    assert any("999999.jpg: extra file" in p for p in verify(out))


def test_task_labels_describe_the_detection_shapes(tmp_path):
    """Segment and pose images are the detection images; polygons, keypoints and rotated boxes lie on the shapes."""
    n = SMALL_CFG.imgsz
    for i in range(4):
        img, boxes = render(SMALL_CFG, "train", i)
        for task in ("segment", "pose"):
            t = task_data(task)
            img2, shapes = render_shapes(SMALL_CFG, "train", i, t.keep_inside, t.shape_class(i))
            assert np.array_equal(img, img2)
            for box, row in zip(boxes, t.label_text(shapes, n).splitlines()):
                v = np.array([float(x) for x in row.split()])
                pts = v[1:].reshape(-1, 2) if task == "segment" else v[5:].reshape(-1, 3)[:, :2]
                c, xc, yc, w, h = box
                assert v[0] == c
                lo, hi = pts.min(0), pts.max(0)  # the outline (or the extreme points) spans the box
                assert np.allclose([lo[0], lo[1], hi[0], hi[1]], [xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2],
                                   atol=2e-6)
    obb = task_data("obb")
    _, shapes = render_shapes(SMALL_CFG, "val", 1, obb.keep_inside)
    for sh, row in zip(shapes, obb.label_text(shapes, n).splitlines()):
        corners = np.array([float(x) for x in row.split()[1:]]).reshape(4, 2) * n
        sides = np.linalg.norm(np.roll(corners, -1, 0) - corners, axis=1)
        assert np.allclose(sides[0], sides[2], atol=1e-3) and np.allclose(sides[1], sides[3], atol=1e-3)
        x0, y0, x1, y1 = sh.box  # the rotated box holds the shape
        assert corners[:, 0].min() <= x0 + 1e-3 and corners[:, 0].max() >= x1 - 1e-3
        assert corners[:, 1].min() <= y0 + 1e-3 and corners[:, 1].max() >= y1 - 1e-3


def test_make_shapes_classify_is_a_folder_of_class_folders(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import ClassificationDataset
    from ultralytics.data.utils import check_cls_dataset

    out = tmp_path / "cls"
    assert main(["make-shapes", "--task", "classify", "-o", str(out), *SMALL]) == 0
    assert not (tmp_path / "cls.yaml").exists()
    for split in ("train", "val"):  # one image per class in each split (4 images, 4 classes)
        assert sorted(d.name for d in (out / split).iterdir()) == sorted(CLASSES)
        assert all(len(list(d.glob("*.jpg"))) == 1 for d in (out / split).iterdir())
    rep = check_data(out)
    assert rep.ok and not rep.problems and rep.task == "classify", rep.summary()
    data = check_cls_dataset(str(out))
    assert data["nc"] == 4 and sorted(data["names"].values()) == sorted(CLASSES)
    ds = ClassificationDataset(str(data["val"]), get_cfg(overrides={"task": "classify", "imgsz": 64}), prefix="val")
    assert len(ds) == 4 and tuple(ds[0]["img"].shape) == (3, 64, 64)


def test_make_shapes_classify_defaults_balanced_classes_told_apart_by_geometry_only():
    """make-shapes --task classify's own defaults (a from-scratch yolo11n-cls learns them in 8 epochs at imgsz 64,
    docs/tasks.md): balanced classes, one large upright shape per image, always lighter than its background, in
    random colours, so the class is in the geometry and nowhere else."""
    task = task_data("classify")
    cfg = task.default_config(n_train=16, n_val=4)
    assert (cfg.imgsz, cfg.n_train, cfg.n_val) == (64, 16, 4) and task.default_config().n_train == 2000
    shapes, colours = [], []
    for i in range(cfg.n_train):
        img, (sh,) = render_shapes(task.shapes_config(cfg), "train", i, task.keep_inside, task.shape_class(i), task.look)
        luma = img.astype(float) @ [0.299, 0.587, 0.114]
        centre = luma[int(sh.cy) - 1 : int(sh.cy) + 2, int(sh.cx) - 1 : int(sh.cx) + 2].mean()
        border = np.concatenate([luma[0], luma[-1], luma[:, 0], luma[:, -1]]).mean()
        assert centre > border, (i, centre, border)  # lighter than the background
        assert (sh.c, sh.s) == (1.0, 0.0) and sh.r * 2 >= cfg.min_size >= 24  # upright and large
        shapes.append(sh.cls)
        colours.append(tuple(img[int(sh.cy), int(sh.cx)] // 32))
    assert np.bincount(shapes).tolist() == [4, 4, 4, 4]
    assert len(set(colours)) >= 12  # the colour changes from image to image, whatever the class


def test_make_shapes_detection_default_unchanged_by_the_task_option(tmp_path):
    """--task detect (the default) writes what make-shapes wrote before: no task key, the same YAML text."""
    write_dataset(tmp_path / "a", SMALL_CFG)
    assert main(["make-shapes", "--task", "detect", "-o", str(tmp_path / "b"), *SMALL]) == 0
    for rel in ("manifest.json", "images/val/000001.jpg", "labels/train/000002.txt"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert "task" not in json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (tmp_path / "a.yaml").read_text().splitlines()[0].startswith("# Synthetic shapes detection dataset")
    assert set(TASK_NAMES) == {"detect", "segment", "pose", "obb", "classify"}


# ------------------------------------------------------------------------------------------------ check-data
def _dataset(root: Path, rows: list[str], extra: dict | None = None) -> Path:
    """One 64 x 64 image per split with label ``rows``; the YAML with ``extra`` keys."""
    for split in ("train", "val"):
        write_image(root / "images" / split / "a.jpg", 64, 64)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split / "a.txt").write_text("".join(r + "\n" for r in rows))
    y = root / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                 "names": {0: "thing", 1: "other"}, **(extra or {})}))
    return y


POSE = {"kpt_shape": [4, 3], "flip_idx": [0, 3, 2, 1]}
POSE_ROW = "0 0.5 0.5 0.4 0.4 0.5 0.3 2 0.7 0.5 2 0.5 0.7 1 0.3 0.5 0"


def test_pose_dataset_with_visibility_flags_is_valid(tmp_path):
    """The reported bug: visibility flags (2) were read as coordinates, a valid pose dataset refused as FATAL."""
    y = _dataset(tmp_path, [POSE_ROW, "1 0.2 0.2 0.1 0.1 0 0 0 0 0 0 0 0 0 0 0 0"], POSE)
    rep = check_data(y)  # kpt_shape in the YAML: checked as pose
    assert rep.task == "pose" and rep.ok and not rep.problems, rep.summary()
    assert rep.counts["train"]["boxes"] == 2 and "2 poses" in rep.summary()
    assert check_data(y, task="detect").ok  # as detection, each row's box (Ultralytics drops the keypoints)


@pytest.mark.parametrize("row, extra, message", [
    (POSE_ROW.replace(" 0.7 0.5 2", " 0.7 0.5 3"), POSE, "visibility must be 0 (not labelled), 1 (hidden) or 2"),
    (POSE_ROW.replace(" 0.7 0.5 2", " 1.5 0.5 2"), POSE, "keypoint x,y outside [0, 1]"),
    (POSE_ROW.replace("0 0.5 0.5 0.4", "0 1.5 0.5 0.4"), POSE, "box coordinates outside [0, 1]"),
    (POSE_ROW.rsplit(" ", 3)[0], POSE, "4 keypoints of 3 numbers (17 columns, kpt_shape [4, 3]), got 14"),
    (POSE_ROW, {"kpt_shape": [4, 3], "flip_idx": [0, 3, 2]}, "flip_idx must be a list of 4 keypoint indices"),
    (POSE_ROW, {"kpt_shape": [4, 3], "flip_idx": [0, 3, 3, 1]}, "is not a permutation of 0..3"),
    (POSE_ROW, {"kpt_shape": [4, 4]}, "kpt_shape must be [number of keypoints, 2 or 3]"),
])
def test_pose_problems_are_fatal_and_name_the_row(tmp_path, row, extra, message):
    rep = check_data(_dataset(tmp_path, ["1 0.2 0.2 0.1 0.1 " + "0 " * 11 + "0", row], extra))
    found = _problems(rep, "fatal", message)
    assert found and not rep.ok, rep.summary()
    if extra == POSE:
        assert found[0].file.endswith("a.txt:2")  # the file and its row


def test_pose_flip_idx_missing_or_not_undoing_itself_is_a_warning(tmp_path):
    rep = check_data(_dataset(tmp_path, [POSE_ROW], {"kpt_shape": [4, 3]}))
    assert rep.ok and _problems(rep, "warning", "no flip_idx")
    rep = check_data(_dataset(tmp_path, [POSE_ROW], {"kpt_shape": [4, 3], "flip_idx": [1, 2, 3, 0]}))
    assert rep.ok and _problems(rep, "warning", "does not undo itself")


SEG_ROW = "0 0.1 0.1 0.5 0.1 0.3 0.6"


@pytest.mark.parametrize("row, message", [
    ("0 0.1 0.1 0.5 0.1 0.3 0.6 0.2", "an odd number of columns"),
    ("0 0.1 0.1", "at least 3 points"),
    ("0 0.1 0.1 0.5 0.1 0.3 1.2", "polygon coordinates outside [0, 1]"),
    ("0 0.5 0.5 0.2 0.2", "a box row ('cls xc yc w h') in a segment dataset"),
])
def test_segment_polygon_problems_are_fatal_and_name_the_row(tmp_path, row, message):
    y = _dataset(tmp_path, [SEG_ROW, row])
    assert check_data(y, task="segment", check_images=False).ok is False
    found = _problems(check_data(y, task="segment"), "fatal", message)
    assert found and found[0].file.endswith("a.txt:2")
    assert check_data(_dataset(tmp_path, [SEG_ROW, SEG_ROW.replace("0.6", "0.7")]), task="segment").ok


@pytest.mark.parametrize("row, message", [
    ("0 0.1 0.1 0.5 0.1 0.5 0.4", "4 x,y corners (9 numbers), got 7"),
    ("0 0.1 0.1 0.5 0.1 0.5 0.4 0.1 0.4 0.2 0.2", "4 x,y corners (9 numbers), got 11"),
    ("0 0.5 0.5 0.2 0.2", "a box row ('cls xc yc w h') in a obb dataset"),
    ("0 0.1 0.1 0.5 0.1 0.5 1.4 0.1 0.4", "corner coordinates outside [0, 1]"),
])
def test_obb_rows_are_nine_numbers(tmp_path, row, message):
    good = "1 0.1 0.1 0.5 0.1 0.5 0.4 0.1 0.4"
    found = _problems(check_data(_dataset(tmp_path, [good, row]), task="obb"), "fatal", message)
    assert found and found[0].file.endswith("a.txt:2")
    assert check_data(_dataset(tmp_path, [good]), task="obb").ok


def _cls_folder(root: Path) -> Path:
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            write_image(root / split / name / f"{split}-{name}.jpg", 32, 32, (10, 200 if name == "cat" else 30, 90))
    return root


def test_classification_folder_problems(tmp_path):
    root = _cls_folder(tmp_path / "c")
    assert check_data(root).ok and check_data(root).task == "classify"
    (root / "train" / "bird").mkdir()  # an empty class folder
    (root / "train" / "cat" / "notes.txt").write_text("x")  # not an image
    write_image(root / "val" / "loose.jpg", 32, 32)  # in no class folder
    (root / "val" / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    rep = check_data(root)
    assert _problems(rep, "warning", "empty class folder") and _problems(rep, "warning", "not an image")
    assert _problems(rep, "warning", "in no class folder") and _problems(rep, "warning", "no val folder for classes bird")
    bad = [p for p in rep.fatal if p.file.endswith("broken.jpg")]
    assert bad and "unreadable image" in bad[0].message
    assert rep.counts["train"] == {"images": 2, "classes": 3, "empty": 1, "other": 1, "unused": 0}


def test_classification_folder_without_train_or_given_as_yaml_is_refused(tmp_path):
    write_image(tmp_path / "flat" / "cat" / "a.jpg", 32, 32)
    rep = check_data(tmp_path / "flat")
    assert not rep.ok and "no train/ folder" in rep.fatal[0].message
    y = _dataset(tmp_path / "d", ["0 0.5 0.5 0.2 0.2"])
    assert "not a dataset YAML" in check_data(y, task="classify").fatal[0].message
    assert "given by its YAML" in check_data(tmp_path / "d", task="segment").fatal[0].message


def test_check_data_cli_task_flag_and_folder(tmp_path, capsys):
    y = _dataset(tmp_path / "d", [SEG_ROW])
    assert main(["check-data", str(y), "--task", "segment"]) == 0
    assert "1 polygons" in capsys.readouterr().out
    assert main(["check-data", str(y), "--task", "obb"]) == 1
    assert "9 numbers" in capsys.readouterr().out
    assert main(["check-data", str(_cls_folder(tmp_path / "c")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "classify"


# ------------------------------------------------------------------------------------------------ import-data
def _coco_json(path: Path, anns: list[dict], cats: list[dict]) -> Path:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(path.parent / "imgs" / name, 100, 50)
    ims = [{"id": i + 1, "file_name": n, "width": 100, "height": 50} for i, n in enumerate(("a.jpg", "b.jpg", "c.jpg"))]
    path.write_text(json.dumps({"images": ims, "annotations": anns, "categories": cats}))
    return path


def _ann(i, image, cat=1, **kw):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": [10, 10, 40, 20], "iscrowd": 0, "area": 1, **kw}


def test_import_coco_segmentation_polygons(tmp_path):
    square = [10, 10, 50, 10, 50, 30, 10, 30]
    anns = [_ann(1, 1, segmentation=[square]),
            _ann(2, 2, segmentation=[[10, 10, 20, 10, 20, 20], [60, 10, 80, 10, 80, 40]]),  # two parts: one row
            _ann(3, 3, segmentation={"counts": [0, 5], "size": [50, 100]}, iscrowd=1),  # crowd (RLE)
            _ann(4, 3, segmentation={"counts": "abc", "size": [50, 100]}),  # RLE, not a crowd
            _ann(5, 3, segmentation=[square], cat=2)]
    js = _coco_json(tmp_path / "coco" / "instances.json", anns, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    rep = import_coco(js, js.parent / "imgs", tmp_path / "out", split="train", task="segment")
    rows = {p.stem: p.read_text().splitlines() for p in (tmp_path / "out" / "labels" / "train").glob("*.txt")}
    assert rows["a"] == ["0 0.100000 0.200000 0.500000 0.200000 0.500000 0.600000 0.100000 0.600000"]
    joined = [float(v) for v in rows["b"][0].split()]
    assert len(joined) == 1 + 2 * (3 + 1 + 3 + 1)  # both parts and the two cut points back
    assert rows["c"] == ["1 0.100000 0.200000 0.500000 0.200000 0.500000 0.600000 0.100000 0.600000"]
    assert rep.skipped.get("crowd") == 1 and rep.skipped.get("run-length mask") == 1
    assert any("annotation id 4" in p and "RLE" in p for p in rep.problems)
    assert check_data(rep.yaml, task="segment").ok


def test_import_coco_keypoints_with_flip_idx(tmp_path):
    names = ["nose", "left_eye", "right_eye", "left_wrist", "right_wrist"]
    kp = [50, 20, 2, 45, 18, 2, 55, 18, 1, 0, 0, 0, 120, 30, 2]  # a missing one (0 0 0), one outside the image
    anns = [_ann(1, 1, keypoints=kp, num_keypoints=4), _ann(2, 2, keypoints=kp[:-3]), _ann(3, 3, keypoints=kp)]
    js = _coco_json(tmp_path / "coco" / "kp.json", anns, [{"id": 1, "name": "person", "keypoints": names}])
    rep = import_coco(js, js.parent / "imgs", tmp_path / "out", split="train", task="pose")
    data = yaml.safe_load(rep.yaml.read_text())
    assert data["kpt_shape"] == [5, 3] and data["flip_idx"] == [0, 2, 1, 4, 3]
    row = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().split()
    assert row[5:] == ["0.500000", "0.400000", "2", "0.450000", "0.360000", "2", "0.550000", "0.360000", "1",
                       "0.000000", "0.000000", "0", "1.000000", "0.600000", "2"]
    assert rep.skipped.get("malformed keypoints") == 1
    assert check_data(rep.yaml).ok  # checked as pose (kpt_shape)


def test_import_coco_keypoints_without_left_right_names_leave_flip_idx_out(tmp_path):
    anns = [_ann(i, i, keypoints=[50, 20, 2, 40, 30, 2]) for i in (1, 2, 3)]
    js = _coco_json(tmp_path / "coco" / "kp.json", anns, [{"id": 1, "name": "fish", "keypoints": ["head", "tail"]}])
    rep = import_coco(js, js.parent / "imgs", tmp_path / "out", task="pose")
    data = yaml.safe_load(rep.yaml.read_text())
    assert data["kpt_shape"] == [2, 3] and "flip_idx" not in data
    assert any("flip_idx left out" in w for w in rep.warnings)
    assert flip_index(["L-knee", "R-knee", "neck"]) == [1, 0, 2] and flip_index(["leftEye", "rightEye"]) == [1, 0]
    assert flip_index(["left_eye", "nose"]) is None


def test_import_labelme_and_cvat_polygons(tmp_path):
    write_image(tmp_path / "lm" / "a.jpg", 100, 50)
    shapes = [{"label": "cat", "points": [[10, 10], [50, 10], [30, 40]], "shape_type": "polygon"},
              {"label": "cat", "points": [[10, 10], [50, 40]], "shape_type": "rectangle"},
              {"label": "cat", "points": [[10, 10], [50, 10]], "shape_type": "polygon"},
              {"label": "cat", "points": [[10, 10], [20, 20]], "shape_type": "circle"}]
    for stem in ("a", "b", "c"):
        write_image(tmp_path / "lm" / f"{stem}.jpg", 100, 50)
        (tmp_path / "lm" / f"{stem}.json").write_text(json.dumps(
            {"shapes": shapes, "imagePath": f"{stem}.jpg", "imageWidth": 100, "imageHeight": 50}))
    rep = import_labelme(tmp_path / "lm", tmp_path / "out1", task="segment", val_fraction=0.34)
    rows = [r for f in sorted((tmp_path / "out1" / "labels").rglob("*.txt")) for r in f.read_text().splitlines()]
    assert len(rows) == 6 and rows[0] == "0 0.100000 0.200000 0.500000 0.200000 0.300000 0.800000"
    assert rows[1] == "0 0.100000 0.200000 0.500000 0.200000 0.500000 0.800000 0.100000 0.800000"
    assert rep.skipped.get("polygon of 2 point(s) (a mask needs 3)") == 3 and check_data(rep.yaml, task="segment").ok

    write_image(tmp_path / "cv" / "images" / "x.jpg", 100, 50)
    write_image(tmp_path / "cv" / "images" / "y.jpg", 100, 50)
    poly = '<polygon label="car" points="10,10;60,10;60,40;10,40" z_order="0"></polygon>'
    box = '<box label="car" xtl="0" ytl="0" xbr="20" ybr="25" z_order="0"></box>'
    line = '<polyline label="car" points="1,1;5,5"></polyline>'
    body = "".join(f'<image id="{i}" name="{n}" width="100" height="50">{poly}{box}{line}</image>'
                   for i, n in enumerate(("x.jpg", "y.jpg")))
    (tmp_path / "cv" / "annotations.xml").write_text(f"<annotations><version>1.1</version>{body}</annotations>")
    rep = import_cvat(tmp_path / "cv", tmp_path / "out2", task="segment")
    rows = [r for f in sorted((tmp_path / "out2" / "labels").rglob("*.txt")) for r in f.read_text().splitlines()]
    assert rows[:2] == ["0 0.100000 0.200000 0.600000 0.200000 0.600000 0.800000 0.100000 0.800000",
                        "0 0.000000 0.000000 0.200000 0.000000 0.200000 0.500000 0.000000 0.500000"]
    assert rep.skipped.get("polyline (only polygons and boxes are imported for segment)") == 2
    assert check_data(rep.yaml, task="segment").ok


def test_import_data_cli_task(tmp_path, capsys):
    anns = [_ann(i, i, segmentation=[[10, 10, 50, 10, 50, 30]]) for i in (1, 2, 3)]
    js = _coco_json(tmp_path / "coco" / "instances.json", anns, [{"id": 1, "name": "a"}])
    assert main(["import-data", "coco", str(js), str(js.parent / "imgs"), str(tmp_path / "out"), "--task",
                 "segment"]) == 0
    out = capsys.readouterr().out
    assert "1 polygons" in out and "0 fatal" in out
    with pytest.raises(SystemExit):  # VOC XML holds boxes only: no --task
        main(["import-data", "voc", str(tmp_path), str(tmp_path / "o2"), "--task", "segment"])


# ------------------------------------------------------------------------------------------------ LabelMe / CVAT pose, obb
def _label_rows(out: Path) -> list[str]:
    return [r for f in sorted((out / "labels").rglob("*.txt")) for r in f.read_text().splitlines()]


def _labelme(folder: Path, shapes: list, stems=("a", "b", "c")) -> Path:
    for stem in stems:
        write_image(folder / f"{stem}.jpg", 100, 50)
        (folder / f"{stem}.json").write_text(json.dumps(
            {"shapes": shapes, "imagePath": f"{stem}.jpg", "imageWidth": 100, "imageHeight": 50}))
    return folder


def test_import_labelme_keypoints_by_group_id_and_oriented_polygons(tmp_path):
    def pt(name, x, y, gid):
        return {"label": name, "points": [[x, y]], "shape_type": "point", "group_id": gid}

    shapes = [{"label": "person", "points": [[10, 5], [50, 45]], "shape_type": "rectangle", "group_id": 1},
              pt("nose", 30, 10, 1), pt("left_eye", 25, 8, 1), pt("right_eye", 35, 8, 1),
              {"label": "person", "points": [[60, 5], [90, 45]], "shape_type": "rectangle", "group_id": 2},
              pt("nose", 75, 10, 2), pt("nose", 76, 11, 2),  # drawn twice: the second is skipped
              pt("tail", 80, 40, 2), pt("nose", 5, 5, 3), pt("nose", 1, 1, None)]
    src = _labelme(tmp_path / "lm", shapes)
    with pytest.raises(ValueError, match="--keypoints"):  # LabelMe holds no keypoint list: the order must be given
        import_labelme(src, tmp_path / "o0", task="pose")
    rep = import_labelme(src, tmp_path / "out", task="pose", keypoints=["nose", "left_eye", "right_eye"],
                         val_fraction=0.34)
    data = yaml.safe_load(rep.yaml.read_text())
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [0, 2, 1] and data["names"] == {0: "person"}
    rows = _label_rows(tmp_path / "out")
    assert len(rows) == 6 and rows[0] == ("0 0.300000 0.500000 0.400000 0.800000 0.300000 0.200000 2 "
                                          "0.250000 0.160000 2 0.350000 0.160000 2")
    assert rows[1].endswith("0.750000 0.200000 2 0.000000 0.000000 0 0.000000 0.000000 0")  # eyes not drawn
    assert rep.skipped == {"keypoint repeated in its object": 3, "unknown keypoint": 3, "keypoint without its object": 6}
    assert any("shape 9 (group_id 3)" in p for p in rep.problems)  # the file and the shape named
    assert check_data(rep.yaml).ok  # read as pose (kpt_shape)

    shapes = [{"label": "ship", "points": [[10, 10], [40, 5], [45, 20], [15, 25]], "shape_type": "polygon"},
              {"label": "ship", "points": [[60, 10], [80, 30]], "shape_type": "rectangle"},
              {"label": "ship", "points": [[10, 10], [50, 10], [30, 40]], "shape_type": "polygon"}]
    rep = import_labelme(_labelme(tmp_path / "lm2", shapes), tmp_path / "out2", task="obb", val_fraction=0.34)
    rows = _label_rows(tmp_path / "out2")
    assert rows[:2] == ["0 0.100000 0.200000 0.400000 0.100000 0.450000 0.400000 0.150000 0.500000",
                        "0 0.600000 0.200000 0.800000 0.200000 0.800000 0.600000 0.600000 0.600000"]
    assert rep.skipped == {"polygon of 3 point(s) (an oriented box is a polygon of 4 corners)": 3}
    assert check_data(rep.yaml, task="obb").ok


_CVAT_META = ("<meta><task><labels><label><name>person</name><type>skeleton</type></label>"
              + "".join(f"<label><name>{n}</name><type>points</type><parent>person</parent></label>"
                        for n in ("nose", "left_eye", "right_eye"))
              + "<label><name>ship</name><type>rectangle</type></label></labels></task></meta>")


def test_import_cvat_skeletons_and_rotated_boxes(tmp_path, capsys):
    def kp(name, x, y, outside="0", occluded="0"):
        return f'<points label="{name}" outside="{outside}" occluded="{occluded}" points="{x},{y}"></points>'

    skeleton = ('<skeleton label="person" z_order="0">' + kp("nose", 30, 10) + kp("left_eye", 20, 40, occluded="1")
                + kp("right_eye", 0, 0, outside="1") + "</skeleton>")
    rotated = '<box label="ship" xtl="40" ytl="20" xbr="60" ybr="30" rotation="90.00" z_order="0"></box>'
    quad = '<polygon label="ship" points="10,10;40,5;45,20;15,25" z_order="0"></polygon>'
    tri = '<polygon label="ship" points="10,10;40,5;45,20" z_order="0"></polygon>'
    for stem in ("x", "y", "z"):
        write_image(tmp_path / "cv" / "images" / f"{stem}.jpg", 100, 50)
    body = "".join(f'<image id="{i}" name="{n}.jpg" width="100" height="50">{skeleton}{rotated}{quad}{tri}</image>'
                   for i, n in enumerate("xyz"))
    (tmp_path / "cv" / "annotations.xml").write_text(f"<annotations><version>1.1</version>{_CVAT_META}{body}</annotations>")
    rep = import_cvat(tmp_path / "cv", tmp_path / "pose", task="pose", val_fraction=0.34)
    data = yaml.safe_load(rep.yaml.read_text())
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [0, 2, 1] and data["names"] == {0: "person", 1: "ship"}
    rows = _label_rows(tmp_path / "pose")
    assert rows[0] == ("0 0.250000 0.500000 0.100000 0.600000 0.300000 0.200000 2 0.200000 0.800000 1 "
                       "0.000000 0.000000 0")  # box: the labelled keypoints' extent; occluded 1, outside 0 0 0
    assert rep.skipped.get("box (only skeletons and points are imported for pose)") == 3
    assert check_data(rep.yaml).ok

    assert main(["import-data", "cvat", str(tmp_path / "cv"), str(tmp_path / "obb"), "--task", "obb",
                 "--classes", "ship", "--val-fraction", "0.34"]) == 0
    assert "0 fatal" in capsys.readouterr().out
    rows = _label_rows(tmp_path / "obb")
    assert rows[0] == "0 0.550000 0.300000 0.550000 0.700000 0.450000 0.700000 0.450000 0.300000"  # turned 90 degrees
    assert rows[1] == "0 0.100000 0.200000 0.400000 0.100000 0.450000 0.400000 0.150000 0.500000"
    report = (tmp_path / "obb" / "import-report.txt").read_text()
    assert "image id 0, polygon 4 (ship): polygon of 3 point(s) (an oriented box is a polygon of 4 corners)" in report
    assert "image id 0, skeleton 1 (person): skeleton (only boxes and 4-point polygons are imported for obb)" in report
