"""Transfer on the newer Ultralytics bases: stock YOLOv8/YOLO11/YOLO26/YOLO12 weights into every shipped config.

The stock checkpoints are made here (nothing is downloaded): Ultralytics' ``yolov8.yaml`` / ``yolo11.yaml`` /
``yolo26.yaml`` (both heads of its end-to-end Detect: ``one2one_*`` beside the one-to-many branches) /
``yolo12.yaml`` built at n and s, every tensor filled with seeded random values (each tensor unique, so it can be found by
value) and saved as an Ultralytics checkpoint (n) or a bare state dict (s). For every shipped config of these
bases, the generator's own index map says where each stock layer must land; every stock tensor must arrive
there and nowhere else (those of a removed C2PSA, and of the area attention that ``a2c2f`` replaces, nowhere at
all), and new tensors keep their initialisation.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_transfer import arrivals, randomise
from torch import nn
from ultralytics.nn.tasks import DetectionModel, parse_model, yaml_model_load

import yolo_attn
from yolo_attn.models import build_model
from yolo_attn.configs import NEW_BASES, config_dir, shipped_configs
from yolo_attn.placement import make_yaml
from yolo_attn.weights import ForeignCheckpointError, load_checkpoint, transfer_weights

from conftest import run_layers as forward

NEW = [c for c in shipped_configs() if c.base in NEW_BASES]
FIRST = {base: next(c for c in NEW if c.base == base) for base in NEW_BASES}
SEEDS = {("yolov8.yaml", "n"): 10, ("yolov8.yaml", "s"): 11, ("yolo11.yaml", "n"): 12, ("yolo11.yaml", "s"): 13,
         ("yolo26.yaml", "n"): 15, ("yolo26.yaml", "s"): 16, ("yolo12.yaml", "n"): 17, ("yolo12.yaml", "s"): 18}


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
    removed = tuple(f"model.{i}." for i in imap.removed) + replaced_attention(target, imap.map)
    want = [k for k, v in sd.items() if v.is_floating_point() and not k.startswith(removed)]
    assert sorted(ok) == sorted(want) and not wrong
    assert report.tensors == len(sd) - sum(1 for k in sd if k.startswith(removed))
    for k in report.new_keys:
        assert torch.equal(target.state_dict()[k], init[k]), k
    if scale == "n":  # the transferred model runs (raw head outputs; no strides needed)
        with torch.no_grad():
            out = forward(target.model.train(), torch.zeros(1, 3, 64, 64))
        assert tensors(out) and all(torch.isfinite(t).all() for t in tensors(out))


def replaced_attention(target: nn.Module, mapping: dict[int, int]) -> tuple[str, ...]:
    """Stock key prefixes of the attention an ``AttnA2C2f`` replaces (``model.<base index>.m.i.j.attn.``)."""
    base_of = {t: b for b, t in mapping.items()}
    return tuple(f"model.{base_of[j]}.{p}" for j, m in enumerate(target.model) for p in getattr(m, "drops_source", ()))


def tensors(out) -> list[torch.Tensor]:
    """Every tensor in a head output (a tensor, or lists/dicts of them depending on the Ultralytics version)."""
    if isinstance(out, torch.Tensor):
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [t for o in items for t in tensors(o)]


IDENTITY = ["yolov8n-se-backbone-end.yaml", "yolov8n-cbam-c2f.yaml", "yolov8n-eca-head-in.yaml", "yolo11n-ema-neck.yaml",
            "yolo11n-coordatt-c3k2.yaml", "yolo11n-simam-backbone.yaml", "yolo11m-se-c3k2-neck.yaml",
            "yolo26n-se-backbone-end.yaml", "yolo26n-eca-sppf.yaml", "yolo26n-cbam-psa.yaml", "yolo26n-coordatt-head-in.yaml",
            "yolo26n-simam-c3k2.yaml", "yolo26n-ema-neck.yaml", "yolo12n-se-backbone-end.yaml", "yolo12n-eca-neck.yaml",
            "yolo12n-cbam-c3k2.yaml", "yolo12n-simam-head-in.yaml"]  # fmt: skip


def _base_of(config: str) -> str:
    return next(b for b in NEW_BASES if config.startswith(b[: -len(".yaml")]))


@pytest.mark.parametrize("config", IDENTITY)
def test_identity_init_predicts_like_stock(stock, config):
    """``init=identity`` + the transferred stock weights: exactly the stock predictions (m: C3k2 with c3k units)."""
    base = _base_of(config)
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


def set_end_to_end(model: nn.Module, on: bool) -> bool:
    """Select the head's end-to-end (one-to-one) output where Ultralytics lets it be chosen; return the head's mode."""
    try:
        model.end2end = on
    except AttributeError:  # Ultralytics versions where an end-to-end head is always end-to-end
        pass
    return bool(model.end2end)


BOTH_HEADS = ["yolo26n-se-backbone-end.yaml", "yolo26n-cbam-head-in.yaml", "yolo26n-eca-c3k2-neck.yaml"]


@pytest.mark.parametrize("config", BOTH_HEADS)
def test_identity_yolo26_predicts_like_stock_with_both_heads(stock, config):
    """YOLO26's Detect has a one-to-many head and the NMS-free one-to-one head: both predict exactly like stock.

    Compared: every tensor of the eval output (the decoded predictions and the raw outputs of both branches), once
    with the one-to-many output selected where Ultralytics allows it and once end to end ((B, max_det, 6) boxes).
    """
    model = stock("yolo26.yaml", "n")[0]
    target = build_model(config, init="identity")
    report = transfer_weights(model, target)
    assert report.tensors == report.source_tensors
    assert any(k.startswith("one2one_cv") for r in report.layers for k in r.transferred)
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(6))
    target.eval()
    worst = {}
    for e2e in (False, True):
        mode = set_end_to_end(model, e2e)
        assert set_end_to_end(target, e2e) == mode
        with torch.no_grad():
            want, got = tensors(model(x)), tensors(target(x))
        assert len(want) == len(got) >= 3
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
        worst[mode] = max(float((g - w).abs().max()) for w, g in zip(want, got))
        if mode:
            assert want[0].shape[-1] == 6 and want[0].shape[1] <= 300  # x1, y1, x2, y2, score, class per detection
    set_end_to_end(model, True)
    print(f"{config}: max |target - stock| per mode (end-to-end: True) {worst}")


def test_yolo26_other_class_count_keeps_both_heads(stock):
    """nc 80 -> 3: both class branches (cv3 and one2one_cv3) rebuilt at the stock width; only their outputs keep init."""
    model, path, _ = stock("yolo26.yaml", "n")
    target = build_model("yolo26n-se-neck.yaml", nc=3)
    report = transfer_weights(path, target)
    _, imap = make_yaml("yolo26.yaml", "SE", [], ["neck"])
    det = imap.map[len(model.model) - 1]
    outputs = {f"model.{det}.{b}.{j}.2.{p}" for b in ("cv3", "one2one_cv3") for j in range(3) for p in ("weight", "bias")}
    assert set(report.class_dependent) == outputs and report.head_adapted
    sd = model.state_dict()
    stock_outputs = {k.replace(f"model.{det}.", f"model.{len(model.model) - 1}.") for k in outputs}
    kept = {k: v for k, v in sd.items() if k not in stock_outputs}
    ok, wrong = arrivals(kept, target.state_dict(), imap.map)
    assert len(ok) == sum(v.is_floating_point() for v in kept.values()) and not wrong
    assert report.tensors == len(sd) - len(outputs)
    assert target.model[-1].one2one_cv3[0][2].out_channels == 3 == target.model[-1].cv3[0][2].out_channels


def test_a2c2f_swap_drops_exactly_the_area_attention(stock):
    """yolo12 + a2c2f: A2C2f rows 6 and 8 keep projections and MLPs; only the area attention (qkv, proj, pe) stays behind."""
    model, path, _ = stock("yolo12.yaml", "n")
    target = build_model("yolo12n-se-a2c2f.yaml")
    report = transfer_weights(path, target)
    left = {f"model.{r.source}.{k}" for r in report.layers if r.source is not None for k, why in r.skipped}
    want = {k for k in model.state_dict() if k.startswith(("model.6.m.", "model.8.m.")) and ".attn." in k}
    assert left == want and want and all(k.split(".attn.")[1].split(".")[0] in ("qkv", "proj", "pe") for k in want)
    rows = {r.source: r for r in report.layers if r.source in (6, 8)}
    assert all(type(target.model[i]).__name__ == "AttnA2C2f" and "replaced attention" in rows[i].note for i in (6, 8))
    assert report.tensors == len(model.state_dict()) - len(want)


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
