"""Ultralytics' logging integrations (MLflow, Comet, ClearML, W&B, TensorBoard): whether one logs in this process."""

from __future__ import annotations

import os


def integration_enabled(name: str) -> bool:
    """Whether Ultralytics' integration ``name`` logs runs in this process: on in its settings (``yolo settings
    mlflow=False`` turns it off), and not silenced as Ultralytics silences MLflow under pytest (outside tests whose
    name holds ``test_mlflow``)."""
    from ultralytics.utils import SETTINGS, TESTS_RUNNING

    if name == "mlflow" and TESTS_RUNNING and "test_mlflow" not in os.environ.get("PYTEST_CURRENT_TEST", ""):
        return False
    return bool(SETTINGS.get(name, False))
