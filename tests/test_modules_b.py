"""Known-value, identity-start and option tests for SimAM, SK, NonLocal, TripletAttention,
ShuffleAttention and GAM (registry-wide shape/grad/export tests live elsewhere)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import yolo_attn
from yolo_attn.modules.gam import GAM
from yolo_attn.modules.nonlocal_ import NonLocal
from yolo_attn.modules.shuffle import ShuffleAttention, default_groups
from yolo_attn.modules.simam import SimAM
from yolo_attn.modules.sk import SK
from yolo_attn.modules.triplet import TripletAttention

NAMES = ["SimAM", "SK", "NonLocal", "TripletAttention", "ShuffleAttention", "GAM"]
GATING = {"TripletAttention", "ShuffleAttention", "GAM"}
YOLO_CHANNELS = [16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280]


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_as_preserve(name):
    spec = yolo_attn.LAYERS.get(name)
    assert spec.kind == "preserve"
    assert spec.gating == (name in GATING)
    assert spec.onnx and not spec.nondeterministic


# ---------------------------------------------------------------------------------------------
# identity start
# ---------------------------------------------------------------------------------------------
def _option_sets(name):
    fuses = [{"fuse": "mul"}, {"fuse": "add"}] if name in GATING else [{}]
    extra = {
        "NonLocal": [{}, {"sub_sample": True}],
        "TripletAttention": [{}, {"no_spatial": True}],
        "SK": [{}, {"branches": 3}],
    }.get(name, [{}])
    return [{**f, **e} for f in fuses for e in extra]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (8, 8)])
def test_identity_init_is_exact(name, hw):
    torch.manual_seed(0)
    for opts in _option_sets(name):
        m = yolo_attn.build(name, 32, init="identity", **opts)
        x = rand(2, 32, *hw, seed=1) * 3
        assert torch.equal(m.train()(x), x), opts
        assert torch.equal(m.eval()(x[:1]), x[:1]), opts


@pytest.mark.parametrize("name", NAMES)
def test_identity_init_still_learns(name):
    """The zeroed layers/scales receive gradient, so the module can move away from the identity."""
    m = yolo_attn.build(name, 16, init="identity").train()
    x = rand(2, 16, 6, 6).requires_grad_(True)
    (m(x) * rand(2, 16, 6, 6, seed=3)).sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_nonlocal_paper_init_is_identity_too():
    x = rand(2, 16, 5, 7)
    assert torch.equal(NonLocal(16).train()(x), x)


# ---------------------------------------------------------------------------------------------
# SimAM
# ---------------------------------------------------------------------------------------------
def _simam_numpy(x, lam):
    b, c, h, w = x.shape
    out = np.empty_like(x)
    for i in range(b):
        for j in range(c):
            t = x[i, j]
            mu = t.mean()
            n = max(h * w - 1, 1)
            var = ((t - mu) ** 2).sum() / n
            e = (t - mu) ** 2 / (4 * (var + lam)) + 0.5
            out[i, j] = t * sigmoid(e)
    return out


@pytest.mark.parametrize("hw", [(3, 4), (1, 5), (1, 1)])
@pytest.mark.parametrize("lam", [1e-4, 0.5])
def test_simam_closed_form(hw, lam):
    x = rand(2, 3, *hw).double()
    y = SimAM(3, e_lambda=lam)(x)
    np.testing.assert_allclose(y.numpy(), _simam_numpy(x.numpy(), lam), rtol=1e-12, atol=1e-12)


def test_simam_hand_values():
    # one channel [0, 0, 0, 4]: mu = 1, sum of squared deviations = 1 + 1 + 1 + 9 = 12, n = 3,
    # sigma^2 = 4; energies: 1 / (4 * 4) + 0.5 for the zeros, 9 / 16 + 0.5 for the 4.
    x = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]], dtype=torch.float64)
    y = SimAM(1, e_lambda=0.0 + 1e-12)(x)
    expected = 4.0 * sigmoid(9 / 16 + 0.5)
    assert y[0, 0, 1, 1].item() == pytest.approx(expected, rel=1e-9)
    assert torch.all(y[0, 0].flatten()[:3] == 0)


def test_simam_has_no_parameters_in_paper_mode():
    assert sum(p.numel() for p in SimAM(64).parameters()) == 0
    assert sum(p.numel() for p in SimAM(64, init="identity").parameters()) == 64


# ---------------------------------------------------------------------------------------------
# SK
# ---------------------------------------------------------------------------------------------
def _sk_parts(m, x):
    """Branch outputs and softmax weights captured with hooks during one forward."""
    seen = {}
    hooks = [
        conv.register_forward_hook(lambda mod, i, o, k=k: seen.__setitem__(k, o.clone()))
        for k, conv in enumerate(m.convs)
    ]
    hooks.append(m.select.register_forward_hook(lambda mod, i, o: seen.__setitem__("logits", o.clone())))
    y = m(x)
    for h in hooks:
        h.remove()
    b, c = x.shape[:2]
    a = seen["logits"].view(b, m.branches, c, 1, 1).softmax(1)
    return y, [seen[k] for k in range(m.branches)], a


@pytest.mark.parametrize("branches", [2, 3])
def test_sk_branch_weights_sum_to_one_and_mix_branches(branches):
    torch.manual_seed(0)
    m = SK(32, branches=branches).eval()
    for p in m.select.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = rand(2, 32, 7, 5)
    y, u, a = _sk_parts(m, x)
    torch.testing.assert_close(a.sum(1), torch.ones_like(a.sum(1)))
    assert (a > 0).all() and (a < 1).all()
    torch.testing.assert_close(y, sum(a[:, k] * u[k] for k in range(branches)))


def test_sk_zero_select_averages_branches_and_bias_selects_one():
    m = SK(16).eval()
    torch.nn.init.zeros_(m.select.weight)
    torch.nn.init.zeros_(m.select.bias)
    x = rand(1, 16, 6, 6)
    y, u, _ = _sk_parts(m, x)
    torch.testing.assert_close(y, (u[0] + u[1]) / 2)
    with torch.no_grad():
        m.select.bias[16:] = -100.0  # logits of branch 2 very negative -> branch 1 only
    y, u, _ = _sk_parts(m, x)
    torch.testing.assert_close(y, u[0])


def test_sk_branch_receptive_fields():
    """Branch m is a 3x3 conv with dilation m: a single impulse spreads over a (2m+1)-wide field."""
    m = SK(16, groups=16).eval()
    x = torch.zeros(1, 16, 9, 9)
    x[:, :, 4, 4] = 1.0
    with torch.no_grad():
        for conv in m.convs:
            conv[0].weight.fill_(1.0)
            conv[1].bias.fill_(0.0)
        u = [conv(x) for conv in m.convs]
    assert (u[0][0, 0] > 0).nonzero().tolist() == [[i, j] for i in (3, 4, 5) for j in (3, 4, 5)]
    assert (u[1][0, 0] > 0).nonzero().tolist() == [[i, j] for i in (2, 4, 6) for j in (2, 4, 6)]


def test_sk_hidden_width_and_default_groups():
    assert SK(64).fc.out_channels == 32  # max(64 // 16, L = 32)
    assert SK(1024).fc.out_channels == 64
    for c in YOLO_CHANNELS:
        assert c % SK(c).groups == 0
    assert SK(48).groups == 16 and SK(1280).groups == 32 and SK(16).groups == 16


def test_sk_training_batch_of_one():
    m = SK(16).train()
    y = m(rand(1, 16, 4, 4))
    assert y.shape == (1, 16, 4, 4) and torch.isfinite(y).all()


# ---------------------------------------------------------------------------------------------
# NonLocal
# ---------------------------------------------------------------------------------------------
def _set_nonlocal(m, wq, bq, wz, gamma, beta):
    with torch.no_grad():
        m.qkv.weight.copy_(torch.as_tensor(wq).view_as(m.qkv.weight))
        m.qkv.bias.copy_(torch.as_tensor(bq))
        m.wz.weight.copy_(torch.as_tensor(wz).view_as(m.wz.weight))
        m.bn.weight.copy_(torch.as_tensor(gamma))
        m.bn.bias.copy_(torch.as_tensor(beta))
    return m.eval()


def _nonlocal_numpy(x, wq, bq, wz, gamma, beta, eps, sub_sample):
    b, _, h, w = x.shape
    c_ = wq.shape[0] // 3
    qkv = np.einsum("oc,bchw->bohw", wq, x) + bq[None, :, None, None]
    theta, kv = qkv[:, :c_], qkv[:, c_:]
    if sub_sample:  # 2x2 max pooling, partial windows at the border
        hp, wp = -(-h // 2), -(-w // 2)
        pooled = np.empty((b, 2 * c_, hp, wp))
        for i in range(hp):
            for j in range(wp):
                pooled[:, :, i, j] = kv[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max((2, 3))
        kv = pooled
    phi, g = kv[:, :c_].reshape(b, c_, -1), kv[:, c_:].reshape(b, c_, -1)
    theta = theta.reshape(b, c_, -1)
    out = np.empty_like(x)
    for n in range(b):
        logits = theta[n].T @ phi[n]  # (HW, N)
        f = np.exp(logits - logits.max(1, keepdims=True))
        f /= f.sum(1, keepdims=True)
        y = (f @ g[n].T).T.reshape(c_, h, w)
        wy = np.einsum("oc,chw->ohw", wz, y)
        out[n] = gamma[:, None, None] * wy / np.sqrt(1 + eps) + beta[:, None, None] + x[n]
    return out


@pytest.mark.parametrize("sub_sample,hw", [(False, (3, 4)), (True, (3, 5)), (True, (1, 1)), (False, (1, 1))])
def test_nonlocal_hand_set_weights(sub_sample, hw):
    c, c_ = 4, 2
    rng = np.random.default_rng(0)
    wq = rng.normal(size=(3 * c_, c)) * 0.7
    bq = rng.normal(size=3 * c_) * 0.1
    wz = rng.normal(size=(c, c_))
    gamma, beta = np.array([1.0, 0.5, -1.0, 2.0]), np.array([0.0, 0.1, 0.2, -0.3])
    m = _set_nonlocal(NonLocal(c, reduction=2, sub_sample=sub_sample).double(), wq, bq, wz, gamma, beta)
    x = rand(2, c, *hw).double()
    ref = _nonlocal_numpy(x.numpy(), wq, bq, wz, gamma, beta, m.bn.eps, sub_sample)
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-10, atol=1e-10)


def test_nonlocal_uniform_attention_gives_global_mean():
    """theta = 0 makes every attention row uniform: y at each position is the mean of g."""
    c = 2
    wq = np.zeros((3, c))
    wq[2] = [1.0, 0.0]  # g = first input channel; theta = phi = 0
    m = _set_nonlocal(
        NonLocal(c, reduction=2).double(), wq, np.zeros(3), np.array([[1.0], [0.0]]), np.ones(c), np.zeros(c)
    )
    x = rand(1, c, 4, 3).double()
    z = m(x) - x
    expected = x[0, 0].mean().item() / math.sqrt(1 + m.bn.eps)
    torch.testing.assert_close(z[0, 0], torch.full((4, 3), expected, dtype=torch.float64))
    assert torch.all(z[0, 1] == 0)


# ---------------------------------------------------------------------------------------------
# TripletAttention
# ---------------------------------------------------------------------------------------------
def _zero_triplet_convs(m):
    with torch.no_grad():
        for branch in (m.ch, m.cw, m.hw):
            if branch is not None:
                branch.conv.weight.zero_()
    return m.eval()


@pytest.mark.parametrize("no_spatial", [False, True])
def test_triplet_zero_convs_give_half_gate(no_spatial):
    x = rand(2, 8, 5, 3)
    m = _zero_triplet_convs(TripletAttention(8, no_spatial=no_spatial))
    torch.testing.assert_close(m(x), 0.5 * x)
    m = _zero_triplet_convs(TripletAttention(8, no_spatial=no_spatial, fuse="add"))
    torch.testing.assert_close(m(x), x + 0.5)


def test_triplet_known_value_center_tap():
    """Only the centre tap of each conv reads the max map: gate_k = sigmoid(max over the pooled dim)."""
    x = rand(2, 6, 4, 5).double()
    m = TripletAttention(6).double().eval()
    with torch.no_grad():
        for branch in (m.ch, m.cw, m.hw):
            branch.conv.weight.zero_()
            branch.conv.weight[0, 0, 3, 3] = math.sqrt(1 + branch.bn.eps)  # cancels eval BN scaling
    xn = x.numpy()
    g = (sigmoid(xn.max(3, keepdims=True)) + sigmoid(xn.max(2, keepdims=True)) + sigmoid(xn.max(1, keepdims=True))) / 3
    np.testing.assert_allclose(m(x).detach().numpy(), xn * g, rtol=1e-10, atol=1e-12)


def test_triplet_mean_tap():
    x = rand(1, 4, 3, 3).double()
    m = TripletAttention(4, kernel_size=3, no_spatial=True).double().eval()
    with torch.no_grad():
        for branch in (m.ch, m.cw):
            branch.conv.weight.zero_()
            branch.conv.weight[0, 1, 1, 1] = math.sqrt(1 + branch.bn.eps)
    xn = x.numpy()
    g = (sigmoid(xn.mean(3, keepdims=True)) + sigmoid(xn.mean(2, keepdims=True))) / 2
    np.testing.assert_allclose(m(x).detach().numpy(), xn * g, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# ShuffleAttention
# ---------------------------------------------------------------------------------------------
def _shuffle_numpy(x, groups, cw, cb, sw, sb, eps, fuse="mul"):
    c = x.shape[1]
    half = c // (2 * groups)
    out = np.empty_like(x)
    for k in range(groups):
        base = 2 * half * k
        for j in range(half):
            t1 = x[:, base + j]
            g1 = sigmoid(cw[j] * t1.mean((1, 2), keepdims=True) + cb[j])
            out[:, base + j] = t1 * g1 if fuse == "mul" else t1 + g1
            t2 = x[:, base + half + j]
            mu = t2.mean((1, 2), keepdims=True)
            var = ((t2 - mu) ** 2).mean((1, 2), keepdims=True)
            g2 = sigmoid(sw[j] * (t2 - mu) / np.sqrt(var + eps) + sb[j])
            out[:, base + half + j] = t2 * g2 if fuse == "mul" else t2 + g2
    # channel shuffle with 2 groups: output channel 2 i + s reads channel s * C/2 + i
    shuffled = np.empty_like(out)
    for i in range(c // 2):
        for s in range(2):
            shuffled[:, 2 * i + s] = out[:, s * (c // 2) + i]
    return shuffled


@pytest.mark.parametrize("groups,fuse,hw", [(2, "mul", (4, 3)), (1, "add", (2, 5)), (4, "mul", (1, 1))])
def test_shuffle_known_affine(groups, fuse, hw):
    c = 16
    m = ShuffleAttention(c, groups=groups, fuse=fuse).double().eval()
    half = c // (2 * groups)
    cw, cb = np.linspace(-1, 2, half), np.linspace(0.5, -0.5, half)
    sw, sb = np.linspace(2, -1, half), np.linspace(-0.3, 0.3, half)
    with torch.no_grad():
        for p, v in ((m.cweight, cw), (m.cbias, cb), (m.sweight, sw), (m.sbias, sb)):
            p.copy_(torch.as_tensor(v).view_as(p))
    x = rand(2, c, *hw).double()
    ref = _shuffle_numpy(x.numpy(), groups, cw, cb, sw, sb, m.eps, fuse)
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-10, atol=1e-10)


def test_shuffle_paper_init_gate_is_sigmoid_one_and_shuffled():
    x = rand(1, 8, 3, 3)
    y = ShuffleAttention(8, groups=2)(x)
    expected = (x * torch.sigmoid(torch.tensor(1.0))).view(1, 2, 4, 3, 3).transpose(1, 2).reshape(1, 8, 3, 3)
    torch.testing.assert_close(y, expected)


def test_shuffle_default_groups():
    assert default_groups(16) == 8 and default_groups(48) == 8 and default_groups(128) == 64
    assert default_groups(1280) == 64 and default_groups(80) == 8 and default_groups(96) == 16
    for c in YOLO_CHANNELS:
        g = ShuffleAttention(c).groups
        assert c % (2 * g) == 0


# ---------------------------------------------------------------------------------------------
# GAM
# ---------------------------------------------------------------------------------------------
def test_gam_constant_gates():
    """Zero weights leave only biases: both gates are constants sigmoid(b) and sigmoid(beta)."""
    m = GAM(8, reduction=2).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.channel[-1].bias.fill_(0.3)
        m.spatial[-1].bias.fill_(-0.7)
    x = rand(2, 8, 5, 4)
    s = torch.sigmoid(torch.tensor(0.3)) * torch.sigmoid(torch.tensor(-0.7))
    torch.testing.assert_close(m(x), x * s)
    a = GAM(8, reduction=2, fuse="add").eval()  # the gate form is chosen at construction
    a.load_state_dict(m.state_dict())
    torch.testing.assert_close(a(x), x + torch.sigmoid(torch.tensor(0.3)) + torch.sigmoid(torch.tensor(-0.7)))


def test_gam_channel_mlp_is_per_position():
    """The channel sub-module equals the paper's permute -> MLP over C -> permute back."""
    c, r = 6, 2
    m = GAM(c, reduction=r).double().eval()
    with torch.no_grad():  # spatial gate constant 1: last BN weight 0 and a huge shift
        m.spatial[-1].weight.zero_()
        m.spatial[-1].bias.fill_(100.0)
    x = rand(2, c, 3, 4).double()
    w1 = m.channel[0].weight.detach().numpy()[:, :, 0, 0]
    b1 = m.channel[0].bias.detach().numpy()
    w2 = m.channel[2].weight.detach().numpy()[:, :, 0, 0]
    b2 = m.channel[2].bias.detach().numpy()
    xp = x.numpy().transpose(0, 2, 3, 1)  # (B, H, W, C)
    hidden = np.maximum(xp @ w1.T + b1, 0)
    gate = sigmoid(hidden @ w2.T + b2).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(m(x).detach().numpy(), x.numpy() * gate, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# bad options
# ---------------------------------------------------------------------------------------------
BAD = [
    ("SimAM", 16, {"e_lambda": 0}),
    ("SimAM", 16, {"e_lambda": "x"}),
    ("SimAM", 16, {"init": "zero"}),
    ("SK", 16, {"groups": 3}),
    ("SK", 16, {"groups": 0}),
    ("SK", 16, {"branches": 0}),
    ("SK", 16, {"reduction": 32}),
    ("SK", 16, {"init": "x"}),
    ("NonLocal", 16, {"reduction": 0}),
    ("NonLocal", 16, {"reduction": 32}),
    ("NonLocal", 16, {"sub_sample": "yes"}),
    ("NonLocal", 16, {"init": "zeros"}),
    ("TripletAttention", 16, {"kernel_size": 4}),
    ("TripletAttention", 16, {"kernel_size": 0}),
    ("TripletAttention", 16, {"fuse": "max"}),
    ("TripletAttention", 16, {"no_spatial": 1}),
    ("ShuffleAttention", 16, {"groups": 3}),
    ("ShuffleAttention", 16, {"groups": 16}),
    ("ShuffleAttention", 15, {}),
    ("ShuffleAttention", 16, {"fuse": "x"}),
    ("ShuffleAttention", 16, {"eps": -1.0}),
    ("GAM", 16, {"reduction": 17}),
    ("GAM", 16, {"kernel_size": 6}),
    ("GAM", 16, {"init": "x"}),
    ("GAM", 16, {"fuse": "x"}),
    ("GAM", 0, {}),
]


@pytest.mark.parametrize("name,c1,opts", BAD, ids=[f"{n}-{c}-{o}" for n, c, o in BAD])
def test_bad_options_raise_naming_the_class(name, c1, opts):
    with pytest.raises(ValueError, match=f"^{name}: "):
        yolo_attn.build(name, c1, **opts)


# ---------------------------------------------------------------------------------------------
# robustness: every YOLO channel count, tiny and odd maps, batch 1 in eval
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_default_options_build_for_every_yolo_width(name):
    for c in YOLO_CHANNELS:
        yolo_attn.build(name, c)


@pytest.mark.parametrize("name", NAMES)
def test_small_and_odd_maps_eval_batch_one(name):
    torch.manual_seed(0)
    m = yolo_attn.build(name, 16).eval()
    for hw in [(1, 1), (1, 4), (5, 3), (7, 7)]:
        x = rand(1, 16, *hw)
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
