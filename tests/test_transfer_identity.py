"""Shipped configs built with init=identity + a transferred stock checkpoint predict exactly what stock predicts."""

from __future__ import annotations

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

import yolo_attn
from yolo_attn.cli import main
from yolo_attn.models import build_model
from yolo_attn.placement import set_layer_options

# one shipped config per attention family and placement kind (insert, head-in, C3 replacement)
CONFIGS = [
    "yolov5n-se-neck.yaml",
    "yolov5n-cbam-backbone.yaml",
    "yolov5n-eca-head-in.yaml",
    "yolov5n-coordatt-c3.yaml",
    "yolov5n-simam-sppf.yaml",
    "yolov5n-gc-c3-neck.yaml",
    "yolov5n-ema-backbone-end.yaml",
    "yolov5n-shuffleattention-neck.yaml",
    "yolov5n-tripletattention-backbone.yaml",
    "yolov5n-mhsa-sppf.yaml",
]


@pytest.fixture(scope="module")
def stock():
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", verbose=False)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.1 if t.dim() > 1 else torch.rand_like(t) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))


def _raw(model, x):
    with torch.no_grad():
        y = model.eval()(x)
    return y[0] if isinstance(y, (list, tuple)) else y


@pytest.mark.parametrize("config", CONFIGS)
def test_identity_config_predicts_like_stock(config, stock, image):
    target = build_model(config, init="identity")
    report = yolo_attn.transfer_weights(stock, target)
    assert report.tensors == report.source_tensors  # every stock tensor arrived
    ref = _raw(stock, image)
    got = _raw(target, image)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)


def test_paper_init_config_does_not_predict_like_stock(stock, image):
    """The control: the same transfer into the paper-initialised config changes the predictions."""
    target = build_model("yolov5n-se-neck.yaml")
    yolo_attn.transfer_weights(stock, target)
    assert not torch.allclose(_raw(target, image), _raw(stock, image), atol=1e-3)


def test_set_layer_options_reaches_every_attention_layer():
    d = {
        "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "SE", [8]], [-1, 1, "CBAM", [{"init": "paper", "fuse": "add"}]]],
        "head": [[-1, 3, "C3Attn", [32, "ECA"]], [-1, 3, "C3Attn", [32, "SE", [4, {"fuse": "add"}], False]], [-1, 2, "C3FMM", [32]]],
    }
    out = set_layer_options(d, init="identity")
    rows = out["backbone"] + out["head"]
    assert rows[0] == [-1, 1, "Conv", [16, 3, 2]]
    assert rows[1][3] == [8, {"init": "identity"}]
    assert rows[2][3] == [{"init": "identity", "fuse": "add"}]  # overrides, keeps the other options
    assert rows[3][3] == [32, "ECA", [{"init": "identity"}]]
    assert rows[4][3] == [32, "SE", [4, {"fuse": "add", "init": "identity"}], False]
    assert rows[5][3] == [32]  # FMM carries no attention
    assert d["backbone"][1][3] == [8]  # the input is not modified


def test_transfer_cli_init_identity(stock, image, tmp_path):
    from ultralytics import YOLO

    src = tmp_path / "stock.pt"
    torch.save({"model": stock.half(), "train_args": {}}, src)
    stock.float()
    out = tmp_path / "se-neck.pt"
    assert main(["transfer", str(src), "yolov5n-se-neck.yaml", "--init", "identity", "--float", "-o", str(out)]) == 0
    model = YOLO(str(out)).model
    ref = _raw(stock.half().float(), image)  # the source was saved in float16
    torch.testing.assert_close(_raw(model, image), ref, rtol=1e-4, atol=1e-3)


def test_transfer_cli_init_needs_a_yaml(stock, tmp_path, capsys):
    src = tmp_path / "stock.pt"
    torch.save({"model": stock, "train_args": {}}, src)
    assert main(["transfer", str(src), str(src), "--init", "identity", "-o", str(tmp_path / "o.pt")]) == 1
    assert "--init applies to a model YAML target" in capsys.readouterr().err


def test_train_attn_init_argument(tmp_path):
    from yolo_attn.models import write_model_yaml
    from yolo_attn.train import parse_args

    assert parse_args(["model=yolov5n-se-neck.yaml", "attn_init=identity", "epochs=2"]) == {
        "model": "yolov5n-se-neck.yaml",
        "epochs": 2,
        "attn_init": "identity",
    }
    path = write_model_yaml("yolov5n-se-neck.yaml", tmp_path, "identity")
    assert path.name == "yolov5n-se-neck.yaml"  # the scale still comes from the name
    model = DetectionModel(str(path), verbose=False)
    assert model.model[0].conv.out_channels == 16  # scale n
    se = [m for m in model.model if type(m).__name__ == "SE"]
    assert se and all(m.init == "identity" for m in se)
    with pytest.raises(ValueError, match="init must be one of"):
        write_model_yaml("yolov5n-se-neck.yaml", tmp_path, "zeros")
