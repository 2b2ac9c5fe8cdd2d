"""Training from a stock checkpoint: weights arrive through yolo_attn's transfer, freeze= uses base indices."""

from __future__ import annotations

import json

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from yolo_attn.weights import load_checkpoint
from yolo_attn.datasets import shapes_yaml
from yolo_attn.train import SHORT_RUN, train

MODEL = "yolov5n-se-backbone-end.yaml"  # SE inserted at index 9: every base layer >= 9 shifts by one


def test_pretrained_transfer_and_base_index_freeze(stock_ckpt, tmp_path):
    result = train(
        **{**SHORT_RUN, "batch": 16, "nbs": 16},
        model=MODEL,
        data=str(shapes_yaml()),
        pretrained=str(stock_ckpt),
        freeze="backbone",
        epochs=1,
        imgsz=64,
        fraction=0.25,
        val=False,
        plots=False,
        project=str(tmp_path),
        name="run",
    )
    trainer = result.trainer
    report = trainer.transfer_report
    assert report is not None and report.mapping[9] == 10 and report.mapping[24] == 25  # shifted past SE

    src = load_checkpoint(stock_ckpt).state_dict
    got = {k: v.float() for k, v in trainer.model.state_dict().items()}
    # frozen backbone = the base YAML's backbone rows 0..9 (SPPF included), i.e. target 0..8 and 10:
    # exactly the stock values after training, at their shifted positions
    for k in ("model.0.conv.weight", "model.6.m.2.cv2.conv.weight", "model.8.cv3.bn.weight"):
        assert torch.equal(got[k], src[k].float()), k
    assert torch.equal(got["model.10.cv2.conv.weight"], src["model.9.cv2.conv.weight"].float())
    # the first neck Conv (base 10 -> target 11) arrived and then trained: close to, but not, the stock value
    assert not torch.equal(got["model.11.conv.weight"], src["model.10.conv.weight"].float())
    assert torch.allclose(got["model.11.conv.weight"], src["model.10.conv.weight"].float(), atol=0.05)
    # the inserted SE is new and trainable
    assert all(p.requires_grad for p in trainer.model.model[9].parameters())
    assert not any(p.requires_grad for p in trainer.model.model[0].parameters())
    # the report is saved beside the weights; the saved args keep the user's freeze value
    saved = json.loads((result.save_dir / "transfer.json").read_text())
    assert saved["mapping"]["9"] == 10
    assert trainer.args.freeze == "backbone" and trainer.args.pretrained == str(stock_ckpt)


def test_pretrained_without_yolo_attn_matching_would_lose_the_neck(stock_ckpt):
    """The reason for the integration: Ultralytics' own name matching leaves the shifted layers random."""
    from ultralytics.nn.tasks import load_checkpoint as ul_load

    import yolo_attn  # noqa: F401

    target = DetectionModel(MODEL, verbose=False)
    weights, _ = ul_load(stock_ckpt)
    target.load(weights, verbose=False)
    stock_sppf = weights.model[9].cv2.conv.weight.float()
    assert not torch.equal(target.model[10].cv2.conv.weight, stock_sppf)


def test_yolo26_fine_tunes_from_its_stock_checkpoint(tmp_path):
    """YOLO26's end-to-end criterion (E2ELoss) names its loss items through its one-to-one branch; the epoch-0
    validation of a transferred start read ``loss_names`` from the criterion itself and failed every run."""
    from yolo_attn.weights import save_model_checkpoint

    torch.manual_seed(0)
    stock = save_model_checkpoint(DetectionModel("yolo26n.yaml", nc=4, verbose=False), tmp_path / "yolo26n-stock.pt")
    result = train(model="yolo26n-se-backbone-end.yaml", pretrained=str(stock), attn_init="identity", epochs=1,
                   imgsz=64, batch=8, fraction=0.1, workers=0, plots=False, project=str(tmp_path), name="run")
    report = result.trainer.transfer_report
    assert report is not None and result.start_metrics is not None
    assert "metrics/mAP50-95(B)" in result.start_metrics and result.last.is_file()
    assert len(report.mapping) == len(load_checkpoint(stock).layers)  # every stock layer found its place
