"""Known-value and option tests for the gating families ECA, CBAM, CoordAtt, GC, BAM and GatherExcite.

Generic checks over the whole registry (shapes, gradients, scales, export of a model) live elsewhere;
here every module is checked against its paper's formula with hand-set weights.
"""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

import yolo_attn  # noqa: F401  (registers the layers)
from yolo_attn._ultralytics import ultralytics_names
from yolo_attn.modules.bam import BAM
from yolo_attn.modules.cbam import CBAM, CBAMChannel, CBAMSpatial
from yolo_attn.modules.coordatt import CoordAtt
from yolo_attn.modules.eca import ECA, eca_kernel_size
from yolo_attn.modules.gather_excite import GatherExcite
from yolo_attn.modules.gc import GC
from yolo_attn.registry import LAYERS

NAMES = ["ECA", "CBAM", "CBAMChannel", "CBAMSpatial", "CoordAtt", "GC", "BAM", "GatherExcite"]

# (name, extra kwargs) covering every gate form of the six families
VARIANTS = [
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


def _ids(v):
    return f"{v[0]}-{'-'.join(f'{k}{w}' for k, w in v[1].items())}" if v[1] else v[0]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_as_gating_preserve_layer(name):
    spec = LAYERS.get(name)
    assert spec.gating and spec.kind == "preserve" and spec.onnx and not spec.nondeterministic
    assert spec.cls.__doc__ and spec.paper and spec.year >= 2018


def test_no_gating_name_collides_and_cbam_says_it_is_not_ultralytics_cbam():
    for name in NAMES:
        assert LAYERS.get(name).overrides == ""
        assert name not in ultralytics_names()
    assert "Not ultralytics.nn.modules.CBAM" in LAYERS.get("CBAM").note


def test_gc_note_names_its_additive_default():
    assert "fuse=add" in LAYERS.get("GC").note
    assert GC(16).fuse == "add"


# ------------------------------------------------------------------------------------------------
# identity start: exact for random input, both fuse modes, train and eval
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", ["mul", "add"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_identity_init_is_exact(variant, fuse):
    name, kw = variant
    m = LAYERS.get(name).cls(32, fuse=fuse, init="identity", **kw)
    x = torch.randn(2, 32, 11, 6) * 3
    m.train()
    assert torch.equal(m(x), x)
    m.eval()
    assert torch.equal(m(x), x)
    x1 = torch.randn(1, 32, 1, 3)
    assert torch.equal(m(x1), x1)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_identity_init_still_learns(variant):
    """The identity start must not be a dead end: some parameter receives a non-zero gradient."""
    name, kw = variant
    m = LAYERS.get(name).cls(16, init="identity", **kw).train()
    x = torch.randn(2, 16, 8, 8)
    (m(x) * torch.randn_like(x)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


# ------------------------------------------------------------------------------------------------
# bad options
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [{"fuse": "sum"}, {"init": "zero"}, {"fuse": None}])
def test_bad_fuse_or_init_raises_naming_the_class(name, bad):
    with pytest.raises(ValueError, match=name):
        LAYERS.get(name).cls(32, **bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c1", [0, -4, 2.5, True])
def test_bad_channels_raise(name, c1):
    with pytest.raises(ValueError, match=name):
        LAYERS.get(name).cls(c1)


@pytest.mark.parametrize(
    "cls, args, kw, what",
    [
        (ECA, (), {"k_size": 4}, "odd"),
        (ECA, (), {"k_size": 0}, "k_size"),
        (ECA, (), {"k_size": "3"}, "k_size"),
        (CBAM, (64,), {}, "reduction"),  # a channel count passed as the reduction
        (CBAM, (0,), {}, "reduction"),
        (CBAM, (16, 6), {}, "odd"),
        (CBAMChannel, (128,), {}, "reduction"),
        (CBAMSpatial, (0,), {}, "kernel_size"),
        (CBAMSpatial, (4,), {}, "odd"),
        (CoordAtt, (0,), {}, "reduction"),
        (CoordAtt, (64,), {}, "reduction"),  # > max(c1, 32): looks like a channel count
        (GC, (33,), {}, "reduction"),
        (GC, (0,), {}, "reduction"),
        (BAM, (64,), {}, "reduction"),
        (BAM, (16, 0), {}, "dilation"),
        (GatherExcite, (3,), {}, "extent"),
        (GatherExcite, (1,), {}, "extent"),
        (GatherExcite, (-2,), {}, "extent"),
        (GatherExcite, (True,), {}, "extent"),
        (GatherExcite, (2.0,), {}, "extent"),
    ],
)
def test_bad_options_raise(cls, args, kw, what):
    with pytest.raises(ValueError, match=f"{cls.__name__}.*{what}"):
        cls(32, *args, **kw)


def test_coordatt_default_reduction_works_on_thin_layers():
    """The paper's hidden floor of 8 makes r=32 valid for the 16-channel bottlenecks of yolov5n's C3s."""
    m = CoordAtt(16)
    assert m.conv1.out_channels == 8
    assert CoordAtt(256).conv1.out_channels == 8 and CoordAtt(1024).conv1.out_channels == 32


# ------------------------------------------------------------------------------------------------
# ECA
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, k", [(16, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2, 1), (1, 1)])
def test_eca_adaptive_kernel_size(c, k):
    # k = |(log2 C + 1) / 2|_odd
    assert eca_kernel_size(c) == k
    assert ECA(c).conv.kernel_size == (k,)


def _with_spatial_pattern(means: torch.Tensor, h: int = 2, w: int = 2) -> torch.Tensor:
    """A (1, C, h, w) map whose channel c has spatial mean means[c] but is not constant."""
    pattern = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(h // 2, w // 2)
    return means.view(1, -1, 1, 1) + pattern * torch.arange(1, len(means) + 1).view(1, -1, 1, 1)


def test_eca_known_values():
    m = ECA(4, k_size=3).eval()
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([[[0.5, 1.0, -1.0]]]))
    x = _with_spatial_pattern(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # z_i = 0.5 m_{i-1} + m_i - m_{i+1}, zero-padded at both ends of the channel axis
    z = torch.tensor([0 + 1 - 2, 0.5 + 2 - 3, 1 + 3 - 4, 1.5 + 4 - 0])
    torch.testing.assert_close(m(x), x * torch.sigmoid(z).view(1, 4, 1, 1))
    m_add = ECA(4, k_size=3, fuse="add").eval()
    m_add.load_state_dict(m.state_dict())
    torch.testing.assert_close(m_add(x), x + torch.sigmoid(z).view(1, 4, 1, 1))


# ------------------------------------------------------------------------------------------------
# CBAM
# ------------------------------------------------------------------------------------------------
def _cbam_channel_input():
    # channel 0: mean 1, max 3; channel 1: mean 1, max 2
    return torch.tensor([[[[1.0, 3.0], [0.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]]]])


def _set_cbam_channel(gate):
    with torch.no_grad():
        gate.fc1.weight.copy_(torch.tensor([[1.0, -1.0]]).view(1, 2, 1, 1))
        gate.fc2.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_channel_known_values(fuse):
    m = CBAMChannel(2, reduction=2, fuse=fuse).eval()
    _set_cbam_channel(m.channel)
    x = _cbam_channel_input()
    # W0 avg = 1 - 1 = 0 -> relu 0; W0 max = 3 - 2 = 1 -> relu 1; z = W1 (0 + 1) = [1, 2]
    g = torch.sigmoid(torch.tensor([1.0, 2.0])).view(1, 2, 1, 1)
    torch.testing.assert_close(m(x), x * g if fuse == "mul" else x + g)
    # same value when a gradient is needed (max with indices instead of amax)
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(m(xg), m(x))


def test_cbam_channel_mlp_has_no_bias_and_shares_weights():
    m = CBAMChannel(64)
    assert m.channel.fc1.bias is None and m.channel.fc2.bias is None
    assert m.channel.fc1.out_channels == 4  # 64 // 16


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_spatial_known_values(fuse):
    m = CBAMSpatial(3, kernel_size=3, fuse=fuse).eval()
    with torch.no_grad():
        m.spatial.conv.weight.zero_()
        m.spatial.conv.weight[0, 0, 1, 1] = 2.0  # centre tap on the channel-mean map
        m.spatial.conv.weight[0, 1, 1, 1] = -1.0  # centre tap on the channel-max map
    x = torch.randn(1, 3, 5, 4)
    z = 2 * x.mean(1, keepdim=True) - x.amax(1, keepdim=True)
    torch.testing.assert_close(m(x), x * torch.sigmoid(z) if fuse == "mul" else x + torch.sigmoid(z))
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(m(xg), m(x))


def test_cbam_spatial_kernel_sees_neighbours():
    m = CBAMSpatial(1, kernel_size=7).eval()
    with torch.no_grad():
        m.spatial.conv.weight.zero_()
        m.spatial.conv.weight[0, 0, 0, 0] = 1.0  # top-left tap: reads the mean map 3 rows up, 3 columns left
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1, 1] = 5.0
    z = torch.zeros(1, 1, 8, 8)
    z[0, 0, 4, 4] = 5.0
    torch.testing.assert_close(m(x), x * torch.sigmoid(z))


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_is_channel_then_spatial(fuse):
    full = CBAM(32, 8, 5, fuse=fuse).eval()
    ch = CBAMChannel(32, 8, fuse=fuse).eval()
    sp = CBAMSpatial(32, 5, fuse=fuse).eval()
    ch.channel.load_state_dict(full.channel.state_dict())
    sp.spatial.load_state_dict(full.spatial.state_dict())
    x = torch.randn(2, 32, 9, 7)
    torch.testing.assert_close(full(x), sp(ch(x)))


# ------------------------------------------------------------------------------------------------
# CoordAtt
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_coordatt_zero_weights_gates_are_bias_sigmoids(fuse):
    m = CoordAtt(16, fuse=fuse).eval()
    with torch.no_grad():
        m.conv1.weight.zero_()
        for conv in (m.conv_h, m.conv_w):
            conv.weight.zero_()
        m.conv_h.bias.copy_(torch.linspace(-2, 2, 16))
        m.conv_w.bias.copy_(torch.linspace(1, -1, 16))
    x = torch.randn(2, 16, 5, 3)
    g_h = torch.sigmoid(m.conv_h.bias).view(1, 16, 1, 1)
    g_w = torch.sigmoid(m.conv_w.bias).view(1, 16, 1, 1)
    expected = x * g_h * g_w if fuse == "mul" else x + g_h + g_w
    torch.testing.assert_close(m(x), expected)


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_coordatt_directional_gates(fuse):
    """Identity convolutions: the H gate follows the row means, the W gate the column means (H != W)."""
    c, h, w = 8, 5, 3
    m = CoordAtt(c, reduction=1, fuse=fuse).eval()
    eye = torch.eye(c).view(c, c, 1, 1)
    with torch.no_grad():
        m.conv1.weight.copy_(eye)
        m.bn1.eps = 0.0  # running stats are mean 0, var 1: BN is then exactly the identity
        for conv in (m.conv_h, m.conv_w):
            conv.weight.copy_(eye)
            conv.bias.zero_()
    x = torch.randn(1, c, h, w)
    g_h = torch.sigmoid(F.hardswish(x.mean(3, keepdim=True)))  # (1, C, H, 1)
    g_w = torch.sigmoid(F.hardswish(x.mean(2, keepdim=True)))  # (1, C, 1, W)
    expected = x * g_h * g_w if fuse == "mul" else x + g_h + g_w
    torch.testing.assert_close(m(x), expected)


# ------------------------------------------------------------------------------------------------
# GC
# ------------------------------------------------------------------------------------------------
def test_gc_softmax_pooling_of_one_hot_logits():
    m = GC(4, reduction=2).eval()
    with torch.no_grad():
        m.attn.weight.zero_()
        m.attn.weight[0, 0] = 1000.0  # logits = 1000 * channel 0
        m.attn.bias.zero_()
    x = torch.randn(2, 4, 3, 5)
    x[:, 0] = 0.0
    x[0, 0, 2, 1] = 1.0  # one-hot logits: all attention on (2, 1) in sample 0 ...
    x[1, 0, 0, 4] = 1.0  # ... and on (0, 4) in sample 1
    ctx = m.context(x)
    assert ctx.shape == (2, 4, 1, 1)
    torch.testing.assert_close(ctx[0, :, 0, 0], x[0, :, 2, 1])
    torch.testing.assert_close(ctx[1, :, 0, 0], x[1, :, 0, 4])


def test_gc_uniform_logits_pool_the_mean():
    m = GC(8, reduction=2).eval()
    with torch.no_grad():
        m.attn.weight.zero_()
    x = torch.randn(2, 8, 7, 6)
    torch.testing.assert_close(m.context(x), x.mean((2, 3), keepdim=True))


@pytest.mark.parametrize("fuse", ["add", "mul"])
def test_gc_transform_and_fusion_known_values(fuse):
    m = GC(4, reduction=2, fuse=fuse).eval()
    with torch.no_grad():
        m.attn.weight.zero_()  # uniform attention: context = mean
        m.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]).view(2, 4, 1, 1))
        m.fc1.bias.zero_()
        m.fc2.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [2.0, 0], [0, -3.0]]).view(4, 2, 1, 1))
        m.fc2.bias.copy_(torch.tensor([0.0, 0.5, 0, 0]))
    x = torch.randn(1, 4, 4, 4)
    x[:, 0] += 2.0  # mean of channel 0 clearly above that of channel 1
    c = x.mean((2, 3)).flatten()
    h = c[:2]
    ln = (h - h.mean()) / torch.sqrt(h.var(unbiased=False) + m.ln.eps)  # LayerNorm over the 2 hidden units
    r = ln.clamp(min=0)
    t = torch.stack([r[0], r[1] + 0.5, 2 * r[0], -3 * r[1]]).view(1, 4, 1, 1)
    expected = x + t if fuse == "add" else x * torch.sigmoid(t)
    torch.testing.assert_close(m(x), expected)


def test_gc_layernorm_covers_hidden_channels():
    m = GC(64)  # r = 16
    assert tuple(m.ln.normalized_shape) == (4, 1, 1)


# ------------------------------------------------------------------------------------------------
# BAM
# ------------------------------------------------------------------------------------------------
def _set_bam_constant_branches(m: BAM, c_val: torch.Tensor, s_val: float) -> None:
    """Branch-final BNs with zero scale: Mc = c_val (per channel), Ms = s_val (everywhere)."""
    with torch.no_grad():
        m.channel[-1].weight.zero_()
        m.channel[-1].bias.copy_(c_val)
        m.spatial[-1].weight.zero_()
        m.spatial[-1].bias.fill_(s_val)


@pytest.mark.parametrize("fuse, init", [("mul", "paper"), ("add", "paper"), ("mul", "identity"), ("add", "identity")])
def test_bam_gate_forms(fuse, init):
    m = BAM(16, fuse=fuse, init=init).eval()
    c_val = torch.linspace(-1, 1, 16)
    _set_bam_constant_branches(m, c_val, 0.25)
    x = torch.randn(2, 16, 6, 5)
    s = torch.sigmoid(c_val + 0.25).view(1, 16, 1, 1)
    expected = {
        ("mul", "paper"): x * (1 + s),  # the paper's residual refinement F + F * M(F)
        ("add", "paper"): x + s,
        ("mul", "identity"): x * (1 + (2 * s - 1)),
        ("add", "identity"): x + (2 * s - 1),
    }[fuse, init]
    torch.testing.assert_close(m(x), expected)


def test_bam_channel_branch_known_values():
    m = BAM(4, reduction=2).eval()
    _set_bam_constant_branches(m, torch.zeros(4), 0.0)
    with torch.no_grad():
        m.channel[-1].weight.fill_(1.0)
        m.channel[-1].eps = 0.0  # running stats (0, 1): the BN is exactly the identity
        m.channel[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]).view(2, 4, 1, 1))
        m.channel[0].bias.copy_(torch.tensor([0.0, -10.0]))  # second hidden unit stays off for small inputs
        m.channel[2].weight.copy_(torch.tensor([[1.0, 0], [-1.0, 0], [0.5, 0], [0, 0]]).view(4, 2, 1, 1))
        m.channel[2].bias.copy_(torch.tensor([0, 0, 0, 0.3]))
    means = torch.tensor([2.0, -1.0, 0.5, 1.0])
    x = _with_spatial_pattern(means, 4, 2)
    z = torch.tensor([2.0, -2.0, 1.0, 0.3]).view(1, 4, 1, 1)  # relu(m0) = 2 through W1
    torch.testing.assert_close(m(x), x * (1 + torch.sigmoid(z)))


def test_bam_spatial_branch_structure():
    m = BAM(64, reduction=16, dilation=4)
    convs = [mod for mod in m.spatial.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3), (1, 1)]
    assert [c.dilation for c in convs] == [(1, 1), (4, 4), (4, 4), (1, 1)]
    assert convs[0].out_channels == 4 and convs[-1].out_channels == 1
    # the spatial map varies over positions, the channel map does not
    m.eval()
    x = torch.randn(1, 64, 9, 9)
    s = m.spatial(x)
    assert s.shape == (1, 1, 9, 9) and s.std() > 0


# ------------------------------------------------------------------------------------------------
# GatherExcite
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_gather_excite_global_closed_form(fuse):
    m = GatherExcite(8, fuse=fuse).eval()
    assert sum(p.numel() for p in m.parameters()) == 0  # GE-theta-minus is parameter-free
    x = torch.randn(2, 8, 7, 5)
    g = torch.sigmoid(x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(m(x), x * g if fuse == "mul" else x + g)


def test_gather_excite_global_identity_affine():
    m = GatherExcite(8, init="identity")
    with torch.no_grad():
        m.scale.fill_(0.5)
        m.shift.fill_(1.0)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(m(x), x * 2 * torch.sigmoid(0.5 * x.mean((2, 3), keepdim=True) + 1.0))


def test_gather_excite_extent_stages():
    for extent, stages in [(2, 1), (4, 2), (8, 3), (16, 4)]:
        convs = [c for c in GatherExcite(8, extent).gather if isinstance(c, torch.nn.Conv2d)]
        assert len(convs) == stages
        assert all(c.stride == (2, 2) and c.groups == 8 for c in convs)


def test_gather_excite_extent_known_values():
    """Centre-tap depthwise conv + identity BN: the gathered map is x[::2, ::2], upsampled by nearest."""
    m = GatherExcite(3, 2).eval()
    with torch.no_grad():
        conv, bn = m.gather[0], m.gather[1]
        conv.weight.zero_()
        conv.weight[:, 0, 1, 1] = 1.0
        bn.eps = 0.0
    x = torch.randn(1, 3, 6, 4)
    z = x[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(m(x), x * torch.sigmoid(z))


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 2), (13, 9)])
def test_gather_excite_extent_any_size(hw):
    m = GatherExcite(8, 8).eval()
    x = torch.randn(1, 8, *hw)
    assert m(x).shape == x.shape


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
# ONNX (module level, shapes that stress split/interpolate)
# ------------------------------------------------------------------------------------------------
ONNX_CASES = [("CoordAtt", {}), ("GatherExcite", {"extent": 4}), ("CBAM", {}), ("GC", {"fuse": "mul"})]


@pytest.mark.parametrize("variant", ONNX_CASES, ids=_ids)
def test_onnx_matches_torch_at_odd_size(variant):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    name, kw = variant
    m = LAYERS.get(name).cls(16, **kw).eval()
    x = torch.randn(1, 16, 13, 7)
    f = io.BytesIO()
    torch.onnx.export(m, (x,), f, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), m(x), rtol=1e-4, atol=1e-5)
