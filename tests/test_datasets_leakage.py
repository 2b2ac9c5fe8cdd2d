"""check-data's label and leakage checks: tiny boxes, empty label files counted, near-duplicates across splits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from yolo_attn.datasets import check_data
from yolo_attn.datasets.near_duplicates import dhash, near_duplicates


def _scene(seed: int, size=(160, 120)) -> np.ndarray:
    """A smooth random picture (a coarse random grid, enlarged): distinct seeds give unrelated scenes."""
    coarse = np.random.default_rng(seed).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)


def _save(path: Path, img: np.ndarray, label: str = "0 0.5 0.5 0.3 0.3\n", quality=95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    lbl = Path(str(path).replace("/images/", "/labels/")).with_suffix(".txt")
    lbl.parent.mkdir(parents=True, exist_ok=True)
    lbl.write_text(label)


def _yaml(root: Path, **extra) -> Path:
    y = root / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val", "names": ["a"],
                                 **extra}))
    return y


def test_dhash_separates_copies_from_other_scenes(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.png"
    cv2.imwrite(str(a), _scene(1))
    cv2.imwrite(str(b), cv2.resize(np.clip(_scene(1).astype(int) + 12, 0, 255).astype(np.uint8), (400, 300)))
    others = []
    for s in range(2, 12):
        cv2.imwrite(str(tmp_path / f"o{s}.jpg"), _scene(s))
        others.append(str(tmp_path / f"o{s}.jpg"))
    ha, hb = dhash(str(a)), dhash(str(b))
    assert np.unpackbits(ha ^ hb).sum() <= 16  # brighter, enlarged, re-encoded: nearly the same bits
    found = near_duplicates([str(a)] + others, "val", [str(b)] + [str(tmp_path / "x.jpg")])
    assert [(Path(e).name, Path(t).name) for e, t, _ in found.pairs] == [("b.png", "a.jpg")] and found.checked == 1


def test_check_data_reports_near_duplicates_tiny_boxes_and_counts(tmp_path):
    root = tmp_path / "d"
    for s in range(8):
        _save(root / "images" / "train" / f"t{s}.jpg", _scene(s))
    _save(root / "images" / "train" / "empty0.jpg", _scene(50), label="")
    for i in range(7):  # more empty label files than the summary prints one by one
        _save(root / "images" / "train" / f"empty{i + 1}.jpg", _scene(60 + i), label="")
    _save(root / "images" / "val" / "copy_of_t3.jpg", cv2.resize(_scene(3), (200, 150)), quality=70)
    _save(root / "images" / "val" / "new.jpg", _scene(100), label="0 0.5 0.5 0.3 0.3\n0 0.2 0.2 0 0.1\n")
    _save(root / "images" / "test" / "tiny.jpg", _scene(101), label="0 0.5 0.5 0.004 0.3\n")
    rep = check_data(_yaml(root, test="images/test"))
    assert rep.ok, rep.summary()
    assert rep.near_duplicates == {"val": 1, "test": 0}
    near = [p for p in rep.problems if p.kind == "near-duplicate"]
    assert len(near) == 1 and "1 of 2 'val' images" in near[0].message and "copy_of_t3.jpg ~ t3.jpg" in near[0].message
    assert rep.counts["train"]["empty"] == 8 and rep.counts["val"]["tiny"] == 1 and rep.counts["test"]["tiny"] == 1
    assert any(p.kind == "sub-pixel box" and "0.64 x 36.00 px" in p.message for p in rep.problems)
    text = rep.summary()
    assert "... 3 more: empty label file (8 in all" in text and text.count("empty label file (image used") == 5
    assert "train: 16 images, 8 boxes, 8 with labels, 8 empty label files" in text


def test_unlisted_test_folder_is_mentioned(tmp_path):
    root = tmp_path / "export"
    for split in ("train", "valid", "test"):
        _save(root / split / "images" / f"{split}.jpg", _scene(len(split)))
    y = root / "data.yaml"
    y.write_text("train: ../train/images\nval: ../valid/images\nnames: [a]\n")
    rep = check_data(y, check_images=False)
    assert rep.ok and any("names no test split" in p.message and "test: test/images" in p.message
                          for p in rep.problems)
