"""Known-value and option tests of CoordAtt (``yolo_attn/modules/coordatt.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from yolo_attn.modules.coordatt import CoordAtt


pytestmark = pytest.mark.usefixtures("torch_seed")


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_coordatt_zero_weights_gates_are_bias_sigmoids(fuse):
    m = CoordAtt(16, fuse=fuse).eval()
    with torch.no_grad():
        m.conv1.weight.zero_()
        for conv in (m.conv_h, m.conv_w):
            conv.weight.zero_()
        m.conv_h.bias.copy_(torch.linspace(-2, 2, 16))
        m.conv_w.bias.copy_(torch.linspace(1, -1, 16))
    x = torch.randn(2, 16, 5, 3)
    g_h = torch.sigmoid(m.conv_h.bias).view(1, 16, 1, 1)
    g_w = torch.sigmoid(m.conv_w.bias).view(1, 16, 1, 1)
    expected = x * g_h * g_w if fuse == "mul" else x + g_h + g_w
    torch.testing.assert_close(m(x), expected)


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_coordatt_directional_gates(fuse):
    """Identity convolutions: the H gate follows the row means, the W gate the column means (H != W)."""
    c, h, w = 8, 5, 3
    m = CoordAtt(c, reduction=1, fuse=fuse).eval()
    eye = torch.eye(c).view(c, c, 1, 1)
    with torch.no_grad():
        m.conv1.weight.copy_(eye)
        m.bn1.eps = 0.0  # running stats are mean 0, var 1: BN is then exactly the identity
        for conv in (m.conv_h, m.conv_w):
            conv.weight.copy_(eye)
            conv.bias.zero_()
    x = torch.randn(1, c, h, w)
    g_h = torch.sigmoid(F.hardswish(x.mean(3, keepdim=True)))  # (1, C, H, 1)
    g_w = torch.sigmoid(F.hardswish(x.mean(2, keepdim=True)))  # (1, C, 1, W)
    expected = x * g_h * g_w if fuse == "mul" else x + g_h + g_w
    torch.testing.assert_close(m(x), expected)


def test_coordatt_default_reduction_works_on_thin_layers():
    """The paper's hidden floor of 8 makes r=32 valid for the 16-channel bottlenecks of yolov5n's C3s."""
    m = CoordAtt(16)
    assert m.conv1.out_channels == 8
    assert CoordAtt(256).conv1.out_channels == 8 and CoordAtt(1024).conv1.out_channels == 32
