"""Transfer on the newer Ultralytics bases: stock YOLOv8/YOLO11 weights into every shipped config.

The stock checkpoints are made here (nothing is downloaded): Ultralytics' ``yolov8.yaml`` / ``yolo11.yaml``
built at n and s, every tensor filled with seeded random values (each tensor unique, so it can be found by
value) and saved as an Ultralytics checkpoint (n) or a bare state dict (s). For every shipped config of these
bases, the generator's own index map says where each stock layer must land; every stock tensor must arrive
there and nowhere else (those of a removed C2PSA nowhere at all), and new tensors keep their initialisation.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_transfer import arrivals, randomise
from torch import nn
from ultralytics.nn.tasks import DetectionModel, parse_model, yaml_model_load

import yolo_attn
from yolo_attn.checkpoint import load_checkpoint
from yolo_attn.models import build_model
from yolo_attn.placement import NEW_BASES, config_dir, make_yaml, shipped_configs
from yolo_attn.transfer import ForeignCheckpointError, transfer_weights

from conftest import run_layers as forward

NEW = [c for c in shipped_configs() if c.base in NEW_BASES]
FIRST = {base: next(c for c in NEW if c.base == base) for base in NEW_BASES}
SEEDS = {("yolov8.yaml", "n"): 10, ("yolov8.yaml", "s"): 11, ("yolo11.yaml", "n"): 12, ("yolo11.yaml", "s"): 13}


def _dict(name: str, scale: str) -> dict:
    d = yaml_model_load(name)
    d["scale"] = scale
    return d


class _Layers(nn.Module):
    """The layers ``parse_model`` builds, as a transfer target (a DetectionModel without its stride probe, 2x faster)."""

    def __init__(self, d: dict):
        super().__init__()
        self.model, _ = parse_model(d, ch=3, verbose=False)


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stock(tmp_path_factory, one_thread):
    """{(base, scale): (randomised stock model, checkpoint path, its Checkpoint)}, built on first use."""
    out, folder = {}, tmp_path_factory.mktemp("stock_bases")

    def get(base: str, scale: str):
        if (base, scale) not in out:
            model = randomise(DetectionModel(_dict(base, scale), verbose=False), SEEDS[base, scale]).eval()
            path = folder / f"{base[:-5]}{scale}.pt"
            if scale == "n":  # an Ultralytics checkpoint (pickled model)
                torch.save({"model": copy.deepcopy(model), "ema": None}, path)
            else:  # a bare state dict
                torch.save(model.state_dict(), path)
            out[base, scale] = (model, path, load_checkpoint(path))
        return out[base, scale]

    return get


@pytest.mark.parametrize("scale", ["n", "s"])
@pytest.mark.parametrize("cfg", [pytest.param(c, id=c.filename[: -len(".yaml")]) for c in NEW])
def test_shipped_config_by_value(stock, cfg, scale):
    """Ultralytics checkpoint (n) or state dict (s), read from the file for the first config of each base."""
    model, path, ckpt = stock(cfg.base, scale)
    _, imap = make_yaml(cfg.base, cfg.layer, list(cfg.args), list(cfg.placements))
    name = cfg.filename.replace(f"{cfg.stem}-", f"{cfg.stem}{scale}-", 1)  # by its scaled name, as a user builds it
    d = yaml_model_load(name)
    assert d["scale"] == scale and (config_dir() / cfg.filename).is_file()
    target = _Layers(d)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(path if cfg is FIRST[cfg.base] else ckpt, target)
    assert report.mapping == imap.map
    sd = model.state_dict()
    ok, wrong = arrivals(sd, target.state_dict(), imap.map)
    removed = tuple(f"model.{i}." for i in imap.removed)
    want = [k for k, v in sd.items() if v.is_floating_point() and not k.startswith(removed)]
    assert sorted(ok) == sorted(want) and not wrong
    assert report.tensors == len(sd) - sum(1 for k in sd if k.startswith(removed))
    for k in report.new_keys:
        assert torch.equal(target.state_dict()[k], init[k]), k
    if scale == "n":  # the transferred model runs (raw head outputs; no strides needed)
        with torch.no_grad():
            out = forward(target.model.train(), torch.zeros(1, 3, 64, 64))
        assert tensors(out) and all(torch.isfinite(t).all() for t in tensors(out))


def tensors(out) -> list[torch.Tensor]:
    """Every tensor in a head output (a tensor, or lists/dicts of them depending on the Ultralytics version)."""
    if isinstance(out, torch.Tensor):
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [t for o in items for t in tensors(o)]


IDENTITY = ["yolov8n-se-backbone-end.yaml", "yolov8n-cbam-c2f.yaml", "yolov8n-eca-head-in.yaml", "yolo11n-ema-neck.yaml",
            "yolo11n-coordatt-c3k2.yaml", "yolo11n-simam-backbone.yaml", "yolo11m-se-c3k2-neck.yaml"]  # fmt: skip


@pytest.mark.parametrize("config", IDENTITY)
def test_identity_init_predicts_like_stock(stock, config):
    """``init=identity`` + the transferred stock weights: exactly the stock predictions (m: C3k2 with c3k units)."""
    base = "yolov8.yaml" if config.startswith("yolov8") else "yolo11.yaml"
    scale = config[len(base) - 5]
    if scale == "m":  # the c3k units (only at m/l/x): a randomised stock yolo11m made here
        model = randomise(DetectionModel(_dict(base, "m"), verbose=False), 14).eval()
    else:
        model = stock(base, scale)[0]
    target = build_model(config, init="identity")
    report = transfer_weights(model, target)
    assert report.tensors == report.source_tensors
    x = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(x)[0], model(x)[0], rtol=1e-5, atol=1e-5)


def test_other_base_is_refused(stock):
    """A YOLOv8 checkpoint does not fit a YOLO11 config (the C2f and C3k2 families never pair)."""
    _, path, _ = stock("yolov8.yaml", "n")
    target = DetectionModel(_dict(str(config_dir() / "yolo11-se-neck.yaml"), "n"), verbose=False)
    with pytest.raises(ForeignCheckpointError, match="another architecture or scale"):
        transfer_weights(path, target)


def test_no_psa_drops_exactly_c2psa(stock):
    model, path, _ = stock("yolo11.yaml", "n")
    target = build_model("yolo11n-no-psa.yaml")
    report = transfer_weights(path, target)
    skipped = [r for r in report.layers if r.target is None]
    assert [r.source for r in skipped] == [10] and skipped[0].source_type.endswith("C2PSA")
    assert yolo_attn.__name__ and len(target.model) == len(model.model) - 1
