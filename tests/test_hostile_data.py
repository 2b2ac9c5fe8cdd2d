"""Hostile or careless datasets (issue 37, the dataset side): file names that are not UTF-8, test splits that are
training images, LabelMe files whose embedded image is not one (or is huge), COCO files whose annotations or
categories do not add up, symlinks out of an export, into the output or round in a loop.

Each case used to crash (a segmentation fault, a traceback) or pass unseen; each is now a message naming the file.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path
from unittest import mock

import pytest
import yaml

from conftest import PYTHON, REPO, subprocess_env, write_image
from yolo_attn.cli import main
from yolo_attn.datasets import (DataCheckFailed, DatasetError, check_data, checked_dataset, import_coco,
                                import_labelme, import_yolo, require_dataset, resolve_dataset)

LATIN1 = b"caf\xe9"  # "café" as a Windows zip writes it: not UTF-8
SHOWN = "caf\\xe9"  # how the messages name it


def _pair(root: Path, split: str, name: str | bytes, colour=(90, 160, 30)) -> Path:
    """An image and its label under ``root/images/split`` and ``root/labels/split`` (``name`` may be raw bytes)."""
    stem = os.fsdecode(name)
    img = write_image(root / "images" / split / f"{stem}.jpg", colour=colour)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    return img


def _dataset(root: Path, **splits) -> Path:
    """Two training and two validation images of different colours; ``splits`` override the YAML's entries."""
    for i in range(2):
        _pair(root, "train", f"t{i}", colour=(40 * i, 100, 200))
        _pair(root, "val", f"v{i}", colour=(200, 40 * i, 100))
    entries = {"train": "images/train", "val": "images/val", **splits}
    y = root / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(root), **entries, "names": {0: "a"}}))
    return y


def _cli(*argv, timeout=300) -> subprocess.CompletedProcess:
    """``yolo-attn ARGV`` in a fresh process: a crash (a signal) ends that process, not the test run."""
    return subprocess.run([PYTHON, "-m", "yolo_attn.cli", *map(str, argv)], capture_output=True, text=True,
                          errors="backslashreplace", env=subprocess_env(), cwd=REPO, timeout=timeout)


# ------------------------------------------------------------------------------------------------
# item 4: a file name that is not UTF-8
# ------------------------------------------------------------------------------------------------
def test_non_utf8_image_name_is_a_fatal_problem_naming_the_file(tmp_path):
    """It reached cv2.imread in the near-duplicate check: a segmentation fault (exit 139) and no message."""
    root = tmp_path / "d"
    y = _dataset(root)
    _pair(root, "train", LATIN1)
    proc = _cli("check-data", y)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{SHOWN}.jpg: file name is not UTF-8" in proc.stdout
    proc = _cli("check-data", y, "--json")
    assert proc.returncode == 1 and SHOWN in json.loads(proc.stdout)["problems"][0]["file"]


def test_non_utf8_image_name_fails_train_and_compare_naming_the_file(tmp_path):
    """``train data=`` failed with an encoding error that named nothing; compare crashed as check-data did."""
    root = tmp_path / "d"
    y = _dataset(root)
    _pair(root, "val", LATIN1)
    with pytest.raises(DataCheckFailed, match=re.escape(f"{SHOWN}.jpg: file name is not UTF-8")):
        require_dataset(y)
    ds, rep = checked_dataset(y, tmp_path / "sweep")
    assert not rep.ok and [p.file for p in rep.fatal] == [os.fsdecode(root / "images" / "val") + f"/{SHOWN}.jpg"]
    proc = _cli("train", "model=yolov5n.yaml", f"data={y}", "epochs=1", "imgsz=32", "device=cpu")
    assert proc.returncode != 0 and f"{SHOWN}.jpg: file name is not UTF-8" in proc.stdout + proc.stderr
    assert "UnicodeEncodeError" not in proc.stdout + proc.stderr


def test_non_utf8_dataset_folder_is_a_clear_error(tmp_path):
    """A YAML in a folder named in Latin-1 (no ``path:``) ended in an encoding error naming nothing."""
    root = Path(os.fsdecode(bytes(tmp_path) + b"/" + LATIN1))
    y = _dataset(root)
    y.write_text("train: images/train\nval: images/val\nnames: [a]\n")
    with pytest.raises(DatasetError, match=re.escape(f"{SHOWN}/data.yaml: the path of this YAML is not UTF-8")):
        require_dataset(y)
    moved = tmp_path / "data.yaml"
    moved.write_bytes(b"path: " + os.fsencode(root) + b"\ntrain: images/train\nval: images/val\nnames: [a]\n")
    rep = check_data(moved)  # a YAML's own bytes are read as UTF-8: the folder is then not found, said so
    assert not rep.ok and "'train' path not found" in rep.fatal[0].message


def test_non_utf8_image_name_is_a_named_skip_of_import_data(tmp_path):
    src = tmp_path / "export"
    for i in range(4):
        write_image(src / "images" / f"{i}.jpg")
        (src / "labels").mkdir(exist_ok=True)
        (src / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    write_image(src / "images" / os.fsdecode(LATIN1 + b".jpg"))
    (src / "classes.txt").write_text("a\n")
    proc = _cli("import-data", "yolo", src, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{SHOWN}.jpg: file name is not UTF-8" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out" / "images").rglob("*.jpg")) == [f"{i}.jpg" for i in range(4)]
    assert SHOWN in (tmp_path / "out" / "import-report.txt").read_text()


# ------------------------------------------------------------------------------------------------
# item 5: every pair of splits
# ------------------------------------------------------------------------------------------------
def test_test_split_of_training_images_fails_the_check(tmp_path):
    """check-data warned for val = train only; a test split of training images passed unseen."""
    root = tmp_path / "d"
    rep = check_data(_dataset(root, test="images/train"))
    assert not rep.ok and rep.overlaps["test/train"] == 1.0
    assert any("TEST = TRAINING" in p.message and "'test'" in p.message for p in rep.fatal)
    rep = check_data(_dataset(root, test="images/val"))
    assert rep.ok and rep.overlaps == {"val/train": 0.0, "test/train": 0.0, "test/val": 1.0}
    assert any("TEST = VALIDATION" in p.message for p in rep.problems if p.severity == "warning")


def test_test_images_listed_or_linked_from_training_are_the_same_images(tmp_path):
    """The same files by another path (a .txt list, a symlinked folder) are the same images; some is fatal too."""
    root = tmp_path / "d"
    _pair(root, "test", "held_out", colour=(1, 2, 3))
    (root / "test.txt").write_text("./images/test/held_out.jpg\n./images/train/t0.jpg\n./images/train/t1.jpg\n")
    rep = check_data(_dataset(root, test="test.txt"))
    assert rep.overlaps["test/train"] == pytest.approx(2 / 3) and not rep.ok
    assert any("2 of 3 'test' images (67%) are also 'train' images" in p.message for p in rep.fatal)
    (root / "linked").symlink_to(root / "images" / "val")
    rep = check_data(_dataset(root, test="linked"))
    assert rep.ok and rep.overlaps["test/val"] == 1.0 and rep.as_dict()["overlaps"]["test/val"] == 1.0


def test_compare_on_a_test_split_of_training_images_refuses(tmp_path, capsys):
    """``compare --eval-split test`` said "Scored on the test split" on training images."""
    y = _dataset(tmp_path / "d", test="images/train")
    out = tmp_path / "sweep"
    rc = main(["compare", "--data", str(y), "--eval-split", "test", "--models", "yolov5n.yaml", "--seeds", "1",
               "--epochs", "1", "--imgsz", "32", "--workers", "0", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc != 0 and "TEST = TRAINING" in printed.out + printed.err
    assert not list(out.rglob("trials.jsonl"))


# ------------------------------------------------------------------------------------------------
# item 10: LabelMe embedded images, labels that are null
# ------------------------------------------------------------------------------------------------
def _labelme(path: Path, image_path: str, labels, data: bytes | None = None, w=64, h=48) -> Path:
    shapes = [{"label": lab, "points": [[1, 1], [20, 20]], "shape_type": "rectangle"} for lab in labels]
    js = {"shapes": shapes, "imagePath": image_path, "imageWidth": w, "imageHeight": h,
          "imageData": base64.b64encode(data).decode() if data is not None else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(js))
    return path


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header says ``w`` x ``h`` pixels (its data is a few bytes: never decodable to that size)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _labelme_folder(root: Path) -> None:
    for i in range(3):
        write_image(root / f"ok{i}.jpg")
        _labelme(root / f"ok{i}.json", f"ok{i}.jpg", ["cat"])


def test_labelme_embedded_data_that_is_no_image_is_a_named_skip_without_pip(tmp_path):
    """Ultralytics' Pillow patch answered it with ``pip install pi-heif``, then a traceback ended the import."""
    import ultralytics.utils.patches  # noqa: F401  (the Pillow patch is active, as after any training)
    from ultralytics.utils import checks

    root = tmp_path / "lm"
    _labelme_folder(root)
    _labelme(root / "junk.json", "gone.jpg", ["dog"], data=b"this is no image" * 8)
    with mock.patch.object(checks, "check_requirements", side_effect=AssertionError("pip install attempted")) as cr:
        rep = import_labelme(root, tmp_path / "out")
    assert not cr.called
    assert rep.skipped == {"unreadable embedded image": 1}
    assert any(p.startswith(f"{root / 'junk.json'}: unreadable embedded image") for p in rep.problems)
    assert rep.names == {0: "cat"}  # the skipped file's "dog" is no class


def test_labelme_oversized_embedded_image_is_refused_before_decoding(tmp_path):
    root = tmp_path / "lm"
    _labelme_folder(root)
    _labelme(root / "huge.json", "gone.png", ["cat"], data=_png_header(60_000, 60_000), w=60_000, h=60_000)
    _labelme(root / "big.json", "gone.png", ["cat"], data=_png_header(20_000, 10_000), w=20_000, h=10_000)
    rep = import_labelme(root, tmp_path / "out")
    assert rep.skipped == {"embedded image too large": 2}
    assert any(f"{root / 'huge.json'}: embedded image too large (3,600,000,000 pixels" in p for p in rep.problems)


def test_labelme_null_labels_add_no_class(tmp_path):
    """``label: null`` became a class "None", also from a JSON that was skipped."""
    root = tmp_path / "lm"
    _labelme_folder(root)
    _labelme(root / "ok0.json", "ok0.jpg", ["cat", None])
    _labelme(root / "lost.json", "lost.jpg", [None, "ghost"])  # no image: skipped, adds nothing
    rep = import_labelme(root, tmp_path / "out")
    assert rep.names == {0: "cat"}
    assert rep.skipped == {"shape without a label": 1, "image not found": 1}
    assert any(f"{root / 'ok0.json'}: shape 2: shape without a label" in p for p in rep.problems)


# ------------------------------------------------------------------------------------------------
# lower items: COCO counts and names, symlinks
# ------------------------------------------------------------------------------------------------
def _coco(src: Path, anns: list[dict], cats=None) -> Path:
    for i in range(4):
        write_image(src / "imgs" / f"{i}.jpg")
    js = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(4)], "annotations": anns,
          "categories": cats or [{"id": 1, "name": "a"}]}
    p = src / "instances.json"
    p.write_text(json.dumps(js))
    return p


def test_coco_annotation_of_no_image_is_counted(tmp_path):
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(4)]
    js = _coco(tmp_path / "coco", anns + [{"id": 9, "image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5]}])
    rep = import_coco(js, tmp_path / "coco" / "imgs", tmp_path / "out")
    assert rep.boxes == 4 and rep.skipped == {"annotation of no image": 1}
    assert any("annotations[4] (id 9): annotation of no image (image_id 77" in p for p in rep.problems)


def test_coco_duplicate_category_names_are_refused(tmp_path):
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "a"}]
    js = _coco(tmp_path / "coco", [], cats)
    with pytest.raises(ValueError, match=r"instances.json: category name 'a' is used by ids 1 and 3"):
        import_coco(js, tmp_path / "coco" / "imgs", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_skips_a_symlinked_image_outside_the_export(tmp_path):
    secret = write_image(tmp_path / "private" / "secret.jpg", colour=(1, 2, 3))
    src = tmp_path / "export"
    for i in range(4):
        write_image(src / "images" / f"{i}.jpg")
    os.symlink(secret, src / "images" / "leak.jpg")
    (src / "classes.txt").write_text("a\n")
    rep = import_yolo(src, tmp_path / "out")
    assert rep.skipped == {"symlink to a file outside the input": 1}
    assert any(f"{src / 'images' / 'leak.jpg'}: symlink to a file outside the input ({secret}" in p for p in rep.problems)
    assert sorted(p.name for p in (tmp_path / "out" / "images").rglob("*.jpg")) == [f"{i}.jpg" for i in range(4)]
    js = _coco(tmp_path / "coco", [{"id": 0, "image_id": 4, "category_id": 1, "bbox": [1, 1, 5, 5]}])
    os.symlink(secret, tmp_path / "coco" / "imgs" / "leak.jpg")
    data = json.loads(js.read_text())
    js.write_text(json.dumps({**data, "images": data["images"] + [{"id": 4, "file_name": "leak.jpg"}]}))
    rep = import_coco(js, tmp_path / "coco" / "imgs", tmp_path / "out2")
    assert rep.skipped == {"symlink to a file outside the input": 1}  # its annotation goes with it


def test_voc_cvat_and_labelme_skip_a_symlinked_image_outside_the_input(tmp_path):
    secret = write_image(tmp_path / "private" / "secret.jpg", w=100, h=50, colour=(1, 2, 3))
    voc, cvat, lm = tmp_path / "voc", tmp_path / "cvat", tmp_path / "lm"
    box = '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox>'
    for i, name in enumerate(["0.jpg", "1.jpg", "2.jpg", "leak.jpg"]):
        for folder in (voc / "images", cvat / "images", lm):
            if name == "leak.jpg":
                (folder / name).symlink_to(secret)
            else:
                write_image(folder / name, w=100, h=50)
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>100</width><height>50</height></size>"
            f"<object><name>a</name>{box}</object></annotation>")
        _labelme(lm / f"{i}.json", name, ["a"], w=100, h=50)
    images = "".join(f'<image id="{i}" name="{n}" width="100" height="50"><box label="a" xtl="1" ytl="1" xbr="20" '
                     f'ybr="20"/></image>' for i, n in enumerate(["0.jpg", "1.jpg", "2.jpg", "leak.jpg"]))
    (cvat / "annotations.xml").write_text(f"<annotations><version>1.1</version>{images}</annotations>")
    from yolo_attn.datasets import import_cvat, import_voc

    for rep in (import_voc(voc, tmp_path / "o1"), import_cvat(cvat, tmp_path / "o2"), import_labelme(lm, tmp_path / "o3")):
        assert sum(rep.images.values()) == 3 and not list(rep.out.rglob("leak.jpg")), rep.problems
        assert sum(rep.skipped.values()) == 1, rep.skipped


def test_import_into_a_symlinked_output_folder_is_a_clear_message(tmp_path, capsys):
    src = tmp_path / "export"
    for i in range(4):
        write_image(src / "images" / f"{i}.jpg")
    (src / "classes.txt").write_text("a\n")
    target = tmp_path / "real"
    (target / "keep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(target)
    rc = main(["import-data", "yolo", str(src), str(tmp_path / "link"), "--force"])
    err = capsys.readouterr().err
    assert rc == 1 and f"output folder {tmp_path / 'link'} is a symbolic link (to {target})" in err
    assert (tmp_path / "link").is_symlink() and (target / "keep").is_dir()


def test_dataset_path_that_is_a_symlink_loop_is_a_clear_error(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    y = tmp_path / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(loop), "train": "images/train", "val": "images/val", "names": ["a"]}))
    with pytest.raises(DatasetError, match=f"{y}: path: {loop} is a symbolic link loop"):
        resolve_dataset(y)
    rep = check_data(y)
    assert not rep.ok and rep.fatal[0].file == str(y)
    assert main(["check-data", str(y)]) == 1 and "symbolic link loop" in capsys.readouterr().out
