"""Known-value and module-specific tests of EMA, MHSA and CoAtNetAttn.

The registry-wide tests (shape, gradients, YOLO scales, Ultralytics export) live elsewhere; these
check each module against a straightforward re-computation of its paper's formula.
"""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import yolo_attn  # noqa: F401  (registers the layers)
from yolo_attn.modules.coatnet import CoAtNetAttn, default_heads
from yolo_attn.modules.ema import EMA
from yolo_attn.modules.mhsa import MHSA

SIZES = [(1, 1), (1, 7), (2, 2), (3, 5), (8, 8), (13, 11), (20, 20)]


def _randomise(m: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter a random value (so zero/one defaults cannot hide indexing mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return m.eval()


# ------------------------------------------------------------------------------------------------
# EMA
# ------------------------------------------------------------------------------------------------
def _ema_reference(m: EMA, x: torch.Tensor) -> torch.Tensor:
    """EMA written out group by group and sample by sample."""
    b, c = x.shape[:2]
    cg = c // m.groups
    out = torch.empty_like(x)
    for i in range(b):
        for g in range(m.groups):
            xg = x[i, g * cg : (g + 1) * cg]  # (cg, h, w)
            rows = xg.mean(2)  # (cg, h): averaged along the width
            cols = xg.mean(1)  # (cg, w): averaged along the height
            wt, bs = m.conv1.weight[:, :, 0, 0], m.conv1.bias
            gate_rows = torch.sigmoid(wt @ rows + bs[:, None])
            gate_cols = torch.sigmoid(wt @ cols + bs[:, None])
            a = xg * gate_rows[:, :, None] * gate_cols[:, None, :]
            mu = a.mean((1, 2), keepdim=True)
            var = a.var((1, 2), unbiased=False, keepdim=True)
            x1 = (a - mu) / torch.sqrt(var + m.norm.eps) * m.norm.weight[:, None, None] + m.norm.bias[:, None, None]
            x2 = F.conv2d(xg[None], m.conv3.weight, m.conv3.bias, padding=1)[0]
            p1 = torch.softmax(x1.mean((1, 2)), 0)
            p2 = torch.softmax(x2.mean((1, 2)), 0)
            cross = (p1[:, None, None] * x2).sum(0) + (p2[:, None, None] * x1).sum(0)  # (h, w)
            out[i, g * cg : (g + 1) * cg] = xg * torch.sigmoid(cross)
    return out


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (6, 6)])
def test_ema_matches_groupwise_reference(hw):
    m = _randomise(EMA(24, groups=3))
    x = torch.randn(2, 24, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _ema_reference(m, x), rtol=1e-4, atol=1e-5)


def test_ema_closed_form_with_hand_set_weights():
    # 3x3 conv zero with bias b3 and GroupNorm weight 0 with bias beta: both branches are constant maps,
    # so the cross-spatial map is p(beta) . b3 + p(b3) . beta everywhere and y = x * sigmoid(that).
    m = EMA(8, groups=2).eval()
    beta = torch.tensor([0.5, -1.0, 2.0, 0.0])
    b3 = torch.tensor([1.0, 0.25, -0.5, 3.0])
    with torch.no_grad():
        m.conv3.weight.zero_()
        m.conv3.bias.copy_(b3)
        m.norm.weight.zero_()
        m.norm.bias.copy_(beta)
    expected_logit = torch.softmax(beta, 0) @ b3 + torch.softmax(b3, 0) @ beta
    x = torch.randn(1, 8, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * torch.sigmoid(expected_logit))


def test_ema_groups_are_independent():
    m = _randomise(EMA(16, groups=4))
    x = torch.randn(1, 16, 5, 5)
    x2 = x.clone()
    x2[:, :4] += torch.randn(1, 4, 5, 5)  # change group 0 only
    with torch.no_grad():
        y, y2 = m(x), m(x2)
    assert not torch.allclose(y[:, :4], y2[:, :4])
    assert torch.equal(y[:, 4:], y2[:, 4:])


def test_ema_default_groups():
    assert EMA(256).groups == 8
    assert EMA(1280).groups == 8
    assert EMA(12).groups == 4  # not a multiple of 8: gcd(12, 8)
    assert EMA(7).groups == 1
    assert EMA(64, groups=16).groups == 16


@pytest.mark.parametrize("fuse", ["mul", "add"])
@pytest.mark.parametrize("hw", SIZES)
def test_ema_identity_init_exact(fuse, hw):
    m = EMA(32, fuse=fuse, init="identity").eval()
    x = torch.randn(1, 32, *hw)
    with torch.no_grad():
        assert torch.equal(m(x), x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"groups": 3}, "groups 3 must divide"),
        ({"groups": 0}, "groups must be a positive integer"),
        ({"groups": 2.0}, "groups must be a positive integer"),
        ({"fuse": "max"}, "fuse must be one of"),
        ({"init": "zeros"}, "init must be one of"),
    ],
)
def test_ema_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=f"^EMA: {match}"):
        EMA(64, **kwargs)


# ------------------------------------------------------------------------------------------------
# MHSA
# ------------------------------------------------------------------------------------------------
def _mhsa_reference(m: MHSA, x: torch.Tensor) -> torch.Tensor:
    """BoT attention with relative logits, one head, one query and one key at a time."""
    b, c, h, w = x.shape
    n, d, L = m.heads, m.head_dim, m.max_size
    qkv = torch.einsum("oc,bchw->bohw", m.qkv.weight[:, :, 0, 0], x)
    q, k, v = qkv[:, :c], qkv[:, c : 2 * c], qkv[:, 2 * c :]
    pos = [(i, j) for i in range(h) for j in range(w)]
    out = torch.zeros_like(x)
    for bi in range(b):
        for hd in range(n):
            ch = slice(hd * d, (hd + 1) * d)
            for yq, xq in pos:
                qi = q[bi, ch, yq, xq]
                logits = torch.stack(
                    [
                        (qi @ k[bi, ch, yk, xk] + qi @ (m.rel_h[yk - yq + L - 1] + m.rel_w[xk - xq + L - 1]))
                        / math.sqrt(d)
                        for yk, xk in pos
                    ]
                )
                a = torch.softmax(logits, 0)
                out[bi, ch, yq, xq] = sum(a[t] * v[bi, ch, yk, xk] for t, (yk, xk) in enumerate(pos))
    return x + m.proj(out)


def test_mhsa_with_zero_relative_tables_is_plain_softmax_attention():
    m = _randomise(MHSA(8, heads=2, max_size=6))
    with torch.no_grad():
        m.rel_h.zero_()
        m.rel_w.zero_()
        x = torch.randn(1, 8, 3, 4)
        # plain scaled dot-product attention per head, looping over heads and query positions
        qkv = torch.einsum("oc,bchw->bohw", m.qkv.weight[:, :, 0, 0], x).flatten(2)[0]  # (3c, hw)
        q, k, v = qkv[:8], qkv[8:16], qkv[16:]
        out = torch.zeros(8, 12)
        for hd in range(2):
            ch = slice(4 * hd, 4 * hd + 4)
            for i in range(12):
                a = torch.softmax(q[ch, i] @ k[ch] / 2.0, 0)  # sqrt(head_dim 4) = 2
                out[ch, i] = v[ch] @ a
        expected = x + m.proj(out.reshape(1, 8, 3, 4))
        torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (4, 4), (5, 2)])
def test_mhsa_matches_relative_position_reference(hw):
    m = _randomise(MHSA(8, heads=2, max_size=5), seed=1)
    x = torch.randn(2, 8, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _mhsa_reference(m, x), rtol=1e-4, atol=1e-5)


def test_mhsa_relative_logits_depend_only_on_offsets():
    # a query vector constant over positions sees the same content-position logit for equal offsets
    m = _randomise(MHSA(4, heads=1, max_size=8))
    q = torch.randn(1, 1, 1, 4).expand(1, 1, 20, 4)  # 4x5 map
    with torch.no_grad():
        r = m.relative_logits(q, 4, 5).reshape(4, 5, 4, 5)
    torch.testing.assert_close(r[0, 0, 1, 2], r[2, 1, 3, 3])  # offset (+1, +2)
    expected = q[0, 0, 0] @ (m.rel_h[(1 - 3) + 7] + m.rel_w[(4 - 0) + 7])  # query (3, 0), key (1, 4)
    torch.testing.assert_close(r[3, 0, 1, 4], expected)


@pytest.mark.parametrize("hw", SIZES)
def test_mhsa_identity_init_exact(hw):
    m = MHSA(16, heads=4, init="identity").eval()
    x = torch.randn(1, 16, *hw)
    with torch.no_grad():
        assert torch.equal(m(x), x)


def test_mhsa_one_layer_serves_every_size_up_to_max_size():
    m = _randomise(MHSA(8, heads=2, max_size=5))
    with torch.no_grad():
        for hw in [(1, 1), (5, 5), (2, 5), (5, 1), (3, 4)]:
            y = m(torch.randn(1, 8, *hw))
            assert y.shape == (1, 8, *hw) and torch.isfinite(y).all()
        for hw in [(6, 5), (5, 6), (9, 1)]:
            with pytest.raises(ValueError, match=r"^MHSA: feature map .* exceeds max_size=5"):
                m(torch.randn(1, 8, *hw))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"heads": 3}, "heads 3 must divide the 64 input channels"),
        ({"heads": 0}, "heads must be a positive integer"),
        ({"max_size": 0}, "max_size must be a positive integer"),
        ({"init": "zero"}, "init must be one of"),
    ],
)
def test_mhsa_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=f"^MHSA: {match}"):
        MHSA(64, **kwargs)


# ------------------------------------------------------------------------------------------------
# CoAtNetAttn
# ------------------------------------------------------------------------------------------------
def _coded_table(m: CoAtNetAttn) -> None:
    """Bias table entry of head n at offset (dy, dx) := 100 n + 10 dy + dx."""
    L, span = m.max_size, 2 * m.max_size - 1
    off = torch.arange(span) - (L - 1)
    code = 10.0 * off[:, None] + off[None, :]  # (dy, dx)
    with torch.no_grad():
        m.rel_bias.copy_((100.0 * torch.arange(m.heads)[:, None, None] + code).reshape(m.heads, -1))


def test_coatnet_bias_of_zero_offset_is_on_the_diagonal():
    m = CoAtNetAttn(8, heads=2, max_size=4)
    _coded_table(m)
    bias = m.relative_bias(2, 2)  # positions (0,0), (0,1), (1,0), (1,1)
    assert bias.shape == (2, 4, 4)
    torch.testing.assert_close(torch.diagonal(bias, dim1=1, dim2=2), torch.tensor([[0.0] * 4, [100.0] * 4]))
    # w_{i-j}: query (1,1) vs key (0,0) is offset (+1, +1); query (0,1) vs key (1,0) is (-1, +1)
    assert bias[0, 3, 0] == 11 and bias[0, 0, 3] == -11 and bias[0, 1, 2] == -9 and bias[1, 2, 1] == 109


@pytest.mark.parametrize("hw", [(1, 1), (3, 4), (5, 2)])
def test_coatnet_bias_indexing_every_pair(hw):
    m = CoAtNetAttn(6, heads=3, max_size=5)
    _coded_table(m)
    h, w = hw
    bias = m.relative_bias(h, w)
    for n in range(3):
        for i in range(h * w):
            for j in range(h * w):
                (yi, xi), (yj, xj) = divmod(i, w), divmod(j, w)
                assert bias[n, i, j] == 100 * n + 10 * (yi - yj) + (xi - xj)


def test_coatnet_bias_gather_paths_agree():
    m = _randomise(CoAtNetAttn(8, heads=2, max_size=6)).train()
    with_grad = m.relative_bias(5, 3)  # advanced indexing (training path)
    with torch.no_grad():
        assert torch.equal(m.relative_bias(5, 3), with_grad)  # index_select (inference path)
    assert with_grad.requires_grad


def _coatnet_reference(m: CoAtNetAttn, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    n, d = m.heads, m.head_dim
    t = x.flatten(2).transpose(1, 2)  # (b, hw, c)

    def ln(z, norm):
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    qkv = ln(t, m.norm1) @ m.qkv.weight.T + m.qkv.bias
    bias = m.relative_bias(h, w)
    heads = []
    for hd in range(n):
        q = qkv[..., hd * d : (hd + 1) * d]
        k = qkv[..., c + hd * d : c + (hd + 1) * d]
        v = qkv[..., 2 * c + hd * d : 2 * c + (hd + 1) * d]
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d) + bias[hd], -1)
        heads.append(a @ v)
    y = t + torch.cat(heads, -1) @ m.proj.weight.T + m.proj.bias
    hidden = F.gelu(ln(y, m.norm2) @ m.fc1.weight.T + m.fc1.bias)
    z = y + hidden @ m.fc2.weight.T + m.fc2.bias
    return z.transpose(1, 2).reshape(b, c, h, w)


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (4, 4)])
def test_coatnet_matches_reference(hw):
    m = _randomise(CoAtNetAttn(12, heads=3, expansion=2, max_size=6), seed=2)
    x = torch.randn(2, 12, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _coatnet_reference(m, x), rtol=1e-4, atol=1e-4)


def test_coatnet_default_heads_are_about_32_wide():
    assert [default_heads(c) for c in (16, 48, 80, 96, 256, 640, 1280)] == [1, 1, 2, 3, 8, 20, 40]
    assert CoAtNetAttn(256).heads == 8 and CoAtNetAttn(256, heads=4).head_dim == 64
    assert CoAtNetAttn(16, expansion=2).fc1.out_features == 32


@pytest.mark.parametrize("hw", SIZES)
def test_coatnet_identity_init_exact(hw):
    m = CoAtNetAttn(16, init="identity").eval()
    x = torch.randn(1, 16, *hw)
    with torch.no_grad():
        assert torch.equal(m(x), x)


def test_coatnet_size_limit():
    m = CoAtNetAttn(8, heads=2, max_size=4).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 8, 4, 4)).shape == (1, 8, 4, 4)
        with pytest.raises(ValueError, match=r"^CoAtNetAttn: feature map 5x4 exceeds max_size=4"):
            m(torch.randn(1, 8, 5, 4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"heads": 5}, "heads 5 must divide the 64 input channels"),
        ({"heads": 0}, "heads must be a positive integer"),
        ({"expansion": 0}, "expansion must be a positive integer"),
        ({"max_size": -1}, "max_size must be a positive integer"),
        ({"init": "paper2"}, "init must be one of"),
    ],
)
def test_coatnet_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=f"^CoAtNetAttn: {match}"):
        CoAtNetAttn(64, **kwargs)


# ------------------------------------------------------------------------------------------------
# ONNX at a non-square size: the relative-position gathers must be traced for the export size
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MHSA, CoAtNetAttn, EMA])
def test_onnx_non_square_matches_torch(cls):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = _randomise(cls(16), seed=3)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(0.3)
    x = torch.randn(1, 16, 5, 7)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), f, opset_version=18, dynamo=False, input_names=["x"], output_names=["y"])
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), m(x), rtol=1e-4, atol=1e-4)
