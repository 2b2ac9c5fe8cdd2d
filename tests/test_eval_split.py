"""A test split that selection never sees: ``compare --eval-split`` and the search's confirmation on test images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from test_studies import FakeCompare
from yolo_attn.compare import ConfigMismatch
from conftest import run_compare
from yolo_attn.compare.sweep import choose_eval_split
from yolo_attn.datasets import resolve_dataset
from yolo_attn.studies.search import Search, SearchOptions


def _shapes_with_test(base: Path, n_train=16, n_val=6, n_test=5) -> Path:
    """The shapes generator's train/val, and a test split from another seed's images (disjoint from both)."""
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    ds = base / "tiny"
    write_dataset(ds, ShapesConfig(n_train=n_train, n_val=n_val, imgsz=64, min_size=14, max_size=40), base / "tiny.yaml")
    other = base / "other"
    write_dataset(other, ShapesConfig(seed=7, n_train=1, n_val=n_test, imgsz=64, min_size=14, max_size=40),
                  base / "other.yaml")
    for kind in ("images", "labels"):
        shutil.copytree(other / kind / "val", ds / kind / "test")
    y = base / "tiny-test.yaml"
    y.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val", "test": "images/test",
                                 "names": {0: "circle", 1: "square", 2: "triangle", 3: "cross"}}))
    return y


@pytest.fixture(scope="module")
def tiny_test(tmp_path_factory) -> Path:
    return _shapes_with_test(tmp_path_factory.mktemp("evalsplit"))


def test_eval_split_choice_note_and_refusal(tiny_test, tmp_path):
    notes = []
    ds = resolve_dataset(tiny_test, tmp_path)
    assert choose_eval_split(ds, None, "last", notes.append) == "val"
    assert len(notes) == 1 and "has a test split" in notes[0] and "--eval-split test" in notes[0]
    assert choose_eval_split(ds, "test", "last", notes.append) == "test" and len(notes) == 1
    no_test = tmp_path / "no-test.yaml"
    no_test.write_text(tiny_test.read_text().replace("test: images/test\n", ""))
    ds2 = resolve_dataset(no_test, tmp_path)
    assert choose_eval_split(ds2, None, "last", notes.append) == "val" and len(notes) == 1  # nothing to suggest
    with pytest.raises(ValueError, match="has no test split"):
        choose_eval_split(ds2, "test", "last", notes.append)


class _Recording(FakeCompare):
    def __call__(self, request, run, report=None):
        res = super().__call__(request, run, report)
        self.calls[-1]["eval_split"] = request.eval_split
        res.n_eval_images = 5
        return res


def _search(tmp_path, data, fake):
    opts = SearchOptions(layers=["SE", "CBAM"], placements=["neck", "sppf"], data=str(data), out=str(tmp_path / "s"),
                         progress=False)
    return Search(opts, compare_fn=fake).run()


def test_search_confirms_on_the_test_split(tiny_test, tmp_path, capsys):
    fake = _Recording({"se-neck": 0.05, "cbam-neck": 0.03})
    res = _search(tmp_path, tiny_test, fake)
    rungs = [c for c in fake.calls if "rung" in c["out"]]
    conf = [c for c in fake.calls if c["out"].endswith("confirm")]
    assert rungs and all(c["eval_split"] is None for c in rungs)  # selection ranks on val
    assert len(conf) == 1 and conf[0]["eval_split"] == "test"
    assert res["data"]["confirmation_split"] == "test"
    assert "scored on the 5 test images (selection ranked on the validation images, never on these)" in res["md"]


def test_search_without_a_test_split_says_so(tiny_test, tmp_path):
    no_test = tmp_path / "no-test.yaml"
    no_test.write_text(tiny_test.read_text().replace("test: images/test\n", ""))
    fake = _Recording({"se-neck": 0.05})
    res = _search(tmp_path, no_test, fake)
    assert all(c["eval_split"] is None for c in fake.calls)
    assert res["data"]["confirmation_split"] == "val" and "--test-fraction" in res["md"]


@pytest.mark.slow
def test_compare_scores_the_test_split(tiny_test, tmp_path):
    out = tmp_path / "cmp"
    kw = dict(data=str(tiny_test), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=64, n_boot=50, threads=1,
              progress=False)
    summary = run_compare(out=str(out), eval_split="test", **kw)
    assert summary.n_ok == 1
    assert summary.settings.eval_split == "test" and summary.n_eval_images == 5  # 5 test, 6 val images
    rec = json.loads((out / "trials.jsonl").read_text().splitlines()[-1])
    assert rec["n_val_images"] == 5
    md = (out / "summary.md").read_text()
    assert "Scored on the **test** split (5 images)" in md
    config = json.loads((out / "config.json").read_text())
    assert config["eval_split"] == "test" and config["data"]["test"]["images"] == 5
    with pytest.raises(ConfigMismatch, match="eval_split"):  # resuming with another split is a settings change
        run_compare(out=str(out), **kw)
