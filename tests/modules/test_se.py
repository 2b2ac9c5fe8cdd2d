"""Known-value tests of SE, Squeeze-and-Excitation (``yolo_attn/modules/se.py``).

Hu, Shen, Sun, "Squeeze-and-Excitation Networks" (CVPR 2018), Eq. 2-4: squeeze ``s_c = mean_{h,w} x_c``,
excite ``g = sigmoid(W2 relu(W1 s))``, scale ``y_c = g_c * x_c``. The expected values are computed here in
NumPy, in float64, from the weights set on the module; nothing of the module's own forward is reused.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolo_attn.modules.se import SE


def _set(m: SE, w1, b1, w2, b2) -> SE:
    with torch.no_grad():
        m.fc1.weight.copy_(torch.as_tensor(w1, dtype=torch.float64).view_as(m.fc1.weight))
        m.fc1.bias.copy_(torch.as_tensor(b1, dtype=torch.float64))
        m.fc2.weight.copy_(torch.as_tensor(w2, dtype=torch.float64).view_as(m.fc2.weight))
        m.fc2.bias.copy_(torch.as_tensor(b2, dtype=torch.float64))
    return m.eval()


def _se_numpy(x, w1, b1, w2, b2, fuse="mul", init="paper", relu=True):
    """Eq. 2-4 of the paper on a (B, C, H, W) array; ``fuse``/``init`` as documented in modules/_common.py."""
    s = x.mean(axis=(2, 3))  # squeeze: global average pooling, (B, C)
    h = s @ w1.T + b1
    if relu:
        h = np.maximum(h, 0.0)
    z = h @ w2.T + b2
    g = 1.0 / (1.0 + np.exp(-z))
    if init == "identity":
        g = 2 * g if fuse == "mul" else 2 * g - 1
    g = g[:, :, None, None]
    return x * g if fuse == "mul" else x + g


def test_hand_values_identity_weights():
    """W1 = W2 = I, no biases: each channel is scaled by sigmoid(relu(its spatial mean))."""
    m = _set(SE(8, reduction=1).double(), np.eye(8), np.zeros(8), np.eye(8), np.zeros(8))
    means = torch.tensor([-2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    pattern = torch.tensor([[3.0, -3.0], [-1.0, 1.0]], dtype=torch.float64)  # zero mean, max 3: max-pool differs
    x = means.view(1, 8, 1, 1) + pattern
    y = m(x)
    for c, mean in enumerate(means.tolist()):
        gate = 1 / (1 + math.exp(-max(mean, 0.0)))  # a ReLU'd negative mean gives the gate 0.5
        torch.testing.assert_close(y[0, c], x[0, c] * gate, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (6, 4)])
@pytest.mark.parametrize("fuse,init,relu", [("mul", "paper", True), ("add", "paper", True), ("mul", "identity", True),
                                            ("add", "identity", True), ("mul", "paper", False)])  # fmt: skip
def test_matches_the_papers_equations(hw, fuse, init, relu):
    rng = np.random.default_rng(7)
    c, hidden = 16, 8
    w1, b1 = rng.normal(0, 0.5, (hidden, c)), rng.normal(0, 0.2, hidden)
    w2, b2 = rng.normal(0, 0.5, (c, hidden)), rng.normal(0, 0.2, c)
    m = _set(SE(c, reduction=2, fuse=fuse, init=init, relu=relu).double(), w1, b1, w2, b2)
    assert m.fc1.out_channels == hidden
    x = rng.normal(0, 1, (2, c, *hw)) + rng.normal(0, 1, (2, c, 1, 1))  # channels with different means
    want = _se_numpy(x, w1, b1, w2, b2, fuse, init, relu)
    with torch.no_grad():
        got = m(torch.from_numpy(x))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_squeeze_is_the_mean_not_the_max():
    """Two inputs with equal spatial maxima but different means must be gated differently (and vice versa)."""
    m = _set(SE(8, reduction=1).double(), np.eye(8), np.zeros(8), np.eye(8), np.zeros(8))
    a = torch.zeros(1, 8, 2, 2, dtype=torch.float64)
    a[..., 0, 0] = 4.0  # mean 1, max 4
    b = torch.full((1, 8, 2, 2), 1.0, dtype=torch.float64)
    b[..., 0, 0] = 4.0  # mean 1.75, max 4
    ga, gb = (m(t)[0, :, 0, 0] / 4.0 for t in (a, b))
    torch.testing.assert_close(ga, torch.full((8,), 1 / (1 + math.exp(-1.0)), dtype=torch.float64))
    torch.testing.assert_close(gb, torch.full((8,), 1 / (1 + math.exp(-1.75)), dtype=torch.float64))


def test_hidden_width_floor_and_cap():
    """Hidden width ``max(c1 // r, 8)`` capped at ``c1`` (the docstring's rule)."""
    assert SE(256, 16).fc1.out_channels == 16
    assert SE(64, 16).fc1.out_channels == 8
    assert SE(4, 2).fc1.out_channels == 4
