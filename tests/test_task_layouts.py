"""The layouts of Ultralytics' own public datasets of each task, as users point yolo_attn at them (issue 39).

Nothing downloads: each dataset is a small mimic of its public layout, built in the test. The dataset YAML is the
text Ultralytics ships (``ultralytics/cfg/datasets/NAME.yaml``: its ``download:`` entry, ``kpt_shape``,
``flip_idx``, ``kpt_names``, names as a mapping) with ``path:`` pointed at the folder; the label rows are in each
task's real format (polygons of many vertex counts, 17 x 3 keypoints with visibility 0/1/2 and objects with no
keypoint labelled, 2-D keypoints, DOTA's 8-value rows touching or just crossing the border); the images are JPEG and
PNG, colour, grayscale and with an alpha channel, of different sizes; one image per split is a background (an
empty label file). A classification dataset is a folder (``mnist160``: ``train/`` and ``test/``, no ``val/``; class
folders named by numbers or with spaces).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

SIZES = [(64, 48), (80, 80), (48, 72), (96, 64)]  # width, height
EXTS = (".jpg", ".png", ".jpg", ".png")
CHANNELS = (3, 1, 4, 3)  # colour, grayscale, with alpha


def shipped_yaml(name: str, root: Path) -> str:
    """Ultralytics' dataset YAML ``name`` as it ships, its ``path:`` pointed at ``root``."""
    import ultralytics

    text = (Path(ultralytics.__file__).parent / "cfg" / "datasets" / name).read_text()
    return re.sub(r"(?m)^path:.*$", f"path: {root}", text, count=1)


def write_image(path: Path, w: int, h: int, channels: int, seed: int) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _polygon(cx, cy, r, k, turn=0.0) -> str:
    a = np.linspace(0, 2 * np.pi, k, endpoint=False) + turn
    return " ".join(f"{x:.6f} {y:.6f}" for x, y in zip(cx + r * np.cos(a), cy + r * np.sin(a)))


def segment_rows(nc: int):
    def rows(i: int) -> list[str]:
        out = [f"{i % nc} {_polygon(0.5, 0.5, 0.3, 3 + 5 * i)}", f"{(i + 1) % nc} {_polygon(0.25, 0.3, 0.1, 40, 0.3)}"]
        return out + ["0 0.0 0.0 0.2 0.0 0.2 0.15 0.0 0.15"] * (i == 1)  # a polygon in the image's corner
    return rows


def pose_rows(k: int, d: int):
    rng = np.random.default_rng(0)

    def keypoints(visibility) -> str:
        vals = []
        for j in range(k):
            v = visibility[j % len(visibility)]
            xy = [0.0, 0.0] if v == 0 else list(0.3 + 0.4 * rng.random(2))
            vals += [f"{xy[0]:.6f}", f"{xy[1]:.6f}"] + [str(v)] * (d == 3)
        return " ".join(vals)

    def rows(i: int) -> list[str]:
        out = [f"0 0.5 0.5 0.5 0.6 {keypoints([2, 1, 0, 2])}"]
        return out + [f"0 0.2 0.2 0.1 0.1 {keypoints([0])}"] * (i in (1, 2))  # no keypoint labelled
    return rows


def obb_rows(nc: int):
    def rows(i: int) -> list[str]:
        out = [f"{i % nc} 0.2 0.1 0.6 0.15 0.55 0.45 0.15 0.4",
               f"{(i + 5) % nc} 0.0 0.5 0.3 0.5 0.3 1.0 0.0 1.0"]  # on the image's border
        return out + [f"{(i + 9) % nc} 0.7 -0.002 1.004 -0.002 1.004 0.2 0.7 0.2"] * (i == 1)  # just across it
    return rows


def yolo_dataset(root: Path, yaml_name: str, rows, splits=("train", "val")) -> Path:
    """A dataset of Ultralytics' layout (``images/SPLIT``, ``labels/SPLIT``), four images per split (the last a
    background: an empty label file), its YAML the shipped one."""
    for split in splits:
        for i, (w, h) in enumerate(SIZES):
            stem = f"{split}_{i}"
            write_image(root / "images" / split / f"{stem}{EXTS[i]}", w, h, CHANNELS[i], i)
            label = root / "labels" / split / f"{stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(r + "\n" for r in (rows(i) if i < 3 else [])))
    y = root / yaml_name
    y.write_text(shipped_yaml(yaml_name, root))
    return y


def class_folders(root: Path, classes=("0", "1", "traffic light"), splits=("train", "test"), n: int = 3) -> Path:
    """A classification dataset folder (mnist160's layout: ``train/`` and ``test/`` only)."""
    for split in splits:
        for ci, c in enumerate(classes):
            for i in range(n):
                w, h = SIZES[(i + ci) % len(SIZES)]
                write_image(root / split / c / f"{c}_{i}{('.jpg', '.png', '.JPEG')[i]}", w, h, CHANNELS[i], i + 7 * ci)
    return root


LAYOUTS = {  # name: (shipped YAML, rows, splits, task, kpt_shape)
    "coco8-seg": ("coco8-seg.yaml", segment_rows(80), ("train", "val"), "segment"),
    "crack-seg": ("crack-seg.yaml", segment_rows(1), ("train", "val", "test"), "segment"),
    "coco8-pose": ("coco8-pose.yaml", pose_rows(17, 3), ("train", "val"), "pose"),
    "tiger-pose": ("tiger-pose.yaml", pose_rows(12, 2), ("train", "val"), "pose"),
    "dog-pose": ("dog-pose.yaml", pose_rows(24, 3), ("train", "val"), "pose"),
    "hand-keypoints": ("hand-keypoints.yaml", pose_rows(21, 3), ("train", "val"), "pose"),
    "dota8": ("dota8.yaml", obb_rows(15), ("train", "val"), "obb"),
}


def layout(tmp_path: Path, name: str) -> Path:
    yaml_name, rows, splits, _ = LAYOUTS[name]
    return yolo_dataset(tmp_path / name, yaml_name, rows, splits)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_check_data_reads_each_public_layout_as_its_task(tmp_path, name):
    """Each layout checks clean as its task (pose found from ``kpt_shape``; segment and obb named, as their YAMLs do
    not say): every object counted, the background images reported as such, nothing fatal; the shipped
    ``download:`` entry is left out of the copy Ultralytics reads and never run."""
    from yolo_attn.datasets import check_data, resolve_dataset

    y = layout(tmp_path, name)
    task = LAYOUTS[name][3]
    rep = check_data(y, task=None if task == "pose" else task)
    assert rep.ok, rep.summary()
    assert rep.task == task
    objects = {"segment": 7, "pose": 5, "obb": 7}[task]
    for split in LAYOUTS[name][2]:
        c = rep.counts[split]
        assert (c["images"], c["boxes"], c["labelled"], c["empty"]) == (4, objects, 3, 1), (split, c)
    ds = resolve_dataset(y)
    assert ds.download.startswith("https://") and "\ndownload:" not in ds.yaml.read_text()
    assert len(ds.names) == {"coco8-seg": 80, "crack-seg": 1, "dota8": 15}.get(name, 1)
    flip = [p for p in rep.problems if "flip_idx" in p.message]
    assert [p.severity for p in flip] == (["warning"] if name == "dog-pose" else [])  # dog-pose ships none


def test_polygon_and_corner_rows_just_across_the_border_are_a_warning_as_ultralytics_takes_them(tmp_path):
    """DOTA-style corners 0.2-0.4% outside the image: Ultralytics trains on them (clipped), so the check warns with
    the row; read as detection (no --task) too. A corner 5% outside stays fatal, naming file and row."""
    from yolo_attn.datasets import check_data

    y = layout(tmp_path, "dota8")
    for task in ("obb", None):
        rep = check_data(y, splits=("train",), task=task)
        assert rep.ok, rep.summary()
        assert [p.file for p in rep.problems if "sticks out" in p.message] == [
            str(tmp_path / "dota8" / "labels" / "train" / "train_1.txt:3")]
    (tmp_path / "dota8" / "labels" / "train" / "train_2.txt").write_text("3 0.7 0.1 1.05 0.1 1.05 0.2 0.7 0.2\n")
    rep = check_data(y, splits=("train",), task="obb")
    assert [(p.file.rsplit("/", 1)[-1], "corner coordinates outside [0, 1] by more than 1%" in p.message)
            for p in rep.fatal] == [("train_2.txt:1", True)]


def test_a_segment_file_mixing_box_and_polygon_rows_is_refused_with_its_row(tmp_path):
    """Ultralytics drops a segment label file mixing box and polygon rows as corrupt: fatal for a segment dataset,
    naming the row; a warning when the dataset is read as detection."""
    from yolo_attn.datasets import check_data

    y = layout(tmp_path, "coco8-seg")
    (tmp_path / "coco8-seg" / "labels" / "val" / "val_0.txt").write_text(
        f"1 {_polygon(0.5, 0.5, 0.2, 12)}\n2 0.3 0.3 0.1 0.1\n")
    rep = check_data(y, task="segment")
    assert [p.file.rsplit("/", 1)[-1] for p in rep.fatal] == ["val_0.txt:2"]
    assert "a box row" in rep.fatal[0].message
    rep = check_data(y)
    assert rep.ok and [p for p in rep.problems if "mix box rows and polygon rows" in p.message]


def test_class_names_as_a_list_and_a_download_script_that_is_never_run(tmp_path):
    """An older-style YAML (names a list) with a Python ``download:`` script and a missing val folder: the names
    read, the script never runs, and the check says the split is missing and why it was not fetched."""
    from yolo_attn.datasets import check_data, resolve_dataset

    root = tmp_path / "old"
    yolo_dataset(root, "coco8-seg.yaml", segment_rows(3), splits=("train",))
    marker = tmp_path / "ran"
    y = root / "data.yaml"
    y.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [person, 'traffic light', '7']\n"
                 f"download: |\n  from pathlib import Path\n  Path({str(marker)!r}).write_text('x')\n")
    ds = resolve_dataset(y)
    assert ds.names == {0: "person", 1: "traffic light", 2: "7"}
    rep = check_data(y, task="segment")
    assert not marker.exists()
    assert any("'val' path not found" in p.message and "does not run" in p.message for p in rep.fatal)


def test_a_classification_folder_with_test_and_no_val_validates_on_test(tmp_path):
    """mnist160's layout: Ultralytics validates on ``test/`` when there is no ``val/``, so the sweep's val split is
    the test folder, said in a note (not the note that suggests --eval-split test for a held-out score); class
    folders named by numbers or with spaces are classes in sorted order."""
    from yolo_attn.compare.sweep import choose_eval_split
    from yolo_attn.datasets import check_data, resolve_dataset

    root = class_folders(tmp_path / "mnist160")
    rep = check_data(root)
    assert rep.ok and rep.task == "classify" and set(rep.counts) == {"train", "test"}
    assert [p.message for p in rep.problems if "val" in p.message and p.file == str(root)] == [
        "no val/ folder: Ultralytics validates on test/"]
    ds = resolve_dataset(root)
    assert ds.names == {0: "0", 1: "1", 2: "traffic light"}
    assert ds.splits["val"] == ds.splits["test"]  # what diagnose and the sweep's scoring read
    assert ds.images("val") == ds.images("test") and len(ds.images("val")) == 9
    notes: list[str] = []
    assert choose_eval_split(ds, None, "last", notes.append) == "val"
    assert len(notes) == 1 and "no val/ folder: training validates on test/" in notes[0]
    assert choose_eval_split(ds, "test", "last", notes.append) == "test"
    with_val = class_folders(tmp_path / "imagenet10", classes=("n01440764", "n02102040"), splits=("train", "val"))
    ds = resolve_dataset(with_val)
    assert set(ds.splits) == {"train", "val"}
    with pytest.raises(ValueError, match="has no test split"):
        choose_eval_split(ds, "test", "last", notes.append)


@pytest.mark.parametrize("kpt_shape, given, expected", [
    ([17, 3], None, "coco"), ([24, 3], None, 1 / 24), ([12, 2], None, 1 / 12), ([17, 2], None, 1 / 17),
    ([21, 3], [0.05] * 21, 0.05)])
def test_the_oks_sigmas_of_each_keypoint_layout_are_ultralytics(kpt_shape, given, expected):
    """COCO's 17 sigmas only for kpt_shape [17, 3] without kpt_oks_sigmas, 1/K for any other layout, the dataset's
    own when given: Ultralytics' PoseValidator's choice."""
    from ultralytics.utils.metrics import OKS_SIGMA

    from yolo_attn.scoring.pose import oks_sigmas

    s = oks_sigmas(kpt_shape, given)
    assert s.shape == (kpt_shape[0],)
    assert np.allclose(s, OKS_SIGMA if expected == "coco" else expected)


@pytest.mark.parametrize("name", ["coco8-pose", "tiger-pose", "dota8", "coco8-seg"])
def test_import_data_yolo_keeps_each_tasks_rows_and_keypoint_keys(tmp_path, name):
    """``import-data yolo`` of an Ultralytics-layout dataset of another task: every row kept as written (17 x 3
    keypoints are an even column count, 12 x 2 an odd one that is no polygon; DOTA corners just across the border),
    the YAML's kpt_shape, flip_idx and kpt_names carried, so the import checks clean as its task. A pose row of the
    wrong width is left out, named with its file and line."""
    import yaml

    from yolo_attn.datasets import check_data, import_yolo

    src = layout(tmp_path, name).parent
    task = LAYOUTS[name][3]
    bad = src / "labels" / "train" / "train_3.txt"
    bad.write_text("0 0.5 0.5 0.2 0.2 0.5 0.5\n" if task == "pose" else "")
    rep = import_yolo(src, tmp_path / "out")
    assert rep.boxes == 2 * {"segment": 7, "pose": 5, "obb": 7}[task]
    assert rep.problems == ([f"{bad}:1: malformed label line ('0 0.5 0.5 0.2 0.2 0.5 0.5')"] if task == "pose" else [])
    data = yaml.safe_load(rep.yaml.read_text())
    shipped = yaml.safe_load(shipped_yaml(LAYOUTS[name][0], src))
    for key in ("kpt_shape", "flip_idx", "kpt_names"):
        assert data.get(key) == shipped.get(key)
    for split in ("train", "val"):
        for i in range(3):
            assert (tmp_path / "out" / "labels" / split / f"{split}_{i}.txt").read_text() == \
                   (src / "labels" / split / f"{split}_{i}.txt").read_text()
    chk = check_data(rep.yaml, task=None if task == "pose" else task)
    assert chk.ok and chk.task == task, chk.summary()


def test_kpt_oks_sigmas_of_the_wrong_length_are_refused_before_training(tmp_path):
    """Ultralytics' pose validation raises on ``kpt_oks_sigmas`` that are not one positive value per keypoint, after
    a training epoch; the check refuses it first, naming the YAML. One per keypoint checks clean."""
    from yolo_attn.datasets import check_data

    y = layout(tmp_path, "hand-keypoints")
    text = y.read_text()
    y.write_text(text + "kpt_oks_sigmas: [" + ", ".join(["0.05"] * 17) + "]\n")
    rep = check_data(y)
    assert [p.file for p in rep.fatal] == [str(y)]
    assert "kpt_oks_sigmas must be 21 positive numbers" in rep.fatal[0].message
    y.write_text(text + "kpt_oks_sigmas: [" + ", ".join(["0.05"] * 21) + "]\n")
    assert check_data(y).ok


def test_bare_names_find_the_datasets_in_ultralytics_datasets_folder(tmp_path, monkeypatch):
    """After ``yolo pose train data=coco8-pose.yaml`` or ``yolo classify train data=mnist160`` the data lies in
    Ultralytics' datasets folder: ``coco8-pose.yaml`` (the shipped YAML, ``path: coco8-pose``) and the bare
    ``mnist160`` (no shipped YAML: a class-folder dataset there) name it, as they do for Ultralytics."""
    import ultralytics.data.utils

    from yolo_attn.datasets import check_data, resolve_dataset
    from yolo_attn.datasets.check import require_data

    monkeypatch.setattr(ultralytics.data.utils, "DATASETS_DIR", tmp_path)
    monkeypatch.chdir(tmp_path / "..")
    layout(tmp_path, "coco8-pose")
    rep = check_data("coco8-pose.yaml")
    assert rep.ok and rep.task == "pose" and rep.counts["val"]["boxes"] == 5, rep.summary()
    assert resolve_dataset("coco8-pose.yaml").root == tmp_path / "coco8-pose"
    class_folders(tmp_path / "mnist160")
    rep = check_data("mnist160")
    assert rep.ok and rep.task == "classify" and rep.counts["test"]["images"] == 9, rep.summary()
    assert resolve_dataset("mnist160").root == tmp_path / "mnist160"
    assert require_data("mnist160", task="classify") == str(tmp_path / "mnist160")
    assert not check_data("imagenette").ok  # not there: the YAML lookup's message, no folder invented


def test_a_model_trained_on_grayscale_data_reads_back_and_is_fed_gray_images(tmp_path):
    """coco8-grayscale (``channels: 1``): Ultralytics builds the model with one input channel and records it in the
    model YAML; yolo_attn's safe reader rebuilt it with three (Ultralytics 8.4.190's builder takes ``ch``, not the
    YAML's), so diagnose and export-check refused every such checkpoint ("1 of another shape"), and export-check
    fed it RGB images."""
    import torch
    from ultralytics.nn.tasks import PoseModel

    from yolo_attn.deploy.check import load_images
    from yolo_attn.models import build_model, model_dict
    from yolo_attn.weights import save_model_checkpoint

    torch.manual_seed(0)
    model = PoseModel(model_dict("yolo11n-pose-se-neck.yaml"), ch=1, nc=1, verbose=False).eval()
    path = save_model_checkpoint(model, tmp_path / "gray.pt", half=False)
    back = build_model(path).eval()
    assert back.model[0].conv.weight.shape[1] == 1 and back.yaml["channels"] == 1
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[0], back(x)[0])
    img = tmp_path / "im.png"
    write_image(img, 40, 30, 3, 0)
    assert load_images([img], 32, 48, channels=1).shape == (1, 1, 32, 48)
    assert load_images([img], 32, 48).shape == (1, 3, 32, 48)


def test_diagnose_reads_the_images_of_a_channels_1_dataset_gray(tmp_path):
    """A ``channels: 1`` dataset's images reach the diagnosis as one channel, letterboxed (the model has one input
    channel); a colour dataset's as three."""
    from yolo_attn.datasets import resolve_dataset
    from yolo_attn.diagnose.data import load_split

    for sub, channels in (("gray", 1), ("rgb", 3)):
        root = tmp_path / sub
        for i in range(2):
            write_image(root / "images" / "val" / f"im{i}.png", 40, 30, 3, i)
            (root / "labels" / "val").mkdir(parents=True, exist_ok=True)
            (root / "labels" / "val" / f"im{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        y = tmp_path / f"{sub}.yaml"
        y.write_text(f"path: {root}\ntrain: images/val\nval: images/val\nchannels: {channels}\nnames: [a]\n")
        split = load_split(resolve_dataset(y), "val", 32)
        assert split.images.shape == (2, channels, 32, 32)
        assert abs(float(split.images[0, 0, 0, 0]) - 114 / 255) < 1e-6  # the letterbox padding (30/40 -> 24 rows of 32)


@pytest.mark.slow
def test_a_classify_sweep_and_its_diagnosis_on_a_folder_without_val(tmp_path):
    """mnist160's layout end to end (1 epoch at imgsz 32, 2 models x 1 seed): the sweep trains, validates on test/
    as Ultralytics does and scores the same 9 images; diagnose reads the sweep (it stopped at 'no val split')."""
    import dataclasses

    from conftest import run_compare
    from yolo_attn.diagnose import Settings, diagnose
    from yolo_attn.diagnose.sweep import sweep_inputs

    root = class_folders(tmp_path / "mnist160")
    summary = run_compare(models=["yolo11n-cls.yaml", "yolo11n-cls-se-backbone-end.yaml"], seeds=1, epochs=1,
                          imgsz=32, train_args={"batch": 3}, data=str(root), out=str(tmp_path / "sweep"),
                          progress=False, workers=0)
    assert summary.n_ok == 2 and summary.settings.task == "classify" and summary.n_eval_images == 9
    inp = sweep_inputs(tmp_path / "sweep")
    fast = dict(n_train=4, n_erf=2, n_consistency=2, n_jac=1, jac_projections=1, n_pairs=1, path_steps=3, n_boot=10)
    d = diagnose(inp.refs, inp.baseline, inp.data, dataclasses.replace(Settings(**fast), imgsz=inp.imgsz))
    assert d.task == "classify" and sorted(f.name for f in d.dataset.val.files) == sorted(
        Path(f).name for f in (root / "test").rglob("*.*"))
