"""Importance consistency of channel attention (Ye et al., "Towards Understanding the Effectiveness of
Attention Mechanism", 2021, section 3): do the gate values rank channels as their importance does?

For every channel gate (one value per channel, shape (C, 1, 1)), per validation image: the gate values
``g_c`` and the channel's importance ``I_c = |sum_hw y_c dS/dy_c|`` of the gated map ``y``, the first-order
(Taylor) estimate of how much ``S`` changes when channel ``c`` is zeroed (Molchanov et al., "Pruning
Convolutional Neural Networks for Resource Efficient Inference", ICLR 2017). ``S`` is the detection
score mass, the sum over anchors of the highest class score. Agreement is Kendall's tau and the cosine
similarity between ``g`` and ``I``; the permutation baseline is tau with ``g`` shuffled across channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..modules._common import Gate
from .evaluate import detect_output
from .layers import AttnLayer


@dataclass
class ConsistencyRow:
    layer: str
    gate: str
    channels: int
    images: int
    tau_median: float
    tau_mean: float
    tau_q: tuple[float, float]  # 10% and 90% quantiles over images
    cos_mean: float
    tau_perm_mean: float  # permutation baseline
    tau_perm_q: tuple[float, float]


def kendall_tau_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of every row pair ``(a[i], b[i])``, vectorised over rows (ties handled as tau-b does).

    ``tau_b = sum_ij sign(a_i - a_j) sign(b_i - b_j) / sqrt(sum_ij |sign(a_i - a_j)| * sum_ij |sign(b_i - b_j)|)``;
    0 where a row is constant.
    """
    sa = np.sign(a[:, :, None] - a[:, None, :])
    sb = np.sign(b[:, :, None] - b[:, None, :])
    den = np.sqrt(np.abs(sa).sum((1, 2)) * np.abs(sb).sum((1, 2)))
    return np.where(den > 0, (sa * sb).sum((1, 2)) / np.where(den > 0, den, 1.0), 0.0)


def agreement(g: np.ndarray, imp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (image): Kendall tau(g, imp), cosine(g, imp), tau(g shuffled across channels, imp)."""
    g, imp = np.asarray(g, dtype=float), np.asarray(imp, dtype=float)
    cos = (g * imp).sum(1) / np.maximum(np.linalg.norm(g, axis=1) * np.linalg.norm(imp, axis=1), 1e-30)
    return kendall_tau_rows(g, imp), cos, kendall_tau_rows(rng.permuted(g, axis=1), imp)


def score_mass(model, x: torch.Tensor) -> torch.Tensor:
    """S: sum over images and anchors of the highest class score."""
    return detect_output(model, x)[:, 4:].amax(1).sum()


def _channel_gates(layers: list[AttnLayer]) -> list[tuple[str, str, Gate]]:
    return [(la.name, n, g) for la in layers for n, g in la.gates]


def gate_and_importance(model, layers: list[AttnLayer], images: torch.Tensor, batch: int = 16, scores=None):
    """{(layer, gate): (g (N, C), I (N, C))} for every gate whose value is one per channel."""
    found: dict[tuple[str, str], tuple[list, list]] = {}
    for i in range(0, len(images), batch):
        caught = {}
        handles = []
        for lname, gname, g in _channel_gates(layers):
            def hook(m, inp, out, key=(lname, gname)):
                v = m.value(inp[1])
                if v.dim() == 4 and v.shape[1] > 1 and v.shape[2:] == (1, 1) and out.shape == inp[0].shape:
                    caught[key] = (v.detach().flatten(1), out)
            handles.append(g.register_forward_hook(hook))
        try:
            with torch.enable_grad():
                x = images[i : i + batch]
                x = x.clone().requires_grad_(True)  # a graph through the model without parameter gradients
                s = score_mass(model, x) if scores is None else scores(model, x).amax(1).sum()
                keys = list(caught)
                grads = torch.autograd.grad(s, [caught[k][1] for k in keys]) if keys else []
        finally:
            for h in handles:
                h.remove()
        for k, gr in zip(keys, grads):
            y = caught[k][1].detach()
            imp = (y * gr).sum((2, 3)).abs()
            found.setdefault(k, ([], []))
            found[k][0].append(caught[k][0])
            found[k][1].append(imp)
    return {k: (torch.cat(a).double().numpy(), torch.cat(b).double().numpy()) for k, (a, b) in found.items()}


def importance_consistency(model, layers: list[AttnLayer], images: torch.Tensor, seed: int,
                           scores=None) -> list[ConsistencyRow]:
    """``scores(model, x)`` -> ``(B, nc, A)`` class scores whose highest per anchor sum to S (default: the detection
    output's, :func:`score_mass`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (lname, gname), (g, imp) in gate_and_importance(model, layers, images, scores=scores).items():
        tau, cos, perm = agreement(g, imp, rng)
        rows.append(ConsistencyRow(lname, gname, g.shape[1], g.shape[0], float(np.median(tau)), float(tau.mean()),
                                   tuple(float(q) for q in np.quantile(tau, [0.1, 0.9])), float(cos.mean()),
                                   float(perm.mean()), tuple(float(q) for q in np.quantile(perm, [0.1, 0.9]))))
    return rows
