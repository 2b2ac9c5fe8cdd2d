"""Every registered layer in YOLOv8, YOLO11, YOLO26 and YOLO12 models, as tests/test_layers.py does for YOLOv5.

Each layer is inserted before SPPF of Ultralytics' ``yolov8.yaml`` / ``yolo11.yaml`` / ``yolo26.yaml`` (and its
P2 and P6 models), at the end of the backbone of ``yolo12.yaml`` (which has no SPPF), with inferred channels.
At scale n it is built with real weights, run and fused, one model per layer. At s, m, l and x one model per
base carries every layer chained (on the meta device: construction checks every channel/depth dependent
option, and a meta forward gives every layer's output channels without computing anything); each base's
per-scale ``max_channels`` (512 at m/l/x), the c3k units of ``C3k2``-based blocks at m/l/x and the scaled
residual of ``A2C2f``-based blocks at l/x are checked.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import BLOCKS, SPECS, _shift, default_row, model_output, seeded, spec_params
from ultralytics.nn.modules.block import A2C2f, C3k, C3k2
from ultralytics.nn.tasks import DetectionModel, parse_model, yaml_model_load
from ultralytics.utils.ops import make_divisible

BASES = ("yolov8.yaml", "yolo11.yaml", "yolo26.yaml", "yolo12.yaml")
META_BASES = (*BASES, "yolo26-p2.yaml", "yolo26-p6.yaml")  # the P2/P6 variants at every scale, on the meta device
IMG = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))


def with_rows_before_sppf(base: str, rows: list, scale: str) -> tuple[dict, int]:
    """Ultralytics' ``base`` at ``scale`` with ``rows`` inserted before SPPF (at the end of a backbone without one);
    (model dict, index of the first row)."""
    d = yaml_model_load(base)
    d["scale"] = scale
    pos = next((i for i, r in enumerate(d["backbone"]) if r[2] == "SPPF"), len(d["backbone"]))
    d["backbone"] = d["backbone"][:pos] + [copy.deepcopy(r) for r in rows] + d["backbone"][pos:]
    for i, r in enumerate(d["backbone"] + d["head"]):
        if i >= pos + len(rows):
            r[0] = _shift(r[0], pos, len(rows))
    return d, pos


def expected_out(spec, c_in: int, base: str, scale: str, c2: int = 512) -> int:
    """Output channels Ultralytics' scaling gives a block row ``[c2]`` (a preserve layer keeps ``c_in``)."""
    if spec.kind != "block":
        return c_in
    _depth, width, max_channels = yaml_model_load(base)["scales"][scale]
    return make_divisible(min(c2, max_channels) * width, 8)


def check_block(layer, base: str, scale: str) -> None:
    """Depth scaled like Ultralytics' blocks; C3k2-based blocks use C3k units at m/l/x (only there, for a [512] row);
    A2C2f-based blocks have the scaled residual and an MLP ratio of 1.2 at l/x only."""
    depth = yaml_model_load(base)["scales"][scale][0]
    assert len(layer.m) == max(round(3 * depth), 1), f"{type(layer).__name__}: depth not scaled at {scale}"
    if isinstance(layer, C3k2):
        assert all(isinstance(u, C3k) == (scale in "mlx") for u in layer.m), f"{type(layer).__name__}: c3k at {scale}"
    if isinstance(layer, A2C2f):
        assert (layer.gamma is not None) == (scale in "lx"), f"{type(layer).__name__}: residual at {scale}"
        c = layer.cv1.conv.out_channels
        hidden = layer.m[0][0].mlp[0].conv.out_channels
        assert hidden == int(c * (1.2 if scale in "lx" else 2.0)), f"{type(layer).__name__}: mlp_ratio at {scale}"


def out_channels(seq, x: torch.Tensor) -> list[int]:
    """Output channels of every layer (Detect aside) from one forward of a parse_model layer list."""
    outputs, chans = [], []
    for m in seq[:-1]:
        if m.f != -1:
            x = outputs[m.f] if isinstance(m.f, int) else [outputs[j] for j in m.f]
        x = m(x)
        outputs.append(x)
        chans.append(x.shape[1])
    return chans


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_in_new_base_n_and_fuse(spec, base):
    """The layer before SPPF of the n model: real channels, runs at 64x64, fuses to the same output."""
    seeded(0)
    d, pos = with_rows_before_sppf(base, [default_row(spec)], "n")
    model = DetectionModel(d, verbose=False).eval()
    layer = model.model[pos]
    assert isinstance(layer, spec.cls) and layer.type == f"{spec.cls.__module__}.{spec.cls.__qualname__}"
    chans = out_channels(model.model, IMG)
    assert chans[pos] == expected_out(spec, chans[pos - 1], base, "n")
    if spec.kind == "block":
        check_block(layer, base, "n")
    y = model_output(model, IMG)
    assert torch.isfinite(y).all()
    yf = model_output(model.fuse(verbose=False), IMG)
    torch.testing.assert_close(yf, y, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("scale", "nsmlx")
@pytest.mark.parametrize("base", META_BASES)
def test_every_layer_at_every_scale(base, scale):
    """Every registered layer chained before SPPF, on the meta device: channels inferred at each scale."""
    wide = [[-1, 3, s.name, [1024]] for s in BLOCKS]  # 1024 before scaling: capped by max_channels where it is 512
    d, pos = with_rows_before_sppf(base, [default_row(s) for s in SPECS] + wide, scale)
    with torch.device("meta"):
        seq, _ = parse_model(d, ch=3, verbose=False)
        chans = out_channels(seq, torch.zeros(1, 3, 128, 128))  # P6 of 128: 2x2 (BatchNorm needs more than one value)
    for k, (spec, c2) in enumerate([(s, 512) for s in SPECS] + [(s, 1024) for s in BLOCKS]):
        j = pos + k
        assert isinstance(seq[j], spec.cls)
        assert chans[j] == expected_out(spec, chans[j - 1], base, scale, c2), f"{spec.name} [{c2}] at {base} {scale}"
        if spec.kind == "block":
            check_block(seq[j], base, scale)
    _depth, width, max_channels = yaml_model_load(base)["scales"][scale]
    last = d["backbone"][pos - 1][3][0]  # the row before the inserted ones: capped by the base's max_channels
    assert chans[pos - 1] == make_divisible(min(last, max_channels) * width, 8)
    if scale in "mlx" and base != "yolov8.yaml":  # max_channels 512: P5 is 512 (m, l) / 768 (x) channels wide
        assert chans[pos - 1] == make_divisible(512 * width, 8)


def test_new_blocks_are_registered_without_collisions():
    from yolo_attn._ultralytics import ultralytics_names

    names = {s.name for s in BLOCKS}
    assert {"AttnC2f", "AttnC3k2", "FMMC2f", "FMMC3k2", "AttnA2C2f"} <= names
    assert not names & ultralytics_names()
