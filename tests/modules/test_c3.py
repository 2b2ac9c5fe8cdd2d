"""Known-value tests of C3Attn (``yolo_attn/modules/c3.py``) and C3FMM (``yolo_attn/modules/fmm.py``).

Both are YOLOv5's C3 block, ``cv3(cat(m(cv1(x)), cv2(x)))`` with every ``Conv`` = SiLU(BatchNorm(conv)),
whose ``n`` bottlenecks change:

* C3Attn: ``y = t + A(cv2(cv1(t)))``, the attention on the residual branch before the addition (SE-ResNet);
* C3FMM: ``y = t * cv2(cv1(t))``, feature-map multiplication instead of the residual addition (FMMNet,
  Ye et al. 2021).

Every weight and BatchNorm statistic is random; the expected output is written out here with explicit
``torch.nn.functional`` ops in float64, without calling the modules' forward.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from yolo_attn.modules.c3 import C3Attn
from yolo_attn.modules.fmm import C3FMM

from conftest import rand


def _randomise_all(m: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights, biases and BatchNorm statistics (variances positive); eval mode, float64."""
    g = torch.Generator().manual_seed(seed)
    m = m.double()
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g, dtype=torch.float64))
            elif t.is_floating_point():
                t.copy_(0.4 * torch.randn(t.shape, generator=g, dtype=torch.float64))
    return m.eval()


def _conv(c, x):
    """An Ultralytics Conv written out: SiLU of BatchNorm (running statistics) of a same-padded convolution."""
    w = c.conv.weight
    z = F.conv2d(x, w, padding=w.shape[-1] // 2)
    bn = c.bn
    z = (z - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    z = z * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    return z * torch.sigmoid(z)


def _se(a, x):
    """SE (Hu et al. 2018): x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)."""
    s = x.mean(dim=(2, 3))
    h = torch.relu(s @ a.fc1.weight[:, :, 0, 0].T + a.fc1.bias)
    z = h @ a.fc2.weight[:, :, 0, 0].T + a.fc2.bias
    return x * torch.sigmoid(z)[:, :, None, None]


def _c3(m, x, bottleneck):
    t = _conv(m.cv1, x)
    for b in m.m:
        t = bottleneck(b, t)
    return _conv(m.cv3, torch.cat([t, _conv(m.cv2, x)], dim=1))


@pytest.mark.parametrize("n,shortcut,hw", [(1, True, (5, 4)), (2, True, (3, 3)), (2, False, (4, 6)), (1, True, (1, 1))])
def test_c3attn_applies_attention_on_the_residual_branch(n, shortcut, hw):
    m = _randomise_all(C3Attn(8, 12, n, "SE", [2], shortcut), seed=n)
    x = rand(2, 8, *hw, seed=5).double()

    def bottleneck(b, t):
        r = _se(b.attn, _conv(b.cv2, _conv(b.cv1, t)))
        return t + r if shortcut else r

    with torch.no_grad():
        torch.testing.assert_close(m(x), _c3(m, x, bottleneck), rtol=1e-10, atol=1e-12)


def test_c3attn_attention_matters():
    """The same block without its attention (or with it after the addition) gives another output."""
    m = _randomise_all(C3Attn(8, 8, 1, "SE", [2]), seed=3)
    x = rand(2, 8, 4, 4, seed=6).double()
    with torch.no_grad():
        got = m(x)
        plain = _c3(m, x, lambda b, t: t + _conv(b.cv2, _conv(b.cv1, t)))
        after = _c3(m, x, lambda b, t: _se(b.attn, t + _conv(b.cv2, _conv(b.cv1, t))))
    assert (got - plain).abs().max() > 1e-3 and (got - after).abs().max() > 1e-3


@pytest.mark.parametrize("n,shortcut,hw", [(1, True, (5, 4)), (3, True, (3, 3)), (2, False, (4, 6)), (1, True, (1, 1))])
def test_c3fmm_multiplies_instead_of_adding(n, shortcut, hw):
    m = _randomise_all(C3FMM(8, 12, n, shortcut), seed=10 + n)
    x = rand(2, 8, *hw, seed=7).double()

    def bottleneck(b, t):
        r = _conv(b.cv2, _conv(b.cv1, t))
        return t * r if shortcut else r

    with torch.no_grad():
        got = m(x)
        torch.testing.assert_close(got, _c3(m, x, bottleneck), rtol=1e-10, atol=1e-12)
        if shortcut:  # the stock C3 (addition) with the same weights must give something else
            added = _c3(m, x, lambda b, t: t + _conv(b.cv2, _conv(b.cv1, t)))
            assert (got - added).abs().max() > 1e-3
