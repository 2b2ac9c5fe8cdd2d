"""The gating step as a module (``_common.Gate``): forms, overrides, state dicts and old pickles."""

from __future__ import annotations

import io

import pytest
import torch

from yolo_attn.modules._common import KNOCKOUT, Gate, GatedModule
from yolo_attn.modules.fmm import C3FMM
from yolo_attn.registry import LAYERS

GATED = [s for s in LAYERS if s.kind == "preserve" and issubclass(s.cls, GatedModule)]


def _randomised(cls, **kw):
    torch.manual_seed(0)
    m = cls(16, **kw).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("fuse", ["mul", "add"])
@pytest.mark.parametrize("init", ["paper", "identity"])
def test_gate_follows_the_documented_formulas(fuse, init):
    """paper: x*s(z) / x+s(z); identity: x*2s(z) / x+(2s(z)-1), written out here independently of the code."""
    x, z = torch.randn(2, 4, 3, 3, dtype=torch.float64), torch.randn(2, 4, 1, 1, dtype=torch.float64)
    s = 1.0 / (1.0 + torch.exp(-z))
    g = s if init == "paper" else (2 * s if fuse == "mul" else 2 * s - 1)
    want = x * g if fuse == "mul" else x + g
    torch.testing.assert_close(Gate(fuse, init)(x, z), want, rtol=1e-12, atol=1e-12)


def test_gate_forms_by_value():
    x, z = torch.full((1, 1, 1, 1), 3.0), torch.zeros(1, 1, 1, 1)
    assert Gate("mul", "paper")(x, z).item() == 1.5  # 3 * sigmoid(0)
    assert Gate("mul", "identity")(x, z).item() == 3.0  # neutral
    assert Gate("add", "identity")(x, z).item() == 3.0  # neutral
    assert Gate("mul", combine="residual")(x, z).item() == 4.5  # 3 * (1 + 0.5)
    assert Gate("add", value="raw")(x, torch.ones(1, 1, 1, 1)).item() == 4.0
    with pytest.raises(ValueError, match="unknown gate form"):
        Gate("mul", value="softmax")


def test_override_knockout_and_constant():
    g = Gate("mul")
    x, z = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 1, 1)
    g.override = KNOCKOUT
    assert torch.equal(g(x, z), x)
    g.override = torch.full((1, 4, 1, 1), 0.25)
    assert torch.equal(g(x, z), x * 0.25)


@pytest.mark.parametrize("spec", GATED, ids=lambda s: s.name)
def test_gates_add_no_state_dict_keys(spec):
    m = spec.cls(16)
    gates = [n for n, mod in m.named_modules() if isinstance(mod, Gate)]
    assert gates, f"{spec.name} holds no Gate"
    assert not any(k.startswith(tuple(g + "." for g in gates)) for k in m.state_dict())


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    import yolo_attn._ultralytics  # noqa: F401  (allow-lists yolo_attn's classes for weights-only loading)

    torch_classes = [type(m) for m in obj.modules() if type(m).__module__.startswith("torch.")]
    with torch.serialization.safe_globals(torch_classes):
        return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("spec", GATED, ids=lambda s: s.name)
def test_old_pickles_without_gate_modules_load_and_run_the_same(spec):
    """A module pickled before gates were submodules (no Gate in it) gets its gates on load, same output."""
    m = _randomised(spec.cls)
    x = torch.randn(2, 16, 8, 8)
    want = m(x)
    for name in [n for n, mod in m._modules.items() if isinstance(mod, Gate)]:
        del m._modules[name]  # what an old pickle holds
    loaded = _roundtrip(m)
    assert any(isinstance(mod, Gate) for mod in loaded.modules())
    assert torch.equal(loaded(x), want)


def test_new_pickles_load_weights_only_and_keep_overrides_out():
    m = _randomised(LAYERS.get("SE").cls)
    m.gate.override = KNOCKOUT
    loaded = _roundtrip(m)
    assert loaded.gate.override is None and loaded.gate.value_kind == "sigmoid"
    x = torch.randn(1, 16, 4, 4)
    m.gate.override = None
    assert torch.equal(loaded(x), m(x))


def test_fmm_switch_turns_multiplication_into_addition():
    torch.manual_seed(0)
    block = C3FMM(8, 8, n=1).eval()
    x = torch.randn(1, 8, 6, 6)
    b = block.m[0]
    inner = b.cv2(b.cv1(block.cv1(x)))
    h = block.cv1(x)
    assert torch.equal(b(h), h * inner)
    b.multiply = False
    assert torch.equal(b(h), h + inner)
    del b.multiply  # old pickles: the class default
    assert b.multiply is True


def test_old_detection_checkpoint_loads_through_the_safe_loader(tmp_path):
    """A whole model saved before gates were modules reads weights-only and predicts the same."""
    from yolo_attn.models import build_model
    from yolo_attn.weights import read_model_checkpoint

    torch.manual_seed(0)
    model = build_model("yolov5n-cbam-neck.yaml", nc=3).eval()
    x = torch.rand(1, 3, 64, 64)
    want = model(x)[0]
    for mod in list(model.modules()):
        for name in [n for n, m in mod._modules.items() if isinstance(m, Gate)]:
            del mod._modules[name]
    torch.save({"model": model}, tmp_path / "old.pt")
    loaded = read_model_checkpoint(tmp_path / "old.pt").eval()
    assert sum(isinstance(m, Gate) for m in loaded.modules()) >= 2
    assert torch.equal(loaded(x)[0], want)
