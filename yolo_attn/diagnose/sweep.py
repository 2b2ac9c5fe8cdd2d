"""The checkpoints a finished ``compare`` sweep kept: ``trials/<model>__seed<k>/train/weights/{last,best}.pt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import DiagnoseError
from .layers import ModelRef


@dataclass
class SweepInputs:
    refs: list[ModelRef]
    baseline: str
    data: Path
    imgsz: int


def sweep_inputs(root: str | Path) -> SweepInputs:
    """Every ``ok`` trial of the sweep's current settings, with the weights the sweep evaluated."""
    from ..compare.store import Store

    root = Path(root)
    store = Store(root)
    config = store.read_config()
    if config is None:
        raise DiagnoseError(f"{root}: not a compare results folder (no config.json)")
    latest = store.latest(config.settings_hash)
    weights = config.weights
    refs = []
    for rec in sorted(latest.values(), key=lambda r: (r.model, r.seed)):
        if not rec.ok:
            continue
        run_dir = Path(rec.run_dir or "")
        if not run_dir.is_absolute():
            run_dir = root / run_dir
        pt = run_dir / "weights" / f"{weights}.pt"
        if not pt.is_file():
            pt = root / "trials" / rec.trial_id / "train" / "weights" / f"{weights}.pt"
        if not pt.is_file():
            raise DiagnoseError(f"{root}: trial {rec.trial_id} kept no {weights}.pt (looked in {run_dir / 'weights'})")
        refs.append(ModelRef(rec.model, pt, int(rec.seed)))
    if not refs:
        raise DiagnoseError(f"{root}: the sweep has no finished trial")
    data = Path(config.data_yaml or "")
    if not data.is_file() and not data.is_dir():  # a dataset YAML, or a classification dataset's folder
        raise DiagnoseError(f"{root / 'config.json'}: the sweep's dataset {str(data)!r} is missing")
    order = config.model_names
    refs.sort(key=lambda r: (order.index(r.label) if r.label in order else len(order), r.seed))
    return SweepInputs(refs, config.baseline or refs[0].label, data, config.imgsz or 640)


