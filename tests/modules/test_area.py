"""AttnA2C2f (YOLO12's A2C2f with the area attention replaced) and AttnC3k2's PSA units, against explicit formulas.

The expected outputs are written with ``torch.nn.functional`` from the block's definition: ``y0 = cv1(x)``; each
stage applies two units ``u = A(v); v = u + MLP(u)`` (A: the registered layer, here SE computed by hand);
``out = cv2(cat(y0, stage outputs))``, plus ``x + gamma * out`` with the residual.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ultralytics.nn.modules.block import A2C2f, PSABlock

from yolo_attn.modules.area import AttnA2C2f
from yolo_attn.modules.c2f import AttnC3k2

from conftest import rand


def _conv(c, x, act=True):
    """Ultralytics' Conv (conv, eval-mode BatchNorm, SiLU) written out."""
    y = F.conv2d(x, c.conv.weight, None, c.conv.stride, c.conv.padding, groups=c.conv.groups)
    bn = c.bn
    y = (y - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    y = y * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    return F.silu(y) if act else y


def _se(se, x):
    """SE from the paper: global mean, reduce, ReLU, expand, sigmoid, multiply (weights read by name and shape)."""
    w = [p for n, p in se.named_parameters() if n.endswith("weight")]
    b = [p for n, p in se.named_parameters() if n.endswith("bias")]
    z = x.mean((2, 3))
    z = F.relu(z @ w[0].reshape(w[0].shape[0], -1).T + b[0])
    g = torch.sigmoid(z @ w[1].reshape(w[1].shape[0], -1).T + b[1])
    return x * g[:, :, None, None]


def _randomise(m):
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if v.is_floating_point():
                v.copy_((1 + 0.1 * torch.rand(v.shape, generator=g)) if "running_var" in k else 0.3 * torch.randn(v.shape, generator=g))
    return m.eval()


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("n", [1, 2])
def test_attn_a2c2f_replaces_the_attention_step(n, residual):
    m = _randomise(AttnA2C2f(48, 48, n, "SE", [], True, 4, residual, 1.5))
    x = rand(2, 48, 7, 5, seed=1)
    y0 = _conv(m.cv1, x)
    ys, v = [y0], y0
    for stage in m.m:
        for unit in stage:
            u = _se(unit.attn, v)
            v = u + _conv(unit.mlp[1], _conv(unit.mlp[0], u), act=False)
        ys.append(v)
    want = _conv(m.cv2, torch.cat(ys, 1))
    if residual:
        want = x + m.gamma[None, :, None, None] * want
    with torch.no_grad():
        torch.testing.assert_close(m(x), want, rtol=1e-5, atol=1e-5)
    assert isinstance(m, A2C2f) and m.m[0][0].mlp[0].conv.out_channels == int(24 * 1.5)  # hidden width: mlp_ratio


def test_attn_a2c2f_names_match_the_stock_block_except_the_attention():
    """Every stock tensor name exists in AttnA2C2f with its shape, except those under drops_source (area attention)."""
    stock = A2C2f(64, 64, 2, True, 4, True, 1.2)
    ours = AttnA2C2f(64, 64, 2, "SE", [], True, 4, True, 1.2)
    theirs, mine = stock.state_dict(), ours.state_dict()
    dropped = {k for k in theirs if k.startswith(ours.drops_source)}
    assert dropped and all(".attn." in k for k in dropped)
    assert all(mine[k].shape == v.shape for k, v in theirs.items() if k not in dropped)


def test_attn_a2c2f_refuses_a2_false():
    with pytest.raises(ValueError, match="AttnA2C2f: a2=False"):
        AttnA2C2f(64, 64, 1, "SE", [], False)


def test_identity_attn_a2c2f_is_a2c2f_without_attention():
    x = rand(1, 32, 6, 6, seed=2)
    fresh = AttnA2C2f(32, 32, 1, "SE", [{"init": "identity"}]).eval()
    with torch.no_grad():
        v = fresh.cv1(x)
        ys = [v]
        for unit in fresh.m[0]:
            v = v + unit.mlp(v)  # the attention step is the identity: only the MLP step remains
        ys.append(v)
        torch.testing.assert_close(fresh(x), fresh.cv2(torch.cat(ys, 1)), rtol=0, atol=0)


def test_attn_c3k2_keeps_the_psa_units():
    """YOLO26's C3k2(attn=True) row: each unit is a bottleneck (with the layer) followed by Ultralytics' PSA block."""
    m = AttnC3k2(64, 64, 2, "SE", [], True, 0.5, True)
    assert all(isinstance(u[1], PSABlock) and hasattr(u[0], "attn") for u in m.m)
    assert m.m[0][0].cv1.conv.groups == 1
