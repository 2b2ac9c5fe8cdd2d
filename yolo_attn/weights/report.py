"""What a transfer did, per layer and in total: :class:`TransferReport` (printed as a table, saved as ``transfer.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LayerResult:
    """What happened to one layer (a target layer, or a source layer with no counterpart)."""

    target: int | None
    source: int | None
    target_type: str
    source_type: str
    status: str  # transferred | partial | new | skipped | no tensors
    transferred: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "source": self.source,
            "target_type": self.target_type,
            "source_type": self.source_type,
            "status": self.status,
            "transferred": self.transferred,
            "new": self.new,
            "skipped": [list(s) for s in self.skipped],
            "note": self.note,
        }


@dataclass
class TransferReport:
    """Outcome of :func:`transfer_weights`. ``str(report)`` is the per-layer table plus the summary line."""

    source: str
    source_format: str
    layers: list[LayerResult]
    mapping: dict[int, int]  # source layer index -> target layer index (paired layers)
    source_tensors: int
    source_params: int
    target_tensors: int
    target_params: int
    tensors: int  # transferred tensors
    params: int  # transferred elements of learnable tensors
    class_dependent: list[str] = field(default_factory=list)  # target keys left at init because nc differs
    head_adapted: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    transferred_keys: dict[str, str] = field(default_factory=dict)  # target key -> source key
    method: str = "structure"  # structure (transfer_weights) | names (load_by_name: Ultralytics' name-and-shape matching)

    @property
    def new_keys(self) -> list[str]:
        return [f"model.{r.target}.{k}" for r in self.layers if r.target is not None for k in r.new]

    @property
    def fraction(self) -> float:
        return self.tensors / max(self.source_tensors, 1)

    def head_start(self) -> str:
        """How the head of the transferred model (its last row: Detect, Segment, Pose, OBB, Classify or their YOLO26
        forms) starts: ``transferred``, ``new class outputs`` or ``scratch``."""
        head = max((r for r in self.layers if r.target is not None), key=lambda r: r.target, default=None)
        if head is None or head.status in ("new", "skipped") or "anchor-based" in head.note:
            return "scratch"
        return "new class outputs" if self.class_dependent else "transferred"

    def summary(self) -> str:
        return (
            f"Transferred {self.tensors}/{self.source_tensors} source tensors "
            f"({self.params:,}/{self.source_params:,} parameters) into {self.tensors}/{self.target_tensors} target "
            f"tensors ({self.params:,}/{self.target_params:,} parameters) from {Path(self.source).name} "
            f"[{self.source_format}]" + (" by name and shape (Ultralytics' matching)" if self.method == "names" else "")
        )

    def table(self, keys: bool = False) -> str:
        lines = [f"{'target':>6} {'source':>6}  {'layer':<22}{'status':<13}{'tensors':>9}  note"]
        for r in self.layers:
            tgt = "-" if r.target is None else str(r.target)
            src = "-" if r.source is None else str(r.source)
            name = (r.target_type or r.source_type).rsplit(".", 1)[-1]
            if r.source_type and r.target_type and r.source_type.rsplit(".", 1)[-1] != name:
                name = f"{r.source_type.rsplit('.', 1)[-1]}->{name}"
            total = len(r.transferred) + len(r.new) + len([s for s in r.skipped if not s[1].startswith("source-only")])
            count = f"{len(r.transferred)}/{total}" if total else "-"
            lines.append(f"{tgt:>6} {src:>6}  {name:<22}{r.status:<13}{count:>9}  {r.note}")
            if keys:
                lines.extend(f"{'':>16}new      {k}" for k in r.new)
                lines.extend(f"{'':>16}skipped  {k}: {why}" for k, why in r.skipped)
        lines.extend(f"warning: {w}" for w in self.warnings)
        lines.append(self.summary())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "source_format": self.source_format,
            "method": self.method,
            "mapping": {str(k): v for k, v in self.mapping.items()},
            "source_tensors": self.source_tensors,
            "source_params": self.source_params,
            "target_tensors": self.target_tensors,
            "target_params": self.target_params,
            "tensors": self.tensors,
            "params": self.params,
            "class_dependent": self.class_dependent,
            "head_adapted": self.head_adapted,
            "warnings": self.warnings,
            "summary": self.summary(),
            "layers": [r.as_dict() for r in self.layers],
        }
