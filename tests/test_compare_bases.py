"""The sweep on YOLO26 (end-to-end head): a mixed compare, NMS-free validation scored twice, the optimizer recorded
and pinned.

The training tests are tiny (imgsz 64, 1 epoch, 24 training images) and marked slow; the optimizer checks run
Ultralytics' own optimizer choice without training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from yolo_attn._ultralytics import resolve_optimizer, train_iterations
from conftest import run_compare
from yolo_attn.compare.contract import TrialRecord, TrialSpec
from yolo_attn.compare.report import AGREEMENT_TOL
from yolo_attn.compare.store import Store
from yolo_attn.compare.sweep import OptimizerDiffers, require_one_optimizer
from yolo_attn.compare.trial import DEFAULT_TRAIN_ARGS, _Hooks, _validate, sweep_train_args


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    base = tmp_path_factory.mktemp("data")
    y = base / "tiny.yaml"
    write_dataset(base / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


@pytest.mark.slow
def test_mixed_yolo26_compare_validates_end_to_end(tiny, tmp_path):
    """yolo26n.yaml against a shipped SE config: both trials ok, NMS-free validation, the two mAPs agree."""
    out = tmp_path / "o"
    s = run_compare(data=str(tiny), models=["yolo26n.yaml", "yolo26n-se-backbone-end.yaml"], seeds=1, epochs=1, imgsz=64,
                n_boot=50, out=str(out), progress=False, threads=1)
    recs = Store(out).trial_records()
    assert len(recs) == 2 and all(r.ok for r in recs), [r.error for r in recs]
    assert s.n_ok == 2
    for r in recs:
        assert r.optimizer == {"name": "SGD", "lr": DEFAULT_TRAIN_ARGS["lr0"], "momentum": DEFAULT_TRAIN_ARGS["momentum"]}
        assert abs(r.ultra["map50"] - r.coco["map50"]) < AGREEMENT_TOL
        assert abs(r.ultra["map"] - r.coco["map"]) < AGREEMENT_TOL
        assert r.n_detections > 0
    # every validation of the trial ran the one-to-one head without NMS: training's (whose final epoch scored the
    # trial) and a validation again here from the trial's weights (last.pt: those weights in half precision)
    rec = recs[0]
    assert rec.scored_by == "final epoch"
    spec = TrialSpec(trial_id="t", model=rec.model, model_ref=rec.model_ref, seed=0, settings_hash="h",
                     trial_dir=str(tmp_path / "again"), data=json.loads((out / "config.json").read_text())["_data_yaml"],
                     epochs=1, imgsz=64, threads=1)
    assert yaml.safe_load((Path(rec.run_dir) / "args.yaml").read_text())["nms"] is False
    ev = _validate(spec, Path(rec.run_dir) / "weights" / "last.pt", _Hooks(spec, 1, None))
    assert ev.ultra["map50"] == pytest.approx(rec.ultra["map50"], abs=2e-3)  # half-precision rounding only
    assert ev.ultra["map"] == pytest.approx(rec.ultra["map"], abs=2e-3)


def test_optimizer_auto_resolves_by_iterations_and_is_refused_when_trials_differ():
    """Ultralytics' optimizer=auto changes optimizer at 10,000 iterations: a short and a long rung differ, refused."""
    short, long = train_iterations(24, 8, 8, 2), train_iterations(24, 8, 8, 4000)
    assert (short, long) == (6, 12000)
    a, b = resolve_optimizer("auto", 0.01, 0.9, 2, short), resolve_optimizer("auto", 0.01, 0.9, 2, long)
    assert a != b and "MuSGD" in (a.name, b.name)  # MuSGD is one of the two choices in every supported version
    musgd = a if a.name == "MuSGD" else b
    assert musgd.muon is not None and musgd.sgd is not None and set(musgd.as_dict()) == {"name", "lr", "momentum", "muon", "sgd"}
    t_args = {**sweep_train_args(None, None), "optimizer": "auto"}
    with pytest.raises(OptimizerDiffers, match=r"different optimizers \(2 epochs \(6 iterations\): .*4000 epochs"):
        require_one_optimizer(t_args, 24, 2, [2, 4000])
    assert require_one_optimizer(t_args, 24, 2, [2, 3]) == a  # the same side of the threshold: one optimizer
    pinned = require_one_optimizer(sweep_train_args(None, None), 24, 2, [2, 4000])  # the sweep's SGD: the same everywhere
    assert pinned.name == "SGD" and pinned.lr == DEFAULT_TRAIN_ARGS["lr0"]
    with pytest.raises(OptimizerDiffers, match="batch=-1"):
        require_one_optimizer({**t_args, "batch": -1}, 24, 2, [2])


def test_sweep_with_run_time_batch_and_auto_is_refused_before_config(tiny, tmp_path):
    with pytest.raises(ValueError, match="--batch -1: Ultralytics' AutoBatch"):  # any run-time batch (issue 37)
        run_compare(data=str(tiny), models=["yolo26n.yaml"], seeds=1, epochs=1, imgsz=64, out=str(tmp_path / "o"),
                progress=False, threads=1, train_args={"optimizer": "auto", "batch": -1})
    assert not (tmp_path / "o" / "config.json").exists()


def test_search_checks_its_rungs_optimizer(tiny, tmp_path, monkeypatch):
    """The search refuses, before training, rungs whose lengths would make optimizer=auto pick different optimizers
    (24 images: 1 iteration per epoch, 20,000 at the last length); with the sweep's pinned SGD the same rungs pass."""
    from yolo_attn.compare import trial
    from yolo_attn.studies.search import Search, SearchOptions

    opts = SearchOptions(layers=["SE", "ECA"], placements=["backbone-end"], data=str(tiny), min_epochs=1,
                         max_epochs=20000, keep=1, out=str(tmp_path / "s"), progress=False)  # rungs: 1, 20000 epochs
    Search(opts).check_optimizer()  # SGD pinned: every rung the same (no exception)
    pinned = trial.sweep_train_args
    monkeypatch.setattr(trial, "sweep_train_args", lambda *a: {**pinned(*a), "optimizer": "auto"})
    with pytest.raises(OptimizerDiffers, match=r"different optimizers .*20000 epochs"):
        Search(opts).check_optimizer()


def test_trial_record_optimizer_field_reads_old_and_new_lines():
    old = {"trial_id": "a", "model": "m", "model_ref": "m.yaml", "seed": 0, "settings_hash": "h", "status": "ok"}
    assert TrialRecord.from_dict(old).optimizer is None and "optimizer" not in TrialRecord.from_dict(old).as_dict()
    new = TrialRecord.from_dict({**old, "optimizer": {"name": "MuSGD", "lr": 0.01, "momentum": 0.9, "muon": 0.2, "sgd": 1.0}})
    assert new.optimizer["name"] == "MuSGD" and not new.extra and new.as_dict()["optimizer"]["muon"] == 0.2


def test_a_named_optimizer_is_recorded_as_named_without_building_one(monkeypatch):
    """Only optimizer=auto (and MuSGD's factors) need Ultralytics' build_optimizer; a named one is used as given."""
    import yolo_attn._ultralytics as bridge

    def no_build(*a, **kw):
        raise AssertionError("build_optimizer was called")

    monkeypatch.setattr(bridge, "resolve_optimizer", no_build)
    got = require_one_optimizer({**sweep_train_args(None, None), "optimizer": "AdamW", "lr0": 0.003}, 24, 2, [2, 4000])
    assert (got.name, got.lr, got.momentum) == ("AdamW", 0.003, DEFAULT_TRAIN_ARGS["momentum"])
    with pytest.raises(AssertionError, match="build_optimizer"):
        require_one_optimizer({**sweep_train_args(None, None), "optimizer": "auto"}, 24, 2, [2])
