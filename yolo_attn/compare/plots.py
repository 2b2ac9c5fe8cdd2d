"""Plots of a sweep (PNG, matplotlib's Agg backend, DejaVu Sans shipped with matplotlib: nothing is downloaded)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .contract import TrialRecord
from .summary import SweepSummary


def warm_up() -> None:
    """Import the plotting library ahead of the plots (about half a second)."""
    _plt()


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "figure.dpi": 110})
    return plt


def diff_plot(summary: SweepSummary, path: Path) -> Path:
    """Difference to the baseline (COCOeval mAP50-95 and mAP50), one row per model: thick bar the model's own 95%
    interval, thin bar the simultaneous (Bonferroni) interval; green/red = better/worse after the Holm adjustment."""
    plt = _plt()
    rows = [m for m in summary.models if not m.is_baseline and m.diff]
    fig, axes = plt.subplots(1, 2, figsize=(10, 1.4 + 0.45 * max(1, len(rows))), sharey=True)
    first, second, independent = summary.settings.figures
    for ax, key, title in ((axes[0], "map", first), (axes[1], "map50", second)):
        for i, m in enumerate(rows):
            d = m.diff[key]
            colour = "tab:gray" if not d.significant else "tab:green" if d.delta > 0 else "tab:red"
            sim = (d.adjusted.sim_lo, d.adjusted.sim_hi) if d.adjusted else (None, None)
            for lo, hi, lw in ((*sim, 1.0), (d.lo, d.hi, 3.0)):
                if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
                    ax.plot([lo, hi], [i, i], color=colour, lw=lw, solid_capstyle="butt")
            ax.plot(d.delta, i, "o", color=colour)
            if d.n_seeds < 2:
                ax.annotate("1 seed: no interval", (d.delta, i), xytext=(6, 4), textcoords="offset points",
                            fontsize=7)
            for v in d.per_seed:
                ax.plot(v, i, "x", color=colour, alpha=0.5, ms=4)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{title} difference to {summary.baseline}")
        ax.set_xlabel(f"{title} ({independent}), model - baseline")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), [m.model for m in rows])
    axes[0].invert_yaxis()
    fig.suptitle("thick: 95% interval of each model; thin: simultaneous 95% (Bonferroni); x: per-seed differences; "
                 "colour: Holm-adjusted verdict", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def epochs_plot(summary: SweepSummary, records: list[TrialRecord], path: Path) -> Path:
    """Validation mAP50-95 over epochs (Ultralytics' per-epoch validation), mean over seeds and each seed."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(summary.models):
        c = colours[i % len(colours)]
        curves = [r.curve or [] for r in records if r.model == m.model and r.ok]
        for ax, key in ((axes[0], "map"), (axes[1], "map50")):
            n = max((len(cv) for cv in curves), default=0)
            if not n:
                continue
            mat = np.full((len(curves), n), np.nan)
            for j, cv in enumerate(curves):
                mat[j, : len(cv)] = [p[key] for p in cv]
                ax.plot(range(1, len(cv) + 1), mat[j, : len(cv)], color=c, alpha=0.25, lw=0.8)
            with np.errstate(all="ignore"):
                mean = np.nanmean(mat, axis=0)
            ax.plot(range(1, n + 1), mean, color=c, lw=2, label=m.model, marker="o" if n < 15 else None, ms=3)
    for ax, t in zip(axes, summary.settings.figures[:2]):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"val {t} (Ultralytics)")
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # no ok trial: no curves
        axes[0].legend(fontsize=7)
    fig.suptitle("validation mAP over epochs (thick: mean over seeds, thin: each seed)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pr_plot(summary: SweepSummary, records: list[TrialRecord], path: Path) -> Path:
    """Precision and recall (Ultralytics' validator, at its max-F1 confidence) per model: each seed and the mean."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(summary.models):
        c = colours[i % len(colours)]
        pts = [(r.ultra["recall"], r.ultra["precision"]) for r in records
               if r.model == m.model and r.ok and "precision" in r.ultra]  # classify has neither
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.scatter(xs, ys, color=c, alpha=0.35, s=18)
        ax.scatter([np.mean(xs)], [np.mean(ys)], color=c, s=70, marker="D", edgecolor="k", label=m.model)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    lim = [ax.get_xlim(), ax.get_ylim()]
    lo = max(0.0, min(lim[0][0], lim[1][0]))
    hi = min(1.0, max(lim[0][1], lim[1][1]))
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.5, alpha=0.4)
    ax.set_title("precision vs recall per model (diamond: mean over seeds)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
