"""Experiment trackers see a sweep as one group of named trials, and its summary once.

Ultralytics turns its logging integrations on by itself when their packages are installed (MLflow, Comet,
ClearML, Weights & Biases, TensorBoard) and names each run after the trainer's ``project``/``name``: a sweep's
trials (``project=<trial folder>``, ``name=train``) arrived as unrelated runs all called ``train``. Each trial now
trains with the names the trackers read from the environment (set only for that trial, never over a value the user
set): MLflow's experiment ``MLFLOW_EXPERIMENT_NAME`` = the sweep (``yolo-attn/<results folder>``) and run
``MLFLOW_RUN`` = ``<model>-seed<seed>``; Comet's project ``COMET_PROJECT_NAME`` = the sweep. TensorBoard writes into
each trial's own folder. Weights & Biases and ClearML take the project and name from the trainer's arguments only,
which the sweep needs for its folders: their runs keep Ultralytics' names.

:func:`log_summary` logs the sweep's summary once to MLflow when Ultralytics' MLflow integration is active: one run
``summary`` in the sweep's experiment, with each model's mean metric and difference to the baseline, and
``summary.md``/``summary.json`` as artifacts. Without MLflow installed nothing is logged (it is Ultralytics' choice to
log, not the sweep's); ``pip install 'yolo_attn[track]'`` installs it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

SUMMARY_RUN = "summary"


def sweep_name(out_dir: str | Path) -> str:
    """The name a sweep's trials are grouped under: ``yolo-attn/<results folder name>``."""
    return f"yolo-attn/{Path(str(out_dir)).resolve().name}"


def trial_names(out_dir: str | Path, model: str, seed: int) -> dict[str, str]:
    """The environment that names one trial in the trackers that read it."""
    group = sweep_name(out_dir)
    return {"MLFLOW_EXPERIMENT_NAME": group, "MLFLOW_RUN": f"{model}-seed{seed}", "COMET_PROJECT_NAME":
            group.replace("/", "-")}


@contextlib.contextmanager
def named_trial(out_dir: str | Path | None, model: str, seed: int) -> Iterator[None]:
    """Inside: the trial's tracker names in the environment (a value the user set is kept); restored after."""
    names = trial_names(out_dir, model, seed) if out_dir else {}
    added = {k: v for k, v in names.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def mlflow_active() -> bool:
    """Whether Ultralytics' MLflow integration logs in this process (installed, and on in Ultralytics' settings)."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    from .._ultralytics import integration_enabled

    return integration_enabled("mlflow")


def prepare_store(out_dir: str | Path) -> str | None:
    """Create the MLflow store and the sweep's experiment once, in the driver, before trials start.

    Trials that start together in worker processes would otherwise each create the store's tables and the
    experiment at the same moment, and SQLite lets only one win: the other trial logged nothing ("duplicate column
    name", measured with 2 workers). The experiment's id, or None when MLflow is not active. Never fatal."""
    if not mlflow_active():
        return None
    import mlflow

    return mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or sweep_name(out_dir)).experiment_id


def log_summary(out_dir: str | Path, summary) -> str | None:
    """Log the sweep's summary once as the run ``summary`` of its MLflow experiment; its run id, or None when
    MLflow is not active. A tracker that fails is said, never fatal: the sweep's own files are the record."""
    if not mlflow_active():
        return None
    import mlflow

    import math

    metrics = {}
    for row in summary.models:
        values = {"map": row.coco_map_mean, "map50": row.coco_map50_mean}
        diff = (row.diff or {}).get("map")
        if diff is not None and diff.ci is not None:
            values["delta_map"] = diff.ci.delta
        metrics.update({f"{row.model}.{k}": float(v) for k, v in values.items() if v is not None and math.isfinite(v)})
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or sweep_name(out_dir))
    with mlflow.start_run(run_name=SUMMARY_RUN) as run:
        mlflow.set_tags({"yolo_attn.baseline": summary.baseline, "yolo_attn.folder": str(Path(str(out_dir)).resolve())})
        mlflow.log_metrics(metrics)
        for name in ("summary.md", "summary.json"):
            if (Path(out_dir) / name).is_file():
                mlflow.log_artifact(str(Path(out_dir) / name))
        return run.info.run_id
