"""Training API/CLI: key=value parsing, CPU threads, offline fonts, DDP importability, and a real short training run."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import time
from pathlib import Path

import pytest
import torch

from yolo_attn.cli import main
from yolo_attn.datasets import shapes_yaml
from yolo_attn.train import SHORT_RUN, AttnDetectionTrainer, cpu_threads, parse_args, train, validate

from conftest import PYTHON, REPO, subprocess_env

MODEL = "yolov5n-se-backbone-end.yaml"  # shipped config (models/yaml/yolov5-se-backbone-end.yaml), scale n by name


# ------------------------------------------------------------------------------------------------
# key=value arguments
# ------------------------------------------------------------------------------------------------
def test_parse_args_uses_ultralytics_typing():
    got = parse_args(["model=m.yaml", "epochs=3", "lr0=1e-3", "plots=False", "imgsz=[128,160]", "device=cpu",
                      "name=007", "cache", "batch", "=", "4"])
    assert got == {"model": "m.yaml", "epochs": 3, "lr0": 0.001, "plots": False, "imgsz": [128, 160],
                   "device": "cpu", "name": "007", "cache": True, "batch": 4}
    assert isinstance(got["epochs"], int) and isinstance(got["lr0"], float)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["epoch=3"], r"'epoch' is not a valid YOLO argument.*epochs"),
        (["lr=0.1"], r"'lr' is not a valid YOLO argument.*lr0"),
        (["epochs="], r"missing 'epochs' value"),
        (["fast"], r"'fast' is not a key=value argument"),
        (["batch=0"], r"'batch=0' is an invalid value: use a positive whole number of images, -1 for"),  # not AutoBatch
        (["batch=-3"], r"'batch=-3' is an invalid value"),
        (["batch=2.5"], r"'batch=2.5' is an invalid value"),
        (["imgsz=0"], r"'imgsz=0' is an invalid value: image sizes are positive"),
    ],
)
def test_parse_args_bad_input_is_a_clear_error(argv, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_args(argv)
    text = str(err.value)  # one line, no colour codes, not the CLI help older Ultralytics versions append
    assert "\n" not in text and "\x1b" not in text and "Arguments received" not in text and len(text) < 300


def test_cli_bad_key_exits_1_with_message(capsys):
    assert main(["train", "model=" + MODEL, "epoch=3"]) == 1
    err = capsys.readouterr().err
    assert "yolo-attn train: error:" in err and "'epoch' is not a valid YOLO argument" in err and "epochs" in err


def test_train_requires_a_model():
    with pytest.raises(ValueError, match="model= is required"):
        train(epochs=1)


def test_short_run_keys_are_valid():
    assert parse_args([f"{k}={v}" for k, v in SHORT_RUN.items()]) == SHORT_RUN


# ------------------------------------------------------------------------------------------------
# Environment: threads, fonts, DDP import
# ------------------------------------------------------------------------------------------------
def test_cpu_threads(monkeypatch):
    monkeypatch.setenv("YOLO_ATTN_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.delenv("YOLO_ATTN_THREADS")
    assert 1 <= cpu_threads() <= (os.cpu_count() or 1)


def test_plot_fonts_never_download(tmp_path, monkeypatch):
    """Offline, Ultralytics' check_font gives matplotlib's DejaVuSans and makes no HTTP request."""
    import numpy as np
    import requests
    from ultralytics.data import utils as data_utils
    from ultralytics.utils import checks, plotting

    from yolo_attn import _ultralytics

    calls = []
    monkeypatch.setattr(requests, "head", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError("offline")))
    _ultralytics.install_offline_font()
    assert plotting.check_font is checks.check_font is data_utils.check_font
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        font = plotting.check_font(name)
        assert font is not None and Path(font).is_file()
    assert not calls
    ann = plotting.Annotator(np.zeros((64, 64, 3), np.uint8), pil=True, example="circle")
    assert Path(getattr(ann.font, "path", "")).name in ("DejaVuSans.ttf", "Arial.ttf")
    images = torch.zeros(2, 3, 64, 64)
    plotting.plot_images({"img": images, "batch_idx": torch.tensor([0.0]), "cls": torch.tensor([[1.0]]),
                          "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]])},
                         paths=["a.jpg", "b.jpg"], fname=tmp_path / "batch.jpg", names={1: "square"}, threaded=False)
    assert (tmp_path / "batch.jpg").is_file() and not calls


def test_trainer_class_imports_yolo_attn_when_unpickled():
    """Ultralytics' DDP workers unpickle the trainer class; that alone must register the attention layers."""
    blob = pickle.dumps(AttnDetectionTrainer)
    code = (
        "import pickle, sys\n"
        "from ultralytics.nn.tasks import DetectionModel\n"
        "assert 'yolo_attn' not in sys.modules\n"
        f"cls = pickle.loads({blob!r})\n"
        f"m = DetectionModel({MODEL!r}, nc=4, verbose=False)\n"
        "print(cls.__name__, type(m.model[9]).__name__)\n"
    )
    out = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), cwd=REPO / "tests", capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].split() == ["AttnDetectionTrainer", "SE"]


# ------------------------------------------------------------------------------------------------
# A real (short) training run
# ------------------------------------------------------------------------------------------------
def _loss_sum(tloss) -> float:
    parts = tloss.values() if isinstance(tloss, dict) else [tloss]
    return float(sum(float(torch.as_tensor(v).sum()) for v in parts))


# Margins of the trained-metric checks below, measured with benchmarks/train_test_margin.py (this exact
# setting) on an AMD EPYC (AVX-512) 2-core machine, seeds 0-4 with 1 thread: untrained mAP50 0.000 every
# time; trained mAP50 0.243-0.275; last/first epoch loss 0.39-0.46; seeds 0-2 with 2 threads: mAP50 0.330,
# 0.188, 0.337 (the thread count alone moves it by up to 0.09), loss ratio 0.39-0.43.
# Another CPU kind (an AVX-512/AMX Xeon) reached mAP50 0.106 for seed 0 where this machine reached 0.25:
# the exact trajectory depends on the CPU's kernels, so the checks ask only that training clearly
# worked (loss down by >40%, mAP50 at least 0.05 above the untrained model), not for a given mAP.
LOSS_RATIO_MAX = 0.6  # last-epoch / first-epoch training loss
MAP50_GAIN_MIN = 0.05


@pytest.mark.slow
def test_training_raises_map_well_above_untrained(tmp_path):
    data = shapes_yaml()
    val_args = dict(data=data, imgsz=128, batch=16, project=str(tmp_path), name="val", exist_ok=True)

    torch.manual_seed(0)
    before = validate(MODEL, **val_args)

    epochs_seen, losses = [], []
    t0 = time.perf_counter()
    result = train(
        callbacks={"on_fit_epoch_end": lambda tr: epochs_seen.append((tr.epoch, torch.get_num_threads())),
                   "on_train_epoch_end": lambda tr: losses.append(_loss_sum(tr.tloss))},
        **SHORT_RUN,
        model=MODEL, data=str(data), epochs=6, imgsz=128, seed=0, deterministic=True, plots=False,
        project=str(tmp_path), name="train", exist_ok=True, verbose=False,
    )
    seconds = time.perf_counter() - t0
    after = validate(result.best, **val_args)

    print(f"\nuntrained mAP50 {before['metrics/mAP50(B)']:.4f}; after 6 epochs {after['metrics/mAP50(B)']:.3f} "
          f"(mAP50-95 {after['metrics/mAP50-95(B)']:.3f}) in {seconds:.0f}s; loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    assert result.best.is_file() and (result.save_dir / "results.csv").is_file()
    assert [e for e, _ in epochs_seen][:6] == list(range(6))
    assert all(n == epochs_seen[0][1] for _, n in epochs_seen)  # the trainer's thread choice held every epoch
    assert before["metrics/mAP50(B)"] < 0.02
    assert len(losses) == 6 and all(map(math.isfinite, losses))
    assert losses[-1] <= LOSS_RATIO_MAX * losses[0]
    assert after["metrics/mAP50(B)"] >= before["metrics/mAP50(B)"] + MAP50_GAIN_MIN
    # same weights and validator, but the trainer validates in batches of twice the training batch (32) and this
    # call in 16: rectangular batches then pad the images differently, which moves mAP50 by up to ~0.01
    assert after["metrics/mAP50(B)"] == pytest.approx(result.map50, abs=0.02)



@pytest.mark.slow
def test_threads_argument_holds_in_training_and_every_validation(tmp_path, monkeypatch):
    """``train(threads=k)`` trains and validates with k threads, not cpu_threads() nor Ultralytics' cpu_count - 1."""
    monkeypatch.delenv("YOLO_ATTN_THREADS", raising=False)
    k = 1 if cpu_threads() > 1 else 2  # a count the default would not give
    seen = {"train": [], "val": []}
    train(callbacks={"on_train_batch_end": lambda tr: seen["train"].append(torch.get_num_threads()),
                     "on_val_batch_end": lambda v: seen["val"].append(torch.get_num_threads())},
          threads=k, **SHORT_RUN, model="yolov5n.yaml", data=str(shapes_yaml()), epochs=1, imgsz=64, seed=0,
          deterministic=True, plots=False, project=str(tmp_path), name="train", exist_ok=True, verbose=False)
    assert seen["train"] and seen["val"], seen
    assert set(seen["train"]) == {k} and set(seen["val"]) == {k}, seen

@pytest.mark.slow
@pytest.mark.parametrize("final_weights", ["last", "best"])
def test_the_scoring_validation_and_its_predictions(tmp_path, final_weights):
    """``last``: the final epoch's own validation scores the run (no pass again) and only its predictions are
    copied; ``best``: Ultralytics' closing validation of best.pt does, and only it is copied."""
    import csv

    passes = []
    result = train(callbacks={"on_val_end": lambda v: passes.append(len(v.dataloader.dataset.im_files))},
                   final_weights=final_weights, threads=1, **SHORT_RUN, model="yolov5n.yaml", data=str(shapes_yaml()),
                   epochs=2, imgsz=64, seed=0, deterministic=True, plots=False, project=str(tmp_path), name="t",
                   exist_ok=True, verbose=False)
    log, trainer = result.trainer.predictions, result.trainer
    n_val = passes[0]
    assert set(result.predictions) == set(trainer.validator.dataloader.dataset.im_files) and len(result.predictions) == n_val
    assert all(v.ndim == 2 and v.shape[1] == 6 for v in result.predictions.values())
    if final_weights == "last":
        assert result.scored_by == "final epoch" and len(passes) == 2 and log.recorded == 2 and log.epoch == 1
        last_row = list(csv.DictReader((result.save_dir / "results.csv").open()))[-1]
        for k in ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/precision(B)", "metrics/recall(B)"):
            assert result.metrics[k] == pytest.approx(float(last_row[k]), abs=1e-5), k
        assert not any(k.startswith("val/") for k in result.metrics)
    else:
        assert result.scored_by == "closing validation" and len(passes) == 3 and log.recorded == 3
    for f in (result.last, result.best):  # Ultralytics' clean-up of the checkpoints ran either way
        assert torch.load(f, weights_only=False)["optimizer"] is None


def test_openmp_spin_is_bounded_by_load_and_user_choice_wins(monkeypatch):
    """Busy machine -> libgomp's short spin; free cores -> a longer one; never libgomp's 300,000 (a livelock when shared)."""
    from yolo_attn import _threads

    monkeypatch.delenv("YOLO_ATTN_THREADS", raising=False)
    assert _threads.spincount(load=0.1, cpus=2) == _threads.SPIN_IDLE
    assert _threads.spincount(load=1.0, cpus=2) == _threads.SPIN_BUSY  # another job on one of 2 cores
    assert _threads.spincount(load=1.0, cpus=4, threads=2) == _threads.SPIN_IDLE  # room beside it
    monkeypatch.setenv("YOLO_ATTN_THREADS", "1")
    assert _threads.spincount(load=0.9, cpus=2) == _threads.SPIN_IDLE
    assert max(_threads.SPIN_IDLE, _threads.SPIN_BUSY) < 300_000
    for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "YOLO_ATTN_OPENMP"):
        monkeypatch.delenv(k, raising=False)
    assert set(_threads.openmp_env()) == {"GOMP_SPINCOUNT"}
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert _threads.openmp_env() == {"OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("YOLO_ATTN_OPENMP", "keep")
    assert _threads.openmp_env() == {}
    # the yolo-attn command sets it before torch loads
    code = "import os, yolo_attn; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in subprocess_env().items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "YOLO_ATTN_OPENMP")}
    out = subprocess.run([PYTHON, "-c", code], env=env, cwd=REPO / "tests", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] in (str(_threads.SPIN_IDLE), str(_threads.SPIN_BUSY))


def test_openmp_spin_reads_the_tasks_runnable_now(monkeypatch):
    """The choice uses the tasks runnable at start-up (not the lagging 1-minute average), falling back to it."""
    from yolo_attn import _threads

    monkeypatch.delenv("YOLO_ATTN_THREADS", raising=False)
    others = _threads.runnable_others(samples=2, pause=0.0)
    assert others is None or others >= 0
    monkeypatch.setattr(_threads, "runnable_others", lambda: 2.0)  # another 2-thread job is running
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert _threads.spincount(cpus=2) == _threads.SPIN_BUSY
    monkeypatch.setattr(_threads, "runnable_others", lambda: 0.0)  # idle now, whatever the average says
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert _threads.spincount(cpus=2) == _threads.SPIN_IDLE
    monkeypatch.setattr(_threads, "runnable_others", lambda: None)  # no /proc: the load average decides
    assert _threads.spincount(cpus=2) == _threads.SPIN_BUSY
