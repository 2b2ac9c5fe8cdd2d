"""Known-value and option tests of MHSA (``yolo_attn/modules/mhsa.py``); shared checks: test_contract.py."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_attn.modules.mhsa import MHSA

from conftest import randomise_parameters

SIZES = [(1, 1), (1, 7), (2, 2), (3, 5), (8, 8), (13, 11), (20, 20)]


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
    m = randomise_parameters(MHSA(8, heads=2, max_size=6))
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
    m = randomise_parameters(MHSA(8, heads=2, max_size=5), seed=1)
    x = torch.randn(2, 8, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _mhsa_reference(m, x), rtol=1e-4, atol=1e-5)


def test_mhsa_relative_logits_depend_only_on_offsets():
    # a query vector constant over positions sees the same content-position logit for equal offsets
    m = randomise_parameters(MHSA(4, heads=1, max_size=8))
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
    m = randomise_parameters(MHSA(8, heads=2, max_size=5))
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
