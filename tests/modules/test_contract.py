"""The module contract checked family by family, over one table of layers and their option variants.

Each family's own known-value tests live in ``tests/modules/test_<family>.py``; the registry-wide checks
inside YOLO models (shapes, gradients, scales, export of a whole model) in ``tests/test_layers.py``.
Here: registration flags, the exact identity start under every option variant and size, option errors
that name the class, every YOLO width, tiny maps, ``fuse="add"`` and module-level ONNX export.
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch

import yolo_attn
from yolo_attn._ultralytics import ultralytics_names
from yolo_attn.registry import LAYERS

from conftest import rand, randomise_parameters

# name -> gating; the families whose option variants are listed below
GATING_OF = {
    "SimAM": False, "SK": False, "NonLocal": False, "TripletAttention": True, "ShuffleAttention": True, "GAM": True,
    "ECA": True, "CBAM": True, "CBAMChannel": True, "CBAMSpatial": True, "CoordAtt": True, "GC": True, "BAM": True,
    "GatherExcite": True,
}  # fmt: skip
NAMES = list(GATING_OF)
GATING = [n for n in NAMES if GATING_OF[n]]
YOLO_CHANNELS = [16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280]

# (name, options): every structural variant (the fuse mode is added for gating layers where it matters)
VARIANTS = [
    ("SimAM", {}),
    ("SK", {}),
    ("SK", {"branches": 3}),
    ("NonLocal", {}),
    ("NonLocal", {"sub_sample": True}),
    ("TripletAttention", {}),
    ("TripletAttention", {"no_spatial": True}),
    ("ShuffleAttention", {}),
    ("GAM", {}),
    ("ECA", {}),
    ("ECA", {"k_size": 5}),
    ("CBAM", {}),
    ("CBAMChannel", {}),
    ("CBAMSpatial", {"kernel_size": 3}),
    ("CoordAtt", {}),
    ("GC", {}),
    ("BAM", {}),
    ("GatherExcite", {}),
    ("GatherExcite", {"extent": 2}),
    ("GatherExcite", {"extent": 8}),
]
FUSED = [(n, {**kw, "fuse": f}) for n, kw in VARIANTS for f in (("mul", "add") if GATING_OF[n] else (None,))]
FUSED = [(n, {k: v for k, v in kw.items() if v is not None}) for n, kw in FUSED]


def _ids(v):
    return f"{v[0]}-{'-'.join(f'{k}{w}' for k, w in v[1].items())}" if v[1] else v[0]


pytestmark = pytest.mark.usefixtures("torch_seed")


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_as_preserve_layer(name):
    spec = LAYERS.get(name)
    assert spec.kind == "preserve" and spec.gating == GATING_OF[name]
    assert spec.onnx and not spec.nondeterministic
    assert spec.cls.__doc__ and spec.paper and spec.year >= 2018


def test_no_gating_name_collides_and_cbam_says_it_is_not_ultralytics_cbam():
    for name in GATING:
        assert LAYERS.get(name).overrides == ""
        assert name not in ultralytics_names()
    assert "Not ultralytics.nn.modules.CBAM" in LAYERS.get("CBAM").note


# ------------------------------------------------------------------------------------------------
# identity start: exact for random input, every variant and fuse mode, train and eval, odd sizes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (8, 8), (11, 6)])
@pytest.mark.parametrize("variant", FUSED, ids=_ids)
def test_identity_init_is_exact(variant, hw):
    name, kw = variant
    m = yolo_attn.build(name, 32, init="identity", **kw)
    x = rand(2, 32, *hw, seed=1) * 3
    assert torch.equal(m.train()(x), x)
    assert torch.equal(m.eval()(x), x)
    assert torch.equal(m(x[:1]), x[:1])


@pytest.mark.parametrize("variant", FUSED, ids=_ids)
def test_identity_init_still_learns(variant):
    """The identity start must not be a dead end: some parameter receives a non-zero gradient."""
    name, kw = variant
    m = yolo_attn.build(name, 16, init="identity", **kw).train()
    x = rand(2, 16, 8, 8).requires_grad_(True)
    (m(x) * rand(2, 16, 8, 8, seed=3)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


# ------------------------------------------------------------------------------------------------
# bad options: a ValueError that starts with the class name and says what is wrong
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GATING)
@pytest.mark.parametrize("bad", [{"fuse": "sum"}, {"init": "zero"}, {"fuse": None}])
def test_bad_fuse_or_init_raises_naming_the_class(name, bad):
    with pytest.raises(ValueError, match=f"^{name}: "):
        LAYERS.get(name).cls(32, **bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c1", [0, -4, 2.5, True])
def test_bad_channels_raise(name, c1):
    with pytest.raises(ValueError, match=f"^{name}: "):
        LAYERS.get(name).cls(c1)


BAD = [  # (name, c1, positional args, keyword options, a word the message must contain)
    ("SimAM", 16, (), {"e_lambda": 0}, "e_lambda"),
    ("SimAM", 16, (), {"e_lambda": "x"}, "e_lambda"),
    ("SimAM", 16, (), {"init": "zero"}, "init"),
    ("SK", 16, (), {"groups": 3}, "groups"),
    ("SK", 16, (), {"groups": 0}, "groups"),
    ("SK", 16, (), {"branches": 0}, "branches"),
    ("SK", 16, (), {"reduction": 32}, "reduction"),
    ("SK", 16, (), {"init": "x"}, "init"),
    ("NonLocal", 16, (), {"reduction": 0}, "reduction"),
    ("NonLocal", 16, (), {"reduction": 32}, "reduction"),
    ("NonLocal", 16, (), {"sub_sample": "yes"}, "sub_sample"),
    ("NonLocal", 16, (), {"init": "zeros"}, "init"),
    ("TripletAttention", 16, (), {"kernel_size": 4}, "kernel_size"),
    ("TripletAttention", 16, (), {"kernel_size": 0}, "kernel_size"),
    ("TripletAttention", 16, (), {"fuse": "max"}, "fuse"),
    ("TripletAttention", 16, (), {"no_spatial": 1}, "no_spatial"),
    ("ShuffleAttention", 16, (), {"groups": 3}, "groups"),
    ("ShuffleAttention", 16, (), {"groups": 16}, "groups"),
    ("ShuffleAttention", 15, (), {}, ""),
    ("ShuffleAttention", 16, (), {"fuse": "x"}, "fuse"),
    ("ShuffleAttention", 16, (), {"eps": -1.0}, "eps"),
    ("GAM", 16, (), {"reduction": 17}, "reduction"),
    ("GAM", 16, (), {"kernel_size": 6}, "kernel_size"),
    ("GAM", 16, (), {"init": "x"}, "init"),
    ("GAM", 16, (), {"fuse": "x"}, "fuse"),
    ("GAM", 0, (), {}, ""),
    ("ECA", 32, (), {"k_size": 4}, "odd"),
    ("ECA", 32, (), {"k_size": 0}, "k_size"),
    ("ECA", 32, (), {"k_size": "3"}, "k_size"),
    ("CBAM", 32, (64,), {}, "reduction"),  # a channel count passed as the reduction
    ("CBAM", 32, (0,), {}, "reduction"),
    ("CBAM", 32, (16, 6), {}, "odd"),
    ("CBAMChannel", 32, (128,), {}, "reduction"),
    ("CBAMSpatial", 32, (0,), {}, "kernel_size"),
    ("CBAMSpatial", 32, (4,), {}, "odd"),
    ("CoordAtt", 32, (0,), {}, "reduction"),
    ("CoordAtt", 32, (64,), {}, "reduction"),  # > max(c1, 32): looks like a channel count
    ("GC", 32, (33,), {}, "reduction"),
    ("GC", 32, (0,), {}, "reduction"),
    ("BAM", 32, (64,), {}, "reduction"),
    ("BAM", 32, (16, 0), {}, "dilation"),
    ("GatherExcite", 32, (3,), {}, "extent"),
    ("GatherExcite", 32, (1,), {}, "extent"),
    ("GatherExcite", 32, (-2,), {}, "extent"),
    ("GatherExcite", 32, (True,), {}, "extent"),
    ("GatherExcite", 32, (2.0,), {}, "extent"),
]


@pytest.mark.parametrize("name,c1,args,kw,what", BAD, ids=[f"{n}-{c}-{a}-{k}" for n, c, a, k, _ in BAD])
def test_bad_options_raise_naming_the_class(name, c1, args, kw, what):
    with pytest.raises(ValueError, match=f"^{name}: .*{what}"):
        yolo_attn.build(name, c1, *args, **kw)


# ------------------------------------------------------------------------------------------------
# robustness: every YOLO channel count, tiny and odd maps, batch 1 in eval
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_default_options_build_for_every_yolo_width(name):
    """Built with its default options at every channel count a YOLO scale gives a layer, it runs and keeps the shape."""
    for c in YOLO_CHANNELS:
        m = yolo_attn.build(name, c).eval()
        x = rand(1, c, 3, 2)
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), f"{name} at {c} channels"


@pytest.mark.parametrize("name", NAMES)
def test_small_and_odd_maps_eval_batch_one(name):
    m = yolo_attn.build(name, 16).eval()
    for hw in [(1, 1), (1, 4), (5, 3), (7, 7)]:
        x = rand(1, 16, *hw)
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


# ------------------------------------------------------------------------------------------------
# fuse="add": the same gate, added
# ------------------------------------------------------------------------------------------------
SINGLE_GATE = [v for v in VARIANTS if v[0] in ("ECA", "CBAMChannel", "CBAMSpatial", "GatherExcite")]


@pytest.mark.parametrize("variant", SINGLE_GATE, ids=_ids)
def test_single_gate_add_adds_the_mul_gate(variant):
    name, kw = variant
    cls = LAYERS.get(name).cls
    mul, add = cls(16, fuse="mul", **kw).eval(), cls(16, fuse="add", **kw).eval()
    add.load_state_dict(mul.state_dict())
    x = torch.rand(2, 16, 6, 6) + 0.5  # away from zero so the gate can be read back as y / x
    g = mul(x) / x
    torch.testing.assert_close(add(x), x + g)


# ------------------------------------------------------------------------------------------------
# ONNX (module level): shapes that stress split/interpolate, and relative-position gathers that must be
# traced for a non-square export size
# ------------------------------------------------------------------------------------------------
ONNX_CASES = [("CoordAtt", {}), ("GatherExcite", {"extent": 4}), ("CBAM", {}), ("GC", {"fuse": "mul"})]


def _onnx_output(m: torch.nn.Module, x: torch.Tensor, opset: int) -> torch.Tensor:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), f, opset_version=opset, dynamo=False, input_names=["x"], output_names=["y"])
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.numpy()})
    return torch.from_numpy(y)


@pytest.mark.parametrize("variant", ONNX_CASES, ids=_ids)
def test_onnx_matches_torch_at_odd_size(variant):
    name, kw = variant
    m = LAYERS.get(name).cls(16, **kw).eval()
    x = torch.randn(1, 16, 13, 7)
    torch.testing.assert_close(_onnx_output(m, x, 17), m(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["MHSA", "CoAtNetAttn", "EMA"])
def test_onnx_non_square_matches_torch(name):
    m = randomise_parameters(LAYERS.get(name).cls(16), seed=3)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(0.3)
    x = torch.randn(1, 16, 5, 7)
    want = m(x)
    torch.testing.assert_close(_onnx_output(m, x, 18), want, rtol=1e-4, atol=1e-4)
