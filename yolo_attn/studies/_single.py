"""What the one-sweep studies (fuse, fmm, placement) share: the effects table and the forest plot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import _verdicts as V

if TYPE_CHECKING:
    from ..compare.summary import MetricDiff


def _f(v, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def effects_table(results: dict[str, V.ModelResult], roles: dict[str, str], order: list[str] | None = None) -> str:
    """Markdown: one row per model (role, mAP, Δ with interval, verdict, cost ratios to the baseline)."""
    lines = ["| model | role | seeds ok | mAP50-95 (mean ± sd) | Δ to baseline [95% CI, this model alone] "
             "| verdict (family-wise) | params × | latency × |",
             "|---|---|---|---|---|---|---|---|"]
    for label in order or list(results):
        r = results.get(label)
        if r is None:
            continue
        verdict = "baseline" if r.is_baseline else (r.effect.verdict if r.effect else "-")
        lines.append(f"| {label} | {roles.get(label, '')} | {r.n_ok} | {_f(r.map_mean)} ± {_f(r.map_std)} | "
                     f"{'-' if r.is_baseline else V.fmt_effect(r.effect)} | {verdict} | {_f(r.params_ratio, 2)} | "
                     f"{_f(r.latency_ratio, 2)} |")
    return "\n".join(lines)


def contrast_table(contrasts: dict[str, MetricDiff | None]) -> str:
    lines = ["| contrast (paired over seeds) | Δ [95% CI] | verdict |", "|---|---|---|"]
    for name, e in contrasts.items():
        lines.append(f"| {name} | {V.fmt_effect(e)} | {e.verdict if e else '-'} |")
    return "\n".join(lines)


def forest_rows(results: dict[str, V.ModelResult], roles: dict[str, str], order: list[str]) -> list[dict]:
    rows = []
    for label in order:
        r = results.get(label)
        if r is None or r.effect is None:
            continue
        e = r.effect
        note = f"latency ×{r.latency_ratio:.2f}" if r.latency_ratio else ""
        rows.append({"label": roles.get(label, label), "delta": e.delta, "lo": e.lo, "hi": e.hi,
                     "per_seed": e.per_seed, "note": note, "verdict": e.verdict})
    return rows


def forest_plot(rows: list[dict], title: str):
    """A plot callable for :class:`Analysis` (None when there is nothing to draw)."""
    if not rows:
        return None

    def plot(path):
        from ..compare.plots import forest

        forest([("ΔmAP50-95 (COCOeval) to the baseline", rows)], path, title)

    return plot


CONTRAST_NOTE = ("Contrasts between two attention models are paired over seeds with a seed-level interval only "
                 "(the validation-image part of the uncertainty is not included), so they are somewhat optimistic.")
