"""``yolo-attn diagnose``: measured explanations of why attention helped or hurt (see docs/diagnostics.md).

Python API::

    from yolo_attn.diagnose import ModelRef, Settings, diagnose, write
    d = diagnose([ModelRef("yolov5n", "stock.pt"), ModelRef("se", "se.pt")], "yolov5n", "data.yaml")
    write(d, "runs/diagnose")

or ``diagnose_sweep("runs/compare/<folder>")`` for a finished ``compare`` sweep.
"""

from __future__ import annotations

from pathlib import Path

from .data import DiagnoseError
from .layers import ModelRef
from .report import write
from .run import Settings, diagnose
from .sweep import sweep_inputs


def diagnose_sweep(root: str | Path, out: str | Path | None = None, settings: Settings | None = None, progress=None) -> Path:
    """Diagnose every checkpoint a ``compare`` sweep kept; writes into ``out`` (default ``<root>/diagnose``)."""
    import dataclasses

    inp = sweep_inputs(root)
    s = dataclasses.replace(settings or Settings(), imgsz=inp.imgsz)
    d = diagnose(inp.refs, inp.baseline, inp.data, s, progress)
    return write(d, Path(out) if out else Path(root) / "diagnose")


__all__ = ["DiagnoseError", "ModelRef", "Settings", "diagnose", "diagnose_sweep", "write"]
