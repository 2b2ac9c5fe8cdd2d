"""A sweep logged to a real MLflow store (a local folder): one experiment named after the sweep, its trials named
by model and seed, and the sweep's summary logged once. Needs the ``track`` extra: CI installs it in a step of its
own (``pytest -m track``); the plain test run reports these as skipped with the reason."""

from __future__ import annotations

import os
from importlib.util import find_spec

import pytest

from yolo_attn.compare import trackers

pytestmark = [pytest.mark.track, pytest.mark.skipif(find_spec("mlflow") is None, reason="mlflow not installed: CI "
                                                    "runs these after pip install -e '.[track]' (pytest -m track)")]


def test_trial_names_are_set_for_the_trial_only_and_never_over_the_users(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_RUN", "mine")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    with trackers.named_trial(tmp_path / "sweep-a", "yolov5n-se", 3):
        assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "yolo-attn/sweep-a" and os.environ["MLFLOW_RUN"] == "mine"
    assert "MLFLOW_EXPERIMENT_NAME" not in os.environ and os.environ["MLFLOW_RUN"] == "mine"


@pytest.mark.slow
def test_mlflow_store_holds_one_experiment_with_the_trials_named_and_the_summary(tmp_path, monkeypatch):
    """(The test name holds 'test_mlflow': Ultralytics logs to MLflow under pytest only in such tests.)"""
    import mlflow
    from ultralytics.utils import SETTINGS

    from conftest import tiny_sweep_data
    from conftest import run_compare

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a local store (MLflow's folder store is in maintenance mode)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # anything MLflow writes beside its store stays in the test's folder
    monkeypatch.setitem(SETTINGS, "mlflow", True)
    out = tmp_path / "sweep-mlflow"
    run_compare(models=["yolov5n.yaml", "yolov5n-se-backbone-end.yaml"], data=str(tiny_sweep_data(tmp_path)), seeds=2, epochs=1,
            imgsz=64, out=str(out), progress=False, workers=2, threads=1)  # trials start side by side: one store
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert [e.name for e in experiments] == ["yolo-attn/sweep-mlflow"]
    runs = client.search_runs([experiments[0].experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["summary", "yolov5n-se-backbone-end-seed0", "yolov5n-se-backbone-end-seed1", "yolov5n-seed0",
                     "yolov5n-seed1"]
    summary = next(r for r in runs if r.info.run_name == "summary")
    assert "yolov5n-se-backbone-end.map" in summary.data.metrics and summary.data.tags["yolo_attn.baseline"] == "yolov5n"
