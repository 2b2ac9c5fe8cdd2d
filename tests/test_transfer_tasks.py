"""Transfer by value into the task configs (issue 39): segment, pose, obb and classify models.

The stock checkpoints are made here, nothing is downloaded: Ultralytics' ``-seg``, ``-pose``, ``-obb`` and ``-cls``
YAMLs of YOLOv8, YOLO11, YOLO26 and YOLO12 built at n by the task's own model class, every tensor filled with seeded
random values (each tensor unique, so it can be found by value), saved as Ultralytics does (``torch.save`` of the
pickled model) or by ``yolo_attn.weights.save_model_checkpoint``, alternately. For the shipped task configs the
generator's index map says where each stock layer must land: every stock tensor arrives there and nowhere else, the
task head's own tensors included (mask prototypes and coefficients, YOLO26's semantic branch, keypoint branches,
the angle branch, the classifier), and new tensors keep their initialisation. With ``init=identity`` the config
predicts exactly what the stock model predicts, for every output of the task head. A different class count or
keypoint shape keeps everything but the outputs that depend on it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_transfer import arrivals, randomise
from test_transfer_bases import _Layers, one_thread, tensors  # noqa: F401 (one_thread: a fixture)
from ultralytics.nn.tasks import yaml_model_load

from yolo_attn._ultralytics.head import task_model_class
from yolo_attn.cli import main
from yolo_attn.configs import LIGHT_GATES, TASK_PLACEMENTS, shipped_configs, task_bases
from yolo_attn.models import build_model
from yolo_attn.placement import make_yaml
from yolo_attn.weights import load_checkpoint, save_model_checkpoint, transfer_weights

TASK_BASES = task_bases()
SEEDS = {base: 40 + i for i, base in enumerate(TASK_BASES)}
TASK_CONFIGS = [c for c in shipped_configs() if c.task]
# the head's own tensors that must arrive (relative to the head), per task; YOLO26 adds its own
HEAD_TENSORS = {"seg": ("proto.cv1.", "cv4.0.2."), "pose": ("cv4.0.0.",), "obb": ("cv4.0.2.",), "cls": ("linear.",)}
HEAD_TENSORS_26 = {"seg": ("proto.semseg.2.", "proto.feat_fuse.", "one2one_cv4."), "pose": ("cv4_kpts.", "cv4_sigma.", "one2one_cv4_kpts."),
                   "obb": ("one2one_cv4.",), "cls": ()}  # fmt: skip


def _suffix(base: str) -> str:
    return base[: -len(".yaml")].partition("-")[2]


def _dict(name: str, scale: str = "n", **changes) -> dict:
    d = yaml_model_load(name)
    d["scale"] = scale
    d.update(changes)
    return d


@pytest.fixture(scope="module")
def stock(tmp_path_factory, one_thread):
    """{task base: (randomised stock model, checkpoint path, its Checkpoint)}, built on first use."""
    out, folder = {}, tmp_path_factory.mktemp("stock_tasks")

    def get(base: str):
        if base not in out:
            d = _dict(base)
            model = randomise(task_model_class(d)(d, verbose=False), SEEDS[base]).eval()
            path = folder / f"{base[:-5]}.pt"
            if TASK_BASES.index(base) % 2:  # as Ultralytics saves a model: the pickled module
                torch.save({"model": copy.deepcopy(model), "ema": None, "train_args": {}}, path)
            else:
                save_model_checkpoint(model, path, half=False)
            out[base] = (model, path, load_checkpoint(path))
        return out[base]

    return get


def _by_value_cases():
    """One config per task base and placement by default (the gate rotating), every one with -m slow."""
    cases = []
    for c in TASK_CONFIGS:
        turn = 2 * TASK_BASES.index(c.base) + TASK_PLACEMENTS[c.task].index(c.placements[0])
        quick = LIGHT_GATES.index(c.layer) == turn % len(LIGHT_GATES)
        cases.append(pytest.param(c, id=c.scaled("n")[: -len(".yaml")], marks=() if quick else (pytest.mark.slow,)))
    return cases


@pytest.mark.parametrize("cfg", _by_value_cases())
def test_task_config_by_value(stock, cfg, capsys):
    """Every stock tensor at its shifted place (the generator's index map), the head's own tensors included."""
    model, path, ckpt = stock(cfg.base)
    _, imap = make_yaml(cfg.base, cfg.layer, list(cfg.args), list(cfg.placements))
    target = _Layers(yaml_model_load(cfg.scaled("n")))
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(path if cfg.placements[0] == "backbone-end" else ckpt, target)  # from the file, or as read
    assert report.mapping == imap.map
    sd = model.state_dict()
    ok, wrong = arrivals(sd, target.state_dict(), imap.map)
    assert sorted(ok) == sorted(k for k, v in sd.items() if v.is_floating_point()) and not wrong
    assert report.tensors == report.source_tensors == len(sd) and not report.class_dependent
    assert report.head_start() == "transferred"  # the sweep's report words how the head started from this
    head = f"model.{len(model.model) - 1}."
    task = _suffix(cfg.base)
    for p in HEAD_TENSORS[task] + (HEAD_TENSORS_26[task] if cfg.stem.startswith("yolo26") else ()):
        assert any(k.startswith(head + p) for k in ok), p
    for k in report.new_keys:
        assert torch.equal(target.state_dict()[k], init[k]), k
    with capsys.disabled():
        print(f"\n{cfg.scaled('n')}: {report.summary()}")


def _identity_config(base: str) -> str:
    """One shipped config per task base, the gate and the placement rotating."""
    i = TASK_BASES.index(base)
    places = TASK_PLACEMENTS[_suffix(base)]
    cfg = next(c for c in TASK_CONFIGS if c.base == base and c.layer == LIGHT_GATES[i % 6] and c.placements == (places[i % 2],))
    return cfg.scaled("n")


def check_task_outputs(want: list, task: str, x: torch.Tensor) -> None:
    """The task's own outputs are among the compared tensors: mask prototypes (32 at 1/4 of the input), class
    probabilities; keypoints and angles are channels of the decoded predictions and of the raw branch outputs."""
    h, w = x.shape[-2] // 4, x.shape[-1] // 4
    if task == "seg":
        assert any(tuple(t.shape[-3:]) == (32, h, w) for t in want), [tuple(t.shape) for t in want]
    if task == "cls":
        assert want[0].shape == (x.shape[0], 1000)
        torch.testing.assert_close(want[0].sum(1), torch.ones(x.shape[0]))


@pytest.mark.parametrize("base", TASK_BASES)
def test_identity_start_predicts_like_stock(stock, base, capsys):
    """``init=identity`` + the transferred stock weights: every output tensor of the task model as the stock model's
    (masks' prototypes and coefficients, keypoints, angles, class probabilities; YOLO26: both heads' outputs)."""
    model = stock(base)[0]
    config = _identity_config(base)
    target = build_model(config, init="identity")
    assert type(target) is type(model)
    report = transfer_weights(model, target)
    assert report.tensors == report.source_tensors
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want, got = tensors(model.eval()(x)), tensors(target.eval()(x))
    assert len(want) == len(got) >= 2 and all(torch.isfinite(t).all() for t in want)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    check_task_outputs(want, _suffix(base), x)
    worst = max(float((g - w).abs().max()) for w, g in zip(want, got))
    with capsys.disabled():
        print(f"\n{config}: {report.summary()}; {len(want)} output tensors, max |target - stock| {worst:.3g}")


def _outputs(head: int, task: str, v26: bool, changes: dict) -> set[str]:
    """Stock keys of the outputs that depend on the changed class count / keypoint shape (from Ultralytics' heads)."""
    if task == "cls":
        return {f"model.{head}.linear.{p}" for p in ("weight", "bias")}
    names = []
    if "nc" in changes:
        names += [f"cv3.{j}.2" for j in range(3)] + ([f"one2one_cv3.{j}.2" for j in range(3)] if v26 else [])
        names += ["proto.semseg.2"] if task == "seg" and v26 else []
    if "kpt_shape" in changes and v26:
        names += [f"{a}.{j}" for a in ("cv4_kpts", "cv4_sigma", "one2one_cv4_kpts", "one2one_cv4_sigma") for j in range(3)]
    elif "kpt_shape" in changes:
        names += [f"cv4.{j}.2" for j in range(3)]
    return {f"model.{head}.{n}.{p}" for n in names for p in ("weight", "bias")}


@pytest.mark.parametrize(
    "config,changes",
    [
        ("yolo26n-seg-cbam-neck.yaml", {"nc": 3}),
        ("yolo11n-seg-se-backbone-end.yaml", {"nc": 1}),
        ("yolo26n-pose-eca-neck.yaml", {"nc": 2, "kpt_shape": [4, 3]}),
        ("yolo11n-pose-simam-neck.yaml", {"kpt_shape": [5, 2]}),
        ("yolo26n-obb-coordatt-backbone-end.yaml", {"nc": 15}),
        ("yolov8n-obb-ema-neck.yaml", {"nc": 15}),
        ("yolo11n-cls-se-backbone.yaml", {"nc": 10}),
        ("yolo26n-cls-eca-backbone-end.yaml", {"nc": 10}),
    ],
)
def test_other_class_count_or_keypoint_shape_keeps_the_rest(stock, config, changes):
    """nc and/or kpt_shape of the target differ: only the outputs that depend on them keep their initialisation; the
    branches before them are rebuilt at the stock width, so every other stock tensor arrives by value."""
    cfg = next(c for c in TASK_CONFIGS if c.scaled("n") == config)
    model = stock(cfg.base)[0]
    d = _dict(config, **changes)
    target = task_model_class(d)(d, verbose=False)
    report = transfer_weights(model, target)
    _, imap = make_yaml(cfg.base, cfg.layer, [], list(cfg.placements))
    outputs = _outputs(len(model.model) - 1, cfg.task, cfg.stem.startswith("yolo26"), changes)
    head = imap.map[len(model.model) - 1]
    assert set(report.class_dependent) == {k.replace(f"model.{len(model.model) - 1}.", f"model.{head}.", 1) for k in outputs}
    kept = {k: v for k, v in model.state_dict().items() if k not in outputs}
    ok, wrong = arrivals(kept, target.state_dict(), imap.map)
    assert len(ok) == sum(v.is_floating_point() for v in kept.values()) and not wrong
    assert report.tensors == len(model.state_dict()) - len(outputs)
    assert report.head_start() == "new class outputs"
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert all(torch.isfinite(t).all() for t in tensors(target.eval()(x)))


@pytest.mark.parametrize(
    "config,task",
    [("yolo11n-seg-cbam-neck.yaml", "segment"), ("yolo26n-pose-se-backbone-end.yaml", "pose"),
     ("yolov8n-obb-eca-neck.yaml", "obb"), ("yolo12n-cls-simam-backbone.yaml", "classify")],
)  # fmt: skip
def test_transfer_cli_task_checkpoint(stock, config, task, tmp_path, monkeypatch):
    """``yolo-attn transfer STOCK.pt CONFIG --init identity``: the written checkpoint loads in Ultralytics as a model of
    that task and predicts what the stock model predicts."""
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    cfg = next(c for c in TASK_CONFIGS if c.scaled("n") == config)
    model, path, _ = stock(cfg.base)
    out = tmp_path / "out.pt"
    assert main(["transfer", str(path), config, "--init", "identity", "--float", "-o", str(out)]) == 0
    loaded = YOLO(str(out))
    assert loaded.task == task and type(loaded.model) is type(model)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want, got = tensors(model.eval()(x)), tensors(loaded.model.float().eval()(x))
    assert len(want) == len(got)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
