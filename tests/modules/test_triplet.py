"""Known-value and option tests of TripletAttention (``yolo_attn/modules/triplet.py``); shared checks: test_contract.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolo_attn.modules.triplet import TripletAttention

from conftest import rand, sigmoid


def _zero_triplet_convs(m):
    with torch.no_grad():
        for branch in (m.ch, m.cw, m.hw):
            if branch is not None:
                branch.conv.weight.zero_()
    return m.eval()


@pytest.mark.parametrize("no_spatial", [False, True])
def test_triplet_zero_convs_give_half_gate(no_spatial):
    x = rand(2, 8, 5, 3)
    m = _zero_triplet_convs(TripletAttention(8, no_spatial=no_spatial))
    torch.testing.assert_close(m(x), 0.5 * x)
    m = _zero_triplet_convs(TripletAttention(8, no_spatial=no_spatial, fuse="add"))
    torch.testing.assert_close(m(x), x + 0.5)


def test_triplet_known_value_center_tap():
    """Only the centre tap of each conv reads the max map: gate_k = sigmoid(max over the pooled dim)."""
    x = rand(2, 6, 4, 5).double()
    m = TripletAttention(6).double().eval()
    with torch.no_grad():
        for branch in (m.ch, m.cw, m.hw):
            branch.conv.weight.zero_()
            branch.conv.weight[0, 0, 3, 3] = math.sqrt(1 + branch.bn.eps)  # cancels eval BN scaling
    xn = x.numpy()
    g = (sigmoid(xn.max(3, keepdims=True)) + sigmoid(xn.max(2, keepdims=True)) + sigmoid(xn.max(1, keepdims=True))) / 3
    np.testing.assert_allclose(m(x).detach().numpy(), xn * g, rtol=1e-10, atol=1e-12)


def test_triplet_mean_tap():
    x = rand(1, 4, 3, 3).double()
    m = TripletAttention(4, kernel_size=3, no_spatial=True).double().eval()
    with torch.no_grad():
        for branch in (m.ch, m.cw):
            branch.conv.weight.zero_()
            branch.conv.weight[0, 1, 1, 1] = math.sqrt(1 + branch.bn.eps)
    xn = x.numpy()
    g = (sigmoid(xn.mean(3, keepdims=True)) + sigmoid(xn.mean(2, keepdims=True))) / 2
    np.testing.assert_allclose(m(x).detach().numpy(), xn * g, rtol=1e-10, atol=1e-12)
