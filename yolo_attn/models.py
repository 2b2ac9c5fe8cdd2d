"""Building Ultralytics models that carry yolo_attn layers."""

from __future__ import annotations

from pathlib import Path

from . import _ultralytics  # noqa: F401  (registers the layers)


def build_model(model: str | Path, nc: int | None = None, verbose: bool = False):
    """Return an Ultralytics ``DetectionModel`` built from a YAML (or loaded from a ``.pt`` checkpoint)."""
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    path = Path(model)
    if path.suffix == ".pt":
        return load_checkpoint(path)[0]
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{model}: expected a .yaml, .yml or .pt file")
    return DetectionModel(str(path), nc=nc, verbose=verbose)
