"""Known-value and option tests of CoAtNetAttn (``yolo_attn/modules/coatnet.py``); shared checks: test_contract.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from yolo_attn.modules.coatnet import CoAtNetAttn, default_heads

from conftest import randomise_parameters

SIZES = [(1, 1), (1, 7), (2, 2), (3, 5), (8, 8), (13, 11), (20, 20)]


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
    m = randomise_parameters(CoAtNetAttn(8, heads=2, max_size=6)).train()
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
    m = randomise_parameters(CoAtNetAttn(12, heads=3, expansion=2, max_size=6), seed=2)
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
