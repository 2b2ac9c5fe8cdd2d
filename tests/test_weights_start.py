"""How a model starts (``yolo_attn.weights.start``): one decision for ``train()``, the trainer and the sweep, one
error for a name-matched load with a freeze, and the checkpoint read once per process."""

from __future__ import annotations

import os

import pytest
import torch
import yaml

from yolo_attn.weights import (ModelOptions, ModelOptionsError, decide_start, load_checkpoint, parse_model_options,
                               pretrained_path, read_model_checkpoint, save_model_checkpoint)
from yolo_attn.weights import read as read_module

SE_MODEL = "yolov5n-se-backbone-end.yaml"


def _yaml_with(tmp_path, options, name):
    from yolo_attn._ultralytics import load_model_yaml

    d = {k: v for k, v in load_model_yaml(SE_MODEL).items() if k != "yaml_file"}
    d["yolo_attn"] = options
    path = tmp_path / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


@pytest.fixture
def zip_reads(monkeypatch):
    """The files the safe reader unpickles from now on (each a parse of the whole archive)."""
    seen = []
    real = read_module.safe_unpickle_zip

    def spy(path):
        seen.append(os.path.realpath(path))
        return real(path)

    monkeypatch.setattr(read_module, "safe_unpickle_zip", spy)
    monkeypatch.setattr(read_module, "_READ", {})  # nothing read before this test
    return seen


def test_pretrained_names_a_checkpoint_or_nothing():
    assert [pretrained_path(v) for v in (None, True, False, "", "True", "false", " ")] == [None] * 7
    assert pretrained_path("stock.pt") == "stock.pt"
    start = decide_start(SE_MODEL, "stock.pt", freeze="backbone", attn_init="identity")
    assert (start.source, start.load, start.freeze, start.attn_init, start.frozen) == (
        "stock.pt", "structure", "backbone", "identity", True)
    assert not decide_start(SE_MODEL, True, freeze="backbone").frozen  # Ultralytics' own flag: nothing transferred
    assert decide_start("best.pt", "stock.pt").source is None  # a checkpoint starts from its own weights
    # the model's own yolo_attn: key overrides the run's values
    own = decide_start(SE_MODEL, "stock.pt", freeze=3, attn_init="paper",
                       options=ModelOptions(attn_init="identity", freeze="backbone"))
    assert (own.attn_init, own.freeze) == ("identity", "backbone")


def test_a_names_load_with_a_freeze_is_one_error_wherever_it_is_given(tmp_path, stock_ckpt):
    """The YAML's own key, the run's freeze= in train() and in the trainer's set-up: the same rule, the same words."""
    from yolo_attn.train import _run_start

    rule = r"yolo_attn\.load: names with freeze=backbone is not supported \(freeze is read in the base model's layer"
    with pytest.raises(ModelOptionsError, match=r"^own\.yaml: " + rule):
        parse_model_options({"load": "names", "freeze": "backbone"}, "own.yaml")
    names = _yaml_with(tmp_path, {"load": "names"}, "names.yaml")
    with pytest.raises(ModelOptionsError, match=f"^{names}: " + rule):
        _run_start({"model": str(names), "pretrained": str(stock_ckpt), "freeze": "backbone"}, None)
    with pytest.raises(ModelOptionsError, match=r"^model se \(x\.yaml\): " + rule):
        decide_start("x.yaml", str(stock_ckpt), freeze="backbone", options=ModelOptions(load="names"), where="model se (x.yaml)")
    from yolo_attn.datasets import shapes_yaml
    from yolo_attn.train import AttnDetectionTrainer

    trainer = AttnDetectionTrainer(overrides=dict(model=str(names), data=str(shapes_yaml()), pretrained=str(stock_ckpt),
                                                  freeze="backbone", epochs=1, imgsz=64, workers=0, plots=False,
                                                  project=str(tmp_path), name="run", exist_ok=True))
    with pytest.raises(ModelOptionsError, match=f"^{names}: " + rule):
        trainer.setup_model()
    assert not isinstance(trainer.model, torch.nn.Module)  # refused before anything was built
    assert decide_start(names, str(stock_ckpt)).by_name  # without a freeze the names load is fine


def test_a_checkpoint_is_read_once_per_process_until_it_changes(tmp_path, zip_reads, monkeypatch):
    from ultralytics.nn.tasks import DetectionModel

    from yolo_attn.models import model_task_of

    torch.manual_seed(0)
    path = save_model_checkpoint(DetectionModel("yolov5n.yaml", nc=2, verbose=False), tmp_path / "m.pt")
    # train model=X.pt: the task from the file, then the model from it: one read
    assert model_task_of(str(path)) == "detect"
    model = read_model_checkpoint(path)
    monkeypatch.chdir(tmp_path)
    again = load_checkpoint("m.pt")  # the same file by another name
    assert zip_reads == [str(path.resolve())]
    assert str(again.path) == "m.pt"  # named as this caller named it
    assert all(torch.equal(v.float(), model.state_dict()[k]) for k, v in again.state_dict.items())
    save_model_checkpoint(DetectionModel("yolov5n.yaml", nc=3, verbose=False), path)  # changed: read again
    assert load_checkpoint(path).nc == 3 and len(zip_reads) == 2
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched: read again
    load_checkpoint(path)
    assert len(zip_reads) == 3
    # trust=True unpickles fully, every time, and hands out its own objects
    a, b = load_checkpoint(path, trust=True), load_checkpoint(path, trust=True)
    assert a.model is not b.model and len(zip_reads) == 3


def test_runs_from_one_checkpoint_in_one_process_read_it_once(tmp_path, stock_ckpt, zip_reads):
    """Two trials' set-ups from pretrained= in one worker process (as the sweep runs them): one read of the file."""
    from yolo_attn.datasets import shapes_yaml
    from yolo_attn.train import AttnDetectionTrainer

    load_checkpoint(stock_ckpt)  # the sweep's check before the trials
    for seed in (0, 1):
        trainer = AttnDetectionTrainer(overrides=dict(model=SE_MODEL, data=str(shapes_yaml()), pretrained=str(stock_ckpt),
                                                      seed=seed, epochs=1, imgsz=64, workers=0, plots=False,
                                                      project=str(tmp_path), name=f"run{seed}", exist_ok=True))
        trainer.setup_model()
        report = trainer.transfer_report  # all but the class outputs (80 classes -> the shapes' 4)
        assert report.tensors == report.source_tensors - len(report.class_dependent) > 0
    assert zip_reads == [os.path.realpath(stock_ckpt)]


def test_the_weights_package_sits_below_training_and_the_sweep():
    """weights/ imports nothing of the trainer, the sweep, the studies, diagnose, deploy or the commands (lazy imports
    included), so each of them can use it without an import circle."""
    import ast
    from pathlib import Path

    import yolo_attn.weights

    above = ("compare", "studies", "diagnose", "deploy", "commands", "train", "cli")
    found = {}
    for path in sorted(Path(yolo_attn.weights.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and (node.module or "").split(".")[0] in above:
                found.setdefault(path.name, []).append(node.module)
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    (n or "").startswith(tuple(f"yolo_attn.{a}" for a in above))
                    for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])):
                found.setdefault(path.name, []).append(ast.unparse(node))
    assert len(list(Path(yolo_attn.weights.__file__).parent.glob("*.py"))) >= 14 and found == {}
