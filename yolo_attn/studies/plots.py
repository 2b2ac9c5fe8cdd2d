"""Plots of the studies and the search (PNG through matplotlib's Agg backend; nothing is downloaded).

Each function takes the path to write (the runner passes a temporary path and renames it, so the
format is given explicitly) and plain numbers, never a summary dict.
"""

from __future__ import annotations

import math
from pathlib import Path

from .._plots import pyplot
from ..compare.plots import colour


def _errorbar(ax, x, y, lo, hi, c: str) -> None:
    """A point with its vertical interval (an open point where there is none)."""
    if math.isfinite(lo) and math.isfinite(hi):
        ax.errorbar(x, y, yerr=[[max(0.0, y - lo)], [max(0.0, hi - y)]], fmt="o", color=c, capsize=3)
    else:
        ax.plot(x, y, "o", mfc="none", color=c)


def _finish(plt, fig, ax, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    """The ending every study plot shares: zero line, labels, grid, PNG written, figure closed."""
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def capacity_plot(points: list[dict], fit: dict | None, path: Path, title: str) -> None:
    """Effect vs width (log2 axis): per-width mean with CI, per-seed points, and the fitted slope line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for p in points:
        c = colour(p["lo"], p["hi"])
        _errorbar(ax, p["width"], p["delta"], p["lo"], p["hi"], c)
        ax.plot([p["width"]] * len(p.get("per_seed", [])), p.get("per_seed", []), "x", color=c, alpha=0.5, ms=4)
    if fit and math.isfinite(fit.get("slope", math.nan)):
        ws = sorted(p["width"] for p in points)
        xs = [ws[0], ws[-1]]
        ax.plot(xs, [fit["intercept"] + fit["slope"] * math.log2(x) for x in xs], "--", color="tab:blue",
                label=f"slope {fit['slope']:+.3f} per doubling, 95% CI [{fit['lo']:+.3f}, {fit['hi']:+.3f}]")
        ax.legend(loc="best", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks([p["width"] for p in points], [f"{p['width']:g}" for p in points])
    _finish(plt, fig, ax, path, title, "width_multiple", "ΔmAP50-95, attention − stock (95% CI)")


def pareto_plot(points: list[dict], front: list[str], path: Path, title: str, xlabel: str) -> None:
    """Δ mAP vs cost; ``points``: label, cost, delta, lo, hi, confirmed (bool); ``front``: labels on the Pareto front."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for p in points:
        if not math.isfinite(p.get("cost", math.nan)):
            continue
        c = colour(p["lo"], p["hi"], p.get("verdict")) if p.get("confirmed") else "silver"
        _errorbar(ax, p["cost"], p["delta"], p["lo"], p["hi"], c)
        ax.annotate(p["label"], (p["cost"], p["delta"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    fr = sorted((p for p in points if p["label"] in front and math.isfinite(p.get("cost", math.nan))), key=lambda p: p["cost"])
    if len(fr) > 1:
        ax.plot([p["cost"] for p in fr], [p["delta"] for p in fr], "-", color="tab:blue", lw=1, label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    _finish(plt, fig, ax, path, title, xlabel, "ΔmAP50-95 to the baseline (confirmed: 95% CI; grey: selection runs)")


def learning_curves(lines: list[dict], path: Path, title: str, ylabel: str = "mAP50-95 (Ultralytics validation)") -> None:
    """One line per arm: mAP after each epoch (epoch 0: before training), mean over seeds.

    ``lines``: label, epochs (list), values (list, NaN skipped), and optionally style (matplotlib line style).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for ln in lines:
        pts = [(e, v) for e, v in zip(ln["epochs"], ln["values"]) if v is not None and math.isfinite(v)]
        if pts:
            ax.plot([e for e, _ in pts], [v for _, v in pts], ln.get("style", "-o"), ms=3, label=ln["label"])
    from matplotlib.ticker import MaxNLocator

    ax.legend(loc="best", fontsize=7)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(plt, fig, ax, path, title, "epoch (0: before the first training step)", ylabel + ", mean over seeds")
