"""Effective receptive field (Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016).

For each input of the detection head (P3, P4, P5), the gradient of the centre position's activations
(summed over channels) with respect to the input image, its absolute value summed over colour channels,
normalised to unit mass per image and averaged over images. ``r50`` / ``r90`` are the radii (input
pixels, around the centre's receptive-field centre) of the smallest discs holding 50% / 90% of the mass.

Objects are assigned to a level by size (a box of side ``s = sqrt(w h)`` goes to the level whose
``3 x stride`` is nearest in log scale, about YOLOv5's anchor sizes per level); an object is *covered*
when the disc of radius ``r90`` holds its whole box, i.e. its half-diagonal is at most ``r90``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .data import Split


@dataclass
class ErfLevel:
    level: str  # "P3", ...
    stride: float
    r50: float
    r90: float
    r50_half: float  # from the first half of the images: the sampling error of the radii
    r90_half: float
    n_objects: int  # objects assigned to this level
    covered: float | None  # share of them inside the r90 disc
    erf_map: np.ndarray = field(repr=False)  # (S, S) mean normalised gradient magnitude

    @property
    def rel_change(self) -> float:
        """Relative change of the radii from N/2 to N images (max over r50, r90)."""
        return max(abs(self.r50 - self.r50_half) / max(self.r50, 1e-9), abs(self.r90 - self.r90_half) / max(self.r90, 1e-9))


def gradient_maps(features: Callable[[torch.Tensor], list[torch.Tensor]], images: torch.Tensor, batch: int = 16) -> list[torch.Tensor]:
    """Per feature level, (N, S, S) per-image |d centre activation / d input| summed over colour channels.

    One backward pass per level and batch: the images of a batch do not interact (eval mode), so the
    gradient of the batch sum holds each image's own gradient.
    """
    per_level: list[list[torch.Tensor]] = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].clone().requires_grad_(True)
        with torch.enable_grad():
            feats = features(x)
            for lvl, f in enumerate(feats):
                h, w = f.shape[-2:]
                g = torch.autograd.grad(f[:, :, h // 2, w // 2].sum(), x, retain_graph=lvl < len(feats) - 1)[0]
                if len(per_level) <= lvl:
                    per_level.append([])
                per_level[lvl].append(g.abs().sum(1))
    return [torch.cat(maps) for maps in per_level]


def mean_map(maps: torch.Tensor) -> np.ndarray:
    m = maps / maps.sum((1, 2), keepdim=True).clamp_min(1e-30)
    return m.mean(0).double().numpy()


def radius(erf: np.ndarray, centre: tuple[float, float], q: float) -> float:
    """Smallest radius around ``centre`` (x, y in pixels) whose disc holds a share ``q`` of the map's mass."""
    h, w = erf.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1]).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(erf.ravel()[order])
    if cum[-1] <= 0:
        return float("nan")
    return float(d[order][np.searchsorted(cum, q * cum[-1])])


def centre_of(size: int, stride: float) -> tuple[float, float]:
    """Input-pixel centre of the receptive field of the feature map's centre cell (index size/stride // 2)."""
    c = (int(size / stride) // 2 + 0.5) * stride
    return (c, c)


def assign_levels(split: Split, strides: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(level index, half-diagonal in letterboxed pixels) of every object in ``split``."""
    lv, half = [], []
    ref = np.log(3.0 * np.asarray(strides))
    for g, r in zip(split.gt, split.scale):
        for _c, _x, _y, w, h in g.labels.reshape(-1, 5):
            bw, bh = w * g.width * r, h * g.height * r
            lv.append(int(np.argmin(np.abs(np.log(max(np.sqrt(bw * bh), 1e-6)) - ref))))
            half.append(0.5 * float(np.hypot(bw, bh)))
    return np.array(lv, dtype=int), np.array(half)


def head_features(model, head_inputs: list[int]) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """``x -> [P3, P4, P5]``: the detection head's inputs, caught by a forward pre-hook on the head."""
    head = model.model[-1]

    def features(x: torch.Tensor) -> list[torch.Tensor]:
        caught = {}

        def grab(_m, inp):
            caught["f"] = list(inp[0]) if isinstance(inp[0], (list, tuple)) else list(inp)

        h = head.register_forward_pre_hook(grab)
        try:
            model(x)
        finally:
            h.remove()
        return caught["f"]

    return features


def effective_receptive_field(model, head_inputs: list[int], strides: list[float], split: Split, n: int) -> list[ErfLevel]:
    """ERF at every head input on the first ``n`` images of ``split`` (radii also from the first ``n // 2``)."""
    images = split.images[:n]
    size = images.shape[-1]
    maps = gradient_maps(head_features(model, head_inputs), images)
    levels, half_diag = assign_levels(split, strides)
    out = []
    for k, (m, s) in enumerate(zip(maps, strides)):
        full, half = mean_map(m), mean_map(m[: max(1, len(m) // 2)])
        c = centre_of(size, s)
        r50, r90 = radius(full, c, 0.5), radius(full, c, 0.9)
        mine = half_diag[levels == k]
        cov = float((mine <= r90).mean()) if mine.size else None
        out.append(ErfLevel(f"P{round(math.log2(s))}", s, r50, r90, radius(half, c, 0.5), radius(half, c, 0.9),
                            int(mine.size), cov, full))
    return out
