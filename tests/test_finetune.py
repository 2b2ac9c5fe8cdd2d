"""Starting from pretrained weights: identity start, seeded initialisation per layer role, attention learning rate."""

from __future__ import annotations

import pytest
import torch

from yolo_attn._ultralytics import layer_roles, seeded_layers
from yolo_attn.models import build_model
from yolo_attn.weights import read_model_checkpoint, transfer_weights

from conftest import model_output

SE_MODEL = "yolov5n-se-backbone-end.yaml"  # SE inserted before SPPF: every later stock layer shifts by one


def _head(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.model[-1].state_dict().items()}


def test_identity_start_predicts_exactly_as_the_stock_checkpoint(stock_ckpt):
    stock = read_model_checkpoint(stock_ckpt).float().eval()
    with seeded_layers(0):
        model = build_model(SE_MODEL, nc=80, init="identity")
    transfer_weights(stock_ckpt, model)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model_output(model.eval(), x), model_output(stock, x))
    with seeded_layers(0):
        paper = build_model(SE_MODEL, nc=80, init="paper")
    transfer_weights(stock_ckpt, paper)
    assert not torch.equal(model_output(paper.eval(), x), model_output(stock, x))  # the paper gate rescales features


def test_seeded_layers_start_corresponding_layers_alike_whatever_precedes_them():
    def built(ref, seed):
        with seeded_layers(seed):
            return build_model(ref, nc=3)

    torch.manual_seed(123)  # the global generator's state must not matter
    se_a = built(SE_MODEL, 7)
    stock = built("yolov5n.yaml", 7)
    torch.manual_seed(456)
    se_b = built(SE_MODEL, 7)
    assert all(torch.equal(v, se_b.state_dict()[k]) for k, v in se_a.state_dict().items())  # reproducible
    # the head (after the inserted SE) and the first stock layer start identically in both models
    assert all(torch.equal(v, _head(stock)[k]) for k, v in _head(se_a).items())
    assert torch.equal(se_a.model[0].conv.weight, stock.model[0].conv.weight)
    assert torch.equal(se_a.model[10].cv1.conv.weight, stock.model[9].cv1.conv.weight)  # SPPF, shifted by one
    other = built(SE_MODEL, 8)
    assert not torch.equal(other.model[-1].cv3[0][-1].weight, se_a.model[-1].cv3[0][-1].weight)
    state = torch.random.get_rng_state()
    built(SE_MODEL, 7)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left as it was


def test_layer_roles_name_rows_by_content_not_position():
    d = {"backbone": [[-1, 1, "Conv", [16, 3]], [-1, 1, "SE", [16]], [-1, 1, "Conv", [16, 3]]],
         "head": [[[0, 2], 1, "Detect", ["nc"]]]}
    assert layer_roles(d) == ['Conv:[16, 3]#0', 'SE:[16]#0', 'Conv:[16, 3]#1', 'Detect:["nc"]#0']


def test_attention_learning_rate_gets_its_own_parameter_groups():
    from yolo_attn.train import AttnDetectionTrainer, attention_parameters

    model = build_model("yolov5n-cbam-neck.yaml", nc=2)
    attn = attention_parameters(model)
    assert attn
    trainer = AttnDetectionTrainer.__new__(AttnDetectionTrainer)  # only build_optimizer's own state
    trainer.attn_lr = 0.1
    opt = trainer.build_optimizer(model, name="SGD", lr=0.01, momentum=0.9, decay=5e-4)
    ids = {id(p) for p in attn}
    groups = opt.param_groups
    attn_groups = [g for g in groups if id(g["params"][0]) in ids]
    assert groups[:3] == [g for g in groups if g not in attn_groups] and attn_groups  # Ultralytics' 3 groups first
    for g in groups:
        mine = [id(p) in ids for p in g["params"]]
        assert all(mine) or not any(mine)
        assert g["lr"] == pytest.approx(0.001 if all(mine) else 0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {g["param_group"] for g in attn_groups} <= {"bias", "weight", "bn"}  # warm-up treats each like its source
    assert sum(len(g["params"]) for g in attn_groups) == len(attn)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "x"])
def test_attention_learning_rate_must_be_positive(bad):
    from yolo_attn.train import train

    with pytest.raises(ValueError, match="attn_lr"):
        train(model="yolov5n.yaml", attn_lr=bad)


def test_attn_init_on_a_checkpoint_model_is_refused_clearly(stock_ckpt):
    from yolo_attn.train import train

    with pytest.raises(ValueError, match="attn_init=identity: applies to a model YAML.*checkpoint"):
        train(model=str(stock_ckpt), attn_init="identity")


# ------------------------------------------------------------------------------------------------
# Pretrained sweeps (tiny: 24 training images, imgsz 64, 1 epoch)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    base = tmp_path_factory.mktemp("data")
    y = base / "tiny.yaml"
    write_dataset(base / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


def _records(out):
    from yolo_attn.compare.store import Store

    return {r.trial_id: r for r in Store(out).trial_records()}


@pytest.mark.slow
def test_pretrained_sweep_identity_start_seeded_in_any_order(tiny, stock_ckpt, tmp_path, capsys):
    from conftest import cli_output

    from conftest import run_compare
    from yolo_attn.compare.trial import FINE_TUNE_ARGS

    common = ["--data", tiny, "--seed-list", "0", "--epochs", "1", "--imgsz", "64", "--boot", "50", "--threads", "1",
              "--pretrained", stock_ckpt, "--quiet"]
    # the README's documented form (it failed: the trial rewrote the YAML of an already transferred .pt)
    rc, text = cli_output(capsys, "compare", "--models", "yolov5n.yaml", SE_MODEL, *common,
                          "--train-arg", "attn_init=identity", "--out", tmp_path / "a")
    assert rc == 0, text
    a = _records(tmp_path / "a")
    assert all(r.ok for r in a.values()), [r.error for r in a.values()]
    stock, se = a["yolov5n__seed0"], a["yolov5n-se-backbone-end__seed0"]
    # identity start: before training the SE model predicts exactly as the stock one (same validation losses)
    assert se.start == stock.start and se.start["loss"]
    assert se.head_start == stock.head_start == "new class outputs"  # 80 -> 2 classes
    md = (tmp_path / "a" / "summary.md").read_text()
    assert "mAP50-95 epoch 0" in md and "init identity" in md and "fine-tuning preset" in md
    assert "class outputs of the head start from scratch" in md
    config = (tmp_path / "a" / "config.json").read_text()
    assert f'"lr0": {FINE_TUNE_ARGS["lr0"]}' in config

    # the same sweep with the models in the other order, in this process: the same initial weights per seed
    run_compare(data=str(tiny), models=[SE_MODEL, "yolov5n.yaml"], seeds=[0], epochs=1, imgsz=64, pretrained=str(stock_ckpt),
            n_boot=50, out=str(tmp_path / "b"), progress=False, threads=1, baseline="yolov5n.yaml")
    b = _records(tmp_path / "b")
    for tid, rec in a.items():
        assert b[tid].predictions_sha256 == rec.predictions_sha256, tid
        assert b[tid].start == rec.start


@pytest.mark.slow
def test_pretrained_sweep_freezes_the_backbone_and_scales_the_attention_lr(tiny, stock_ckpt, tmp_path, capsys):
    from conftest import cli_output

    from yolo_attn.weights import load_checkpoint

    rc, text = cli_output(capsys, "compare", "--models", SE_MODEL, "--data", tiny, "--seed-list", "0", "--epochs", "1",
                          "--imgsz", "64", "--boot", "50", "--threads", "1", "--pretrained", stock_ckpt, "--quiet",
                          "--freeze", "backbone", "--attn-lr", "10", "--attn-init", "paper", "--out", tmp_path / "f")
    assert rc == 0, text
    (rec,) = _records(tmp_path / "f").values()
    assert rec.ok, rec.error
    assert rec.start is not None
    src = load_checkpoint(stock_ckpt).state_dict
    got = load_checkpoint(tmp_path / "f" / "trials" / rec.trial_id / "train" / "weights" / "last.pt").state_dict
    assert torch.equal(got["model.0.conv.weight"].float(), src["model.0.conv.weight"].float())  # frozen, as transferred
    assert torch.equal(got["model.10.cv2.conv.weight"].float(), src["model.9.cv2.conv.weight"].float())  # SPPF
    assert not torch.equal(got["model.11.conv.weight"].float(), src["model.10.conv.weight"].float())  # neck trains
    md = (tmp_path / "f" / "summary.md").read_text()
    assert "freeze backbone" in md and "attn_lr 10.0" in md and "init paper" in md
    assert "changed from yolo_attn's fine-tuning preset: attn_init" in md


def test_sweep_refuses_freeze_without_pretrained_and_attn_init_on_checkpoints(tiny, stock_ckpt, tmp_path):
    from conftest import run_compare

    kw = dict(data=str(tiny), seeds=1, epochs=1, imgsz=64, progress=False, threads=1)
    with pytest.raises(ValueError, match="freeze=backbone: freezes pretrained layers; give --pretrained"):
        run_compare(models=["yolov5n.yaml"], train_args={"freeze": "backbone"}, out=str(tmp_path / "a"), **kw)
    with pytest.raises(ValueError, match="attn_init=identity: applies to model YAMLs.*checkpoint"):
        run_compare(models=[str(stock_ckpt)], pretrained=str(stock_ckpt), out=str(tmp_path / "b"), **kw)
    with pytest.raises(ValueError, match="attn_lr"):
        run_compare(models=["yolov5n.yaml"], train_args={"attn_lr": -1.0}, out=str(tmp_path / "c"), **kw)
    assert not any((tmp_path / d / "config.json").exists() for d in "abc")
