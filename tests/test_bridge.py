"""The assumptions the bridge (``yolo_attn/_ultralytics/``) makes about Ultralytics internals, checked on the INSTALLED version.

If one of these fails after an Ultralytics upgrade, the bridge needs updating before anything else is trusted.
"""

from __future__ import annotations

import dis
import inspect
import re
from pathlib import Path

import pytest
import torch
import ultralytics
import ultralytics.nn.tasks as tasks

import yolo_attn
from yolo_attn import _ultralytics as bridge
from yolo_attn._ultralytics import _core

from conftest import BLOCKS, PRESERVE, seeded

VERSION = ultralytics.__version__
PARSE = _core._ORIGINAL_PARSE_MODEL
SAFE_LOAD = _core._ORIGINAL_SAFE_LOAD


def _hint(what: str) -> str:
    return f"ultralytics {VERSION}: {what}; yolo_attn/_ultralytics/ must be updated for this version"


def _global_names(fn) -> set[str]:
    """Global names a function's code loads (including nested code objects)."""
    names, todo = set(), [fn.__code__]
    while todo:
        code = todo.pop()
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
        todo.extend(c for c in code.co_consts if hasattr(c, "co_code"))
    return names


def test_installed_version_is_in_the_supported_range():
    from packaging.specifiers import SpecifierSet

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    spec = re.search(r'"ultralytics([^"]+)"', pyproject).group(1)
    assert VERSION in SpecifierSet(spec), f"ultralytics {VERSION} is outside pyproject's range {spec}"


def test_parse_model_locals_the_bridge_reads_and_writes():
    code = PARSE.__code__
    varnames = set(code.co_varnames) | set(code.co_cellvars)  # 'i' is a cell: a generator expression uses it
    missing = [n for n in bridge.PARSE_MODEL_LOCALS if n not in varnames]
    assert not missing, _hint(f"parse_model has no local variable(s) {missing}")


def test_parse_model_resolves_names_through_module_globals():
    assert PARSE.__module__ == "ultralytics.nn.tasks"
    assert "globals" in _global_names(PARSE), _hint("parse_model no longer resolves layer names with globals()[m]")
    src = inspect.getsource(PARSE)
    assert re.search(r"globals\(\)\[m\]", src), _hint("parse_model no longer resolves layer names with globals()[m]")
    # for unknown (non-Ultralytics) layers: c2 = ch[f] before the call, ch.append(c2) after it
    assert re.search(r"else:\s*\n\s*c2 = ch\[f\]", src), _hint("the fallback branch no longer sets c2 = ch[f]")
    assert src.index("c2 = ch[f]\n") < src.index("m(*args)") < src.index("ch.append(c2)"), _hint(
        "parse_model no longer records the channels after building a layer"
    )


def test_models_call_parse_model_and_torch_safe_load_by_global_name():
    assert "parse_model" in _global_names(tasks.DetectionModel.__init__) | _global_names(
        getattr(tasks, "_initialize_yolo_model", tasks.DetectionModel.__init__)
    ), _hint("DetectionModel does not call the module-level parse_model")
    assert "torch_safe_load" in _global_names(tasks.load_checkpoint), _hint(
        "load_checkpoint does not call the module-level torch_safe_load"
    )


def test_torch_safe_load_signature_and_auto_install():
    params = list(inspect.signature(SAFE_LOAD).parameters)
    assert params[0] == "weight", _hint(f"torch_safe_load signature is {params}")
    assert "safe_only" in params
    if "check_requirements" not in _global_names(SAFE_LOAD):
        pytest.skip(f"ultralytics {VERSION} no longer auto-installs missing modules; the guard is moot")


def test_bridge_is_installed():
    assert tasks.parse_model is bridge.parse_model
    assert tasks.torch_safe_load is bridge.torch_safe_load
    assert getattr(tasks.check_requirements, "_yolo_attn_guard", False)
    for name in yolo_attn.LAYERS.names():
        entry = vars(tasks)[name]
        assert isinstance(entry, type) and issubclass(entry, torch.nn.Module)  # restricted parse_model accepts it
        assert entry.yolo_attn_spec.name == name
    yolo_attn.install()  # idempotent
    assert tasks.parse_model is bridge.parse_model


def test_weights_only_allow_list_has_every_module_class():
    allowed = set(torch.serialization.get_safe_globals())
    for spec in yolo_attn.LAYERS:
        assert spec.cls in allowed, f"{spec.name} is not allow-listed for torch.load(weights_only=True)"


def test_restricted_loading_api_when_present():
    safe = getattr(tasks, "_SafeLoad", None)
    if safe is None:
        pytest.skip(f"ultralytics {VERSION} has no _SafeLoad (ULTRALYTICS_SAFE_LOAD does not exist there)")
    assert hasattr(safe, "loading") and hasattr(safe, "restricted")


def test_frame_local_write_takes_this_interpreters_branch():
    """The bridge writes a local of the running parse_model frame; how depends on the interpreter (only the branch
    of the Python running the tests is exercised: CI runs 3.11, so the 3.13+ proxy branch is untested there)."""
    import sys

    def running_frame_with_local():
        c2 = 1
        how = bridge.write_frame_local(sys._getframe(), "c2", 5)
        return how, c2  # read after the write: the frame's own variable, not a copy

    expected = "proxy" if sys.version_info >= (3, 13) else "fast"
    assert bridge.FRAME_LOCALS_PROXY == (sys.version_info >= (3, 13))
    assert running_frame_with_local() == (expected, 5)


def test_ultralytics_config_file_names_ultralytics_own_file():
    assert bridge.ultralytics_config_file("yolov5.yaml") == "ultralytics/cfg/models/v5/yolov5.yaml"
    assert bridge.ultralytics_config_file("yolo11.yaml") == "ultralytics/cfg/models/11/yolo11.yaml"
    for not_theirs in ("yolov5-se-neck.yaml", "no-such-model.yaml"):  # a yolo_attn config, an unknown name
        with pytest.raises(FileNotFoundError, match=not_theirs):
            bridge.ultralytics_config_file(not_theirs)


def test_entry_called_outside_parse_model_is_a_clear_error():
    name = PRESERVE[0].name
    with pytest.raises(RuntimeError, match="outside Ultralytics' parse_model"):
        vars(tasks)[name]()


def test_block_layer_that_changes_channels_feeds_the_next_layer(tmp_path):
    """The bridge writes parse_model's ``c2`` so a following Ultralytics layer gets the block's real channels."""
    import yaml
    from ultralytics.nn.tasks import DetectionModel

    spec = next(s for s in BLOCKS if s.name == "C3Attn")  # the C3 layout (cv3) is read below
    d = {
        "nc": 2,
        "depth_multiple": 0.33,
        "width_multiple": 0.25,
        "backbone": [
            [-1, 1, "Conv", [64, 3, 2]],
            [-1, 3, spec.name, [256]],  # 16 -> 64 channels
            [-1, 1, "Conv", [128, 3, 2]],
            [-1, 1, "Conv", [256, 3, 2]],
        ],
        "head": [[[1, 2, 3], 1, "Detect", ["nc"]]],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    seeded(0)
    model = DetectionModel(str(path), verbose=False)
    assert model.model[1].cv3.conv.out_channels == 64
    assert model.model[2].conv.in_channels == 64
    assert len(model.model[1].m) == 1  # depth 0.33 * 3
    model.eval()(torch.zeros(1, 3, 64, 64))


def test_trainer_rounds_the_image_size_with_check_imgsz_as_the_bridge_does():
    """``train_imgsz`` assumes the trainer passes the model's largest stride (at least 32) to check_imgsz."""
    from ultralytics.engine.trainer import BaseTrainer

    assert "check_imgsz" in _global_names(BaseTrainer._setup_train), _hint("the trainer no longer calls check_imgsz")
    model = tasks.DetectionModel("yolov5n.yaml", nc=2, verbose=False)
    assert [bridge.train_imgsz(v, model) for v in (1, 32, 63, 64, 100)] == [32, 32, 64, 64, 128]


def test_prediction_log_holds_the_boxes_save_txt_writes(tmp_path):
    """The validator's predictions kept in memory (the sweep's scoring input) are those Ultralytics writes with
    save_txt/save_conf in the same pass: every image, the same boxes, scores and classes."""
    import numpy as np
    from PIL import Image
    from ultralytics import YOLO

    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    data = tmp_path / "tiny.yaml"
    write_dataset(tmp_path / "tiny", ShapesConfig(n_train=4, n_val=5, imgsz=64, min_size=14, max_size=40), data)
    seen = {}
    model = YOLO("yolov5n.yaml")
    model.add_callback("on_val_start", lambda v: seen.setdefault("log", bridge.record_predictions(v)))
    model.add_callback("on_val_end", lambda v: seen.update(files=list(v.dataloader.dataset.im_files)))
    model.val(data=str(data), imgsz=64, batch=2, save_txt=True, save_conf=True, plots=False, verbose=False,
              project=str(tmp_path), name="val", exist_ok=True, conf=1e-9, max_det=50, device="cpu")  # untrained: tiny scores
    log = seen["log"]
    assert log.passes == 1 and sorted(log.images) == sorted(seen["files"]) and len(log.images) == 5
    n_boxes = 0
    for f, rows in log.images.items():
        w, h = Image.open(f).size
        txt = tmp_path / "val" / "labels" / f"{Path(f).stem}.txt"
        written = np.loadtxt(txt, ndmin=2) if txt.is_file() else np.zeros((0, 6))
        x1, y1, x2, y2, conf, cls = rows.T
        mine = np.c_[cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h, conf]
        assert mine.shape == written.shape, f
        np.testing.assert_allclose(mine, written, rtol=1e-5, atol=2e-6)  # the files hold 6 significant digits
        n_boxes += len(rows)
    assert n_boxes > 0


def test_a_dataset_check_looks_up_no_plot_font_and_leaves_the_font_lookup_installed(monkeypatch):
    """check_dataset_yaml: Ultralytics' check_det_dataset verdict without its plot-font lookup (a check draws
    nothing); afterwards Ultralytics' check_font is the offline lookup again."""
    from ultralytics.data import utils

    from yolo_attn._ultralytics import fonts
    from yolo_attn.datasets import shapes_yaml

    looked_up = []
    real = fonts.offline_check_font
    monkeypatch.setattr(fonts, "offline_check_font", lambda font="Arial.ttf": looked_up.append(font) or real(font))
    d = bridge.check_dataset_yaml(shapes_yaml())
    assert d["nc"] == len(d["names"]) > 0 and looked_up == []
    assert utils.check_font("Arial.ttf") is not None and looked_up == ["Arial.ttf"]
