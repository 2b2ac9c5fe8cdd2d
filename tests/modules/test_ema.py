"""Known-value and option tests of EMA (``yolo_attn/modules/ema.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from yolo_attn.modules.ema import EMA

from conftest import randomise_parameters

SIZES = [(1, 1), (1, 7), (2, 2), (3, 5), (8, 8), (13, 11), (20, 20)]


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
    m = randomise_parameters(EMA(24, groups=3))
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
    m = randomise_parameters(EMA(16, groups=4))
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
