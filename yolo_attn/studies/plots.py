"""Plots of the studies and the search (PNG through matplotlib's Agg backend; nothing is downloaded).

Each function takes the path to write (the runner passes a temporary path and renames it, so the
format is given explicitly) and plain numbers, never a summary dict.
"""

from __future__ import annotations

import math
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "figure.dpi": 110})
    return plt


def _colour(lo: float, hi: float, verdict: str | None = None) -> str:
    """Green/red: better/worse by the verdict (family-wise); olive: only the model's own interval excludes 0.

    Without a verdict (a single comparison: contrasts, the capacity slope points) the interval decides.
    """
    own = "up" if math.isfinite(lo) and lo > 0 else "down" if math.isfinite(hi) and hi < 0 else None
    if verdict is None:
        return {"up": "tab:green", "down": "tab:red"}.get(own, "tab:gray")
    if verdict in ("better", "worse"):
        return "tab:green" if verdict == "better" else "tab:red"
    return "tab:olive" if own else "tab:gray"


COLOUR_KEY = ("green/red: better/worse than the baseline (family-wise verdict); grey: no detectable difference;\n"
              "olive: the model's own 95% interval excludes 0, but not after the adjustment for several models")


def _errorbar(ax, x, y, lo, hi, horizontal: bool, colour: str) -> None:
    if math.isfinite(lo) and math.isfinite(hi):
        err = [[max(0.0, x - lo if horizontal else y - lo)], [max(0.0, hi - x if horizontal else hi - y)]]
        if horizontal:
            ax.errorbar(x, y, xerr=err, fmt="o", color=colour, capsize=3)
        else:
            ax.errorbar(x, y, yerr=err, fmt="o", color=colour, capsize=3)
    else:
        ax.plot(x, y, "o", mfc="none", color=colour)


def forest(rows: list[dict], path: Path, title: str, xlabel: str = "ΔmAP50-95 (COCOeval) to the baseline") -> None:
    """One row per effect: point, interval, per-seed crosses; ``rows``: label, delta, lo, hi, per_seed, note."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 1.3 + 0.45 * max(1, len(rows))))
    for i, r in enumerate(rows):
        c = _colour(r["lo"], r["hi"], r.get("verdict"))
        _errorbar(ax, r["delta"], i, r["lo"], r["hi"], True, c)
        for v in r.get("per_seed", []):
            ax.plot(v, i, "x", color=c, alpha=0.5, ms=4)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [r["label"] + (f"  ({r['note']})" if r.get("note") else "") for r in rows])
    ax.invert_yaxis()
    ax.set_title(title)
    key = "\n" + COLOUR_KEY if any(r.get("verdict") for r in rows) else ""
    ax.set_xlabel(xlabel + " with 95% CI; x = single seeds" + key, fontsize=8 if key else None)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


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
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for p in points:
        c = _colour(p["lo"], p["hi"])
        _errorbar(ax, p["width"], p["delta"], p["lo"], p["hi"], False, c)
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
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for p in points:
        if not math.isfinite(p.get("cost", math.nan)):
            continue
        c = _colour(p["lo"], p["hi"], p.get("verdict")) if p.get("confirmed") else "silver"
        _errorbar(ax, p["cost"], p["delta"], p["lo"], p["hi"], False, c)
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
    plt = _plt()
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
