"""Ultralytics' own weight names (``yolo11n.pt``) wherever yolo_attn reads a checkpoint (``pretrained=``,
``--pretrained``, ``yolo-attn transfer``), resolved as Ultralytics resolves them (_ultralytics/assets.py).

Nothing is downloaded: Ultralytics' download function is replaced by one that records the name and copies a
local checkpoint; offline (the suite sets ``YOLO_OFFLINE=1``) the error names the file and where to put it."""

from __future__ import annotations

import shutil

import pytest
from ultralytics import utils as ultralytics_utils
from ultralytics.utils import SETTINGS, downloads

from conftest import cli_output
from yolo_attn._ultralytics import stock_weights
from yolo_attn.weights import load_checkpoint


@pytest.fixture
def fake_download(monkeypatch, tmp_path, stock_ckpt):
    """Online, and Ultralytics' download writes ``stock_ckpt`` under the asked name into the working folder."""
    asked = []

    def attempt_download_asset(file, *args, **kwargs):
        asked.append(str(file))
        shutil.copy(stock_ckpt, tmp_path / str(file))
        return str(file)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(downloads, "attempt_download_asset", attempt_download_asset)
    monkeypatch.setattr(ultralytics_utils, "is_online", lambda: True)
    return asked


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    def attempt_download_asset(file, *args, **kwargs):
        raise AssertionError(f"tried to download {file}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(downloads, "attempt_download_asset", attempt_download_asset)


def test_an_asset_name_is_downloaded_by_ultralytics_and_read(fake_download, tmp_path):
    ckpt = load_checkpoint("yolo11n.pt")
    assert fake_download == ["yolo11n.pt"]
    assert ckpt.path.resolve() == (tmp_path / "yolo11n.pt").resolve() and ckpt.state_dict


def test_a_yolov5_name_becomes_its_u_successor_as_in_ultralytics(fake_download):
    assert stock_weights("yolov5n.pt").name == "yolov5nu.pt"
    assert fake_download == ["yolov5nu.pt"]


def test_a_copy_in_the_working_folder_or_the_weights_folder_is_used_without_download(no_download, tmp_path,
                                                                                  stock_ckpt, monkeypatch):
    shutil.copy(stock_ckpt, tmp_path / "yolov8n.pt")
    assert stock_weights("yolov8n.pt").resolve() == (tmp_path / "yolov8n.pt").resolve()
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(stock_ckpt, weights / "yolo11s.pt")
    monkeypatch.setitem(SETTINGS, "weights_dir", str(weights))
    assert stock_weights("yolo11s.pt") == weights / "yolo11s.pt"


def test_offline_the_error_names_the_file_and_where_to_put_it(no_download, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint("yolo11n.pt")
    text = str(err.value)
    assert text.startswith("yolo11n.pt: ") and "offline" in text and "YOLO_OFFLINE=1" in text
    assert str(tmp_path) in text and str(SETTINGS["weights_dir"]) in text
    assert "https://github.com/ultralytics/assets/releases/" in text and text.count("yolo11n.pt") >= 3


def test_other_missing_names_are_missing_files(no_download):
    for name in ("nosuch.pt", "sub/yolo11n.pt"):
        with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
            load_checkpoint(name)


def test_a_failed_download_says_where_to_put_the_file(monkeypatch, tmp_path):
    def attempt_download_asset(file, *args, **kwargs):
        raise ConnectionError("Download failure for yolo11n.pt")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(downloads, "attempt_download_asset", attempt_download_asset)
    monkeypatch.setattr(ultralytics_utils, "is_online", lambda: True)
    with pytest.raises(FileNotFoundError, match=r"yolo11n.pt: downloading .* failed \(Download failure"):
        stock_weights("yolo11n.pt")


def test_transfer_command_takes_an_asset_name(fake_download, capsys, tmp_path):
    rc, out = cli_output(capsys, "transfer", "yolov8n.pt", "yolov5n-se-backbone-end.yaml", "-o", tmp_path / "se.pt")
    assert rc == 0, out
    assert fake_download == ["yolov8n.pt"] and (tmp_path / "se.pt").is_file()


def test_compare_and_study_pretrained_take_an_asset_name(fake_download, tmp_path):
    from yolo_attn.commands.compare import stock_weights_path

    assert stock_weights_path("yolo11n.pt") == "yolo11n.pt" and fake_download == ["yolo11n.pt"]
    assert stock_weights_path(None) is None
