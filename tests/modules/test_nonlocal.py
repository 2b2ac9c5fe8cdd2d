"""Known-value and option tests of NonLocal (``yolo_attn/modules/nonlocal_.py``); shared checks: test_contract.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolo_attn.modules.nonlocal_ import NonLocal

from conftest import rand


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


def test_nonlocal_paper_init_is_identity_too():
    x = rand(2, 16, 5, 7)
    assert torch.equal(NonLocal(16).train()(x), x)
