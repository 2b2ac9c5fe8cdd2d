"""The parts of a cluster sweep that need no cluster (issue 42): the hardware record and the report's pairing check,
the version check of a node, a trial folder sent home from a node that does not share the sweep folder."""

from __future__ import annotations

import json
from pathlib import Path

from yolo_attn.compare import cluster, hardware
from yolo_attn.compare.contract import TrialRecord, TrialSpec

CPU_A = {"cpu": "Xeon A", "machine": "x86_64", "gpu": None, "gpu_driver": None, "torch": "2.4", "cuda": None, "host": "a"}


def _rec(model: str, seed: int, hw: dict | None) -> TrialRecord:
    return TrialRecord(trial_id=f"{model}__seed{seed}", model=model, model_ref="m.yaml", seed=seed, settings_hash="h",
                       status="ok", hardware=hw)


def test_hardware_is_recorded_and_old_records_still_read():
    hw = hardware.hardware("cpu")
    assert hw["cpu"] and hw["torch"] and hw["gpu"] is None and hw["host"]
    line = json.loads(json.dumps(_rec("a", 0, hw).as_dict()))
    assert TrialRecord.from_dict(line).hardware == hw
    old = {k: v for k, v in line.items() if k != "hardware"}  # a record of an earlier version
    assert TrialRecord.from_dict(old).hardware is None


def test_report_warns_when_the_arms_of_a_seed_ran_on_different_hardware():
    gpu = {**CPU_A, "gpu": "NVIDIA H100", "gpu_driver": "550.1", "cuda": "12.4", "host": "b"}
    recs = [_rec("base", 0, CPU_A), _rec("se", 0, {**CPU_A, "host": "other"}),  # another host, one kind: fine
            _rec("base", 1, CPU_A), _rec("se", 1, gpu), _rec("base", 2, None), _rec("se", 2, gpu)]  # 2: an old record
    (line,) = hardware.pairing_warnings(recs, "base")
    assert line.startswith("seed 1: the arms ran on different hardware") and "NVIDIA H100" in line
    assert "--pair-hardware" in line


def test_a_node_with_other_versions_fails_naming_node_and_versions():
    expected = cluster.driver_versions()
    assert cluster.version_problem(expected, "node x") is None
    msg = cluster.version_problem({**expected, "ultralytics": "0.0.1"}, "node abc (10.0.0.2, host gpu7)")
    assert msg.startswith("node abc (10.0.0.2, host gpu7) cannot run") and "ultralytics 0.0.1" in msg
    assert "yolo_attn" not in msg.split("(yolo_attn is shipped")[0]
    msg = cluster.version_problem({**expected, "yolo_attn": "0.0.9 (code 0)"}, "node n")
    assert "yolo_attn 0.0.9 (code 0)" in msg and "imported from" in msg


def test_staged_package_carries_the_configs_and_hashes_as_the_source(tmp_path):
    expected = cluster.stage_package(tmp_path)
    assert expected == cluster.driver_versions(tmp_path / "yolo_attn")  # what a node importing the copy reports
    assert (tmp_path / "yolo_attn" / "cfg").is_dir() and not list(tmp_path.rglob("__pycache__"))
    assert json.loads((tmp_path / "yolo_attn" / cluster.SHIPPED).read_text()) == expected


def test_a_trial_on_a_node_without_the_sweep_folder_comes_home(tmp_path):
    """The node does not read the driver's token: the trial runs from the shipped inputs in a folder of its own, and
    its whole folder (checkpoints included) is written into the driver's trial folder."""
    root = tmp_path / "sweep"
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.yaml").write_text("nc: 1\n")
    (root / "data.yaml").write_text(f"path: {tmp_path}\n")
    spec = TrialSpec(trial_id="m__seed0", model="m", model_ref=str(root / "models" / "m.yaml"), seed=0, settings_hash="h",
                     trial_dir=str(root / "trials" / "m__seed0"), data=str(root / "data.yaml"), epochs=1, imgsz=32,
                     store_root=str(root))
    token = cluster.write_marker(root)
    files = cluster.input_files(spec)
    assert sorted(files) == sorted([spec.data, spec.model_ref])
    (root / cluster.MARKER).write_text("another run's token")  # as a node that sees another folder at that path

    def fake_run(s: TrialSpec, elsewhere: bool = True) -> TrialRecord:
        assert (s.store_root != str(root)) == elsewhere and Path(s.model_ref).read_text() == "nc: 1\n"
        w = Path(s.trial_dir) / "train" / "weights"
        w.mkdir(parents=True, exist_ok=True)
        (w / "last.pt").write_bytes(b"weights")
        (Path(s.trial_dir) / "eval.npz").write_bytes(b"arrays")
        return s.record(status="ok", run_dir=str(w.parent), eval="trials/m__seed0/eval.npz")

    expected = cluster.driver_versions()
    rec, back, came_home = cluster.run_on_node(spec, token, files, expected, fake_run)
    assert came_home and rec.ok and set(back) == {"train/weights/last.pt", "eval.npz"}
    assert rec.trial_dir == "trials/m__seed0" and rec.hardware["node"].startswith("node ?")
    cluster.write_home(spec, rec, back, came_home)
    assert (root / rec.trial_dir / "train" / "weights" / "last.pt").read_bytes() == b"weights"
    assert rec.run_dir == str(root / "trials" / "m__seed0" / "train") and (root / rec.eval).read_bytes() == b"arrays"
    # the same node, the folder shared (the token read back): the trial writes in place, only eval.npz is returned
    token = cluster.write_marker(root)
    shared = cluster.run_on_node(spec, token, files, expected, lambda s: fake_run(s, elsewhere=False))
    assert shared[2] is False and set(shared[1]) == {"eval.npz"}


def test_pair_hardware_frees_a_seeds_placement_group_once_its_arms_are_recorded():
    """A group holds its node's resources until removed: kept to the end of the sweep, a later seed's group (or the
    group of a seed whose node was lost) would wait for them forever."""
    from types import SimpleNamespace

    from yolo_attn.compare.backends import _Groups

    removed = []
    groups = _Groups(SimpleNamespace(util=SimpleNamespace(remove_placement_group=removed.append)))
    seed0, seed1 = object(), object()
    groups.of.update({"a__seed0": seed0, "b__seed0": seed0, "a__seed1": seed1, "b__seed1": seed1})
    groups.recorded("a__seed0")
    assert removed == []  # b of seed 0 may still be running in it
    groups.recorded("b__seed0")
    assert removed == [seed0]
    groups.recorded("a__seed1")
    groups.remove_all()  # the sweep ends (or fails) with seed 1 unfinished
    assert removed == [seed0, seed1] and groups.of == {}
