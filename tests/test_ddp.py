"""One trial on several devices (issue 42): Ultralytics' DDP trains it, the trial scores it in one process afterwards.

Ultralytics trains with several devices on CUDA only; ``YOLO_ATTN_CPU_DDP=2`` sends a CPU trial down the same path
(Ultralytics' own launch of ``torch.distributed.run``, its DDP wrapping, samplers and sharded validation, rank 0's
checkpoints) with two processes and torch.distributed's gloo backend. The CUDA form is
``benchmarks/ddp_gpu.py`` (a 2-GPU machine).
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, tiny_sweep_data

DUMP_ENV = "YOLO_ATTN_TEST_REPLICAS"  # where each DDP rank writes its replica after each epoch


def dump_replica(trainer) -> None:
    """``on_fit_epoch_end`` in every DDP rank: the trained model's and the EMA's tensors, as this rank holds them."""
    import torch
    from ultralytics.utils import RANK
    from ultralytics.utils.torch_utils import unwrap_model

    model = unwrap_model(trainer.model)
    torch.save({"params": {k: p.detach().clone() for k, p in model.named_parameters()},
                "buffers": {k: b.detach().clone() for k, b in model.named_buffers()},
                "ema": {k: v.detach().clone() for k, v in trainer.ema.ema.state_dict().items()}},
               Path(os.environ[DUMP_ENV]) / f"rank{RANK}-epoch{trainer.epoch}.pt")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


@pytest.mark.slow
def test_ddp_trial_on_cpu_keeps_replicas_identical_and_scores_in_one_process(tmp_path, monkeypatch):
    import torch

    from yolo_attn.compare import trial as trial_mod
    from yolo_attn.compare.contract import TrialSpec
    from yolo_attn.models import resolve_model

    dump = tmp_path / "replicas"
    dump.mkdir()
    monkeypatch.setenv("YOLO_ATTN_CPU_DDP", "2")
    monkeypatch.setenv(DUMP_ENV, str(dump))
    callbacks = trial_mod._Hooks.callbacks
    monkeypatch.setattr(trial_mod._Hooks, "callbacks", lambda self: {
        **callbacks(self), "on_fit_epoch_end": [callbacks(self)["on_fit_epoch_end"], dump_replica]})
    stock = REPO / "data" / "weights" / "yolov5n-shapes.pt"  # a start that scores above 0 from the first epoch
    spec = TrialSpec("se__seed0", "se", resolve_model("yolov5n-se-backbone-end.yaml"), 0, "h",
                     str(tmp_path / "trial"), str(tiny_sweep_data(tmp_path / "data")), epochs=1, imgsz=64,
                     store_root=str(tmp_path), pretrained=str(stock), threads=1,
                     train_args=trial_mod.sweep_train_args({"batch": 8}, str(stock)))
    rec = trial_mod.run_trial(spec)
    assert rec.ok, (rec.error, rec.traceback)
    assert rec.scored_by == "again" and rec.epochs_done == 1  # the workers trained; this process scored last.pt
    assert rec.coco["map"] > 0.05, rec.coco

    ranks = [torch.load(dump / f"rank{r}-epoch0.pt") for r in (0, 1)]
    params, ema = (_max_diff(ranks[0][k], ranks[1][k]) for k in ("params", "ema"))
    assert params == 0.0 and ema == 0.0  # every step's gradients averaged; the EMA's buffers synced before validation
    # each rank's BatchNorm statistics are of its own share of the batches (Ultralytics does not sync them)
    buffers = _max_diff(ranks[0]["buffers"], ranks[1]["buffers"])

    # one process scores the saved weights again: what the trial recorded
    monkeypatch.delenv("YOLO_ATTN_CPU_DDP")
    weights = Path(rec.run_dir) / "weights" / "last.pt"
    hooks = trial_mod._Hooks(spec, 1, None)
    again = replace(spec, trial_dir=str(tmp_path / "again"))
    Path(again.trial_dir).mkdir()
    solo = again.record()
    trial_mod._score(again, solo, trial_mod._validate(again, weights, hooks))
    assert solo.predictions_sha256 == rec.predictions_sha256 and solo.coco == rec.coco
    # the DDP run's own sharded validation of the final epoch (the EMA in full precision; last.pt holds it in half)
    sharded = rec.curve[-1]["map"]
    assert abs(sharded - rec.ultra["map"]) < 0.02, (sharded, rec.ultra)
    print(json.dumps({"replica_max_abs_diff": {"parameters": params, "ema": ema, "bn_buffers": buffers},
                      "coco_map": rec.coco["map"], "one_process_map": solo.coco["map"], "sha256": rec.predictions_sha256[:16],
                      "sharded_val_map": sharded, "ultra_map": rec.ultra["map"], "duration_s": round(rec.duration_s, 1)}))


def test_hooks_travel_to_ddp_workers_without_the_progress_stream():
    from yolo_attn.compare.contract import TrialSpec
    from yolo_attn.compare.trial import _Hooks

    stream = open(os.devnull, "w")
    try:
        hooks = _Hooks(TrialSpec("m__seed0", "m", "m.yaml", 0, "h", "t", "d.yaml", 1, 64), 1, stream.write)
        copy = pickle.loads(pickle.dumps(hooks))  # a file's method cannot be pickled: newer Ultralytics pickles them
    finally:
        stream.close()
    assert copy.progress is None and copy.spec == hooks.spec and hooks.progress is not None


def test_several_devices_refused_where_ddp_cannot_work():
    from yolo_attn.compare.checks import check_ddp
    from yolo_attn.compare.trial import scoring_device
    from yolo_attn.compare.workers import plan_workers

    assert check_ddp(None, 4, 16) == 1 and check_ddp("0", 4, 16) == 1
    with pytest.raises(ValueError, match=r"--device 0,1 trains each trial on 2 GPUs .*--workers 3"):
        check_ddp("0,1", 3, 16)
    with pytest.raises(ValueError, match=r"--batch 15 with --device 0,1: .*multiple of 2"):
        check_ddp("0,1", 1, 15, backend="ray")
    import torch

    if torch.cuda.device_count() < 3:
        with pytest.raises(ValueError, match=r"--device 0,1,2: DDP across 3 GPUs, and this machine has \d CUDA GPU"):
            check_ddp("0,1,2", None, 24)
    assert plan_workers(1, "0,1", n_trials=8).workers == 1  # one trial at a time trains on both
    assert scoring_device("0,1") == "0" and scoring_device("cpu") == "cpu" and scoring_device(0) == 0


def test_ray_reserves_the_gpus_of_a_ddp_trial_on_one_node():
    from yolo_attn.compare.backends import _task_gpus

    def cluster(*gpus):
        return SimpleNamespace(nodes=lambda: [{"Alive": True, "Resources": {"CPU": 8, **({"GPU": g} if g else {})}}
                                              for g in gpus],
                               cluster_resources=lambda: {"GPU": sum(gpus)})

    assert _task_gpus(cluster(2, 4), "0,1,2,3") == (4, "0,1,2,3")  # the task sees its own GPUs as 0..3
    assert _task_gpus(cluster(1), None) == (1, 0) and _task_gpus(cluster(0), None) == (0, None)
    with pytest.raises(ValueError, match=r"--device 0,1: each trial trains on 2 GPUs of one node .* has 1"):
        _task_gpus(cluster(1, 1), "0,1")  # two GPUs in the cluster, never two on one node
