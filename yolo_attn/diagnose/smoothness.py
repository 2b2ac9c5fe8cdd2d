"""Smoothness of the learned function near real images (Ye et al., 2021, section 4: feature-map
multiplication smooths the learned landscape).

* ``jac``: the Frobenius norm of the input Jacobian of the detection output (boxes divided by the image
  size, class scores as they are), estimated per image with ``k`` Gaussian projections
  (``||J||_F^2 = E_v ||J^T v||^2`` for ``v ~ N(0, I)``; Hutchinson 1990), one backward pass per
  projection for the whole batch.
* ``noise``: the relative output change ``||f(x + s e) - f(x)|| / ||f(x)||`` for Gaussian ``e`` at
  several scales ``s`` (images in [0, 1]).
* ``paths``: the score of image ``a``'s dominant class (highest over anchors) along the straight line
  from image ``a`` to image ``b``, for pairs of the same and of different dominant classes;
  ``roughness`` is the mean absolute second difference along the path (0 for a straight line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .data import Split
from .evaluate import detect_output

NOISE_SCALES = (0.01, 0.03, 0.1)


@dataclass
class PathCurve:
    kind: str  # "same" or "cross"
    a: int
    b: int
    cls: int
    t: list[float]
    score: list[float]

    @property
    def roughness(self) -> float:
        s = np.asarray(self.score)
        return float(np.abs(np.diff(s, 2)).mean()) if s.size > 2 else 0.0


@dataclass
class Smoothness:
    jac_mean: float
    jac_std: float
    jac_se: float  # standard error of jac_mean (images and projections both vary)
    jac_images: int
    jac_projections: int
    noise: dict[str, float]  # scale -> mean relative change
    paths: list[PathCurve] = field(default_factory=list)

    def roughness(self, kind: str) -> float | None:
        r = [p.roughness for p in self.paths if p.kind == kind]
        return float(np.mean(r)) if r else None


def jacobian_fro(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, k: int, seed: int, exact: bool = False) -> np.ndarray:
    """Per sample ``||d f(x_i) / d x_i||_F``; rows of ``x`` must not interact in ``f``.

    ``exact``: one backward pass per output element (small outputs only); otherwise ``k`` projections.
    """
    gen = torch.Generator().manual_seed(seed)
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        y = f(x).flatten(1)
        total = torch.zeros(len(x), dtype=torch.float64)
        rows = range(y.shape[1]) if exact else range(k)
        for j, _ in enumerate(rows):
            if exact:
                v = torch.zeros_like(y)
                v[:, j] = 1
            else:
                v = torch.randn(y.shape, generator=gen, dtype=y.dtype)
            g = torch.autograd.grad(y, x, v, retain_graph=j < len(rows) - 1)[0]
            total += g.flatten(1).double().pow(2).sum(1)
    return (total if exact else total / k).sqrt().numpy()


def _output(model, size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def f(x: torch.Tensor) -> torch.Tensor:
        y = detect_output(model, x)
        return torch.cat((y[:, :4] / size, y[:, 4:]), 1)

    return f


def _pairs(split: Split, n: int, seed: int) -> list[tuple[str, int, int]]:
    cls = split.dominant_class()
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(cls))
    same, cross = [], []
    for i in idx:
        for j in idx:
            if i >= j or cls[i] < 0 or cls[j] < 0:
                continue
            (same if cls[i] == cls[j] else cross).append((int(i), int(j)))
        if len(same) >= n and len(cross) >= n:
            break
    return [("same", i, j) for i, j in same[:n]] + [("cross", i, j) for i, j in cross[:n]]


@torch.no_grad()
def _path(model, split: Split, kind: str, a: int, b: int, steps: int, view=None) -> PathCurve:
    cls = int(split.dominant_class()[a])
    t = torch.linspace(0, 1, steps)
    xa, xb = split.images[a], split.images[b]
    x = (1 - t)[:, None, None, None] * xa + t[:, None, None, None] * xb
    score = (detect_output(model, x)[:, 4:] if view is None else view.class_scores(model, x))[:, cls].amax(1)
    return PathCurve(kind, a, b, cls, [float(v) for v in t], [float(v) for v in score])


def smoothness(model, split: Split, n_jac: int, k: int, n_pairs: int, steps: int, seed: int, view=None) -> Smoothness:
    """``view`` (:class:`.tasks.TaskView`): the output differentiated and the class scores along the paths (default:
    the detection output)."""
    size = split.images.shape[-1]
    f = _output(model, size) if view is None else (lambda x: view.output(model, x))
    x = split.images[:n_jac]
    jac = jacobian_fro(f, x, k, seed)
    gen = torch.Generator().manual_seed(seed)
    noise = {}
    with torch.no_grad():
        y0 = f(x).flatten(1)
        for s in NOISE_SCALES:
            y = f(x + s * torch.randn(x.shape, generator=gen)).flatten(1)
            noise[str(s)] = float(((y - y0).norm(dim=1) / y0.norm(dim=1).clamp_min(1e-12)).mean())
    paths = [_path(model, split, kind, a, b, steps, view) for kind, a, b in _pairs(split, n_pairs, seed)]
    se = float(jac.std(ddof=1) / np.sqrt(len(jac))) if len(jac) > 1 else float("nan")
    return Smoothness(float(jac.mean()), float(jac.std()), se, len(x), k, noise, paths)
