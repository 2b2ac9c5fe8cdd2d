"""Generic contract tests, parametrised over every registered layer (``yolo_attn.LAYERS``).

A module added to ``yolo_attn/modules/`` is covered by these tests without any edit here.
"""

from __future__ import annotations

import copy

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.ops import make_divisible

from yolo_attn import LAYERS

from conftest import (
    BLOCKS,
    C1,
    GATING,
    PRESERVE,
    SPECS,
    build_layer,
    default_row,
    model_output,
    seeded,
    sppf_index,
    spec_params,
)

ALL = spec_params(SPECS)


def _input(shape, dtype=torch.float32, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_registry_is_populated():
    assert SPECS, "no layer registered"
    assert len({s.name for s in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert spec.kind in ("preserve", "block"), spec
        assert isinstance(spec.year, int) and 1990 < spec.year < 2100, spec
        assert spec.paper and spec.family, spec
        assert spec.cls.__doc__, f"{spec.name}: cite the paper in the class or module docstring"


@pytest.mark.parametrize(
    "args, pos, kw",
    [([16, 7, {"fuse": "add"}], [16, 7], {"fuse": "add"}), ([16], [16], {}), ([], [], {}), (None, [], {}),
     ([{"init": "identity"}], [], {"init": "identity"}), ((8, {"k": 3}), [8], {"k": 3}), ([{"a": 1}, 2], [{"a": 1}, 2], {})],
)
def test_split_options_takes_only_a_trailing_mapping(args, pos, kw):
    """The one splitter of a YAML row's args (bridge, placement, C3Attn): values, then keyword options."""
    from yolo_attn.registry import split_options

    before = copy.deepcopy(args)
    got_pos, got_kw = split_options(args)
    assert (got_pos, got_kw) == (pos, kw)
    assert args == before, "split_options must not change its input"
    if args and isinstance(args[-1], dict):
        got_kw["extra"] = 1
        assert "extra" not in args[-1], "the options mapping returned must be a copy"


# ------------------------------------------------------------------------------------------------
# shape, dtype, channels
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("spec", ALL)
def test_output_shape_and_dtype(spec, dtype):
    seeded(0)
    m = build_layer(spec).to(dtype)
    x = _input((2, C1, 12, 10), dtype)
    for train in (True, False):
        m.train(train)
        y = m(x)
        assert y.shape == x.shape, f"{spec.name}: output {tuple(y.shape)} for input {tuple(x.shape)}"
        assert y.dtype == dtype
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("c1", [16, 80, 256, 1280])
@pytest.mark.parametrize("spec", spec_params(PRESERVE))
def test_preserve_layers_keep_channels(spec, c1):
    """Channel-preserving layers work at the channel counts they meet in YOLOv5 n..x (16 .. 1280)."""
    seeded(0)
    m = spec.cls(c1).eval()
    x = _input((1, c1, 4, 6))
    with torch.no_grad():
        assert m(x).shape == x.shape


@pytest.mark.parametrize("spec", spec_params(BLOCKS))
def test_block_layers_change_channels(spec):
    seeded(0)
    m = spec.cls(32, 48, 2)
    y = m(_input((2, 32, 8, 8)))
    assert y.shape == (2, 48, 8, 8)


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------
def _grads_after_backward(m, x, seed=2):
    m.zero_grad(set_to_none=True)
    y = m(x)
    w = _input(tuple(y.shape), seed=seed)
    (y * w).sum().backward()
    return {n: p.grad for n, p in m.named_parameters()}


def _params_that_never_learn(m, x, steps=4):
    """Names of parameters still at their start after ``steps`` SGD steps on random losses."""
    start = copy.deepcopy(m.state_dict())
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    for step in range(steps):
        _grads_after_backward(m, x, seed=2 + step)
        opt.step()
    return [n for n, p in m.named_parameters() if torch.equal(p.detach(), start[n])]


@pytest.mark.parametrize("spec", ALL)
def test_gradients_reach_every_parameter(spec):
    """With the paper's initialisation one backward pass gives every parameter a nonzero gradient.

    Exception: a paper whose own initialisation starts the module as the identity (Non-local's zero BN scale)
    blocks the gradient of the parameters behind that zero at step 0; then the module must be the identity at
    init, and every parameter must still learn within a few SGD steps.
    """
    seeded(0)
    m = build_layer(spec).train()
    x = _input((2, C1, 9, 7)).requires_grad_(True)
    grads = _grads_after_backward(m, x)
    assert x.grad is not None and torch.any(x.grad != 0), f"{spec.name}: no gradient reaches the input"
    dead = [n for n, g in grads.items() if g is None or not torch.any(g != 0)]
    if dead:
        with torch.no_grad():
            identity_start = torch.equal(m.eval()(x), x)
        assert identity_start, f"{spec.name}: no gradient reaches {dead}"
        assert len(dead) < len(grads), f"{spec.name}: no parameter gets a gradient"
        m.train()
        frozen = _params_that_never_learn(m, x.detach())
        assert not frozen, f"{spec.name}: these parameters never learn: {frozen}"


@pytest.mark.parametrize("spec", spec_params(PRESERVE))
def test_identity_init_can_learn(spec):
    """Under init='identity' parameters behind the zero-initialised layer get no gradient at step 0 (expected),
    but the zero-initialised parameters do, and after a few SGD steps every parameter has moved off its start.

    A gate whose weight *and* BN scale are both zero would stay dead forever; this catches it.
    """
    seeded(0)
    m = build_layer(spec, init="identity").train()
    assert list(m.parameters()), f"{spec.name}: no parameter under init='identity': it would stay the identity"
    x = _input((2, C1, 9, 7))
    grads = _grads_after_backward(m, x)
    assert any(g is not None and torch.any(g != 0) for g in grads.values()), (
        f"{spec.name}: under init='identity' no parameter gets a gradient"
    )
    frozen = _params_that_never_learn(m, x)
    assert not frozen, f"{spec.name}: under init='identity' these parameters never learn: {frozen}"


# ------------------------------------------------------------------------------------------------
# determinism
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ALL)
def test_deterministic_under_fixed_seed(spec):
    seeded(123)
    a = build_layer(spec)
    seeded(123)
    b = build_layer(spec)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{spec.name}: {k} differs between two constructions with seed 123"
    x = _input((2, C1, 8, 6))
    for train in (False, True):  # eval first: a train-mode forward updates BatchNorm running statistics
        a.train(train), b.train(train)
        with torch.no_grad():
            ya, ya2, yb = a(x), a(x), b(x)
        assert torch.equal(ya, ya2), f"{spec.name}: two forwards differ (train={train})"
        assert torch.equal(ya, yb), f"{spec.name}: equally seeded modules differ (train={train})"


# ------------------------------------------------------------------------------------------------
# identity start
# ------------------------------------------------------------------------------------------------
def _identity_cases():
    cases = []
    for spec in PRESERVE:
        fuses = ("mul", "add") if spec.gating else (None,)
        for fuse in fuses:
            cases.append(pytest.param(spec, fuse, id=f"{spec.name}-{fuse}" if fuse else spec.name))
    return cases


@pytest.mark.parametrize("spec,fuse", _identity_cases())
def test_identity_init_is_exact(spec, fuse):
    seeded(0)
    opts = {"init": "identity"} | ({"fuse": fuse} if fuse else {})
    m = build_layer(spec, **opts)
    for shape in ((2, C1, 9, 7), (1, C1, 1, 1)):
        x = _input(shape, seed=5) * 3
        for train in (True, False):
            if train and shape[0] == 1:
                continue  # BatchNorm cannot train on one value per channel
            m.train(train)
            with torch.no_grad():
                y = m(x)
            assert torch.equal(y, x), (
                f"{spec.name}{opts} is not the identity at {shape} (train={train}): "
                f"max |y-x| = {(y - x).abs().max().item():.3g}"
            )


@pytest.mark.parametrize("spec", spec_params(GATING))
def test_gating_layers_accept_both_fuse_modes(spec):
    seeded(0)
    x = _input((2, C1, 6, 6))
    outs = []
    for fuse in ("mul", "add"):
        seeded(0)
        m = build_layer(spec, fuse=fuse).eval()
        with torch.no_grad():
            outs.append(m(x))
        assert outs[-1].shape == x.shape
    assert not torch.equal(outs[0], outs[1]), f"{spec.name}: fuse='mul' and fuse='add' give the same output"


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_channels_last(spec):
    """Ultralytics' AutoBackend converts PyTorch models with ``.to(memory_format=torch.channels_last)``."""
    seeded(0)
    m = build_layer(spec).eval()
    x = _input((1, C1, 9, 7))
    with torch.no_grad():
        y = m(x)
        m.to(memory_format=torch.channels_last)
        y2 = m(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y2, y, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# batch 1, odd sizes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ALL)
def test_eval_batch_one(spec):
    seeded(0)
    m = build_layer(spec).eval()
    x = _input((1, C1, 10, 10))
    with torch.no_grad():
        assert m(x).shape == x.shape


@pytest.mark.parametrize("spec", ALL)
def test_train_batch_one(spec):
    """Ultralytics' last training batch can hold a single image: training mode must cope with batch 1."""
    seeded(0)
    m = build_layer(spec).train()
    x = _input((1, C1, 10, 10)).requires_grad_(True)
    y = m(x)
    assert y.shape[0] == 1 and torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("hw", [(7, 5), (1, 1), (1, 9), (13, 2)], ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("spec", ALL)
def test_odd_spatial_sizes(spec, hw):
    seeded(0)
    m = build_layer(spec)
    x = _input((2, C1, *hw))
    for train in (True, False):
        m.train(train)
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape, f"{spec.name} at {hw} (train={train}): {tuple(y.shape)}"
        assert torch.isfinite(y).all()


# ------------------------------------------------------------------------------------------------
# inside real YOLOv5 models at each scale
# ------------------------------------------------------------------------------------------------
SCALES = {"n": (0.33, 0.25), "x": (1.33, 1.25)}  # Ultralytics' yolov5.yaml depth/width multiples
IMG = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))


def _out_channels(model, j):
    """Output channels of layer ``j`` as recorded by a probe forward (robust to any layer type)."""
    return model._yolo_attn_test_channels[j]


def _record_channels(model):
    chans = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, j=j: chans.__setitem__(j, o.shape[1])) for j, m in
             enumerate(model.model[:-1])]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    model._yolo_attn_test_channels = chans


def _check_inserted(model, spec, scale, p6=False, pos=None):
    pos = sppf_index(p6) if pos is None else pos
    layer = model.model[pos]
    assert layer.type == f"{spec.cls.__module__}.{spec.cls.__qualname__}", layer.type
    assert isinstance(layer, spec.cls)
    if not hasattr(model, "_yolo_attn_test_channels"):
        _record_channels(model)
    c1 = _out_channels(model, pos - 1)
    if spec.kind == "block":
        depth, width = SCALES[scale]
        c2 = make_divisible(512 * width, 8)
        assert _out_channels(model, pos) == c2, "block width not scaled like C3"
        assert len(layer.m) == max(round(3 * depth), 1), "block depth not scaled like C3"
    else:
        assert _out_channels(model, pos) == c1, f"{spec.name} changed channels {c1} -> {_out_channels(model, pos)}"


def _build_and_fuse(path, specs, scale):
    model = DetectionModel(str(path), verbose=False)
    pos = sppf_index()
    for k, spec in enumerate(specs):
        _check_inserted(model, spec, scale, pos=pos + k)
    model.eval()
    y = model_output(model, IMG)
    assert y.shape[0] == 1 and torch.isfinite(y).all()
    fused = model.fuse(verbose=False)
    yf = model_output(fused, IMG)
    names = ", ".join(s.name for s in specs)
    torch.testing.assert_close(yf, y, rtol=1e-3, atol=1e-3, msg=lambda m: f"{names}: fused != unfused: {m}")


@pytest.mark.parametrize("spec", ALL)
def test_in_yolov5n_and_fuse(spec, make_yaml):
    """Layer before SPPF in yolov5n: builds with the scale's real channels, runs at 64x64, and fuses."""
    seeded(0)
    _build_and_fuse(make_yaml("n", default_row(spec), tag=spec.name.lower()), [spec], "n")


def test_in_yolov5x_every_layer_and_fuse(make_yaml):
    """Every registered layer, chained before SPPF of one yolov5x (channels 640..1280), runs and fuses.

    One model instead of one per layer: building yolov5x runs a 256x256 stride probe that costs seconds.
    Per-layer isolation comes from the yolov5n test above.
    """
    seeded(0)
    # AttnA2C2f is YOLO12's block: at l/x Ultralytics builds A2C2f with its scaled residual, which needs as many
    # output channels as input ones; it is built at every scale in YOLO12 (tests/test_layers_bases.py).
    specs = [s for s in SPECS if s.name != "AttnA2C2f"]
    _build_and_fuse(make_yaml("x", [default_row(s) for s in specs], tag="all"), specs, "x")


@pytest.mark.parametrize("spec", spec_params([LAYERS.get("SE"), LAYERS.get("C3Attn")]))
def test_in_yolov5_p6(spec, make_yaml):
    seeded(0)
    model = DetectionModel(str(make_yaml("n", default_row(spec), tag=spec.name.lower(), p6=True)), verbose=False)
    _check_inserted(model, spec, "n", p6=True)
    assert len(model.stride) == 4 and model.stride.max() == 64
    y = model_output(model.eval(), IMG)
    assert torch.isfinite(y).all()


@pytest.fixture(scope="module")
def stock_yolov5n():
    seeded(0)
    return DetectionModel("yolov5n.yaml", verbose=False).eval()


@pytest.mark.parametrize("spec", spec_params(PRESERVE))
def test_identity_start_keeps_stock_predictions(spec, make_yaml, stock_yolov5n):
    """yolov5n with the layer inserted (init='identity') and stock weights transferred predicts exactly as stock."""
    stock = stock_yolov5n
    model = DetectionModel(str(make_yaml("n", default_row(spec, init="identity"), tag=spec.name.lower())), verbose=False)
    pos = sppf_index()
    sd = {}
    for k, v in stock.state_dict().items():
        _, i, rest = k.split(".", 2)
        i = int(i)
        sd[f"model.{i + (i >= pos)}.{rest}"] = v
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected
    assert all(k.startswith(f"model.{pos}.") for k in missing), missing
    model.eval()
    assert torch.equal(model_output(model, IMG), model_output(stock, IMG))
