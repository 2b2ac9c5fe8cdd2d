"""Ultralytics' logging integrations (MLflow, Comet, ClearML, W&B, TensorBoard): whether one is on."""

from __future__ import annotations


def integration_enabled(name: str) -> bool:
    """Whether Ultralytics' settings turn integration ``name`` on (``yolo settings mlflow=False`` turns it off)."""
    from ultralytics.utils import SETTINGS

    return bool(SETTINGS.get(name, False))
