"""Known-value and option tests of ECA (``yolo_attn/modules/eca.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.eca import ECA, eca_kernel_size

from conftest import spatial_pattern


pytestmark = pytest.mark.usefixtures("torch_seed")


@pytest.mark.parametrize("c, k", [(16, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2, 1), (1, 1)])
def test_eca_adaptive_kernel_size(c, k):
    # k = |(log2 C + 1) / 2|_odd
    assert eca_kernel_size(c) == k
    assert ECA(c).conv.kernel_size == (k,)


def test_eca_known_values():
    m = ECA(4, k_size=3).eval()
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([[[0.5, 1.0, -1.0]]]))
    x = spatial_pattern(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # z_i = 0.5 m_{i-1} + m_i - m_{i+1}, zero-padded at both ends of the channel axis
    z = torch.tensor([0 + 1 - 2, 0.5 + 2 - 3, 1 + 3 - 4, 1.5 + 4 - 0])
    torch.testing.assert_close(m(x), x * torch.sigmoid(z).view(1, 4, 1, 1))
    m_add = ECA(4, k_size=3, fuse="add").eval()
    m_add.load_state_dict(m.state_dict())
    torch.testing.assert_close(m_add(x), x + torch.sigmoid(z).view(1, 4, 1, 1))
