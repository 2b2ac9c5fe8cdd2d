"""check-data reads exactly what Ultralytics trains on (symlinks, loops, lists) and flags val == train."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from PIL import Image

from yolo_attn.cli import main
from yolo_attn.compare.contract import SweepConfig
from yolo_attn.compare.report import summarize
from yolo_attn.compare.store import Store
from yolo_attn.datasets import IMG_FORMATS, check_data, image_files, image_size


def _img(path: Path, w=64, h=48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), (90, 160, 30), np.uint8)).save(path)
    return path


def _pair(root: Path, split: str, name: str, label: str = "0 0.5 0.5 0.2 0.2\n") -> None:
    _img(root / "images" / split / f"{name}.jpg")
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split / f"{name}.txt").write_text(label)


def _yaml(root: Path, train="images/train", val="images/val") -> Path:
    y = root / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(root), "train": train, "val": val, "names": {0: "a", 1: "b"}}))
    return y


def _find(rep, severity, fragment):
    return [p for p in rep.problems if p.severity == severity and fragment in p.message]


def test_listing_matches_ultralytics(tmp_path):
    """The split listing is Ultralytics' own: symlinked folders followed, loops repeated, .txt lists, suffix case."""
    from yolo_attn._ultralytics import ultralytics_image_files

    root = tmp_path / "d"
    _img(root / "images" / "train" / "a.jpg")
    _img(root / "images" / "train" / "deep" / "b.PNG")
    (root / "images" / "train" / "notes.txt").write_text("not an image")
    _img(tmp_path / "elsewhere" / "images" / "c.jpg")
    os.symlink(tmp_path / "elsewhere" / "images", root / "images" / "train" / "linked")
    os.symlink(root / "images" / "train", root / "images" / "train" / "deep" / "loop")
    lst = root / "list.txt"
    lst.write_text(f"./images/train/a.jpg\n{root / 'images/train/deep/b.PNG'}\n")
    for spec in ("images/train", "list.txt", ["images/train/deep", "list.txt"]):
        ours = image_files(root, spec)
        theirs = ultralytics_image_files([str(root / s) for s in spec] if isinstance(spec, list) else str(root / spec))
        assert ours == theirs and len(ours) >= 2
    assert len(image_files(root, "images/train")) > 10  # the loop lists a.jpg once per level
    from ultralytics.data.utils import IMG_FORMATS as ULTRA

    assert IMG_FORMATS == ULTRA


def test_symlinked_subfolder_is_checked(tmp_path):
    """A corrupt image and a bad class id in a symlinked subfolder are found."""
    root = tmp_path / "d"
    _pair(root, "train", "ok")
    _pair(root, "val", "v")
    extra = tmp_path / "extra"
    _img(extra / "images" / "bad_class.jpg")
    (extra / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (extra / "labels").mkdir()
    (extra / "labels" / "bad_class.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    (extra / "labels" / "corrupt.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    os.symlink(extra / "images", root / "images" / "train" / "more")
    os.symlink(extra / "labels", root / "labels" / "train" / "more")
    rep = check_data(_yaml(root))
    assert [p.file for p in _find(rep, "fatal", "unknown class id 7")] == [str(root / "labels/train/more/bad_class.txt:1")]
    assert [p.file for p in _find(rep, "fatal", "unreadable image")] == [str(root / "images/train/more/corrupt.jpg")]
    assert rep.counts["train"]["images"] == 3


def test_symlink_loop_fails_and_train_link_to_val_is_overlap(tmp_path):
    root = tmp_path / "d"
    _pair(root, "train", "t")
    _pair(root, "val", "v")
    os.symlink(root / "images" / "train", root / "images" / "train" / "again")  # a loop
    rep = check_data(_yaml(root))
    assert _find(rep, "fatal", "directory symlink loop") and not rep.ok
    root2 = tmp_path / "d2"
    _pair(root2, "train", "t")
    _pair(root2, "val", "v")
    os.symlink(root2 / "images" / "val", root2 / "images" / "train" / "val")  # validation images trained on
    os.symlink(root2 / "labels" / "val", root2 / "labels" / "train" / "val")
    rep = check_data(_yaml(root2))
    assert rep.ok and rep.val_overlap == 1.0 and _find(rep, "warning", "VALIDATION = TRAINING")


def test_val_equal_to_train_is_recorded_for_compare(tmp_path):
    """coco128's convention (val = train) is a loud warning, a check field and a summary warning."""
    root = tmp_path / "d"
    for i in range(4):
        _pair(root, "train", f"t{i}")
    _pair(root, "val", "v0")
    rep = check_data(_yaml(root, val="images/train"))
    assert rep.ok and rep.val_overlap == 1.0 and rep.as_dict()["val_overlap"] == 1.0
    store = Store(tmp_path / "sweep")
    (store.root / "data_check.json").write_text(json.dumps(rep.as_dict()))
    config = SweepConfig(settings_hash="x", data_fingerprint={}, epochs=1, imgsz=64, models=[{"name": "m"}], seeds=[0])
    summary = summarize(store, config)
    assert any("VALIDATION = TRAINING" in w for w in summary.warnings)
    _pair(root, "val", "t0")  # a validation file that is a copy is not the same file
    (root / "val.txt").write_text("./images/val/v0.jpg\n./images/val/t0.jpg\n./images/train/t1.jpg\n")
    part = check_data(_yaml(root, val="val.txt"))
    assert part.val_overlap == pytest.approx(1 / 3) and _find(part, "warning", "1 of 3 validation images")
    (store.root / "data_check.json").write_text(json.dumps(part.as_dict()))
    assert any("33% of the validation images" in w for w in summarize(store, config).warnings)
    assert check_data(_yaml(root)).val_overlap == 0.0


def test_broken_images_get_a_message_and_never_a_pip_install(tmp_path, capsys):
    """A zero-byte JPEG was reported as "No module named 'pi_heif'" after a pip-install attempt."""
    import ultralytics.utils.patches  # noqa: F401  (the Pillow patch is active, as under compare)
    from ultralytics.utils import checks

    root = tmp_path / "d"
    _pair(root, "train", "ok")
    _pair(root, "val", "v")
    _pair(root, "train", "empty")
    (root / "images" / "train" / "empty.jpg").write_bytes(b"")
    _pair(root, "train", "garbage")
    (root / "images" / "train" / "garbage.jpg").write_bytes(os.urandom(300))
    _pair(root, "train", "tiny")
    _img(root / "images" / "train" / "tiny.jpg", w=8, h=40)
    with mock.patch.object(checks, "check_requirements", side_effect=AssertionError("pip install attempted")) as cr:
        rep = check_data(_yaml(root))
        assert main(["check-data", str(root / "data.yaml")]) == 1
    assert not cr.called
    msgs = {Path(p.file).name: p.message for p in rep.fatal}
    assert msgs["empty.jpg"] == "unreadable image: empty file (0 bytes)"
    assert msgs["garbage.jpg"].startswith("unreadable image: UnidentifiedImageError")
    assert "8x40 pixels" in msgs["tiny.jpg"] and len(msgs) == 3
    assert "pi_heif" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="0 bytes"):
        image_size(root / "images" / "train" / "empty.jpg")


def test_bridge_assumptions_for_datasets():
    """What the bridge's dataset functions (yolo_attn/_ultralytics/data.py) assume about the installed Ultralytics."""
    import inspect

    from PIL import Image
    from ultralytics.data import base
    from ultralytics.utils import patches

    from yolo_attn._ultralytics import pil_open

    if hasattr(patches, "image_open"):  # Ultralytics versions whose Image.open installs a HEIF plugin on failure
        assert Image.open is patches.image_open  # active once Ultralytics is imported
        assert pil_open() is patches._image_open and pil_open() is not Image.open
    else:  # older versions (8.4.0) leave Pillow's open alone: it is what pil_open gives
        assert pil_open() is Image.open
    src = inspect.getsource(base.BaseDataset.get_img_files)
    assert "self.prefix" in src and "self.fraction" in src and "check_file_speeds" in src


def test_listed_missing_image_is_fatal_and_shared_files_reported_once(tmp_path):
    root = tmp_path / "d"
    _pair(root, "train", "t", label="0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")  # a duplicate line: one warning
    (root / "list.txt").write_text("./images/train/t.jpg\n./images/train/gone.jpg\n")
    rep = check_data(_yaml(root, val="list.txt"), check_images=False)
    assert [p.file for p in _find(rep, "fatal", "does not exist")] == [str(root / "images/train/gone.jpg")]
    assert len(_find(rep, "warning", "duplicate label line")) == 1
    assert rep.counts["val"] == {"images": 2, "boxes": 2, "labelled": 1, "empty": 0, "missing": 0, "tiny": 0}
    assert rep.val_overlap == 0.5
