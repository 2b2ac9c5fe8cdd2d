"""Known-value and option tests of GC (global context) (``yolo_attn/modules/gc.py``); shared checks: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules.gc import GC
from yolo_attn.registry import LAYERS


pytestmark = pytest.mark.usefixtures("torch_seed")


def test_gc_softmax_pooling_of_one_hot_logits():
    m = GC(4, reduction=2).eval()
    with torch.no_grad():
        m.attn.weight.zero_()
        m.attn.weight[0, 0] = 1000.0  # logits = 1000 * channel 0
        m.attn.bias.zero_()
    x = torch.randn(2, 4, 3, 5)
    x[:, 0] = 0.0
    x[0, 0, 2, 1] = 1.0  # one-hot logits: all attention on (2, 1) in sample 0 ...
    x[1, 0, 0, 4] = 1.0  # ... and on (0, 4) in sample 1
    ctx = m.context(x)
    assert ctx.shape == (2, 4, 1, 1)
    torch.testing.assert_close(ctx[0, :, 0, 0], x[0, :, 2, 1])
    torch.testing.assert_close(ctx[1, :, 0, 0], x[1, :, 0, 4])


def test_gc_uniform_logits_pool_the_mean():
    m = GC(8, reduction=2).eval()
    with torch.no_grad():
        m.attn.weight.zero_()
    x = torch.randn(2, 8, 7, 6)
    torch.testing.assert_close(m.context(x), x.mean((2, 3), keepdim=True))


@pytest.mark.parametrize("fuse", ["add", "mul"])
def test_gc_transform_and_fusion_known_values(fuse):
    m = GC(4, reduction=2, fuse=fuse).eval()
    with torch.no_grad():
        m.attn.weight.zero_()  # uniform attention: context = mean
        m.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]).view(2, 4, 1, 1))
        m.fc1.bias.zero_()
        m.fc2.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [2.0, 0], [0, -3.0]]).view(4, 2, 1, 1))
        m.fc2.bias.copy_(torch.tensor([0.0, 0.5, 0, 0]))
    x = torch.randn(1, 4, 4, 4)
    x[:, 0] += 2.0  # mean of channel 0 clearly above that of channel 1
    c = x.mean((2, 3)).flatten()
    h = c[:2]
    ln = (h - h.mean()) / torch.sqrt(h.var(unbiased=False) + m.ln.eps)  # LayerNorm over the 2 hidden units
    r = ln.clamp(min=0)
    t = torch.stack([r[0], r[1] + 0.5, 2 * r[0], -3 * r[1]]).view(1, 4, 1, 1)
    expected = x + t if fuse == "add" else x * torch.sigmoid(t)
    torch.testing.assert_close(m(x), expected)


def test_gc_layernorm_covers_hidden_channels():
    m = GC(64)  # r = 16
    assert tuple(m.ln.normalized_shape) == (4, 1, 1)


def test_gc_note_names_its_additive_default():
    assert "fuse=add" in LAYERS.get("GC").note
    assert GC(16).fuse == "add"
