"""Known-value and option tests of GatherExcite (``yolo_attn/modules/gather_excite.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.gather_excite import GatherExcite


pytestmark = pytest.mark.usefixtures("torch_seed")


@pytest.mark.parametrize("fuse", ["mul", "add"])
def test_gather_excite_global_closed_form(fuse):
    m = GatherExcite(8, fuse=fuse).eval()
    assert sum(p.numel() for p in m.parameters()) == 0  # GE-theta-minus is parameter-free
    x = torch.randn(2, 8, 7, 5)
    g = torch.sigmoid(x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(m(x), x * g if fuse == "mul" else x + g)


def test_gather_excite_global_identity_affine():
    m = GatherExcite(8, init="identity")
    with torch.no_grad():
        m.scale.fill_(0.5)
        m.shift.fill_(1.0)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(m(x), x * 2 * torch.sigmoid(0.5 * x.mean((2, 3), keepdim=True) + 1.0))


def test_gather_excite_extent_stages():
    for extent, stages in [(2, 1), (4, 2), (8, 3), (16, 4)]:
        convs = [c for c in GatherExcite(8, extent).gather if isinstance(c, torch.nn.Conv2d)]
        assert len(convs) == stages
        assert all(c.stride == (2, 2) and c.groups == 8 for c in convs)


def test_gather_excite_extent_known_values():
    """Centre-tap depthwise conv + identity BN: the gathered map is x[::2, ::2], upsampled by nearest."""
    m = GatherExcite(3, 2).eval()
    with torch.no_grad():
        conv, bn = m.gather[0], m.gather[1]
        conv.weight.zero_()
        conv.weight[:, 0, 1, 1] = 1.0
        bn.eps = 0.0
    x = torch.randn(1, 3, 6, 4)
    z = x[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(m(x), x * torch.sigmoid(z))


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 2), (13, 9)])
def test_gather_excite_extent_any_size(hw):
    m = GatherExcite(8, 8).eval()
    x = torch.randn(1, 8, *hw)
    assert m(x).shape == x.shape
