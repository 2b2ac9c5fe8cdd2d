"""Every registered layer in Ultralytics' task models, and the shipped task configs (issue 39: segment, pose, obb,
classify).

The task models are Ultralytics' ``-seg``, ``-pose``, ``-obb`` and ``-cls`` YAMLs of YOLOv8, YOLO11, YOLO26 and YOLO12
(``yolo_attn.configs.task_bases()``), built by the task's own model class (``SegmentationModel``, ``PoseModel``,
``OBBModel``, ``ClassificationModel``). Each registered layer is inserted before SPPF (at the end of the backbone where
there is none: YOLO12, the classifiers) with inferred channels:

- at scale n every layer, chained in one model per task base, with real weights: the model is built (its stride
  probe runs through the task head), the inserted layers have the channels Ultralytics' scaling gives, and a 64x64
  forward gives the task's outputs (finite; mask prototypes for segment, class probabilities for classify);
- at s, m, l and x two light gates (SE, ECA) chained on the meta device (construction checks every channel
  dependent option; a meta forward gives each layer's output channels); tests/test_layers_bases.py builds every
  layer at every scale of the detection models, whose backbones the task models share.

Every shipped task config builds by its scaled name (``yolo11n-seg-cbam-neck.yaml``) at n on the meta device with
the task and scale Ultralytics reads from the name, the task head as its last row (tests/test_transfer_tasks.py
builds one per task base and placement for real, with the stock weights).
"""

from __future__ import annotations

import pytest
import torch
from conftest import SPECS, default_row, seeded
from test_layers_bases import check_block, expected_out, out_channels, with_rows_before_sppf
from test_transfer_bases import tensors
from ultralytics.nn.tasks import guess_model_task, parse_model, yaml_model_load
from ultralytics.utils.ops import make_divisible

from yolo_attn._ultralytics.head import task_model_class
from yolo_attn.configs import TASK_PLACEMENTS, config_dir, shipped_configs, task_bases
from yolo_attn.placement import PlacementError, make_yaml

TASK_BASES = task_bases()
TASK_NAMES = {"seg": "segment", "pose": "pose", "obb": "obb", "cls": "classify"}  # file suffix -> Ultralytics' task
HEADS = {"seg": ("Segment", "Segment26"), "pose": ("Pose", "Pose26"), "obb": ("OBB", "OBB26"), "cls": ("Classify",)}
TASK_CONFIGS = [c for c in shipped_configs() if c.task]
IMG = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def _suffix(base: str) -> str:
    return base[: -len(".yaml")].partition("-")[2]


def check_task_outputs(model, suffix: str) -> None:
    """A 64x64 eval forward: every output finite; the mask prototypes (32 at 1/4 of the input) of a segmentation
    model, the class probabilities (summing to 1) of a classifier."""
    with torch.no_grad():
        out = tensors(model.eval()(IMG))
    assert out and all(torch.isfinite(t).all() for t in out)
    if suffix == "seg":
        assert any(tuple(t.shape[-3:]) == (32, 16, 16) for t in out), [tuple(t.shape) for t in out]
    if suffix == "cls":  # Classify in eval: (softmax, logits)
        probs = out[0]
        assert probs.shape == (1, 1000) and (probs >= 0).all()
        torch.testing.assert_close(probs.sum(1), torch.ones(1))


@pytest.mark.parametrize("base", TASK_BASES)
def test_every_layer_in_the_n_task_model(base):
    """Every registered layer chained before SPPF of the n task model, real weights: channels inferred, task outputs."""
    seeded(0)
    d, pos = with_rows_before_sppf(base, [default_row(s) for s in SPECS], "n")
    model = task_model_class(d)(d, verbose=False)
    assert guess_model_task(model) == TASK_NAMES[_suffix(base)]
    assert type(model.model[-1]).__name__ in HEADS[_suffix(base)]
    chans = out_channels(model.model, IMG)
    for k, spec in enumerate(SPECS):
        j = pos + k
        assert isinstance(model.model[j], spec.cls), (spec.name, type(model.model[j]))
        assert chans[j] == expected_out(spec, chans[j - 1], base, "n"), f"{spec.name} in {base}"
        if spec.kind == "block":
            check_block(model.model[j], base, "n")
    check_task_outputs(model, _suffix(base))


LIGHT = [s for s in SPECS if s.name in ("SE", "ECA")]


@pytest.mark.parametrize("scale", "smlx")
@pytest.mark.parametrize("base", TASK_BASES)
def test_light_gates_at_every_scale(base, scale):
    """SE and ECA chained before SPPF, on the meta device: channels inferred at each scale (the P5 width capped by
    the base's max_channels)."""
    d, pos = with_rows_before_sppf(base, [default_row(s) for s in LIGHT], scale)
    with torch.device("meta"):
        seq, _ = parse_model(d, ch=3, verbose=False)
        chans = out_channels(seq, torch.zeros(1, 3, 128, 128))
    _depth, width, max_channels = yaml_model_load(base)["scales"][scale]
    last = d["backbone"][pos - 1][3][0]
    assert chans[pos - 1] == make_divisible(min(last, max_channels) * width, 8)
    for k, spec in enumerate(LIGHT):
        assert isinstance(seq[pos + k], spec.cls) and chans[pos + k] == chans[pos - 1], f"{spec.name} at {base} {scale}"


@pytest.mark.parametrize("cfg", [pytest.param(c, id=c.scaled("n")[: -len(".yaml")]) for c in TASK_CONFIGS])
def test_shipped_task_config_builds(cfg, scale="n"):
    """By its scaled name: Ultralytics reads the scale and the task; the task head is the last row, read by nothing
    else; the gate sits where the generator put it (meta-device build: every channel is inferred)."""
    name = cfg.scaled(scale)
    d = yaml_model_load(name)
    assert d["scale"] == scale and (config_dir() / cfg.filename).is_file()
    assert guess_model_task(name) == guess_model_task(d) == TASK_NAMES[cfg.task]
    _, imap = make_yaml(cfg.base, cfg.layer, list(cfg.args), list(cfg.placements))
    with torch.device("meta"):
        seq, _ = parse_model(d, ch=3, verbose=False)
    assert type(seq[-1]).__name__ in HEADS[cfg.task] and imap.map[len(imap.map) - 1] == len(seq) - 1
    assert all(len(seq) - 1 not in (m.f if isinstance(m.f, list) else [m.f]) for m in seq)  # the head feeds nothing
    assert [j for j, m in enumerate(seq) if type(m).__name__ == cfg.layer] == imap.inserted


def test_task_catalogue():
    """Six light gates at each task's placements on every task base of the four newer bases; nothing else."""
    assert len(TASK_BASES) == 16 and all(_suffix(b) in TASK_NAMES for b in TASK_BASES)
    got = {(c.base, c.layer, c.placements) for c in TASK_CONFIGS}
    want = {(b, g, (p,)) for b in TASK_BASES for g in ("SE", "ECA", "CBAM", "CoordAtt", "SimAM", "EMA")
            for p in TASK_PLACEMENTS[_suffix(b)]}  # fmt: skip
    assert got == want and len(TASK_CONFIGS) == len(want) == 192
    assert "yolo11-seg-cbam-neck.yaml" in {c.filename for c in TASK_CONFIGS}


@pytest.mark.parametrize("base", ["yolov8-cls.yaml", "yolo11-cls.yaml", "yolo26-cls.yaml", "yolo12-cls.yaml"])
def test_classifier_has_no_neck(base):
    """A classification model has no neck: neck, head-in and the -neck scopes are refused, naming the base and the
    placements it has; backbone-end is after the last backbone row, which Classify reads."""
    for p in ("neck", "head-in", "c3k2-neck" if base != "yolov8-cls.yaml" else "c2f-neck"):
        with pytest.raises(PlacementError, match=rf"base {base}, placement {p}: .*Placements on base {base}: backbone-end, backbone") as refused:
            make_yaml(base, "SE", [], [p])
    have = set(str(refused.value).split(f"Placements on base {base}: ")[1].split(" (and INT")[0].split(", "))
    assert {"backbone-end", "backbone", "fmm"} <= have
    assert not {"neck", "head-in", "sppf", "c2f-neck", "c3k2-neck", "fmm-neck"} & have
    d, imap = make_yaml(base, "SE", [], ["backbone-end"])
    rows = d["backbone"] + d["head"]
    assert rows[-1][2] == "Classify" and rows[-2][2] == "SE" and imap.inserted == [len(rows) - 2]
    with pytest.raises(PlacementError, match=r"is the detection head \(Classify\)"):
        make_yaml(base, "SE", [], [len(rows) - 2])


@pytest.mark.parametrize("base", ["yolo26-seg.yaml", "yolo26-pose.yaml", "yolo26-obb.yaml", "yolo11-pose.yaml"])
def test_task_head_in_and_head_never_a_target(base):
    """head-in puts one layer on each input of the task head (YOLO26's Segment26/Pose26/OBB26 too); the head itself
    is never a placement target."""
    d, imap = make_yaml(base, "ECA", [], ["head-in"])
    rows = d["backbone"] + d["head"]
    head = rows[-1]
    assert head[2] in HEADS[_suffix(base)] and head[0] == imap.inserted and len(imap.inserted) == 3
    with pytest.raises(PlacementError, match=rf"is the detection head \({head[2]}\)"):
        make_yaml(base, "ECA", [], [len(imap.map) - 1])
