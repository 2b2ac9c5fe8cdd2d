"""The diagnosis' plots (PNG, matplotlib Agg, offline): ERF maps side by side, output along image paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import atomic_save
from .._plots import pyplot


def _first_per_label(d):
    seen = {}
    for r in d.models:
        seen.setdefault(r.ref.label, r)
    return list(seen.values())


def erf_plot(d, path: Path) -> Path:
    """One row per model (its first seed), one column per head input: the mean ERF map (log scale)."""
    plt = pyplot()
    rows = _first_per_label(d)
    cols = max(len(r.erf) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.3 * cols, 2.3 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, e in enumerate(r.erf):
            ax = axes[i][j]
            ax.imshow(np.log10(e.erf_map + 1e-12 * e.erf_map.max() + 1e-30), cmap="magma")
            ax.set_title(f"{e.level} r50 {e.r50:.0f} r90 {e.r90:.0f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(r.ref.label, fontsize=7)
    fig.suptitle("Effective receptive field (log10 of mean |gradient|)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # keep a band for the title above the panels
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def path_plot(d, path: Path) -> Path:
    """Score of image a's class along a -> b, same-class and cross-class pairs, every model's first seed."""
    plt = pyplot()
    rows = _first_per_label(d)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, kind in zip(axes, ("same", "cross")):
        for k, r in enumerate(rows):
            for n, p in enumerate(c for c in r.smooth.paths if c.kind == kind):
                ax.plot(p.t, p.score, color=f"C{k}", ls=("-", "--", ":")[n % 3], lw=1.2,
                        label=r.ref.label if n == 0 else None)
        ax.set_title(f"{kind}-class pairs: score of image a's class along a → b", fontsize=9)
        ax.set_xlabel("t (0 = image a, 1 = image b)")
    axes[0].set_ylabel("max class score")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
