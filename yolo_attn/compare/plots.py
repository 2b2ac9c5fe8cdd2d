"""Plots of a sweep (PNG, matplotlib's Agg backend, DejaVu Sans shipped with matplotlib: nothing is downloaded)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._plots import pyplot
from .contract import TrialRecord
from .summary import SweepSummary


def warm_up() -> None:
    """Import the plotting library ahead of the plots (about half a second)."""
    pyplot()


def colour(lo: float, hi: float, verdict: str | None = None) -> str:
    """The one colour rule of an effect: green/red better/worse by the family-wise verdict; olive where only the
    effect's own interval excludes 0 (not after the adjustment for several models); grey otherwise. Without a verdict
    (a single comparison: a contrast, a capacity point) the interval decides green/red."""
    own = "up" if math.isfinite(lo) and lo > 0 else "down" if math.isfinite(hi) and hi < 0 else None
    if verdict is None:
        return {"up": "tab:green", "down": "tab:red"}.get(own, "tab:gray")
    if verdict in ("better", "worse"):
        return "tab:green" if verdict == "better" else "tab:red"
    return "tab:olive" if own else "tab:gray"


COLOUR_KEY = ("green/red: better/worse than the baseline (family-wise verdict); grey: no detectable difference;\n"
              "olive: the model's own 95% interval excludes 0, but not after the adjustment for several models")


def _finite(lo, hi) -> bool:
    return lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)


def _forest_row(ax, i: int, r: dict) -> None:
    c = colour(r["lo"], r["hi"], r.get("verdict"))
    for lo, hi, lw in ((r.get("sim_lo"), r.get("sim_hi"), 1.0), (r["lo"], r["hi"], 3.0)):
        if _finite(lo, hi):
            ax.plot([lo, hi], [i, i], color=c, lw=lw, solid_capstyle="butt")
    interval = _finite(r["lo"], r["hi"])
    ax.plot(r["delta"], i, "o", color=c, mfc=c if interval else "none")
    if not interval:
        ax.annotate("1 seed: no interval" if r.get("n_seeds") == 1 else "no interval", (r["delta"], i), xytext=(6, 4),
                    textcoords="offset points", fontsize=7)
    for v in r.get("per_seed", []):
        ax.plot(v, i, "x", color=c, alpha=0.5, ms=4)


def forest(panels: list[tuple[str, list[dict]]], path: Path, title: str) -> Path:
    """The one forest plot of effects (the sweep's differences to its baseline, the studies' effects): one row per
    effect, one panel per ``(x-axis label, rows)``, the same effects in the same order in every panel. A row:
    ``label``, ``delta``, ``lo``/``hi`` (its own 95% interval: thick bar), optionally ``sim_lo``/``sim_hi`` (the
    simultaneous interval: thin bar), ``per_seed`` (crosses), ``n_seeds``, ``verdict`` (:func:`colour`) and ``note``
    (after the label)."""
    plt = pyplot()
    rows = panels[0][1]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) if len(panels) > 1 else 8,
                                                      1.5 + 0.45 * max(1, len(rows))), sharey=True, squeeze=False)
    for ax, (xlabel, panel_rows) in zip(axes[0], panels):
        for i, r in enumerate(panel_rows):
            _forest_row(ax, i, r)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(rows)), [r["label"] + (f"  ({r['note']})" if r.get("note") else "") for r in rows])
    axes[0][0].invert_yaxis()
    every = [r for _, panel_rows in panels for r in panel_rows]
    key = "thick: 95% interval of each effect" + ("; thin: simultaneous 95% (Bonferroni)" if any(
        _finite(r.get("sim_lo"), r.get("sim_hi")) for r in every) else "") + "; x: single seeds"
    fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.005, key + ("\n" + COLOUR_KEY if any(r.get("verdict") for r in every) else ""), ha="center",
             va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.1 if any(r.get("verdict") for r in every) else 0.05, 1, 1))
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def diff_plot(summary: SweepSummary, path: Path) -> Path:
    """Difference to the baseline of the two figures (mAP50-95 and mAP50, or the task's), one row per model: its
    own 95% interval, the simultaneous (Bonferroni) one, the seeds; coloured by the Holm-adjusted verdict."""
    first, second, independent = summary.settings.figures
    models = [m for m in summary.models if not m.is_baseline and m.diff]
    panels = []
    for key, name in (("map", first), ("map50", second)):
        rows = []
        for m in models:
            d = m.diff[key]
            sim = (d.adjusted.sim_lo, d.adjusted.sim_hi) if d.adjusted else (None, None)
            rows.append({"label": m.model, "delta": d.delta, "lo": d.lo, "hi": d.hi, "sim_lo": sim[0], "sim_hi": sim[1],
                         "per_seed": d.per_seed, "n_seeds": d.n_seeds, "verdict": d.verdict})
        panels.append((f"{name} ({independent}), model - baseline", rows))
    return forest(panels, path, f"difference to {summary.baseline}")


def epochs_plot(summary: SweepSummary, records: list[TrialRecord], path: Path) -> Path:
    """Validation mAP50-95 over epochs (Ultralytics' per-epoch validation), mean over seeds and each seed."""
    plt = pyplot()
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
    plt = pyplot()
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
