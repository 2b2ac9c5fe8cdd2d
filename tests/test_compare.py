"""The comparison sweep end to end on a tiny generated dataset: resume after a kill, determinism, store rules.

Trials are tiny (imgsz 64, 1 epoch, 24 training images): the point is the machinery, not the mAP.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_compare
from yolo_attn.compare import ConfigMismatch
from yolo_attn.compare.contract import SweepConfig, TrialSpec
from yolo_attn.compare.request import RunOptions
from yolo_attn.compare.store import Store
from yolo_attn.compare.summary import SweepSummary

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _simple_dataset(out: Path, n_train=24, n_val=8, size=64) -> Path:
    """Coloured squares/discs on noise (fallback when the shapes generator is not available)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            rows = []
            for _ in range(int(rng.integers(1, 3))):
                c = int(rng.integers(0, 2))
                s = int(rng.integers(12, 28))
                x, y = (int(v) for v in rng.integers(0, size - s, 2))
                yy, xx = np.mgrid[:s, :s]
                mask = np.ones((s, s), bool) if c == 0 else (yy - s / 2) ** 2 + (xx - s / 2) ** 2 <= (s / 2) ** 2
                img[y : y + s, x : x + s][mask] = rng.integers(120, 255, 3)
                rows.append(f"{c} {(x + s / 2) / size:.6f} {(y + s / 2) / size:.6f} {s / size:.6f} {s / size:.6f}")
            Image.fromarray(img).save(out / "images" / split / f"{i:04d}.jpg")
            (out / "labels" / split / f"{i:04d}.txt").write_text("\n".join(rows) + "\n")
    y = out.with_suffix(".yaml")
    y.write_text(yaml.safe_dump({"path": str(out), "train": "images/train", "val": "images/val",
                                 "names": {0: "square", 1: "disc"}}))
    return y


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("data")
    try:
        from yolo_attn.datasets.shapes import ShapesConfig, write_dataset
    except ImportError:
        return _simple_dataset(base / "tiny")
    y = base / "tiny.yaml"
    write_dataset(base / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


@pytest.fixture(scope="module")
def se_yaml(tmp_path_factory) -> Path:
    """yolov5 with SE before SPPF (scale from the name: n)."""
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load("yolov5n.yaml")
    d = {k: v for k, v in d.items() if k in ("nc", "scales", "backbone", "head")}
    d["backbone"].insert(9, [-1, 1, "SE", [16]])
    for row in d["head"]:  # every absolute index >= 9 shifts by one
        f = row[0]
        row[0] = [i + 1 if i >= 9 else i for i in f] if isinstance(f, list) else (f + 1 if f >= 9 else f)
    p = tmp_path_factory.mktemp("models") / "yolov5n-se.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _args(tiny, se_yaml):
    return ["--data", str(tiny), "--models", "yolov5n.yaml", str(se_yaml), "--seeds", "2", "--epochs", "1",
            "--imgsz", "64", "--boot", "200", "--threads", "1"]


def _kw(tiny, se_yaml):
    return dict(data=str(tiny), models=["yolov5n.yaml", str(se_yaml)], seeds=2, epochs=1, imgsz=64, n_boot=200, threads=1)


def _cli(*args):
    return [sys.executable, "-m", "yolo_attn.cli", "compare", *args]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _comparable(summary) -> list:
    """Everything in the table that does not depend on timing."""
    keep = ("model", "n_ok", "ultra_map50_mean", "ultra_map_mean", "coco_map50_mean", "coco_map_mean", "precision",
            "recall", "params", "gflops_640", "per_seed", "diff")
    rows = [{k: m.to_json().get(k) for k in keep} for m in summary.models]
    return json.loads(json.dumps(rows, default=str), parse_constant=str)  # NaN (nothing measured) equals itself


def test_interrupted_sweep_resumes_and_matches_uninterrupted(tiny, se_yaml, tmp_path):
    a, b = tmp_path / "interrupted", tmp_path / "uninterrupted"
    log = open(tmp_path / "first.log", "w")
    p = subprocess.Popen(_cli(*_args(tiny, se_yaml), "--out", str(a)), cwd=tmp_path, stdout=log, stderr=log, env=_env())
    trials = a / "trials.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if trials.is_file() and trials.read_text().count("\n") >= 1:
            break
        time.sleep(0.5)
    p.send_signal(signal.SIGKILL)  # mid-sweep: the second trial is training
    p.wait()
    log.close()
    before = Store(a).trial_records()
    assert 1 <= len(before) < 4, (tmp_path / "first.log").read_text()[-3000:]
    assert all(r.ok for r in before), before
    progress = (tmp_path / "first.log").read_text()
    assert "trial 1/4" in progress and "ETA" in progress

    r = subprocess.run(_cli(*_args(tiny, se_yaml), "--out", str(a)), cwd=tmp_path, capture_output=True, text=True,
                       env=_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{len(before)} already recorded, {4 - len(before)} to run" in r.stderr
    after = Store(a).trial_records()
    ids = [x.trial_id for x in after]
    assert len(after) == 4 and len(set(ids)) == 4  # every trial exactly once
    for old in before:  # finished trials were not trained again: their single record is the first run's
        new = next(x for x in after if x.trial_id == old.trial_id)
        assert (new.recorded_at, new.pid, new.started_at) == (old.recorded_at, old.pid, old.started_at)

    # a finished sweep rerun in-process trains nothing and rewrites the same table
    s_again = run_compare(out=str(a), progress=False, **_kw(tiny, se_yaml))
    assert len(Store(a).trial_records()) == 4

    s_b = run_compare(out=str(b), progress=False, **_kw(tiny, se_yaml))  # uninterrupted, in this process
    s_a = SweepSummary.from_json(json.loads((a / "summary.json").read_text()))  # as written to summary.json
    assert _comparable(s_a) == _comparable(s_b) == _comparable(s_again)
    rec_a = {x.trial_id: x for x in Store(a).trial_records()}
    env = Store(b).trial_records()[0].environment  # what bit-reproducibility depends on, recorded per trial
    assert env["threads"] == 1 and env["torch"] and env["ultralytics"] and "cpu_isa" in env and env["blas"]
    for x in Store(b).trial_records():  # same seed, same settings -> bit-identical predictions and losses on CPU
        assert x.predictions_sha256 == rec_a[x.trial_id].predictions_sha256, x.trial_id
        assert x.train_loss == rec_a[x.trial_id].train_loss
        assert x.ultra == rec_a[x.trial_id].ultra and x.coco == rec_a[x.trial_id].coco
        assert x.scored_by == "final epoch"  # --weights last: no second validation pass

    # outputs: tables, plots, COCO JSON of each trial, ratios to the baseline
    for f in ("summary.csv", "summary.md", "summary.json", "diff_to_baseline.png", "map_over_epochs.png",
              "precision_recall.png", "config.json", "latency.json", "data_check.json"):
        assert (b / f).is_file() and (b / f).stat().st_size > 0, f
    t = b / "trials" / "yolov5n-se__seed1"
    assert json.loads((t / "gt_coco.json").read_text())["images"]
    base, se = s_b.models
    assert base.is_baseline and base.latency_ratio == 1.0 and base.train_speed_ratio == 1.0
    assert se.params > base.params and se.latency_ratio > 0 and se.diff["map"].seeds == [0, 1]
    assert se.diff["map"].lo <= se.diff["map"].delta <= se.diff["map"].hi
    md = (b / "summary.md").read_text()
    assert "mAP50-95 (COCOeval)" in md and "yolov5n-se" in md

    # a different setting into the same folder is refused unless allowed
    with pytest.raises(ConfigMismatch, match="epochs"):
        run_compare(out=str(b), progress=False, **{**_kw(tiny, se_yaml), "epochs": 2})


def test_trials_run_seed_by_seed_with_the_baseline_first(tmp_path):
    """Every model of seed 0 (the baseline first, the rest as given), then seed 1: a sweep stopped early holds
    complete seeds. Recorded trials drop out without changing the order of the rest. Nothing is trained."""
    from yolo_attn.compare.contract import TrialRecord
    from yolo_attn.compare.request import ModelSpec, RunOptions
    from yolo_attn.compare.sweep import Resolved, _trial_specs

    store = Store(tmp_path / "s")
    specs = [ModelSpec(n, f"{n}.yaml") for n in ("a", "b", "c")]
    config = SweepConfig(settings_hash="h", data_fingerprint={}, epochs=1, imgsz=64, models=[m.stored() for m in specs],
                         seeds=[0, 1], baseline="b", train_args={"lr0": 0.01, "trust": True}, model_specs=specs)
    res = Resolved(seeds=[0, 1], epochs=1, threads=1, specs=specs, data_yaml=tmp_path / "d.yaml", names=["x", "y"])

    def order(retry_failed=False):
        all_trials, todo = _trial_specs(store, config, res, RunOptions(retry_failed=retry_failed))
        assert len(all_trials) == 6
        # trust is the run's (RunOptions.trust), never the one an earlier version recorded in the settings
        assert all(t.train_args == {"lr0": 0.01} and t.trust is False for t in todo)
        return [(t.seed, t.model) for t in todo]

    assert order() == [(0, "b"), (0, "a"), (0, "c"), (1, "b"), (1, "a"), (1, "c")]
    store.append(TrialRecord(trial_id="a__seed0", model="a", model_ref="a.yaml", seed=0, settings_hash="h",
                             status="failed", error="x"))
    assert order() == [(0, "b"), (0, "c"), (1, "b"), (1, "a"), (1, "c")]
    assert order(retry_failed=True) == [(0, "b"), (0, "a"), (0, "c"), (1, "b"), (1, "a"), (1, "c")]


def test_max_trials_of_one_seed_per_model_finishes_that_seed(tiny, se_yaml, tmp_path):
    """2 models x 2 seeds with --max-trials 2 (through a worker process): both models of seed 0, a complete pair."""
    out = tmp_path / "o"
    s = run_compare(out=str(out), progress=False, max_trials=2, workers=1, **_kw(tiny, se_yaml))
    recs = Store(out).trial_records()
    assert sorted((r.model, r.seed, r.status) for r in recs) == [("yolov5n", 0, "ok"), ("yolov5n-se", 0, "ok")]
    assert not s.complete
    assert s.row("yolov5n-se").diff["map"].seeds == [0]  # the one seed pairs with the baseline


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    from yolo_attn.compare.backends import run_local

    store = Store(tmp_path)
    specs = [TrialSpec(trial_id=f"bad{i}", model="m", model_ref="yolov5n.yaml", seed=i, settings_hash="h",
                       trial_dir=str(tmp_path / f"t{i}"), data=str(tmp_path / "missing.yaml"), epochs=1, imgsz=64)
             for i in range(2)]
    run_local(specs, lambda spec, rec: store.append(rec))
    recs = store.trial_records()
    assert [r.trial_id for r in recs] == ["bad0", "bad1"]
    assert all(r.status == "failed" and "missing.yaml" in r.error for r in recs)
    assert all(r.environment["torch"] and r.host and r.pid == os.getpid() for r in recs)


def test_store_append_is_line_atomic_and_repairs_a_torn_tail(tmp_path):
    s = Store(tmp_path)
    s.append({"trial_id": "a", "model": "m", "model_ref": "m.yaml", "seed": 0, "status": "ok", "settings_hash": "x"})
    with open(s.trials_path, "a") as f:
        f.write('{"trial_id": "b", "status": "o')  # a crash mid-write
    with pytest.warns(RuntimeWarning, match="its last line .* is not a complete record"):
        assert [r.trial_id for r in s.trial_records()] == ["a"]
    with pytest.warns(RuntimeWarning, match="torn last line"):
        s.append({"trial_id": "c", "model": "m", "model_ref": "m.yaml", "seed": 1, "status": "ok", "settings_hash": "x"})
    assert [r.trial_id for r in s.trial_records()] == ["a", "c"]  # the record after the torn line is readable
    assert s.trials_path.read_text().endswith("\n") and s.trials_path.read_text().count("\n") == 2
    assert (tmp_path / "trials.jsonl.torn").read_text() == '{"trial_id": "b", "status": "o\n'
    cfg = SweepConfig(settings_hash="x", data_fingerprint={}, epochs=1, imgsz=64, models=[{"name": "m"}], seeds=[0],
                      threads=1)
    s.init_config(cfg)
    assert s.init_config(dataclasses.replace(cfg, threads=2)).threads == 1  # informative fields may differ: kept as stored
    with pytest.raises(ConfigMismatch, match="epochs: stored 1, now 2"):
        s.init_config(dataclasses.replace(cfg, epochs=2))
    assert s.init_config(dataclasses.replace(cfg, epochs=2), allow_changes=True).epochs == 2
    assert s.read_config() == dataclasses.replace(cfg, epochs=2)  # config.json round-trips the contract


def test_store_reads_records_of_older_versions(tmp_path):
    """A line written before TrialRecord existed (no host/environment, an unknown key, the old 41 KB transfer text)."""
    old = {"trial_id": "yolov5n__seed0", "model": "yolov5n", "model_ref": "/x/yolov5n.yaml", "seed": 0,
           "settings_hash": "abc", "status": "ok", "ultra": {"map50": 0.5, "map": 0.3, "precision": 0.6, "recall": 0.4},
           "coco": {"map50": 0.5, "map": 0.3}, "eval": "trials/yolov5n__seed0/eval.npz", "recorded_at": 1.0, "pid": 7,
           "transfer": "<bound method TransferReport.summary of TransferReport(" + "x" * 400 + ")>", "legacy_key": [1, 2]}
    (tmp_path / "trials.jsonl").write_text(json.dumps(old) + "\n")
    store = Store(tmp_path)
    (rec,) = store.trial_records("abc")
    assert rec.ok and rec.coco == {"map50": 0.5, "map": 0.3} and rec.pid == 7 and rec.environment is None
    assert rec.extra == {"legacy_key": [1, 2]}
    assert [r.as_dict() for r in store.trial_records()] == [old]  # read back as written
    assert store.latest("abc")["yolov5n__seed0"].ultra["map50"] == 0.5
    (tmp_path / "trials.jsonl").write_text('{"not": "a record"}\n' + json.dumps(old) + "\n")
    assert [r.trial_id for r in store.trial_records()] == ["yolov5n__seed0"]  # a foreign line is skipped


def _ok_line(tid="m__seed0", **metrics) -> str:
    rec = {"trial_id": tid, "model": "m", "model_ref": "m.yaml", "seed": 0, "settings_hash": "h", "status": "ok",
           "ultra": {"map50": 0.5, "map": 0.3, **metrics}, "coco": {"map50": 0.5, "map": 0.3}}
    return json.dumps(rec) + "\n"


def test_two_different_results_of_one_trial_are_refused_with_their_lines(tmp_path):
    from yolo_attn.compare.store import DuplicateRecord

    failed = json.dumps({"trial_id": "m__seed0", "model": "m", "model_ref": "m.yaml", "seed": 0, "settings_hash": "h",
                         "status": "failed", "error": "x"}) + "\n"
    (tmp_path / "trials.jsonl").write_text(failed + _ok_line() + _ok_line())
    store = Store(tmp_path)
    assert store.latest("h")["m__seed0"].ultra["map"] == 0.3  # a retried failure, then the same result twice
    with open(store.trials_path, "a") as f:
        f.write(_ok_line(map=0.9))  # a line appended by hand or from another folder
    with pytest.raises(DuplicateRecord, match=r"trials.jsonl: lines 2 and 4 are two different results of trial "
                                              r"m__seed0"):
        store.latest("h")
    assert Store(tmp_path).latest("other") == {}  # records of other settings do not count


def test_damaged_lines_and_non_finite_metrics_are_reported_with_file_and_line(tmp_path):
    lines = _ok_line("a__seed0") + _ok_line("b__seed0")[:40] + "\n" + _ok_line("c__seed0").replace("0.3", "NaN", 1)
    (tmp_path / "trials.jsonl").write_text(lines + _ok_line("d__seed0")[:30])
    store = Store(tmp_path)
    with pytest.warns(RuntimeWarning) as told:
        latest = store.latest("h")
    messages = [str(w.message) for w in told]
    assert any("trials.jsonl: line 2 is not a complete record" in m and "trained again" in m for m in messages)
    assert any("trials.jsonl: its last line (a crash mid-write?) is not a complete record" in m for m in messages)
    assert any("trials.jsonl: line 3 (c__seed0): ultra.map=nan not a finite number" in m for m in messages)
    assert sorted(latest) == ["a__seed0", "c__seed0"]  # b and d have no record: the sweep trains them again
    assert latest["a__seed0"].status == "ok" and latest["c__seed0"].status == "failed"
    assert "non-finite metric in trials.jsonl line 3" in latest["c__seed0"].error


# ------------------------------------------------------------------------------------------------
# Several processes on one results folder: claims
# ------------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_claims_block_live_holders_and_expire_for_dead_ones(tmp_path, monkeypatch):
    from yolo_attn.compare import store as store_mod

    a, b = Store(tmp_path), Store(tmp_path)  # two workers (same pid here; a claim is per Store object)
    assert a.claim("t1", "h") and not b.claim("t1", "h")
    assert set(b.claimed_by_others(["t1", "t2"])) == {"t1"} and a.claimed_by_others(["t1"]) == {}
    a.release("t1")
    assert b.claim("t1", "h")
    b.release("t1")
    a.append({"trial_id": "t1", "model": "m", "model_ref": "m", "seed": 0, "settings_hash": "h", "status": "ok"})
    assert not b.claim("t1", "h", retry_failed=True)  # recorded ok: never claimed again

    claims = tmp_path / "claims"
    now = time.time()
    (claims / "t2.json").write_text(json.dumps({"host": store_mod.HOST, "pid": _dead_pid(), "heartbeat": now}))
    with pytest.warns(RuntimeWarning, match="stale claim on t2"):  # its process is gone (killed run)
        assert b.claim("t2", "h")
    (claims / "t3.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": now}))
    assert not b.claim("t3", "h")  # another machine, heartbeat fresh
    (claims / "t3.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": now - store_mod.STALE_S - 1}))
    with pytest.warns(RuntimeWarning, match="stale claim on t3"):  # heartbeat stopped
        assert b.claim("t3", "h")
    before = json.loads((claims / "t3.json").read_text())["heartbeat"]
    time.sleep(0.01)
    b.heartbeat()
    assert json.loads((claims / "t3.json").read_text())["heartbeat"] > before


def test_claim_with_a_heartbeat_in_the_future_expires_on_this_clock(tmp_path, monkeypatch):
    """Clock skew or a copied folder: a heartbeat ahead of this machine's clock must not hold a trial forever."""
    from yolo_attn.compare import store as store_mod

    clock = [1000.0]
    monkeypatch.setattr(store_mod, "_local_clock", lambda: clock[0])
    path = tmp_path / "claims" / "t1.json"
    path.parent.mkdir(parents=True)
    claim = {"host": "elsewhere", "pid": 4242, "heartbeat": time.time() + 86400}
    path.write_text(json.dumps(claim))
    s = Store(tmp_path)
    assert not s.claim("t1", "h")  # first sight: it might be a live holder on a clock ahead of ours
    text = s.describe_claim("t1", s.read_claim("t1"))
    assert "pid 4242 on elsewhere" in text and "in the future" in text and str(path) in text
    clock[0] += store_mod.STALE_S / 2
    claim["heartbeat"] += store_mod.HEARTBEAT_S  # a live holder rewrites its claim: the watch starts again
    path.write_text(json.dumps(claim))
    assert not s.claim("t1", "h")
    clock[0] += store_mod.STALE_S / 2 + 1
    assert not s.claim("t1", "h")  # refreshed STALE_S/2 ago only
    clock[0] += store_mod.STALE_S / 2
    with pytest.warns(RuntimeWarning, match=r"stale claim on t1 \(.*t1\.json: pid 4242 on elsewhere"):
        assert s.claim("t1", "h")  # unchanged for STALE_S on this process's clock
    assert json.loads(path.read_text())["host"] == store_mod.HOST


def _fake_trial(spec, progress=None):
    """Stands in for training: writes the trial folder like a trial does, fails if anyone else writes there too."""
    tdir = Path(spec.trial_dir)
    tdir.mkdir(parents=True, exist_ok=True)
    with open(tdir / "writers.txt", "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.3)
    writers = (tdir / "writers.txt").read_text().split()
    rec = spec.record(status="ok" if len(writers) == 1 else "failed", started_at=time.time())
    return rec if rec.ok else rec.fail(f"shared trial folder: {writers}")


def _worker(root: str, n: int, go) -> None:
    from yolo_attn.compare import backends, sweep

    backends.run_trial = _fake_trial
    store = Store(root)
    specs = [TrialSpec(trial_id=f"t{i}", model="m", model_ref="m", seed=i, settings_hash="h",
                       trial_dir=str(Path(root) / "trials" / f"t{i}"), data="d", epochs=1, imgsz=64) for i in range(n)]
    go.wait()
    sweep.run_trials(store, specs, "h", RunOptions(), prog=lambda ev: None, log=lambda s: None)


def test_two_sweeps_on_one_folder_split_the_trials(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 6, go)) for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    recs = Store(tmp_path).trial_records()
    assert sorted(r.trial_id for r in recs) == [f"t{i}" for i in range(6)]  # every trial exactly once
    assert all(r.ok for r in recs), [r.error for r in recs]  # no folder shared
    assert len({r.pid for r in recs}) == 2  # both workers trained some
    assert not any((tmp_path / "claims").iterdir())  # every claim released


def test_scoring_refuses_predictions_that_are_not_one_pass_over_the_images(tmp_path):
    """The scored predictions must cover exactly the validation images, each at most max_det boxes."""
    from PIL import Image

    from yolo_attn.compare import trial

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (64, 48)).save(tmp_path / "images" / f"{name}.jpg")
        (tmp_path / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    files = [str(tmp_path / "images" / f"{n}.jpg") for n in ("a", "b")]
    spec = TrialSpec(trial_id="t", model="m", model_ref="m", seed=0, settings_hash="h", trial_dir=str(tmp_path / "t"),
                     data="d", epochs=1, imgsz=64)
    box = np.array([[25.6, 19.2, 38.4, 28.8, 0.9, 0.0]])  # the ground-truth box in pixels (64 x 48 image)

    def ev(preds):
        return trial.Evaluation({"map50": 1.0, "map": 1.0, "precision": 1.0, "recall": 1.0}, preds, files, {0: "a"})

    with pytest.raises(ValueError, match="predictions for 1 images, the validation set has 2 .none for .*b.jpg"):
        trial._score(spec, spec.record(), ev({files[0]: box}))
    with pytest.raises(ValueError, match="more predictions than max_det=300"):
        trial._score(spec, spec.record(), ev({files[0]: np.repeat(box, 301, 0), files[1]: box}))
    rec = spec.record()
    best = box + [0, 0, 0, 0, 0.05, 0]  # scored first: both true boxes come before a's duplicates (AP 1)
    trial._score(spec, rec, ev({files[0]: np.repeat(box, 300, 0), files[1]: best}))
    assert rec.n_detections == 301 and rec.coco["map50"] == pytest.approx(1.0) and rec.n_val_images == 2
    assert rec.predictions_sha256 and (tmp_path / "t" / "eval.npz").is_file()


# ------------------------------------------------------------------------------------------------
# Settings are checked before config.json and the first trial
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train_args, message", [
    ({"lr0": "1e6"}, r"'lr0=1e6' is of invalid type str"),
    ({"lr0": 1e6}, r"'lr0=1000000.0' is an invalid value"),
    ({"lr": 0.1}, r"'lr' is not a valid YOLO argument.*lr0"),
    ({"epochs": 3}, r"set by the sweep itself"),
])
def test_bad_train_args_fail_before_config(tiny, tmp_path, train_args, message):
    with pytest.raises(ValueError, match=message):
        run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=64, train_args=train_args,
                out=str(tmp_path / "o"), progress=False, threads=1)
    assert not (tmp_path / "o" / "config.json").exists() and not (tmp_path / "o" / "trials.jsonl").exists()


@pytest.mark.parametrize("kw, message", [
    ({"epochs": 0}, r"'epochs=0' is an invalid value. 'epochs' must be >= 1"),
    ({"imgsz": 0}, r"'imgsz=0' is an invalid value: image sizes are positive"),
    ({"train_args": {"batch": 0}}, r"'batch=0' is an invalid value: use a positive whole number"),
    ({"train_args": {"batch": -4}}, r"'batch=-4' is an invalid value"),
])
def test_bad_schedule_fails_before_config(tiny, tmp_path, kw, message):
    """Values Ultralytics would fail on per trial (epochs=0) or silently replace (batch=0 -> AutoBatch, imgsz=0 -> 32)."""
    kw = {"epochs": 1, "imgsz": 64, **kw}
    with pytest.raises(ValueError, match=message):
        run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, out=str(tmp_path / "o"), progress=False, threads=1,
                **kw)
    assert not (tmp_path / "o" / "config.json").exists()


def test_cli_batch_zero_is_refused_not_ignored(tmp_path, capsys):
    from yolo_attn.cli import main

    assert main(["compare", "--batch", "0", "--epochs", "1", "--seeds", "1", "--out", str(tmp_path / "o")]) == 1
    assert "yolo-attn compare: error: 'batch=0' is an invalid value" in capsys.readouterr().err
    assert not (tmp_path / "o" / "config.json").exists()
    assert main(["train", "model=yolov5n.yaml", "batch=0"]) == 1
    assert "yolo-attn train: error: 'batch=0' is an invalid value" in capsys.readouterr().err


def test_image_size_is_recorded_as_ultralytics_trains_it(tiny, tmp_path, capsys):
    s = run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=63, out=str(tmp_path / "o"),
                threads=1, max_trials=0, n_boot=50)
    assert "WARNING: --imgsz 63 is not a multiple of the models' largest stride: Ultralytics trains at 64" in (
        capsys.readouterr().err)
    assert json.loads((tmp_path / "o" / "config.json").read_text())["imgsz"] == 64 and not s.complete
    from yolo_attn._ultralytics import train_imgsz
    from yolo_attn.models import build

    p6 = build("yolov5n6.yaml", 2)
    assert [train_imgsz(v, p6) for v in (1, 63, 64, 65, 128)] == [64, 64, 64, 128, 128]


def test_bad_pretrained_and_model_fail_before_config(tiny, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    kw = dict(data=str(tiny), seeds=1, epochs=1, imgsz=64, progress=False, threads=1)
    with pytest.raises(ValueError, match="junk.pt"):
        run_compare(models=["yolov5n.yaml"], pretrained=str(junk), out=str(tmp_path / "a"), **kw)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        run_compare(models=["yolov5n.yaml"], pretrained=str(tmp_path / "missing.pt"), out=str(tmp_path / "b"), **kw)
    bad = tmp_path / "bad.yaml"
    bad.write_text("nc: 2\nbackbone: [[-1, 1, Conv, [16, 3, 2]]]\nhead: [[[5, 9], 1, Detect, [nc]]]\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        run_compare(models=["yolov5n.yaml", str(bad)], out=str(tmp_path / "c"), **kw)
    assert not any((tmp_path / d / "config.json").exists() for d in "abc")


def test_cli_train_arg_is_typed_and_checked(tmp_path, capsys):
    from yolo_attn.cli import build_parser, main
    from yolo_attn.commands.compare import _train_args
    from yolo_attn.compare.trial import DEFAULT_TRAIN_ARGS

    assert _train_args(["lr0=1e-3", "cos_lr=True", "fraction=0.5"]) == {"lr0": 0.001, "cos_lr": True, "fraction": 0.5}
    assert main(["compare", "--train-arg", "lr0=1e6", "--out", str(tmp_path / "o")]) == 1
    assert "yolo-attn compare: error: --train-arg: 'lr0=1000000.0' is an invalid value" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["compare"].format_help().split())
    assert f"batch size (default {DEFAULT_TRAIN_ARGS['batch']})" in help_text and DEFAULT_TRAIN_ARGS["batch"] == 8


def test_pretrained_sweep_records_the_transfer_summary(tiny, tmp_path):
    from ultralytics import YOLO

    stock = tmp_path / "stock.pt"
    YOLO("yolov5n.yaml").save(stock)
    s = run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=64, pretrained=str(stock), n_boot=50,
                out=str(tmp_path / "o"), progress=False, threads=1)
    (rec,) = Store(tmp_path / "o").trial_records()
    assert rec.ok, rec.error
    assert rec.transfer.startswith("Transferred ") and "stock.pt" in rec.transfer and len(rec.transfer) < 300
    assert s.n_ok == 1


def test_width_control_matches_parameter_count(tmp_path, se_yaml):
    from yolo_attn.compare.sweep import width_control
    from yolo_attn.models import model_cost

    # an attention model ~20% larger than yolov5n (channel counts are multiples of 8, so the parameter
    # count moves in steps of a few percent: a +0.4% model like SE before SPPF gets width 0.25 itself)
    target = model_cost(str(se_yaml), 2)[0] + 500_000
    path, w, n = width_control("yolov5n.yaml", target, 2, tmp_path)
    d = yaml.safe_load(path.read_text())
    assert "scales" not in d and d["width_multiple"] == w > 0.25 and d["depth_multiple"] == 0.33
    assert model_cost(str(path), 2)[0] == n
    assert abs(n - target) / target < 0.05


@pytest.mark.ray
@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None,
                    reason="ray not installed: CI runs the -m ray tests after installing the ray extra")
def test_ray_backend_writes_the_same_store(tiny, tmp_path):
    s = run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=2, epochs=1, imgsz=64, n_boot=50, out=str(tmp_path / "r"),
                backend="ray", progress=False, cpus_per_trial=1)
    recs = Store(tmp_path / "r").trial_records()
    assert sorted(r.trial_id for r in recs) == ["yolov5n__seed0", "yolov5n__seed1"]
    assert all(r.ok for r in recs), [r.error for r in recs]
    # each task trains with the one CPU Ray reserved for it (no oversubscription), under the same OpenMP policy
    assert all(r.threads == r.environment["threads"] == 1 for r in recs)
    from yolo_attn._threads import SPIN_BUSY, SPIN_IDLE

    allowed = {os.environ["GOMP_SPINCOUNT"]} if "GOMP_SPINCOUNT" in os.environ else {str(SPIN_BUSY), str(SPIN_IDLE)}
    assert all(r.environment["openmp"].get("GOMP_SPINCOUNT") in allowed for r in recs)
    assert all((tmp_path / "r" / r.eval).is_file() for r in recs)
    assert s.n_ok == 2 and (tmp_path / "r" / "summary.md").is_file()


def test_sweep_settings_accept_yolo_attn_own_keys():
    """The start options travel in the training arguments (attn_init, freeze, attn_lr): the settings check must not
    refuse yolo_attn's own training keys while still refusing unknown ones."""
    from yolo_attn.compare.sweep import check_sweep_settings

    got = check_sweep_settings({"attn_init": "identity", "lr0": 0.01}, None, [], 4)
    assert got["attn_init"] == "identity" and got["lr0"] == 0.01
    with pytest.raises(ValueError, match="lr00"):
        check_sweep_settings({"lr00": 0.01}, None, [], 4)


# ------------------------------------------------------------------------------------------------
# Trials side by side: worker processes
# ------------------------------------------------------------------------------------------------
def test_one_and_two_workers_give_the_same_results(tiny, se_yaml, tmp_path):
    """Every trial trains with the sweep's thread count, so how many run at once changes no number; each is
    scored from one validation pass held in memory (no second validation folder, no prediction files)."""
    kw = {**_kw(tiny, se_yaml), "models": ["yolov5n.yaml"]}  # 2 seeds
    s1 = run_compare(out=str(tmp_path / "one"), workers=1, progress=False, **kw)
    s2 = run_compare(out=str(tmp_path / "two"), workers=2, progress=False, **kw)
    assert s1.n_ok == s2.n_ok == 2 and _comparable(s1) == _comparable(s2)
    one = {r.trial_id: r for r in Store(tmp_path / "one").trial_records()}
    two = {r.trial_id: r for r in Store(tmp_path / "two").trial_records()}
    assert sorted(one) == sorted(two) and len(one) == 2
    for tid, r in two.items():
        for key in ("predictions_sha256", "ultra", "coco", "train_loss", "n_detections", "curve"):
            assert getattr(r, key) == getattr(one[tid], key), (tid, key)
        assert r.threads == r.environment["threads"] == 1
        assert set(r.stage_s) == {"build", "train", "eval", "score", "other"} and r.stage_s["train"] > 0
        tdir = tmp_path / "two" / "trials" / tid
        assert not (tdir / "val").exists() and not list(tdir.rglob("labels/*.txt"))
        assert abs(r.ultra["map"] - r.coco["map"]) < 0.02  # the two columns score the same predictions
    assert not any((tmp_path / "two" / "claims").iterdir())


def _specs(tiny, tmp_path, n: int, epochs: int = 2) -> list[TrialSpec]:
    from yolo_attn.compare.trial import sweep_train_args
    from yolo_attn.models import resolve_model

    names = yaml.safe_load(Path(tiny).read_text())["names"]
    return [TrialSpec(trial_id=f"t{i}", model="yolov5n", model_ref=resolve_model("yolov5n.yaml"), seed=i,
                      settings_hash="h", trial_dir=str(tmp_path / "trials" / f"t{i}"), data=str(tiny), epochs=epochs,
                      imgsz=64, train_args=sweep_train_args(None, None), nc=len(names), threads=1) for i in range(n)]


def test_a_worker_that_dies_has_its_trial_run_again(tiny, tmp_path):
    """t0's worker is killed once (the trial runs again in a new worker and succeeds); t1's every time (after
    its second death it is recorded as failed, and the sweep goes on)."""
    from yolo_attn.compare.workers import WorkerPlan, run_workers

    workers, events, records = {}, [], {}

    def progress(ev):
        events.append(ev)
        if ev["event"] == "trial_start":
            workers[ev["trial_id"]] = ev["worker"]
        elif ev["event"] == "epoch" and ev["epoch"] == 1:
            deaths = sum(e["event"] == "worker_died" and e["trial_id"] == ev["trial_id"] for e in events)
            if ev["trial_id"] == "t1" or deaths == 0:
                os.kill(workers[ev["trial_id"]], signal.SIGKILL)

    run_workers(_specs(tiny, tmp_path, 2), lambda spec, rec: records.update({spec.trial_id: rec}),
                WorkerPlan(workers=2, threads=1), progress=progress)
    died = [e for e in events if e["event"] == "worker_died"]
    assert [(e["trial_id"], e["retry"]) for e in died if e["trial_id"] == "t0"] == [("t0", True)]
    assert [(e["trial_id"], e["retry"]) for e in died if e["trial_id"] == "t1"] == [("t1", True), ("t1", False)]
    assert all("SIGKILL" in e["reason"] for e in died)
    assert records["t0"].ok and records["t0"].epochs_done == 2, records["t0"].error
    assert not records["t1"].ok and "died 2 times" in records["t1"].error
    starts = [e["worker"] for e in events if e["event"] == "trial_start" and e["trial_id"] == "t0"]
    assert len(starts) == 2 and starts[0] != starts[1]  # run again in a fresh process


def test_ctrl_c_stops_every_worker_and_leaves_no_claim(tiny, se_yaml, tmp_path):
    out = tmp_path / "o"
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        # 30 epochs, interrupted in the first: the trials are far from done when Ctrl-C comes, however loaded the machine
        p = subprocess.Popen(_cli(*_args(tiny, se_yaml), "--epochs", "30", "--workers", "2", "--out", str(out)),
                             cwd=tmp_path, stdout=log, stderr=log, env={**_env(), "PYTHONUNBUFFERED": "1"},
                             # as from a terminal: Ctrl-C not ignored (a child inherits an ignored SIGINT, and a shell
                             # without job control ignores it in every background job, e.g. a CI runner's `cmd &`)
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 600
        while time.time() < deadline and p.poll() is None and log_path.read_text().count(" epoch 1/30") < 2:
            time.sleep(0.3)
        text = log_path.read_text()
        pids = [int(x) for x in __import__("re").findall(r"starting \(worker (\d+)\)", text)]
        assert len(pids) == 2 and len(list((out / "claims").iterdir())) == 2, text[-3000:]
        p.send_signal(signal.SIGINT)
        p.wait(60)
    assert p.returncode != 0
    for pid in pids:  # the workers were stopped, not left training
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any((out / "claims").iterdir())  # no claim left behind
    assert not Store(out).trial_records()


def test_workers_started_early_run_the_trials_and_unused_ones_end(tiny, tmp_path):
    """A WorkerPool's processes (started while the sweep checks its settings) are the ones that train; a worker the
    run does not need, and every worker of a pool that never runs, exits."""
    from yolo_attn.compare.workers import WorkerPlan, WorkerPool, run_workers

    pool = WorkerPool(WorkerPlan(workers=2, threads=1))
    early = {w.pid for w in pool.idle}
    starts, records = [], {}
    run_workers(_specs(tiny, tmp_path, 1, epochs=1), lambda spec, rec: records.update({spec.trial_id: rec}),
                WorkerPlan(workers=2, threads=1), progress=lambda ev: starts.append(ev), started=pool)
    assert records["t0"].ok, records["t0"].error
    assert [e["worker"] for e in starts if e["event"] == "trial_start"][0] in early  # no new process was started
    assert not pool.idle
    unused = WorkerPool(WorkerPlan(workers=1, threads=1))
    pids = early | {w.pid for w in unused.idle}
    unused.stop()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and has ended
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sweep_refused_after_its_workers_started_leaves_no_worker(tiny, tmp_path):
    def my_workers() -> list[int]:
        found = []
        for d in Path("/proc").iterdir():
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"yolo_attn.compare.workers" in cmd:
                found.append(int(d.name))
        return found

    with pytest.raises(Exception, match="no-such-model"):
        run_compare(data=str(tiny), models=["yolov5n.yaml", "no-such-model.yaml"], seeds=2, epochs=1, imgsz=64,
                out=str(tmp_path / "o"), progress=False, workers=2)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in my_workers()):
        time.sleep(0.2)
    assert not my_workers()


def test_sweep_config_reads_files_of_older_versions_and_names_a_damaged_one(tmp_path):
    """A config.json written before the informative keys existed reads with fallbacks; the settings hash of a new
    sweep is computed from the same settings as before, so existing folders keep their trials."""
    from yolo_attn.compare.store import stable_hash

    old = {"settings_hash": "abc", "data": {"train": {"images": 8}}, "epochs": 2, "imgsz": 64, "train_args": {"lr0": 0.02},
           "pretrained": None, "weights": "best", "models": [{"name": "m", "hash": "1"}], "seeds": [0, 1],
           "baseline": "m", "_data_yaml": "/d/data.yaml", "_threads": 1, "control_width": 0.5}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = Store(tmp_path).read_config()
    assert (cfg.data, cfg.data_yaml, cfg.weights, cfg.planned) == ("/d/data.yaml", "/d/data.yaml", "best", [0, 1])
    assert [m.to_dict() for m in cfg.specs] == old["models"]  # the stored entries, as model specs
    assert cfg.extra == {"control_width": 0.5} and cfg.to_json()["control_width"] == 0.5  # unknown keys kept
    assert cfg.settings() == {k: old[k] for k in ("data", "epochs", "imgsz", "train_args", "pretrained", "weights")}
    assert stable_hash(dataclasses.replace(cfg, eval_split="test").settings()) != stable_hash(cfg.settings())
    (tmp_path / "config.json").write_text('{"epochs": 2')
    with pytest.raises(ValueError, match="config.json: not readable as JSON"):
        Store(tmp_path).read_config()
    (tmp_path / "config.json").write_text('{"epochs": 2}')
    with pytest.raises(ValueError, match="config.json: not a sweep's config.json .no settings_hash, models, seeds"):
        Store(tmp_path).read_config()


def test_one_lookup_finds_every_kind_of_model_reference(tmp_path, monkeypatch):
    """resolve_model (what to build) and materialize (the text the sweep keeps) go through find_model_yaml: a file,
    a shipped config under its scaled name, a scale-free file beside a scaled reference, an Ultralytics config."""
    from yolo_attn.models import find_model_yaml, materialize, resolve_model
    from yolo_attn.configs import config_dir

    monkeypatch.chdir(tmp_path)
    shipped = resolve_model("yolov5n-se-backbone-end.yaml")
    assert shipped == str(config_dir() / "yolov5n-se-backbone-end.yaml")
    assert find_model_yaml(shipped)[1] == config_dir() / "yolov5-se-backbone-end.yaml"
    kept = Path(materialize(shipped, tmp_path / "m"))
    assert kept.name == "yolov5n-se-backbone-end.yaml"
    assert kept.read_text() == (config_dir() / "yolov5-se-backbone-end.yaml").read_text()
    mine = tmp_path / "elsewhere" / "yolov5-mine.yaml"
    mine.parent.mkdir()
    mine.write_text((config_dir() / "yolov5-se-backbone-end.yaml").read_text() + "# mine\n")
    scaled = resolve_model(str(mine.with_name("yolov5s-mine.yaml")))  # built at scale s from the scale-free file
    assert Path(scaled).name == "yolov5s-mine.yaml" and materialize(scaled, tmp_path / "m2").endswith("yolov5s-mine.yaml")
    assert (tmp_path / "m2" / "yolov5s-mine.yaml").read_text().endswith("# mine\n")
    name, text_file = find_model_yaml("yolov5n.yaml")  # Ultralytics' own config
    assert name == "yolov5n.yaml" and text_file.name == "yolov5.yaml" and "ultralytics" in str(text_file)
    assert resolve_model(str(mine)) == str(mine.resolve())
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model("yolov5n-no-such-layer.yaml")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        resolve_model("missing.pt")


# ------------------------------------------------------------------------------------------------ the typed request
def _command_request(*argv):
    import argparse

    from yolo_attn.commands import compare as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.read_request(parser.parse_args([str(a) for a in argv]))


def test_the_command_line_builds_one_typed_request_and_trust_is_a_run_option():
    """`--trust` (or `--train-arg trust=True`) is how checkpoints are read, not what is computed: it is a run option,
    never in the request's training arguments (which are hashed); the start flags go to the request's Start."""
    from yolo_attn.compare.request import Start

    request, run, report = _command_request("--trust", "--batch", "4", "--freeze", "0,1", "--attn-lr", "2",
                                            "--train-arg", "lr0=0.02", "--seeds", "2", "--workers", "0", "--boot", "99")
    assert run.trust and run.workers == 0 and report.n_boot == 99
    assert request.train_args == {"lr0": 0.02, "batch": 4} and request.seeds == 2 and request.epochs == 6
    assert request.start == Start(None, None, (0, 1), 2.0)
    assert request.sweep_args() == {"lr0": 0.02, "batch": 4, "freeze": [0, 1], "attn_lr": 2.0}  # as config.json keeps them
    request, run, _ = _command_request("--train-arg", "trust=True", "--train-arg", "attn_init=paper")
    assert run.trust and request.train_args == {} and request.start.attn_init == "paper"
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.epochs = 3


def test_request_types_refuse_what_does_not_belong_to_them():
    from yolo_attn.compare.request import ReportOptions, RunOptions, Start, SweepRequest

    with pytest.raises(ValueError, match="trust is not a training setting"):
        SweepRequest.build({"trust": True})
    with pytest.raises(ValueError, match="not a start option: lr0"):
        Start.read({"lr0": 0.1})
    with pytest.raises(ValueError, match="unknown backend 'slurm'"):
        RunOptions(backend="slurm")
    with pytest.raises(ValueError, match="--effect must be positive"):
        ReportOptions(effect=0)
    assert SweepRequest.build({"attn_init": "identity", "lr0": 0.1}, "w.pt", [2, 0]).start == Start("w.pt", "identity")
    assert SweepRequest.build(seeds=[2, 0]).seeds == (2, 0) and ReportOptions().tolerance > 0


def test_model_specs_read_and_write_config_json_entries():
    """A spec of config.json's `_models` reads into a ModelSpec and writes back as it was (keys of other versions
    kept); its YAML options are a ModelOptions, refused with the model's name when wrong."""
    from yolo_attn.compare.request import ModelSpec

    d = {"name": "se", "ref": "/m/se.yaml", "hash": "abc", "options": {"load": "names"}, "params": 10,
         "gflops_640": 1.5, "future_key": [1]}
    spec = ModelSpec.from_dict(d)
    assert spec.to_dict() == d and spec.load_mode == "names" and spec.stored() == {"name": "se", "hash": "abc"}
    ctrl = ModelSpec("c", "/m/c.yaml", "h", control=True, width_multiple=0.3)
    assert ModelSpec.from_dict(ctrl.to_dict()) == ctrl and ctrl.stored() == {"name": "c", "hash": "h", "control": True}
    with pytest.raises(ValueError, match="se: yolo_attn.load"):
        ModelSpec.from_dict({**d, "options": {"load": "bytes"}})


def test_a_folder_written_with_trust_by_release_a007346_resumes_under_its_hash(tmp_path):
    """tests/data/sweep_trust_a007346/config.json: `yolo-attn compare --models yolov5n.yaml --seeds 2 --epochs 1 --trust
    --max-trials 0` as commit a007346 wrote it, with `trust` in the hashed training arguments. This version keeps
    trust out of the settings, yet resumes that folder under its hash, with no 'different settings' refusal, here
    even without --trust (which a007346 itself would refuse), and gives its trials no trust it was not asked for."""
    import shutil

    from conftest import REPO

    fixture = REPO / "tests" / "data" / "sweep_trust_a007346" / "config.json"
    stored = json.loads(fixture.read_text())
    assert stored["train_args"]["trust"] is True and stored["settings_hash"] == "1d652a901192"
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(fixture, out / "config.json")
    s = run_compare(models=["yolov5n.yaml"], seeds=2, epochs=1, max_trials=0, progress=False, workers=0, threads=1,
                    out=str(out))
    again = json.loads((out / "config.json").read_text())
    assert again["settings_hash"] == "1d652a901192" and again["train_args"] == stored["train_args"]
    assert s.n_trials == 2 and not s.complete  # resumed: its two trials still to train
