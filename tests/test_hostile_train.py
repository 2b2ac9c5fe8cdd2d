"""Every training argument that makes Ultralytics read a file passes one gate (``yolo_attn/file_args.py``).

``resume=``, ``distill_model=`` and ``cfg=`` reached Ultralytics' full unpickler: a checkpoint whose pickle calls
``os.system`` ran it. Here each door is tried with such a file; the marker file its payload would create must not
appear, and the run does what it should from the file's real contents (a resumed run finishes its epochs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from yolo_attn import file_args

from conftest import Evil

SMALL = dict(imgsz=64, batch=8, fraction=0.1, workers=0, plots=False, exist_ok=True)


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    """A real, resumable ``last.pt``: a 2-epoch run stopped after its first epoch was saved."""
    from yolo_attn.train import train

    root = tmp_path_factory.mktemp("resumable")
    saved = root / "copy" / "weights" / "last.pt"
    saved.parent.mkdir(parents=True)

    def keep_first(trainer):  # the first epoch's checkpoint, as a run interrupted after it left it
        if trainer.epoch == 0:
            saved.write_bytes(Path(trainer.last).read_bytes())

    train(model="yolov5n.yaml", epochs=2, project=str(root), name="run", val=False,
          callbacks={"on_model_save": keep_first}, **SMALL)
    last = saved
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0
    return last


def _poisoned(last: Path, dest: Path, marker: Path, where: str = "train_args") -> Path:
    """``last`` with an ``os.system`` payload added (its run folder layout kept: ``dest/weights/last.pt``)."""
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    payload = Evil(os.system, f"touch {marker}")
    if where == "train_args":
        ckpt["train_args"] = {**ckpt["train_args"], "x": payload}
    else:
        ckpt[where] = payload
    out = dest / "weights" / "last.pt"
    out.parent.mkdir(parents=True)
    torch.save(ckpt, out)
    return out


@pytest.mark.slow
def test_resume_of_a_malicious_checkpoint_runs_nothing_and_resumes(resumable, tmp_path):
    from yolo_attn.train import train

    marker = tmp_path / "pwned"
    evil = _poisoned(resumable, tmp_path / "run", marker, where="extra")
    result = train(model="yolov5n.yaml", resume=str(evil), **SMALL)
    assert not marker.exists()
    assert result.save_dir == evil.parent.parent  # the run folder the checkpoint lies in, not the one it names
    assert torch.load(result.last, map_location="cpu", weights_only=False)["epoch"] == -1  # finished (epoch 2 of 2)


@pytest.mark.parametrize("how", ["path", "model", "cfg"])
def test_every_resume_door_reads_the_file_safely(resumable, tmp_path, how):
    marker = tmp_path / "pwned"
    evil = _poisoned(resumable, tmp_path / "run", marker)
    args = {"path": {"model": "yolov5n.yaml", "resume": str(evil)},
            "model": {"model": str(evil), "resume": True},
            "cfg": {"model": "yolov5n.yaml", "cfg": str(_cfg(tmp_path, f"resume: {evil}\n"))}}[how]
    gated = file_args.gate_checkpoints(file_args.expand_cfg(args), False, tmp_path / "scratch")
    clean = Path(gated["resume"])
    assert clean.parent == tmp_path / "scratch" and gated["model"] == str(clean)
    ckpt = torch.load(clean, map_location="cpu", weights_only=False)  # Ultralytics' own (full) read of what it gets
    assert not marker.exists()
    assert "x" not in ckpt["train_args"] and ckpt["epoch"] == 0 and ckpt["optimizer"]["param_groups"]
    assert ckpt["train_args"]["save_dir"] == str(evil.parent.parent)
    original = torch.load(resumable, map_location="cpu", weights_only=False)["ema"].state_dict()
    assert all(torch.equal(v, original[k]) for k, v in ckpt["ema"].state_dict().items())  # the same weights


def test_resume_true_needs_the_checkpoint(tmp_path, monkeypatch):
    """Ultralytics would resume the newest last*.pt below the current folder (an unpacked download's, say)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "download" / "weights").mkdir(parents=True)
    (tmp_path / "download" / "weights" / "last.pt").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"resume=True: name the run's checkpoint"):
        file_args.resume_checkpoint({"model": "yolov5n.yaml", "resume": True})
    with pytest.raises(ValueError, match=r"resume=nope.pt: no such checkpoint file"):
        file_args.resume_checkpoint({"model": "yolov5n.yaml", "resume": "nope.pt"})
    assert file_args.resume_checkpoint({"model": "yolov5n.yaml", "resume": False}) is None


def test_train_refuses_resume_true_before_anything_trains(tmp_path):
    from yolo_attn.train import train

    with pytest.raises(ValueError, match="resume=True"):
        train(model="yolov5n.yaml", resume=True, project=str(tmp_path), **SMALL)
    assert not any(tmp_path.iterdir())


def test_trust_hands_the_named_file_to_ultralytics(resumable, tmp_path):
    gated = file_args.gate_checkpoints({"model": str(resumable), "resume": True}, True, tmp_path / "scratch")
    assert gated["resume"] == str(resumable)  # the named file, never Ultralytics' search for the newest last*.pt


def test_distill_model_is_read_safely(resumable, tmp_path):
    marker = tmp_path / "pwned"
    evil = _poisoned(resumable, tmp_path / "teacher", marker, where="extra")
    gated = file_args.gate_checkpoints({"model": "yolov5n.yaml", "distill_model": str(evil)}, False, tmp_path / "s")
    teacher = torch.load(gated["distill_model"], map_location="cpu", weights_only=False)
    assert not marker.exists()
    assert isinstance(teacher["ema"], torch.nn.Module) and "optimizer" not in teacher  # the model alone
    with pytest.raises(ValueError, match="distill_model=missing.pt: no such checkpoint file"):
        file_args.gate_checkpoints({"distill_model": "missing.pt"}, False, tmp_path / "s")


def test_a_resumed_runs_own_distill_model_passes_the_gate(resumable, tmp_path):
    marker = tmp_path / "pwned"
    teacher = _poisoned(resumable, tmp_path / "teacher", marker, where="extra")
    ckpt = torch.load(resumable, map_location="cpu", weights_only=False)
    ckpt["train_args"] = {**ckpt["train_args"], "distill_model": str(teacher)}
    run = tmp_path / "run" / "weights"
    run.mkdir(parents=True)
    torch.save(ckpt, run / "last.pt")
    gated = file_args.gate_checkpoints({"model": "yolov5n.yaml", "resume": str(run / "last.pt")}, False, tmp_path / "s")
    run_args = torch.load(gated["resume"], map_location="cpu", weights_only=False)["train_args"]
    assert Path(run_args["distill_model"]).parent == tmp_path / "s"  # a clean copy, not the file the run named
    torch.load(run_args["distill_model"], map_location="cpu", weights_only=False)
    assert not marker.exists()


def test_cfg_entries_pass_the_same_checks(tmp_path):
    with pytest.raises(ValueError, match="holds a cfg: entry of its own"):
        file_args.expand_cfg({"cfg": str(_cfg(tmp_path, "cfg: other.yaml\n"))})
    with pytest.raises(ValueError, match="expected a mapping"):
        file_args.expand_cfg({"cfg": str(_cfg(tmp_path, "- 1\n"))})
    assert file_args.expand_cfg({"cfg": str(_cfg(tmp_path, "epochs: 3\nlr0: 0.1\n")), "epochs": 5}) == {"epochs": 5,
                                                                                                      "lr0": 0.1}


def test_compare_refuses_cfg_and_an_unreadable_teacher(tmp_path, evil_pt):
    from yolo_attn.compare.sweep import check_sweep_settings

    with pytest.raises(ValueError, match="--train-arg cfg="):
        check_sweep_settings({"cfg": str(_cfg(tmp_path, "epochs: 3\n"))}, None, [], 2)
    evil, marker = evil_pt
    with pytest.raises(ValueError, match="not a model checkpoint"):
        check_sweep_settings({"distill_model": str(evil)}, None, [], 2)
    assert not marker.exists()


def _cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"cfg{len(list(tmp_path.glob('cfg*.yaml')))}.yaml"
    path.write_text(text)
    return path


def test_data_of_a_resumed_run_is_its_own(resumable, tmp_path):
    run_data = torch.load(resumable, map_location="cpu", weights_only=False)["train_args"]["data"]
    gated = file_args.gate_checkpoints({"model": "yolov5n.yaml", "resume": str(resumable)}, False, tmp_path / "s")
    assert gated["data"] == run_data
    given = file_args.gate_checkpoints({"resume": str(resumable), "data": "mine.yaml"}, False, tmp_path / "s")
    assert given["data"] == "mine.yaml"


# ------------------------------------------------------------------------------------------------
# freeze= that reaches too far, or nowhere
# ------------------------------------------------------------------------------------------------
def _setup(tmp_path, pretrained, freeze):
    from yolo_attn.train import AttnDetectionTrainer

    args = dict(model="yolov5n-se-backbone-end.yaml", data=str(_shapes()), pretrained=str(pretrained), freeze=freeze,
                epochs=1, imgsz=64, batch=4, workers=0, plots=False, project=str(tmp_path), name="run", exist_ok=True)
    trainer = AttnDetectionTrainer(overrides=args)
    trainer.setup_model()
    return trainer


def _shapes():
    from yolo_attn.datasets import require_dataset, shapes_yaml

    return require_dataset(shapes_yaml()).yaml


@pytest.mark.parametrize("freeze, message", [
    (25, r"reaches \d+ tensors that start untrained .* another class count"),  # 80-class stock, 4-class data
    ([3, 99], r"base layer\(s\) \[99\] do not exist \(the base model has layers 0..24\)"),
    (40, r"freeze=40: the base model has 25 layers"),
    ([-1], r"base layer\(s\) \[-1\] do not exist"),
])
def test_a_freeze_that_reaches_too_far_or_nowhere_is_refused(stock_ckpt, tmp_path, freeze, message):
    with pytest.raises(ValueError, match=message):
        _setup(tmp_path, stock_ckpt, freeze)


def test_a_freeze_of_the_backbone_still_works(stock_ckpt, tmp_path):
    trainer = _setup(tmp_path, stock_ckpt, "backbone")
    assert "model.0." in trainer.frozen and not any(p.startswith("model.25.") for p in trainer.frozen)


def test_compare_refuses_the_same_freeze_before_any_trial(stock_ckpt):
    from yolo_attn.compare.sweep import check_sweep_settings

    from yolo_attn.compare.request import ModelSpec

    specs = [ModelSpec("yolov5n-se-backbone-end", "yolov5n-se-backbone-end.yaml")]
    with pytest.raises(ValueError, match="start untrained"):
        check_sweep_settings({"freeze": 25}, str(stock_ckpt), specs, 4)


def test_the_runs_scratch_folder_is_removed_after_success_and_failure(tmp_path, monkeypatch):
    """The init YAML and clean copies live in one temporary folder per run (yolo-attn-model-* folders stayed)."""
    import tempfile

    from yolo_attn.train import train

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    with pytest.raises(ValueError, match="resume=True"):
        train(model="yolov5n.yaml", resume=True, project=str(tmp_path / "runs"), **SMALL)
    assert list(scratch_root.glob("yolo-attn-run-*")) == []
    result = train(model="yolov5n-se-backbone-end.yaml", attn_init="identity", epochs=1, val=False,
                   project=str(tmp_path / "runs"), name="run", **SMALL)
    assert result.last.is_file() and list(scratch_root.glob("yolo-attn-run-*")) == []
