"""Known-value and option tests of CBAM, CBAMChannel and CBAMSpatial (``yolo_attn/modules/cbam.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.cbam import CBAM, CBAMChannel, CBAMSpatial


pytestmark = pytest.mark.usefixtures("torch_seed")


def _cbam_channel_input():
    # channel 0: mean 1, max 3; channel 1: mean 1, max 2
    return torch.tensor([[[[1.0, 3.0], [0.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]]]])


def _set_cbam_channel(gate):
    with torch.no_grad():
        gate.fc1.weight.copy_(torch.tensor([[1.0, -1.0]]).view(1, 2, 1, 1))
        gate.fc2.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_channel_known_values(fuse):
    m = CBAMChannel(2, reduction=2, fuse=fuse).eval()
    _set_cbam_channel(m.channel)
    x = _cbam_channel_input()
    # W0 avg = 1 - 1 = 0 -> relu 0; W0 max = 3 - 2 = 1 -> relu 1; z = W1 (0 + 1) = [1, 2]
    g = torch.sigmoid(torch.tensor([1.0, 2.0])).view(1, 2, 1, 1)
    torch.testing.assert_close(m(x), x * g if fuse == "mul" else x + g)
    # same value when a gradient is needed (max with indices instead of amax)
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(m(xg), m(x))


def test_cbam_channel_mlp_has_no_bias_and_shares_weights():
    m = CBAMChannel(64)
    assert m.channel.fc1.bias is None and m.channel.fc2.bias is None
    assert m.channel.fc1.out_channels == 4  # 64 // 16


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_spatial_known_values(fuse):
    m = CBAMSpatial(3, kernel_size=3, fuse=fuse).eval()
    with torch.no_grad():
        m.spatial.conv.weight.zero_()
        m.spatial.conv.weight[0, 0, 1, 1] = 2.0  # centre tap on the channel-mean map
        m.spatial.conv.weight[0, 1, 1, 1] = -1.0  # centre tap on the channel-max map
    x = torch.randn(1, 3, 5, 4)
    z = 2 * x.mean(1, keepdim=True) - x.amax(1, keepdim=True)
    torch.testing.assert_close(m(x), x * torch.sigmoid(z) if fuse == "mul" else x + torch.sigmoid(z))
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(m(xg), m(x))


def test_cbam_spatial_kernel_sees_neighbours():
    m = CBAMSpatial(1, kernel_size=7).eval()
    with torch.no_grad():
        m.spatial.conv.weight.zero_()
        m.spatial.conv.weight[0, 0, 0, 0] = 1.0  # top-left tap: reads the mean map 3 rows up, 3 columns left
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1, 1] = 5.0
    z = torch.zeros(1, 1, 8, 8)
    z[0, 0, 4, 4] = 5.0
    torch.testing.assert_close(m(x), x * torch.sigmoid(z))


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_cbam_is_channel_then_spatial(fuse):
    full = CBAM(32, 8, 5, fuse=fuse).eval()
    ch = CBAMChannel(32, 8, fuse=fuse).eval()
    sp = CBAMSpatial(32, 5, fuse=fuse).eval()
    ch.channel.load_state_dict(full.channel.state_dict())
    sp.spatial.load_state_dict(full.spatial.state_dict())
    x = torch.randn(2, 32, 9, 7)
    torch.testing.assert_close(full(x), sp(ch(x)))
