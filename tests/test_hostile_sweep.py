"""Hostile or careless sweeps (issue 37, the sweep's side): every flag checked before anything is written or started,
no more worker processes than the trials, cores and memory allow, trial folders that never overwrite each other,
one-line messages instead of tracebacks, and an exit status that says when a trial failed.

Most cases are refused before any training; the few that need a trial train the tiny sweep of test_compare.py.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

from yolo_attn.compare.contract import SweepConfig, TrialSpec
from yolo_attn.compare.store import Store

from conftest import cli_output, fake_summary, tiny_sweep_data

SAFE = re.compile(r"[A-Za-z0-9_.-]+")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_sweep_data(tmp_path_factory.mktemp("data"))


def _sweep_argv(tiny, out, *extra) -> list[str]:
    return ["compare", "--data", str(tiny), "--models", "yolov5n.yaml", "--seeds", "1", "--epochs", "1", "--imgsz", "64",
            "--boot", "50", "--threads", "1", "--out", str(out), *extra]


# ------------------------------------------------------------------------------------------------
# Flags refused before anything is written (the results folder is not even made)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--seed-list", "0", "0"], r"--seed-list: seed 0 given more than once"),
    (["--seed-list", "-1"], r"--seed-list -1: a seed is a whole number from 0 to 4294967295"),
    (["--seed-list", "4294967296"], r"--seed-list 4294967296: a seed is a whole number"),
    (["--seeds", "0"], r"--seeds must be from 1 to"),
    (["--threads", "-1"], r"--threads must be 1 or more"),
    (["--threads", "0"], r"--threads must be 1 or more"),
    (["--device", "bogus"], r"--device bogus: not a device Ultralytics can train on here"),
    (["--device", "0,1", "--workers", "2"], r"--device 0,1 trains each trial on 2 GPUs at once \(DDP\); --workers 2"),
    (["--device", "0,1", "--batch", "9"], r"--batch 9 with --device 0,1: each of the 2 GPUs trains on batch/2"),
    (["--max-trials", "-1"], r"--max-trials must be 0 or more"),
    (["--tolerance", "-1"], r"--tolerance must be a number from 0 to 1"),
    (["--tolerance", "nan"], r"--tolerance must be a number from 0 to 1"),
    (["--workers", "-2"], r"--workers must be 0 \(in this process\) or more"),
    (["--batch", "-1"], r"--batch -1: Ultralytics' AutoBatch would pick the batch size"),
    (["--train-arg", "batch=0.5"], r"--batch 0.5: Ultralytics' AutoBatch"),
    (["--boot", "1000000000"], r"--boot 1000000000: at most 20000 bootstrap replicates"),
])
def test_bad_flags_are_refused_before_anything_is_written(tiny, tmp_path, capsys, flags, message):
    """--max-trials 0: where the flag passed unseen before, the sweep trained nothing and still exited with no word."""
    rc, text = cli_output(capsys, *_sweep_argv(tiny, tmp_path / "o", "--max-trials", "0", *flags))
    assert rc == 1 and re.search(r"yolo-attn compare: error: " + message, text), text
    assert "Traceback" not in text and not (tmp_path / "o").exists()


def test_seed_lists_in_the_api_are_checked_as_on_the_command_line(tmp_path):
    from conftest import run_compare

    with pytest.raises(ValueError, match="seed 3 given more than once"):
        run_compare(models=["yolov5n.yaml"], seeds=[3, 1, 3], out=str(tmp_path / "o"), progress=False)
    with pytest.raises(ValueError, match="--seed-list: need at least one seed"):
        run_compare(models=["yolov5n.yaml"], seeds=[], out=str(tmp_path / "o"), progress=False)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# Worker processes: capped by the trials, the usable cores and the memory, started after the checks
# ------------------------------------------------------------------------------------------------
def test_an_explicit_worker_count_is_capped_by_trials_cores_and_memory(monkeypatch):
    from yolo_attn.compare import workers

    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    monkeypatch.setattr(workers, "available_memory", lambda: 64 * 2**30)
    plan = workers.plan_workers(1, None, n_trials=2, workers=1000)  # the case: ~270 processes on 2 cores
    assert plan.workers == 2 and plan.capped.startswith("--workers 1000 capped to 2 (2 trial(s) to run -> 2; 2 usable")
    assert "\n" not in plan.capped
    assert workers.plan_workers(1, None, n_trials=50, workers=1000).workers == 2  # the cores
    assert workers.plan_workers(2, None, n_trials=50, workers=1000).workers == 1  # 2 cores / 2 threads per trial
    monkeypatch.setattr(workers, "available_memory", lambda: int(3.2 * 2**30))
    monkeypatch.setattr(workers, "usable_cpus", lambda: 64)
    plan = workers.plan_workers(1, None, n_trials=50, workers=1000)
    assert plan.workers == 2 and "GiB available / 1.5 GiB per trial -> 2" in plan.capped
    assert workers.plan_workers(1, None, n_trials=50, workers=2).capped is None  # within every limit: as asked
    assert workers.plan_workers(1, None, n_trials=50, workers=0).workers == 0  # in this process


def test_a_capped_worker_count_is_said_even_with_quiet(monkeypatch, capsys):
    from yolo_attn.compare import sweep, workers
    from yolo_attn.compare.request import RunOptions

    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    said = []
    plan = sweep._plan(RunOptions(workers=1000), 1, 2, log=lambda s: None, warn=said.append)  # --quiet: log says nothing
    assert plan.workers == 2 and said == [plan.capped]


def test_no_worker_process_starts_before_the_checks_pass(tiny, tmp_path, monkeypatch):
    """A sweep refused by its checks (here a model that does not exist) started 1000 workers first."""
    from yolo_attn.compare import workers
    from conftest import run_compare

    started = []
    monkeypatch.setattr(workers._Worker, "__init__", lambda self, *a, **k: started.append(a))
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        run_compare(data=str(tiny), models=["yolov5n.yaml", "no-such-model.yaml"], seeds=2, epochs=1, imgsz=64,
                out=str(tmp_path / "o"), progress=False, workers=1000, threads=1)
    assert not started


# ------------------------------------------------------------------------------------------------
# Trial names and folders
# ------------------------------------------------------------------------------------------------
def test_trial_names_are_one_to_one_and_safe_for_folders():
    from yolo_attn.compare.store import trial_id, trial_name

    names = ["yolov5n-att-é", "yolov5n-att-ü", "yolov5n-att-_", "a|b", "a\nb", "a b", "a_b"]
    ids = [trial_id(n, 0) for n in names]
    assert len(set(ids)) == len(ids) and all(SAFE.fullmatch(i) for i in ids)
    assert trial_name("yolov5n-se") == "yolov5n-se"  # safe names as before: existing sweeps keep their trial ids
    assert trial_id("yolov5n-att-é", 0) != trial_id("yolov5n-att-ü", 0)


def _model_file(folder: Path, name: str) -> Path:
    from yolo_attn.models import find_model_yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(find_model_yaml("yolov5n.yaml")[1].read_text())
    return path


def test_models_sharing_a_folder_name_are_refused_naming_both_files(tiny, tmp_path):
    from conftest import run_compare

    a, b = _model_file(tmp_path / "one", "yolov5n-mine"), _model_file(tmp_path / "two", "yolov5n-mine")
    kw = dict(data=str(tiny), seeds=1, epochs=1, imgsz=64, progress=False, threads=1)
    with pytest.raises(ValueError, match=re.escape(f"models {a} and {b} have the same name")):
        run_compare(models=[str(a), str(b)], out=str(tmp_path / "o"), **kw)
    c = _model_file(tmp_path / "three", "YOLOv5n-Mine")  # one folder on a case-insensitive file system
    with pytest.raises(ValueError, match=re.escape(f"models {a} and {c} have names that share a folder name")):
        run_compare(models=[str(a), str(c)], out=str(tmp_path / "o"), **kw)
    assert not (tmp_path / "o" / "config.json").exists() and not (tmp_path / "o" / "models").exists()


def test_a_model_name_too_long_for_a_file_name_is_refused_up_front(tiny, tmp_path, capsys):
    """248 characters: the trial's claim file (name + '__seed0.json') would exceed the file system's 255."""
    long = _model_file(tmp_path / "m", "yolov5n-" + "x" * 240)
    rc, text = cli_output(capsys, *_sweep_argv(tiny, tmp_path / "o", "--models", long, "--max-trials", "0"))
    assert rc == 1 and f"yolo-attn compare: error: model {long}: its name is 248 characters, too long" in text, text
    assert "Traceback" not in text and not (tmp_path / "o" / "config.json").exists()


def _config(shash: str, names: list[str], seeds=(0,)) -> SweepConfig:
    return SweepConfig(settings_hash=shash, data_fingerprint={}, epochs=1, imgsz=64, models=[{"name": n} for n in names],
                       seeds=list(seeds), baseline=names[0])


def _specs(store: Store, shash: str, names: list[str]):
    from yolo_attn.compare.request import ModelSpec, RunOptions
    from yolo_attn.compare.sweep import Resolved, _trial_specs

    specs = [ModelSpec(n, f"/m/{n}.yaml") for n in names]
    res = Resolved(seeds=[0], epochs=1, threads=1, specs=specs, data_yaml=Path("/d/data.yaml"), names=["a", "b"])
    return _trial_specs(store, _config(shash, names), res, RunOptions())


def _old_record(store: Store, tid: str, name: str, shash: str) -> None:
    """A record as the current release writes it: no trial_dir, its files in trials/<trial id>/."""
    (store.root / "trials" / tid).mkdir(parents=True)
    (store.root / "trials" / tid / "eval.npz").write_bytes(b"old")
    store.append({"trial_id": tid, "model": name, "model_ref": f"/m/{name}.yaml", "seed": 0, "settings_hash": shash,
                  "status": "ok", "ultra": {"map": 0.1}, "coco": {"map": 0.1}, "eval": f"trials/{tid}/eval.npz",
                  "run_dir": str(store.root / "trials" / tid / "train")})


def test_a_folder_of_the_current_release_resumes_and_changed_settings_train_beside_it(tmp_path):
    """Old trial ids (a non-ASCII name written without its hash) are still found; --allow-changes trains new settings
    into folders of their own, and switching back pairs the old records with their own files."""
    store = Store(tmp_path)
    names = ["yolov5n", "yolov5n-att-é"]
    _old_record(store, "yolov5n__seed0", "yolov5n", "G")
    _old_record(store, "yolov5n-att-___seed0", "yolov5n-att-é", "G")
    all_trials, todo = _specs(store, "G", names)  # resumed with the settings it was written with: nothing to train
    assert all_trials == ["yolov5n__seed0", "yolov5n-att-___seed0"] and todo == []
    _, todo = _specs(store, "H", names)  # --allow-changes: new folders, the old ones untouched
    assert [Path(s.trial_dir).name for s in todo] == ["yolov5n__seed0-H", todo[1].trial_id]
    assert todo[1].trial_id != "yolov5n-att-___seed0" and SAFE.fullmatch(todo[1].trial_id)
    for spec in todo:  # the new settings' trials are recorded in their folders
        store.append(spec.record(status="ok", ultra={"map": 0.2}, coco={"map": 0.2}))
    assert {r.trial_dir for r in store.trial_records("H")} == {f"trials/{Path(s.trial_dir).name}" for s in todo}
    _, todo = _specs(store, "G", names)  # switching back: the old records count, with their own files
    assert todo == [] and (tmp_path / "trials" / "yolov5n__seed0" / "eval.npz").read_bytes() == b"old"


def test_a_trial_folder_carries_its_settings_and_is_never_trained_over(tmp_path):
    from yolo_attn.compare.store import mark_trial_folder

    store = Store(tmp_path)
    folder = tmp_path / "trials" / "m__seed0"
    mark_trial_folder(folder, "m__seed0", "G")
    assert json.loads((folder / "settings.json").read_text()) == {"trial_id": "m__seed0", "settings_hash": "G"}
    assert store.trial_folder("m__seed0", "G", []) == folder
    assert store.trial_folder("m__seed0", "H", []) == folder.with_name("m__seed0-H")  # no record needed: the file says
    with pytest.raises(ValueError, match=r"m__seed0 holds a trial of other settings .*settings.json: G.*not overwritten"):
        mark_trial_folder(folder, "m__seed0", "H")
    mark_trial_folder(folder, "m__seed0", "G")  # the same settings again (--retry-failed): allowed


def test_allow_changes_trains_beside_the_old_trials_and_keeps_their_files(tiny, tmp_path):
    """End to end: a finished trial's folder (weights, predictions, evaluation arrays) is not retrained over when the
    settings change, and its record still points to its own files."""
    import hashlib

    from conftest import run_compare

    kw = dict(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=64, n_boot=50, out=str(tmp_path / "o"),
              progress=False, threads=1, workers=0)
    run_compare(**kw)
    store = Store(tmp_path / "o")
    (old,) = store.trial_records()
    files = sorted(p for p in (tmp_path / "o" / old.trial_dir).rglob("*") if p.is_file())
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    run_compare(**{**kw, "train_args": {"lr0": 0.0123}}, allow_changes=True)
    new = next(r for r in store.trial_records() if r.settings_hash != old.settings_hash)
    assert new.ok and new.trial_dir == f"{old.trial_dir}-{new.settings_hash}" and new.eval.startswith(new.trial_dir)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == digest


# ------------------------------------------------------------------------------------------------
# Messages instead of tracebacks; the exit status
# ------------------------------------------------------------------------------------------------
def _unwritable(tmp_path) -> Path:
    """A folder where nothing can be written, for root too (/sys)."""
    import os

    if os.geteuid() == 0:
        return Path("/sys/yolo-attn-test-out")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    return tmp_path / "ro" / "out"


def test_a_read_only_out_is_refused_in_one_line(tiny, tmp_path, capsys):
    out = _unwritable(tmp_path)
    try:
        rc, text = cli_output(capsys, *_sweep_argv(tiny, out))
    except OSError as exc:
        pytest.fail(f"traceback instead of a message: {exc!r}")
    assert rc == 1 and f"yolo-attn compare: error: --out {out}: cannot write the results there" in text, text


def test_a_full_disk_is_said_in_one_line(tiny, tmp_path, capsys, monkeypatch):
    from yolo_attn.compare import sweep

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sweep, "atomic_write", full)
    try:
        rc, text = cli_output(capsys, *_sweep_argv(tiny, tmp_path / "o"))
    except OSError as exc:
        pytest.fail(f"traceback instead of a message: {exc!r}")
    assert rc == 1, text
    assert f"yolo-attn compare: error: No space left on device ({tmp_path / 'o' / 'data_check.json'})" in text
    assert "rerun the same command to resume" in text and "Traceback" not in text


def test_ctrl_c_is_said_in_one_line(tiny, tmp_path, capsys, monkeypatch):
    from yolo_attn.compare import sweep

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_checked_data", interrupted)
    try:
        rc, text = cli_output(capsys, *_sweep_argv(tiny, tmp_path / "o"))
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended the command with a traceback")
    assert rc == 130 and f"yolo-attn compare: interrupted (Ctrl-C); the trials finished so far are recorded in " \
                          f"{tmp_path / 'o'}: rerun the same command with --out {tmp_path / 'o'} to resume" in text


def test_a_failed_trial_or_baseline_makes_the_exit_status_1(tmp_path, capsys):
    from yolo_attn.commands.compare import _exit_status

    maps = {"base": [0.30, 0.32], "se": [0.31, 0.33]}
    ok = fake_summary(tmp_path, "base", maps, [0, 1], 1)
    assert _exit_status(ok) == 0
    one_failed = fake_summary(tmp_path, "base", maps, [0, 1], 1)
    one_failed.row("se").n_failed = 1
    assert _exit_status(one_failed) == 1 and "1 trial(s) failed" in capsys.readouterr().err
    no_base = fake_summary(tmp_path, "base", maps, [0, 1], 1)
    no_base.row("base").n_ok, no_base.row("base").n_failed = 0, 2
    assert _exit_status(no_base) == 1
    assert "the baseline base has no finished trial: no model was compared with it" in capsys.readouterr().err


def test_a_sweep_whose_baseline_failed_exits_1(tiny, tmp_path, capsys, monkeypatch):
    """The issue's case end to end: the other model trained, the baseline failed, nothing was compared."""
    from yolo_attn.compare import backends

    real = backends.run_trial
    monkeypatch.setattr(backends, "run_trial", lambda spec, progress=None: (
        spec.record().fail("RuntimeError: boom") if spec.model == "yolov5n" else real(spec, progress=progress)))
    rc, text = cli_output(capsys, *_sweep_argv(tiny, tmp_path / "o", "--models", "yolov5n.yaml", "yolov5n-se-backbone-end.yaml",
                                               "--workers", "0", "--quiet"))
    assert rc == 1 and "the baseline yolov5n has no finished trial" in text and "1 trial(s) failed" in text, text


def test_quiet_keeps_the_image_size_warning(tiny, tmp_path, capsys):
    from conftest import run_compare

    run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=63, out=str(tmp_path / "o"), threads=1,
            max_trials=0, n_boot=50, progress=False)
    assert "WARNING: --imgsz 63 is not a multiple of the models' largest stride: Ultralytics trains at 64" in (
        capsys.readouterr().err)


def test_compare_pretrained_foreign_names_what_compare_offers(tiny, tmp_path):
    from ultralytics import YOLO

    from conftest import run_compare

    foreign = tmp_path / "yolo11n-stock.pt"
    YOLO("yolo11n.yaml").save(foreign)
    with pytest.raises(ValueError) as info:
        run_compare(data=str(tiny), models=["yolov5n.yaml"], seeds=1, epochs=1, imgsz=64, pretrained=str(foreign),
                out=str(tmp_path / "o"), progress=False, threads=1)
    text = str(info.value)
    assert f"--pretrained {foreign}: only " in text and "tensors fit model yolov5n" in text
    assert "--allow-foreign to transfer" not in text and "allow_foreign=True" not in text  # compare has no such flag
    assert "'yolo_attn: {load: names}'" in text and "'yolo-attn transfer --allow-foreign'" in text
    assert not (tmp_path / "o" / "config.json").exists()


def test_pipes_and_newlines_in_model_names_keep_summary_md_tables(tmp_path):
    from yolo_attn.compare.report import markdown

    names = {"base|line": [0.30, 0.32], "se\nnext": [0.31, 0.34], "back\\|slash": [0.29, 0.33]}
    summary = fake_summary(tmp_path, "base|line", names, [0, 1], 1, row_fields=lambda n: {"params": 1000})
    md = markdown(summary)
    unescaped = re.compile(r"(?<!\\)(?:\\\\)*\|")  # a pipe not escaped by a backslash
    for head, n in (("| model | ok |", len(names)), ("| model | seeds |", len(names) - 1)):  # table, verdicts
        rows = md.split(head)[1].split("\n\n")[0].strip("\n").split("\n")
        assert len(rows) == 2 + n, rows  # the header's rest, the rule, one line per model
        counts = {len(unescaped.findall(r)) for r in rows[1:]}
        assert len(counts) == 1, rows  # every line has the columns of the rule
    assert "se next" in md and "base\\|line" in md
