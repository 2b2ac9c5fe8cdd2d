"""Known-value and option tests of ShuffleAttention (``yolo_attn/modules/shuffle.py``); shared checks: test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_attn.modules.shuffle import ShuffleAttention, default_groups

from conftest import rand, sigmoid


YOLO_CHANNELS = [16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280]


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
