"""Known-value and option tests of SimAM (``yolo_attn/modules/simam.py``); shared checks: test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_attn.modules.simam import SimAM

from conftest import rand, sigmoid


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
