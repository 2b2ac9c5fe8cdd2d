"""Known-value and option tests of GAM (``yolo_attn/modules/gam.py``); shared checks: test_contract.py."""

from __future__ import annotations

import numpy as np
import torch

from yolo_attn.modules.gam import GAM

from conftest import rand, sigmoid


def test_gam_constant_gates():
    """Zero weights leave only biases: both gates are constants sigmoid(b) and sigmoid(beta)."""
    m = GAM(8, reduction=2).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.channel[-1].bias.fill_(0.3)
        m.spatial[-1].bias.fill_(-0.7)
    x = rand(2, 8, 5, 4)
    s = torch.sigmoid(torch.tensor(0.3)) * torch.sigmoid(torch.tensor(-0.7))
    torch.testing.assert_close(m(x), x * s)
    a = GAM(8, reduction=2, fuse="add").eval()  # the gate form is chosen at construction
    a.load_state_dict(m.state_dict())
    torch.testing.assert_close(a(x), x + torch.sigmoid(torch.tensor(0.3)) + torch.sigmoid(torch.tensor(-0.7)))


def test_gam_channel_mlp_is_per_position():
    """The channel sub-module equals the paper's permute -> MLP over C -> permute back."""
    c, r = 6, 2
    m = GAM(c, reduction=r).double().eval()
    with torch.no_grad():  # spatial gate constant 1: last BN weight 0 and a huge shift
        m.spatial[-1].weight.zero_()
        m.spatial[-1].bias.fill_(100.0)
    x = rand(2, c, 3, 4).double()
    w1 = m.channel[0].weight.detach().numpy()[:, :, 0, 0]
    b1 = m.channel[0].bias.detach().numpy()
    w2 = m.channel[2].weight.detach().numpy()[:, :, 0, 0]
    b2 = m.channel[2].bias.detach().numpy()
    xp = x.numpy().transpose(0, 2, 3, 1)  # (B, H, W, C)
    hidden = np.maximum(xp @ w1.T + b1, 0)
    gate = sigmoid(hidden @ w2.T + b2).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(m(x).detach().numpy(), x.numpy() * gate, rtol=1e-10, atol=1e-12)
