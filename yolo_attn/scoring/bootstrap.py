"""The image bootstrap: which multisets of validation images the metric is recomputed on.

One set of weights serves every model and seed of a sweep (the same images are drawn for all of them), so the
validation-image part of a difference is estimated from paired replicates. :func:`yolo_attn.scoring.cocoeval.weighted_map`
recomputes the metric for each replicate from COCOeval's per-image matches; the comparison's interval that uses the
replicates is :func:`yolo_attn.compare.stats.paired_diff_ci`.
"""

from __future__ import annotations

import numpy as np


def image_weights(n_images: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Bootstrap weights (n_boot x n_images): how often each image is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    if n_images == 0:
        return np.zeros((n_boot, 0))
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n_boot).astype(float)
