"""Training attention models of every Ultralytics task: segment, pose, obb and classify, from scratch and from a stock
checkpoint of the task (made here from random weights) with the identity start; the task comes from the model."""

from __future__ import annotations

import pytest
import torch

from yolo_attn.weights import save_model_checkpoint
from yolo_attn.models import build_model
from yolo_attn.train import TASK_METRICS, train

SMALL = dict(epochs=1, imgsz=64, batch=8, fraction=0.1, workers=0, plots=False, exist_ok=True)
TASKS = {  # task: (stock YAML, attention config shipped for it)
    "segment": ("yolo11n-seg.yaml", "yolo11n-seg-se-neck.yaml"),
    "pose": ("yolo11n-pose.yaml", "yolo11n-pose-se-neck.yaml"),
    "obb": ("yolo11n-obb.yaml", "yolo11n-obb-se-neck.yaml"),
    "classify": ("yolo11n-cls.yaml", "yolo11n-cls-se-backbone-end.yaml"),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_an_attention_model_of_each_task_trains_from_scratch_and_from_its_stock_checkpoint(task, tmp_path):
    stock_yaml, attn_yaml = TASKS[task]
    scratch = train(model=attn_yaml, project=str(tmp_path), name="scratch", **SMALL)
    assert scratch.task == task and scratch.trainer.args.task == task
    assert TASK_METRICS[task] in scratch.metrics and scratch.last.is_file()
    torch.manual_seed(0)
    stock = save_model_checkpoint(build_model(stock_yaml, nc=3), tmp_path / f"stock-{task}.pt")  # another class count
    tuned = train(model=attn_yaml, pretrained=str(stock), attn_init="identity", project=str(tmp_path), name="tuned",
                  **SMALL)
    report = tuned.trainer.transfer_report
    assert report is not None and report.tensors > 0.9 * report.source_tensors
    assert tuned.start_metrics is not None and TASK_METRICS[task] in tuned.start_metrics  # epoch 0 of the transfer
    assert type(tuned.trainer).__name__ != "AttnDetectionTrainer"


def test_a_task_argument_that_contradicts_the_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"task=detect: model=yolo11n-seg-se-neck.yaml is a segment model"):
        train(model="yolo11n-seg-se-neck.yaml", task="detect", project=str(tmp_path), **SMALL)
