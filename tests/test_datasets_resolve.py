"""The one dataset resolver: Ultralytics' rules for every layout, no download: ever run, bounded listing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from yolo_attn.cli import main
from yolo_attn.datasets import DatasetError, ListingError, check_data, files, resolve_dataset


def _img(path: Path, w=32, h=32, seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _pair(images: Path, name: str, label="0 0.5 0.5 0.4 0.4\n", seed=0) -> Path:
    img = _img(images / f"{name}.jpg", seed=seed)
    lbl = Path(str(images).replace("images", "labels")) / f"{name}.txt"
    lbl.parent.mkdir(parents=True, exist_ok=True)
    lbl.write_text(label)
    return img


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# download: entries never run
# --------------------------------------------------------------------------------------------
def _download_yamls(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Dataset YAMLs whose splits are missing and whose download: would create a marker file."""
    out = {}
    py_marker, sh_marker = tmp_path / "MARKER_PY", tmp_path / "MARKER_SH"
    script = tmp_path / "script.sh"
    script.write_text(f"touch {sh_marker}\n")
    base = {"path": str(tmp_path / "absent"), "train": "images/train", "val": "images/val", "names": ["a"]}
    out["python"] = (_write(tmp_path / "py.yaml", {**base, "download": f"open({str(py_marker)!r}, 'w').write('ran')\n"}),
                     py_marker)
    out["bash"] = (_write(tmp_path / "sh.yaml", {**base, "download": f"bash {script}"}), sh_marker)
    return out


@pytest.fixture(params=["python", "bash"])
def download_yaml(request, tmp_path):
    return _download_yamls(tmp_path)[request.param]


def test_resolver_never_runs_download(download_yaml):
    y, marker = download_yaml
    ds = resolve_dataset(y)
    assert ds.download and "download" not in yaml.safe_load(ds.yaml.read_text())
    assert "does not run" in ds.missing_message("val")
    rep = check_data(y)
    assert not rep.ok and any("download: entry" in p.message for p in rep.fatal)
    assert not marker.exists()


def test_cli_commands_never_run_download(download_yaml, tmp_path, capsys):
    y, marker = download_yaml
    assert main(["check-data", str(y)]) == 1
    assert main(["train", "model=yolov5n.yaml", f"data={y}", "epochs=1", f"project={tmp_path / 'runs'}"]) == 1
    assert "download: entry" in capsys.readouterr().err
    assert main(["compare", "--data", str(y), "--models", "yolov5n.yaml", "--seeds", "1", "--epochs", "1",
                 "--out", str(tmp_path / "cmp")]) == 1
    assert main(["diagnose", "--models", "yolov5n.yaml", "--data", str(y), "--out", str(tmp_path / "diag")]) == 1
    assert main(["study", "capacity", "--data", str(y), "--seeds", "1", "--epochs", "1", "--out",
                 str(tmp_path / "study"), "--quiet"]) == 1
    assert not marker.exists()


def test_train_trust_lets_ultralytics_run_download(tmp_path, capsys):
    y, marker = _download_yamls(tmp_path)["python"]
    assert main(["train", "model=yolov5n.yaml", f"data={y}", "epochs=1", "--trust", f"project={tmp_path / 'r'}"]) == 1
    assert marker.exists()  # the user said --trust; the download made no images, so the check still fails


def test_compare_copy_has_no_download(tmp_path):
    from yolo_attn.compare.sweep import _checked_data

    root = tmp_path / "ds"
    _pair(root / "images" / "train", "a")
    _pair(root / "images" / "val", "b", seed=1)
    y = _write(tmp_path / "d.yaml", {"path": str(root), "train": "images/train", "val": "images/val", "names": ["a"],
                                     "download": "import os; os.system('touch SHOULD_NOT_EXIST')"})
    ds = _checked_data(str(y), tmp_path / "out", lambda s: None)
    copy, names = ds.yaml, ds.names
    data = yaml.safe_load(copy.read_text())
    assert copy.parent == tmp_path / "out" and "download" not in data and names == {0: "a"}
    assert data["train"] == str(root / "images" / "train")


# --------------------------------------------------------------------------------------------
# Layouts: yolo_attn's resolution and listing == Ultralytics' check_det_dataset + loader listing
# --------------------------------------------------------------------------------------------
def _layout(tmp_path: Path, kind: str) -> Path:
    """Build one dataset layout under tmp_path/w; return its YAML (the cwd is tmp_path/cwd)."""
    w = tmp_path / "w"
    if kind == "roboflow":  # my-export/data.yaml, train: ../train/images, no path:
        for i, s in enumerate(("train", "valid", "test")):
            _pair(w / "export" / s / "images", f"{s}0", seed=i)
        return _write(w / "export" / "data.yaml", {"train": "../train/images", "val": "../valid/images",
                                                   "test": "../test/images", "nc": 1, "names": ["fish"]})
    if kind == "relative-path-cwd":  # path: relative to the working directory (Ultralytics' rule)
        _pair(tmp_path / "cwd" / "ds" / "images" / "train", "a")
        _pair(tmp_path / "cwd" / "ds" / "images" / "val", "b", seed=1)
        return _write(w / "cfg" / "d.yaml", {"path": "ds", "train": "images/train", "val": "images/val", "names": ["a"]})
    d = w / "ds"
    _pair(d / "images" / "train", "a")
    _pair(d / "images" / "train" / "sub", "a2", seed=2)
    _pair(d / "images" / "val", "b", seed=1)
    _pair(d / "images" / "extra", "c", seed=3)
    base = {"path": str(d), "train": "images/train", "val": "images/val", "names": {0: "a", 1: "b"}}
    table = {
        "absolute-path": base,
        "no-path-yaml-beside": {k: v for k, v in base.items() if k != "path"},
        "list-of-folders": {**base, "train": ["images/train", "images/extra"]},
        "txt-list": {**base, "train": "train.txt"},
        "names-list": {**base, "names": ["a", "b"], "nc": 2},
        "nc-only": {k: v for k, v in {**base, "nc": 3}.items() if k != "names"},
        "test-present": {**base, "test": "images/extra"},
        "validation-key": {k: v for k, v in {**base, "validation": "images/val"}.items() if k != "val"},
        "bad-names-gap": {**base, "names": {0: "a", 5: "b"}},
        "bad-nc-mismatch": {**base, "names": ["a", "b"], "nc": 3},
        "bad-val-missing": {**base, "val": "images/nothing"},
    }
    if kind == "txt-list":
        (d / "train.txt").write_text("./images/train/a.jpg\n" + str(d / "images/extra/c.jpg") + "\n")
    return _write(d / "data.yaml", table[kind])


LAYOUTS = ["roboflow", "relative-path-cwd", "absolute-path", "no-path-yaml-beside", "list-of-folders", "txt-list",
           "names-list", "nc-only", "test-present", "validation-key", "bad-names-gap", "bad-nc-mismatch",
           "bad-val-missing"]


@pytest.mark.parametrize("kind", LAYOUTS)
def test_layout_resolves_as_ultralytics(tmp_path, monkeypatch, kind):
    from yolo_attn._ultralytics import check_dataset_yaml

    y = _layout(tmp_path, kind)
    (tmp_path / "cwd").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / "cwd")
    try:
        theirs = check_dataset_yaml(y)
    except (SyntaxError, KeyError, FileNotFoundError, TypeError) as exc:
        theirs = exc
    rep = check_data(y)
    assert rep.ok != isinstance(theirs, Exception), f"Ultralytics: {theirs!r:.300}\ncheck-data: {rep.summary()}"
    if isinstance(theirs, Exception):  # refused by both: nothing more to compare
        assert kind.startswith("bad-")
    else:
        _same_files(tmp_path, monkeypatch, y, theirs)


def _same_files(tmp_path, monkeypatch, y, theirs):
    from yolo_attn._ultralytics import check_dataset_yaml, ultralytics_image_files

    ds = resolve_dataset(y)
    assert ds.names == theirs["names"]
    splits = [s for s in ("train", "val", "test") if theirs.get(s)]
    assert sorted(ds.splits) == sorted(splits)
    for s in splits:
        ours = ds.images(s)
        assert ours == ultralytics_image_files(theirs[s]) and ours, s
    # the checked copy Ultralytics is given resolves to the same folders from any working directory
    monkeypatch.chdir(tmp_path)
    again = check_dataset_yaml(ds.yaml)
    assert all(again[s] == theirs[s] for s in splits)


def test_relative_path_beside_the_yaml_is_a_noted_extension(tmp_path, monkeypatch):
    """Ultralytics looks for a relative path: in the cwd and its datasets folder only; yolo_attn also tries the
    YAML's folder, says so, and writes the folder into the copy, so training reads the same files."""
    from yolo_attn._ultralytics import check_dataset_yaml

    _pair(tmp_path / "root" / "images" / "train", "a")
    _pair(tmp_path / "root" / "images" / "val", "b", seed=1)
    y = _write(tmp_path / "sub" / "d.yaml", {"path": "../root", "train": "images/train", "val": "images/val",
                                             "names": ["a"]})
    monkeypatch.chdir(tmp_path / "root" / "images")  # ../root from here does not exist
    with pytest.raises(FileNotFoundError):
        check_dataset_yaml(y)
    ds = resolve_dataset(y)
    assert ds.root == tmp_path / "root" and "YAML's folder" in ds.notes[0]
    assert Path(check_dataset_yaml(ds.yaml)["train"]) == tmp_path / "root" / "images" / "train"


def test_names_gap_refused_with_the_file(tmp_path):
    y = _layout(tmp_path, "bad-names-gap")
    with pytest.raises(DatasetError, match=f"{y}.*class indices"):
        resolve_dataset(y)


def test_aquarium_export_resolves_unedited():
    y = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "aquarium" / "data.yaml"
    if not y.is_file():
        pytest.skip("the shared aquarium export is not on this machine")
    ds = resolve_dataset(y)
    assert ds.splits["train"] == (y.parent / "train" / "images",) and len(ds.images("val")) == 127


# --------------------------------------------------------------------------------------------
# Bounded listing
# --------------------------------------------------------------------------------------------
def test_split_reaching_proc_is_refused(tmp_path):
    """path: / with train: . would walk the whole machine (and /proc's loops); the walk refuses /proc."""
    if not Path("/proc/self/mounts").is_file():
        pytest.skip("no /proc on this system")
    d = tmp_path / "d"
    d.mkdir()
    os.symlink("/proc", d / "proc")
    _img(d / "x.jpg")
    with pytest.raises(ListingError, match="proc pseudo filesystem"):
        files.image_files(d, ".", what="'train'")
    y = _write(tmp_path / "d.yaml", {"path": str(d), "train": ".", "val": ".", "names": ["a"]})
    rep = check_data(y)
    assert not rep.ok and any("pseudo filesystem" in p.message for p in rep.fatal)


def test_walk_stops_at_its_bounds_and_reports_progress(tmp_path, monkeypatch, capsys):
    d = tmp_path / "many"
    for i in range(30):
        (d / f"f{i}").mkdir(parents=True)
        for j in range(300):
            (d / f"f{i}" / f"n{j}.txt").touch()
    monkeypatch.setattr(files, "PROGRESS_SECONDS", 0.0)
    assert files.image_files(d, ".") == []
    assert "[datasets] listing" in capsys.readouterr().err
    monkeypatch.setattr(files, "MAX_WALK_ENTRIES", 5000)
    with pytest.raises(ListingError, match="stopped listing .* after"):
        files.image_files(d, ".", what="'train'")


def test_an_undeclared_split_is_named_not_a_key_error(tmp_path):
    """The ``../train/images`` export layout without a test split: asking for ``test`` names the YAML and its splits."""
    root = tmp_path / "export"
    _pair(root / "train" / "images", "a")
    _pair(root / "valid" / "images", "b")
    y = _write(root / "data.yaml", {"train": "../train/images", "val": "../valid/images", "nc": 1, "names": ["x"]})
    ds = resolve_dataset(y)
    assert len(ds.images("train")) == 1 and len(ds.images("val")) == 1
    with pytest.raises(DatasetError, match=r"data\.yaml: no 'test' split \(it declares train, val\)"):
        ds.images("test")
