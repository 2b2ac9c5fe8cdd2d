"""Known-value and option tests of BAM (``yolo_attn/modules/bam.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.bam import BAM

from conftest import spatial_pattern


pytestmark = pytest.mark.usefixtures("torch_seed")


def _set_bam_constant_branches(m: BAM, c_val: torch.Tensor, s_val: float) -> None:
    """Branch-final BNs with zero scale: Mc = c_val (per channel), Ms = s_val (everywhere)."""
    with torch.no_grad():
        m.channel[-1].weight.zero_()
        m.channel[-1].bias.copy_(c_val)
        m.spatial[-1].weight.zero_()
        m.spatial[-1].bias.fill_(s_val)


@pytest.mark.parametrize("fuse, init", [("mul", "paper"), ("add", "paper"), ("mul", "identity"), ("add", "identity")])
def test_bam_gate_forms(fuse, init):
    m = BAM(16, fuse=fuse, init=init).eval()
    c_val = torch.linspace(-1, 1, 16)
    _set_bam_constant_branches(m, c_val, 0.25)
    x = torch.randn(2, 16, 6, 5)
    s = torch.sigmoid(c_val + 0.25).view(1, 16, 1, 1)
    expected = {
        ("mul", "paper"): x * (1 + s),  # the paper's residual refinement F + F * M(F)
        ("add", "paper"): x + s,
        ("mul", "identity"): x * (1 + (2 * s - 1)),
        ("add", "identity"): x + (2 * s - 1),
    }[fuse, init]
    torch.testing.assert_close(m(x), expected)


def test_bam_channel_branch_known_values():
    m = BAM(4, reduction=2).eval()
    _set_bam_constant_branches(m, torch.zeros(4), 0.0)
    with torch.no_grad():
        m.channel[-1].weight.fill_(1.0)
        m.channel[-1].eps = 0.0  # running stats (0, 1): the BN is exactly the identity
        m.channel[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]).view(2, 4, 1, 1))
        m.channel[0].bias.copy_(torch.tensor([0.0, -10.0]))  # second hidden unit stays off for small inputs
        m.channel[2].weight.copy_(torch.tensor([[1.0, 0], [-1.0, 0], [0.5, 0], [0, 0]]).view(4, 2, 1, 1))
        m.channel[2].bias.copy_(torch.tensor([0, 0, 0, 0.3]))
    means = torch.tensor([2.0, -1.0, 0.5, 1.0])
    x = spatial_pattern(means, 4, 2)
    z = torch.tensor([2.0, -2.0, 1.0, 0.3]).view(1, 4, 1, 1)  # relu(m0) = 2 through W1
    torch.testing.assert_close(m(x), x * (1 + torch.sigmoid(z)))


def test_bam_spatial_branch_structure():
    m = BAM(64, reduction=16, dilation=4)
    convs = [mod for mod in m.spatial.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3), (1, 1)]
    assert [c.dilation for c in convs] == [(1, 1), (4, 4), (4, 4), (1, 1)]
    assert convs[0].out_channels == 4 and convs[-1].out_channels == 1
    # the spatial map varies over positions, the channel map does not
    m.eval()
    x = torch.randn(1, 64, 9, 9)
    s = m.spatial(x)
    assert s.shape == (1, 1, 9, 9) and s.std() > 0
