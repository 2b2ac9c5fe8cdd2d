"""The results of export checks: the JSON file, the per-layer support that ``yolo-attn list`` shows, the tables.

``support.json`` beside this module holds the measured per-layer matrix (written by
``benchmarks/deploy_matrix.py``, never by hand); ``docs/deploy.md`` carries the same matrix rendered by
:func:`markdown_matrix`, and a test checks that the two agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .check import CONVERTED, FAILED, NOT_CHECKED, PASSED, FormatResult
from .formats import FORMAT_NAMES

SUPPORT_FILE = Path(__file__).with_name("support.json")
_CELL = {PASSED: "ok", FAILED: "FAIL", NOT_CHECKED: "-", CONVERTED: "conv"}


@dataclass
class Results:
    """A results file: the runs' settings and package versions, and one :class:`FormatResult` per model x format."""

    results: list[FormatResult]
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"versions": self.versions, "settings": self.settings, "results": [r.as_dict() for r in self.results]}


def write_results(path: str | Path, res: Results) -> Path:
    from .._io import atomic_write_json

    return atomic_write_json(path, res.as_dict())


def read_results(path: str | Path = SUPPORT_FILE) -> Results:
    """Read a results file; a damaged one raises ValueError naming the file (and the entry)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable export-check results file ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("results"), list):
        raise ValueError(f"{path}: an export-check results file needs a 'results' list")
    out = []
    for i, r in enumerate(d["results"]):
        try:
            out.append(FormatResult.from_dict(r))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: result {i}: {exc}") from None
    return Results(out, dict(d.get("versions") or {}), dict(d.get("settings") or {}))


def per_layer(res: Results) -> dict[str, dict[str, FormatResult]]:
    """layer -> format -> result, for the models that carry exactly one registered layer (the per-layer check)."""
    out: dict[str, dict[str, FormatResult]] = {}
    for r in res.results:
        if len(r.layers) == 1:
            out.setdefault(r.layers[0], {})[r.format] = r
    return out


def support_line(by_format: dict[str, FormatResult]) -> str:
    """One line per layer for ``yolo-attn list``: the formats grouped by outcome, failures with their operator."""
    groups: dict[str, list[str]] = {}
    for name in FORMAT_NAMES:
        r = by_format.get(name)
        if r is None:
            continue
        label = name + (f" ({r.op})" if r.status == FAILED and r.op else "")
        groups.setdefault(r.status, []).append(label)
    return "; ".join(f"{status} {', '.join(groups[status])}" for status in (PASSED, FAILED, CONVERTED, NOT_CHECKED)
                     if status in groups)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2g}"


def markdown_matrix(res: Results) -> str:
    """The layer x format matrix in Markdown, with the reason for every failure and the package versions."""
    layers = per_layer(res)
    formats = [f for f in FORMAT_NAMES if any(f in row for row in layers.values())]
    lines = ["| layer | " + " | ".join(formats) + " |", "|---|" + "---|" * len(formats)]
    notes = []
    for layer in sorted(layers):
        cells = []
        for f in formats:
            r = layers[layer].get(f)
            cell = _CELL[r.status] if r else ""
            if r and r.status == FAILED:
                notes.append(f"- {layer} / {f}: {r.reason}" + (f" (operator `{r.op}`)" if r.op else ""))
                cell += f" [{len(notes)}]"
            cells.append(cell)
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Failures:", ""] + [f"{i}. {n[2:]}" for i, n in enumerate(notes, 1)]
    nc = sorted({f"{r.format}: {r.reason}" for r in res.results if r.status in (NOT_CHECKED, CONVERTED)})
    if nc:
        lines += ["", "Not checked / converted only:", ""] + [f"- {n}" for n in nc]
    if res.versions:
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(res.versions.items()))]
    if res.settings:
        lines += ["", "Settings: " + ", ".join(f"{k} {v}" for k, v in sorted(res.settings.items()))]
    return "\n".join(lines) + "\n"


def result_table(results: list[FormatResult]) -> str:
    """Plain-text table of a check's results (one row per model x format), for the terminal."""
    head = (f"{'model':<34}{'task':<9}{'format':<15}{'status':<15}{'max|d| box':>11}{'max|d| score':>13}  "
            "boxes (top-1) / the task's outputs' max|d| / reason")
    lines = [head, "-" * len(head)]
    for r in results:
        agree = str(r.boxes) if r.boxes else (f"top-1 same {r.top1['same']}/{r.top1['images']}" if r.top1 else "")
        tail = r.reason or "; ".join(t for t in (agree, r.diffs_text()) if t)
        lines.append(f"{r.model[:33]:<34}{r.task:<9}{r.format:<15}{r.status:<15}{_fmt(r.max_diff_boxes):>11}"
                     f"{_fmt(r.max_diff_scores):>13}  {tail}")
    return "\n".join(lines)
