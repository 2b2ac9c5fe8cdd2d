"""Known-value and option tests of SK (Selective Kernel) (``yolo_attn/modules/sk.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.sk import SK

from conftest import rand

YOLO_CHANNELS = [16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280]


def _sk_parts(m, x):
    """Branch outputs and softmax weights captured with hooks during one forward."""
    seen = {}
    hooks = [
        conv.register_forward_hook(lambda mod, i, o, k=k: seen.__setitem__(k, o.clone()))
        for k, conv in enumerate(m.convs)
    ]
    hooks.append(m.select.register_forward_hook(lambda mod, i, o: seen.__setitem__("logits", o.clone())))
    y = m(x)
    for h in hooks:
        h.remove()
    b, c = x.shape[:2]
    a = seen["logits"].view(b, m.branches, c, 1, 1).softmax(1)
    return y, [seen[k] for k in range(m.branches)], a


@pytest.mark.parametrize("branches", [2, 3])
def test_sk_branch_weights_sum_to_one_and_mix_branches(branches):
    torch.manual_seed(0)
    m = SK(32, branches=branches).eval()
    for p in m.select.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = rand(2, 32, 7, 5)
    y, u, a = _sk_parts(m, x)
    torch.testing.assert_close(a.sum(1), torch.ones_like(a.sum(1)))
    assert (a > 0).all() and (a < 1).all()
    torch.testing.assert_close(y, sum(a[:, k] * u[k] for k in range(branches)))


def test_sk_zero_select_averages_branches_and_bias_selects_one():
    m = SK(16).eval()
    torch.nn.init.zeros_(m.select.weight)
    torch.nn.init.zeros_(m.select.bias)
    x = rand(1, 16, 6, 6)
    y, u, _ = _sk_parts(m, x)
    torch.testing.assert_close(y, (u[0] + u[1]) / 2)
    with torch.no_grad():
        m.select.bias[16:] = -100.0  # logits of branch 2 very negative -> branch 1 only
    y, u, _ = _sk_parts(m, x)
    torch.testing.assert_close(y, u[0])


def test_sk_branch_receptive_fields():
    """Branch m is a 3x3 conv with dilation m: a single impulse spreads over a (2m+1)-wide field."""
    m = SK(16, groups=16).eval()
    x = torch.zeros(1, 16, 9, 9)
    x[:, :, 4, 4] = 1.0
    with torch.no_grad():
        for conv in m.convs:
            conv[0].weight.fill_(1.0)
            conv[1].bias.fill_(0.0)
        u = [conv(x) for conv in m.convs]
    assert (u[0][0, 0] > 0).nonzero().tolist() == [[i, j] for i in (3, 4, 5) for j in (3, 4, 5)]
    assert (u[1][0, 0] > 0).nonzero().tolist() == [[i, j] for i in (2, 4, 6) for j in (2, 4, 6)]


def test_sk_hidden_width_and_default_groups():
    assert SK(64).fc.out_channels == 32  # max(64 // 16, L = 32)
    assert SK(1024).fc.out_channels == 64
    for c in YOLO_CHANNELS:
        assert c % SK(c).groups == 0
    assert SK(48).groups == 16 and SK(1280).groups == 32 and SK(16).groups == 16


def test_sk_training_batch_of_one():
    m = SK(16).train()
    y = m(rand(1, 16, 4, 4))
    assert y.shape == (1, 16, 4, 4) and torch.isfinite(y).all()
