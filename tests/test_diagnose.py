"""``yolo-attn diagnose``: known answers for every measurement, bad input, and one tiny sweep end to end."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from yolo_attn.diagnose import ModelRef, Settings, diagnose, write
from yolo_attn.diagnose.consistency import agreement, gate_and_importance
from yolo_attn.diagnose.data import load_data
from yolo_attn.diagnose.erf import gradient_maps, mean_map, radius
from yolo_attn.diagnose.evaluate import COCO_AREAS, coco_by_area
from yolo_attn.diagnose.fit import fit_regime
from yolo_attn.diagnose.evaluate import evaluate
from yolo_attn.diagnose.gates import GateRecorder
from yolo_attn.diagnose.layers import attention_layers, gates_fixed, knocked_out
from yolo_attn.diagnose.smoothness import jacobian_fro
from yolo_attn.modules.se import SE

FAST = Settings(imgsz=64, n_train=8, n_erf=4, n_consistency=4, n_jac=2, jac_projections=2, n_pairs=1, path_steps=5,
                n_boot=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    base = tmp_path_factory.mktemp("dx")
    y = base / "tiny.yaml"
    write_dataset(base / "tiny", ShapesConfig(n_train=16, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


def _checkpoint(path: Path, yaml_name: str, nc: int = 4, edit=None) -> Path:
    from yolo_attn.models import build_model

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = build_model(yaml_name, nc=nc)
    if edit:
        edit(model)
    torch.save({"model": model}, path)
    return path


# ------------------------------------------------------------------ effective receptive field
@pytest.mark.parametrize("k", [1, 2, 3])
def test_erf_of_constant_3x3_stack_is_the_k_fold_box_filter(k):
    """k 3x3 convs of ones: the centre's gradient is the k-fold self-convolution of [1, 1, 1] in x and y."""
    convs = [nn.Conv2d(3 if i == 0 else 2, 2, 3, padding=1, bias=False) for i in range(k)]
    for c in convs:
        nn.init.ones_(c.weight)
    stack = nn.Sequential(*convs).requires_grad_(False)
    images = torch.rand(3, 3, 17, 17)
    maps = gradient_maps(lambda x: [stack(x)], images)
    m = mean_map(maps[0])
    t = np.array([1.0])
    for _ in range(k):
        t = np.convolve(t, [1.0, 1.0, 1.0])
    want = np.zeros((17, 17))
    want[8 - k : 9 + k, 8 - k : 9 + k] = np.outer(t, t)
    np.testing.assert_allclose(m, want / want.sum(), rtol=1e-6, atol=1e-12)
    assert radius(m, (8.5, 8.5), 1.0) == pytest.approx(np.hypot(k, k))  # the farthest pixel centre with mass


def test_radius_of_a_uniform_disc():
    yy, xx = np.mgrid[0:101, 0:101]
    disc = (np.hypot(xx + 0.5 - 50.5, yy + 0.5 - 50.5) <= 40).astype(float)
    assert radius(disc, (50.5, 50.5), 0.5) == pytest.approx(40 / np.sqrt(2), rel=0.02)
    assert radius(disc, (50.5, 50.5), 0.9) == pytest.approx(40 * np.sqrt(0.9), rel=0.02)


# ------------------------------------------------------------------ gates and reliance
class _Host(nn.Module):
    """A stand-in model: ``model`` holds a conv and an SE layer (what attention_layers looks through)."""

    def __init__(self, se: SE):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), se)

    def forward(self, x):
        return self.model(x)


def test_constant_gate_makes_mean_replacement_change_nothing():
    torch.manual_seed(0)
    se = SE(16, reduction=2)
    with torch.no_grad():
        se.fc2.weight.zero_()
        se.fc2.bias.copy_(torch.linspace(-2, 2, 16))  # a different constant per channel
    host = _Host(se).eval().requires_grad_(False)
    layers = attention_layers(host)
    assert [la.kind for la in layers] == ["SE"] and layers[0].gates
    x = torch.rand(6, 3, 10, 10)
    with GateRecorder(layers) as rec:
        want = host(x)
    stats = rec.stats()
    assert stats[0].entropy < 1.0 and stats[0].sat_low == 0.0
    gate = layers[0].gates[0][1]
    with gates_fixed([gate], {id(gate): stats[0].mean_value}):
        torch.testing.assert_close(host(x), want, rtol=0, atol=1e-6)
    with knocked_out(layers):  # the identity: the conv's output itself
        torch.testing.assert_close(host(x), host.model[0](x))


PRESERVE = [s for s in __import__("yolo_attn.registry", fromlist=["LAYERS"]).LAYERS if s.kind == "preserve"]


@pytest.mark.parametrize("spec", PRESERVE, ids=lambda s: s.name)
def test_every_registered_layer_is_found_hooked_and_switched(spec):
    """Every layer: found (also inside C3Attn), its gates hooked, knock-out = identity, gates at their mean run."""
    from yolo_attn.modules._common import GatedModule
    from yolo_attn.modules.c3 import C3Attn

    torch.manual_seed(0)
    host = nn.Module()
    host.model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), spec.cls(32), C3Attn(32, 32, 1, spec.name)).eval()
    host.requires_grad_(False)
    layers = attention_layers(host)
    assert [la.name for la in layers] == ["1", "2.m.0.attn"]
    x = torch.rand(2, 3, 12, 12)
    with GateRecorder(layers) as rec:
        want = host.model(x)
    stats = rec.stats()
    assert bool(stats) == issubclass(spec.cls, GatedModule)
    assert all(np.isfinite(g.mean) for g in stats)
    by_name = {(s.layer, s.gate): s.mean_value for s in stats}
    used = [(la.name, n, g) for la in layers for n, g in la.gates if (la.name, n) in by_name]
    assert len(used) == len(stats)
    with gates_fixed([g for _l, _n, g in used], {id(g): by_name[(la, n)] for la, n, g in used}):
        assert host.model(x).shape == want.shape
    with knocked_out(layers[:1]):
        h = host.model[0](x)
        torch.testing.assert_close(host.model(x), host.model[2](h))
    torch.testing.assert_close(host.model(x), want)  # everything restored


def test_mean_replacement_changes_an_input_dependent_gate():
    torch.manual_seed(0)
    host = _Host(SE(16, reduction=2)).eval().requires_grad_(False)
    layers = attention_layers(host)
    x = torch.rand(6, 3, 10, 10) * torch.linspace(0.1, 3, 6)[:, None, None, None]
    with GateRecorder(layers) as rec:
        want = host(x)
    gate = layers[0].gates[0][1]
    with gates_fixed([gate], {id(gate): rec.stats()[0].mean_value}):
        assert not torch.allclose(host(x), want, atol=1e-4)


def test_fmm_knockout_is_the_residual_sum():
    from yolo_attn.modules.fmm import C3FMM

    torch.manual_seed(0)
    host = nn.Module()
    host.model = nn.Sequential(C3FMM(8, 8, n=1)).eval()
    layers = attention_layers(host)
    assert [la.kind for la in layers] == ["BottleneckFMM"] and not layers[0].gates
    b = layers[0].module
    h = torch.rand(1, 4, 5, 5)
    with knocked_out(layers):
        torch.testing.assert_close(b(h), h + b.cv2(b.cv1(h)))
    torch.testing.assert_close(b(h), h * b.cv2(b.cv1(h)))  # restored


# ------------------------------------------------------------------ importance consistency
def test_kendall_tau_is_one_for_importance_and_near_zero_when_shuffled():
    rng = np.random.default_rng(0)
    g = rng.random((300, 64))
    tau, cos, perm = agreement(g, 3 * g + 1, rng)
    assert np.allclose(tau, 1.0) and (cos > 0.9).all()
    assert abs(perm.mean()) < 0.02 and perm.std() < 0.15
    tau_s, _c, _p = agreement(rng.permuted(g, axis=1), g, rng)
    assert abs(tau_s.mean()) < 0.02


def test_vectorised_kendall_tau_matches_scipy_with_ties():
    from scipy.stats import kendalltau

    from yolo_attn.diagnose.consistency import kendall_tau_rows

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, (20, 30)).astype(float), rng.random((20, 30))
    b[:, :5] = 0.5  # ties on both sides
    want = [kendalltau(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(kendall_tau_rows(a, b), want, rtol=1e-12)


class _GateIsImportance(nn.Module):
    """S = sum of the gated map: with the same map in every channel, channel c's importance is g_c * const."""

    def __init__(self):
        super().__init__()
        self.se = SE(16, reduction=2)

    def forward(self, x):
        y = self.se(x)
        score = y.sum(1).flatten(1)[:, None]  # one class, one anchor per position
        return torch.cat((torch.zeros(len(x), 4, score.shape[2]), score), 1)


def test_measured_importance_ranks_like_the_gate_by_construction():
    torch.manual_seed(0)
    model = _GateIsImportance().eval().requires_grad_(False)
    host = nn.Module()
    host.model = nn.Sequential(model.se)
    layers = attention_layers(host)
    x = torch.rand(5, 1, 6, 6).expand(5, 16, 6, 6).contiguous()
    (g, imp), = gate_and_importance(model, layers, x).values()
    tau, _cos, perm = agreement(g, imp, np.random.default_rng(0))
    np.testing.assert_allclose(tau, 1.0)
    assert abs(perm.mean()) < 0.3


# ------------------------------------------------------------------ smoothness
def test_jacobian_norm_of_a_linear_model_is_its_frobenius_norm():
    torch.manual_seed(0)
    W = torch.randn(7, 12, dtype=torch.float64)
    f = lambda x: x.flatten(1) @ W.T  # noqa: E731
    x = torch.randn(3, 3, 2, 2, dtype=torch.float64)
    exact = jacobian_fro(f, x, 0, seed=0, exact=True)
    np.testing.assert_allclose(exact, torch.linalg.matrix_norm(W).item(), rtol=1e-12)
    est = jacobian_fro(f, x, 4000, seed=0)
    np.testing.assert_allclose(est, torch.linalg.matrix_norm(W).item(), rtol=0.05)


# ------------------------------------------------------------------ fit regime and AP by size
class _FixedBoxes(nn.Module):
    """A 'detector' that always predicts the same boxes (xywh pixels) with class 0."""

    def __init__(self, boxes, nc=4):
        super().__init__()
        self.boxes = torch.tensor(boxes, dtype=torch.float32)
        self.nc = nc

    def forward(self, x):
        a = len(self.boxes)
        out = torch.zeros(len(x), 4 + self.nc, a)
        out[:, :4] = self.boxes.T
        out[:, 4] = torch.linspace(0.9, 0.5, a)
        return out


def _boxes(n=60):
    rng = np.random.default_rng(0)
    xy, s = rng.uniform(10, 54, (n, 2)), rng.uniform(12, 40, (n, 1))
    return np.hstack([xy, s, s]).tolist()


def test_train_equal_to_val_gives_gap_zero(tiny, tmp_path):
    same = tmp_path / "same.yaml"
    d = yaml.safe_load(tiny.read_text())
    d.update(path=str(tiny.parent), train=d["val"])  # the same images for both splits
    same.write_text(yaml.safe_dump(d))
    model = _FixedBoxes(_boxes())
    data = load_data(same, 64, n_train=None)
    fit = fit_regime(model, data, evaluate(model, data.val, data.names))
    assert fit.train_map > 0 and fit.gap == 0.0 and fit.train_loss is None  # a model without Ultralytics' loss
    other = load_data(tiny, 64, n_train=None)
    assert fit_regime(model, other, evaluate(model, other.val, other.names)).gap != 0.0  # the check can fail


def test_ap_by_size_matches_pycocotools_summary():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(1)
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    dets = []
    for i in range(1, 7):
        gt["images"].append({"id": i, "width": 400, "height": 400})
        for j, side in enumerate((12, 20, 50, 80, 120, 200)):
            x, y = rng.uniform(0, 190, 2)
            box = [x, y, side, side * rng.uniform(0.7, 1.3)]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": 1 + j % 2,
                                      "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
            if rng.random() < 0.8:
                jit = rng.normal(0, 0.1 * side, 4)
                dets.append({"image_id": i, "category_id": 1 + j % 2, "score": float(rng.random()),
                             "bbox": [box[0] + jit[0], box[1] + jit[1], max(box[2] + jit[2], 1), max(box[3] + jit[3], 1)]})
            dets.append({"image_id": i, "category_id": 1 + (j + 1) % 2, "score": float(rng.random()) * 0.5,
                         "bbox": [float(v) for v in rng.uniform(0, 200, 4)]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(dets))), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    mine = coco_by_area(gt, dets, COCO_AREAS)
    assert mine["all"].ap == pytest.approx(ev.stats[0], abs=1e-12)
    for k, name in enumerate(("small", "medium", "large")):
        assert mine[name].ap == pytest.approx(ev.stats[3 + k], abs=1e-12)
        assert mine[name].ar == pytest.approx(ev.stats[9 + k], abs=1e-12)
    assert all(0 < v < 1 for v in ev.stats[3:6]) and len(set(ev.stats[3:6])) == 3  # not degenerate


# ------------------------------------------------------------------ bad input
def test_bad_inputs_name_the_file_and_write_nothing(tiny, tmp_path):
    from yolo_attn.cli import main

    stock = _checkpoint(tmp_path / "stock.pt", "yolov5n.yaml")
    not_ckpt = tmp_path / "notes.pt"
    not_ckpt.write_text("not a checkpoint")
    not_det = tmp_path / "seq.pt"
    torch.save({"model": nn.Sequential(nn.Conv2d(3, 3, 1))}, not_det)
    no_val = tmp_path / "noval.yaml"
    no_val.write_text(yaml.safe_dump({"path": str(tiny.parent), "train": "tiny/images/train", "names": {0: "a"}}))
    out = tmp_path / "out"
    for args, needle in (
        (["--models", str(not_ckpt), "--data", str(tiny)], str(not_ckpt)),
        (["--models", str(not_det), "--data", str(tiny)], str(not_det)),
        (["--models", str(stock), "--data", str(no_val)], f"{no_val}: no 'val:' key"),
        (["--models", str(tmp_path / "missing.pt"), "--data", str(tiny)], "missing.pt"),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert main(["diagnose", *args, "--imgsz", "64", "--out", str(out)]) == 1
        assert "yolo-attn diagnose: error:" in err.getvalue() and needle in err.getvalue()
        assert not out.exists() or not any(out.iterdir())


def test_models_without_attention_say_which_sections_do_not_apply(tiny, tmp_path):
    stock = _checkpoint(tmp_path / "stock.pt", "yolov5n.yaml")
    d = diagnose([ModelRef("stock", stock)], "stock", tiny, FAST)
    md = write(d, tmp_path / "out").read_text()
    assert "No gating layer" in md and "nothing to knock out" in md and "No channel gate" in md
    assert len(d.models[0].erf) == 3 and all(e.r90 > e.r50 > 0 for e in d.models[0].erf)
    fit = d.models[0].fit
    assert fit.train_loss > 0 and fit.val_loss > 0 and fit.train_loss != fit.val_loss


# ------------------------------------------------------------------ end to end on a tiny sweep
def test_compare_diagnose_end_to_end_and_deterministic(tiny, tmp_path):
    from yolo_attn.cli import main
    from yolo_attn.diagnose import diagnose_sweep

    se_yaml = tmp_path / "yolov5n-se.yaml"
    from ultralytics.nn.tasks import yaml_model_load

    d = {k: v for k, v in yaml_model_load("yolov5n.yaml").items() if k in ("nc", "scales", "backbone", "head")}
    d["backbone"].insert(9, [-1, 1, "SE", [16]])
    for row in d["head"]:
        f = row[0]
        row[0] = [i + 1 if i >= 9 else i for i in f] if isinstance(f, list) else (f + 1 if f >= 9 else f)
    se_yaml.write_text(yaml.safe_dump(d, sort_keys=False))
    out = tmp_path / "sweep"
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["compare", "--data", str(tiny), "--models", "yolov5n.yaml", str(se_yaml), "--seeds", "1",
                   "--epochs", "1", "--imgsz", "64", "--boot", "50", "--threads", "1", "--out", str(out),
                   "--diagnose", "--quiet"])
    assert rc == 0
    assert "[diagnosis](diagnose/diagnose.md)" in (out / "summary.md").read_text()
    res = json.loads((out / "diagnose" / "diagnose.json").read_text())
    assert [m["ref"]["label"] for m in res["models"]] == ["yolov5n", "yolov5n-se"]
    assert all(Path(m["ref"]["path"]).name == "last.pt" for m in res["models"])
    se = res["models"][1]
    assert se["layers"] == [["9", "SE"]]
    assert se["gates"][0]["shape"] == [256, 1, 1] and 0 < se["gates"][0]["mean"] < 1
    assert [r["layer"] for r in se["reliance"]] == ["all"] and se["consistency"][0]["channels"] == 256
    assert {p.name for p in (out / "diagnose").iterdir()} == {"diagnose.md", "diagnose.json", "erf.png", "paths.png"}
    again = diagnose_sweep(out, tmp_path / "again")
    res2 = json.loads((again.parent / "diagnose.json").read_text())
    for r in (res, res2):
        r.pop("seconds")
        for m in r["models"]:
            m.pop("seconds")
    assert res == res2


def test_bridge_detection_head_reads_the_built_head():
    from yolo_attn import _ultralytics
    from yolo_attn.models import build_model

    with contextlib.redirect_stdout(io.StringIO()):
        model = build_model("yolov5n.yaml", nc=3)
    head, inputs, strides = _ultralytics.detection_head(model)
    assert type(head).__name__ == "Detect" and inputs == [17, 20, 23] and strides == [8.0, 16.0, 32.0]
    bare = nn.Module()
    bare.model = nn.Sequential(nn.Conv2d(3, 3, 1))
    assert _ultralytics.detection_head(bare) is None and _ultralytics.detection_head(nn.Linear(1, 1)) is None


def test_intervals_identical_runs_and_seed_t_coverage():
    from yolo_attn.scoring import cocoeval
    from yolo_attn.diagnose.stats import paired_diff, seed_interval

    gt = cocoeval.coco_gt([cocoeval.GtImage(f"i{k}", 50, 50, np.array([[0, 0.5, 0.5, 0.4, 0.4]])) for k in range(6)], ["a"])
    dets = [{"image_id": k, "category_id": 1, "bbox": [15, 15, 20, 20 + k], "score": 0.1 * k} for k in range(1, 7)]
    arrays = cocoeval.evaluate(gt, dets).arrays
    iv = paired_diff([(arrays, arrays)], 100, 0)
    assert (iv.est, iv.lo, iv.hi) == (0.0, 0.0, 0.0) and not iv.excludes_zero()
    rng = np.random.default_rng(0)
    hits = [seed_interval(list(rng.normal(1.0, 2.0, 3))) for _ in range(3000)]
    coverage = np.mean([h.lo <= 1.0 <= h.hi for h in hits])
    assert abs(coverage - 0.95) < 0.015  # Student t with 2 degrees of freedom: exact for normal seeds


def test_loss_gap_is_zero_when_train_is_val(tiny, tmp_path):
    """Ultralytics' loss through the bridge: the same images give the same loss; the model's args are restored."""
    from yolo_attn.diagnose.fit import split_loss
    from yolo_attn.diagnose.layers import load

    lm = load(ModelRef("stock", _checkpoint(tmp_path / "stock.pt", "yolov5n.yaml")))
    data = load_data(tiny, 64, n_train=None)
    assert not hasattr(lm.model, "args")  # built from a YAML: Ultralytics' default gains are used
    a, b = split_loss(lm.model, data.val), split_loss(lm.model, data.val)
    assert a > 0 and a == b and not hasattr(lm.model, "args")
    assert split_loss(lm.model, data.train) != pytest.approx(a)


def test_verdict_names_collapsed_seeds_and_dead_gates():
    from yolo_attn.diagnose.compare import LabelSummary
    from yolo_attn.diagnose.stats import Interval
    from yolo_attn.diagnose.verdict import verdict

    iv = Interval(0.1, -0.1, 0.2)
    base = LabelSummary("stock", [0, 1], [], Interval(0.3), Interval(0.28), Interval(0.02), None)
    m = LabelSummary("cbam", [0, 1], [("19", "CBAM")], Interval(0.2), Interval(0.2), Interval(0.0), iv,
                     collapsed=["s1 (val mAP50-95 0.002)"], dead_gates=["s1 19/spatial_gate (100% < 0.05)"])
    text = verdict(m, base)
    assert text.startswith("Seed(s) s1 (val mAP50-95 0.002) collapsed") and "19/spatial_gate" in text
    assert "collapsed" not in verdict(LabelSummary("se", [0], [], Interval(0.3), Interval(0.3), Interval(0.0), iv), base)


def test_the_fit_verdict_calls_underfit_models_with_a_large_gap_poor_generalisers_not_capacity_limited():
    """Train mAP 0.12 and val 0.006 (a real COCO128-seg sweep): both underfit, but validation is under half of train,
    so the fit says nothing about capacity; a small gap keeps 'overfitting is not what limits them'."""
    from yolo_attn.diagnose.compare import LabelSummary
    from yolo_attn.diagnose.stats import Interval
    from yolo_attn.diagnose.verdict import verdict

    iv = Interval(-0.001, -0.006, 0.004)
    base = LabelSummary("stock", [0, 1], [], Interval(0.120), Interval(0.006), Interval(0.114), None)
    m = LabelSummary("se", [0, 1], [("9", "SE")], Interval(0.120), Interval(0.007), Interval(0.113), iv)
    text = verdict(m, base)
    assert "generalise poorly too" in text and "overfitting is not what limits them" not in text
    base = LabelSummary("stock", [0, 1], [], Interval(0.30), Interval(0.28), Interval(0.02), None)
    m = LabelSummary("se", [0, 1], [("9", "SE")], Interval(0.30), Interval(0.29), Interval(0.01), iv)
    assert "overfitting is not what limits them" in verdict(m, base)
