"""``yolo-attn export-check``: the comparison of exported models with PyTorch, the committed format matrix that
``yolo-attn list`` and docs/deploy.md show, and (marked ``deploy``, needing the deploy extra) TorchScript,
dynamic ONNX and OpenVINO FP32 for every registered layer.

The ``deploy`` tests are skipped when OpenVINO is not installed; CI installs the extra in a later step and runs
``pytest -m deploy``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import SPECS, spec_params

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# The comparison
# ------------------------------------------------------------------------------------------------
def _dets(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def test_box_agreement_counts_matches_misses_and_extras():
    from yolo_attn.deploy.check import match_boxes

    ref = _dets([0, 0, 10, 10, 0.9, 1], [20, 20, 30, 30, 0.8, 2], [40, 40, 50, 50, 0.26, 0])
    same = match_boxes(ref, ref.clone(), conf=0.25, margin=0.01)
    assert (same.matched, same.missed, same.extra) == (3, 0, 0)
    nothing = match_boxes(ref, _dets(), conf=0.25, margin=0.01)  # "converts but detects nothing"
    assert (nothing.matched, nothing.missed) == (0, 2)  # the box at 0.26 is within the margin: not counted
    moved = _dets([0, 0, 10, 10, 0.9, 1], [60, 60, 70, 70, 0.8, 2])  # one box elsewhere
    a = match_boxes(ref[:2], moved, conf=0.25, margin=0.01)
    assert (a.matched, a.missed, a.extra) == (1, 1, 1)
    other_class = match_boxes(ref[:1], _dets([0, 0, 10, 10, 0.9, 3]), conf=0.25, margin=0.01)
    assert (other_class.matched, other_class.missed, other_class.extra) == (0, 1, 1)


def test_verdict_fails_an_export_whose_scores_or_boxes_differ():
    from yolo_attn.deploy.check import CheckSettings, _Diff, _verdict, compare_outputs
    from yolo_attn.deploy.formats import get_format

    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.rand(1, 4, 84, generator=g) * 64, torch.rand(1, 80, 84, generator=g)], 1)
    s = CheckSettings(images=[], imgsz=64)
    fmt = get_format("onnx")
    ok = _Diff()
    assert compare_outputs(y, y + 1e-6, s, 1e-3, ok) == "" and _verdict(fmt, s, ok) == ""
    dead = y.clone()
    dead[:, 4:] = 0  # every class score gone
    d = _Diff()
    assert compare_outputs(y, dead, s, 1e-3, d) == ""
    assert "output differs from PyTorch" in _verdict(fmt, s, d)
    assert compare_outputs(y, y[:, :, :40], s, 1e-3, _Diff()).startswith("output shape")
    assert "non-finite" in compare_outputs(y, y * float("nan"), s, 1e-3, _Diff())
    int8 = _Diff()
    compare_outputs(y, dead, s, 0.1, int8)
    assert _verdict(get_format("openvino-int8"), s, int8) == ""  # INT8: reported, accuracy is the mAP table's


def test_missing_tooling_is_not_checked_never_passed(tmp_path):
    from yolo_attn.deploy.check import NOT_CHECKED, CheckSettings, check_format
    from yolo_attn.deploy.formats import DEPLOY_HINT, Format, require

    fmt = Format("imaginary", {"format": "onnx"}, (("yolo_attn_no_such_module", "no-such-package"),))
    cm = SimpleNamespace(name="m", layers=("SE",))
    res = check_format(cm, fmt, CheckSettings(images=[]), tmp_path)
    assert res.status == NOT_CHECKED and "no-such-package" in res.reason and DEPLOY_HINT in res.reason
    with pytest.raises(ImportError, match=re.escape(DEPLOY_HINT)):
        require(fmt)


def test_install_hint_names_the_deploy_extra_only_for_formats_in_it(tmp_path, monkeypatch):
    import tomllib

    from yolo_attn.deploy.check import NOT_CHECKED, CheckSettings, check_format
    from yolo_attn.deploy.formats import DEPLOY_HINT, FORMATS, get_format

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extra = {re.split(r"[<>=!~\[ ]", r)[0] for r in pyproject["project"]["optional-dependencies"]["deploy"]}
    for fmt in FORMATS:  # the hint never sends a user to an extra that lacks the format's packages
        assert fmt.in_extra == ({pip for _, pip in fmt.packages} <= extra), fmt.name
    litert = get_format("litert")
    monkeypatch.setattr(type(litert), "missing", lambda self: [pip for _, pip in self.packages])
    res = check_format(SimpleNamespace(name="m", layers=("SE",)), litert, CheckSettings(images=[]), tmp_path)
    assert res.status == NOT_CHECKED and DEPLOY_HINT not in res.reason, res.reason
    assert "pip install litert-torch ai-edge-litert (not in the deploy extra" in res.reason, res.reason


def test_a_format_the_installed_ultralytics_lacks_is_not_checked(tmp_path, monkeypatch):
    import yolo_attn._ultralytics as bridge
    from yolo_attn.deploy.check import NOT_CHECKED, CheckSettings, check_format
    from yolo_attn.deploy.formats import FORMATS, Format

    assert {f.export["format"] for f in FORMATS} <= bridge.export_format_names()
    # Ultralytics 8.4.0 has no 'litert' and would export 'tflite' (TensorFlow) in its place
    monkeypatch.setattr(bridge, "export_format_names", lambda: frozenset({"onnx", "tflite"}))
    res = check_format(SimpleNamespace(name="m", layers=("SE",)), Format("litert", {"format": "litert"}),
                       CheckSettings(images=[]), tmp_path)
    assert res.status == NOT_CHECKED and "no 'litert' export: upgrade ultralytics" in res.reason, res.reason


def test_failure_reason_names_the_operator():
    from yolo_attn.deploy.check import failure_reason

    reason, op = failure_reason("export", RuntimeError("Exporting the operator 'aten::einsum' to ONNX opset 17 "
                                                       "is not supported.\nmore"))
    assert op == "aten::einsum" and reason.startswith("export: RuntimeError: Exporting the operator")


def test_results_file_round_trip_and_damage(tmp_path):
    from yolo_attn.deploy.check import BoxAgreement, FormatResult
    from yolo_attn.deploy.matrix import Results, read_results, write_results

    r = FormatResult("m", ["SE"], "onnx", "passed", max_diff_boxes=0.01, boxes=BoxAgreement(3, 3, 3, 0, 0))
    p = write_results(tmp_path / "r.json", Results([r], {"torch": "x"}, {"imgsz": 64}))
    back = read_results(p)
    assert back.results[0] == r and back.versions == {"torch": "x"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": [{**r.as_dict(), "status": "great"}]}))
    with pytest.raises(ValueError, match=r"bad\.json: result 0: .*unknown status 'great'"):
        read_results(bad)


# ------------------------------------------------------------------------------------------------
# The committed matrix
# ------------------------------------------------------------------------------------------------
def test_committed_matrix_covers_every_layer_and_the_docs_show_it():
    from yolo_attn.deploy.formats import FORMAT_NAMES
    from yolo_attn.deploy.matrix import SUPPORT_FILE, markdown_matrix, per_layer, read_results

    res = read_results(SUPPORT_FILE)
    layers = per_layer(res)
    assert sorted(layers) == sorted(s.name for s in SPECS), "support.json: rerun benchmarks/deploy_matrix.py"
    for name, row in layers.items():
        assert sorted(row) == sorted(FORMAT_NAMES), f"{name}: formats {sorted(row)}"
    doc = (REPO / "docs" / "deploy.md").read_text()
    block = doc.split("<!-- matrix start -->\n", 1)[1].split("<!-- matrix end -->", 1)[0]
    assert block == markdown_matrix(res), "docs/deploy.md: run python benchmarks/deploy_matrix.py --render-only"


def test_list_shows_the_measured_export_support(capsys):
    from yolo_attn.cli import main
    from yolo_attn.deploy.matrix import per_layer, read_results, support_line

    layers = per_layer(read_results())
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for spec in SPECS:
        i = next(k for k, l in enumerate(lines) if l.startswith(spec.name + " "))
        block = []
        for l in lines[i + 1:]:
            if not l.startswith(" "):
                break
            block.append(l.strip())
        assert f"export: {support_line(layers[spec.name])}" in block, (spec.name, block)
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["export"] for r in rows} == {n: {f: x.status for f, x in row.items()} for n, row in layers.items()}


def test_mhsa_relative_logits_equal_the_einsum_form():
    """MHSA's relative logits are batched 4-D matmuls (NCNN mis-converted the 5-D einsum); same sums."""
    from yolo_attn.modules.mhsa import MHSA, _offsets

    torch.manual_seed(0)
    m = MHSA(32, heads=2, max_size=8).eval()
    q = torch.randn(2, 2, 5 * 7, 16)
    qq = q.reshape(2, 2, 5, 7, 16)
    rh, rw = m.rel_h[_offsets(5, 8, q.device)], m.rel_w[_offsets(7, 8, q.device)]
    lh = torch.einsum("bnhwd,hkd->bnhwk", qq, rh)
    lw = torch.einsum("bnhwd,wkd->bnhwk", qq, rw)
    expected = (lh.unsqueeze(-1) + lw.unsqueeze(-2)).reshape(2, 2, 35, 35)
    torch.testing.assert_close(m.relative_logits(q, 5, 7), expected, rtol=1e-5, atol=1e-5)


def test_int8_table_pairs_seeds_against_the_baseline():
    import dataclasses

    from yolo_attn.compare.contract import SweepConfig
    from yolo_attn.deploy.int8 import Int8Row, int8_markdown

    rows = [Int8Row("stock", s, "t", 0, 0, fp, 0, i8, 0) for s, fp, i8 in ((0, 0.30, 0.28), (1, 0.32, 0.30))]
    rows += [Int8Row("se", s, "t", 0, 0, fp, 0, i8, 0) for s, fp, i8 in ((0, 0.33, 0.27), (1, 0.34, 0.31))]
    config = SweepConfig(settings_hash="h", data_fingerprint={}, epochs=1, imgsz=64, models=[], seeds=[0, 1])
    md = int8_markdown(rows, "stock", config)
    assert md.startswith("Sweep: epochs 1, imgsz 64, seeds [0, 1], baseline stock.")
    se = next(l for l in md.splitlines() if l.startswith("| se |"))
    cells = [c.strip() for c in se.strip("|").split("|")]
    # INT8 - FP32 of se; Δ FP32 per seed +0.03, +0.02; Δ INT8 -0.01, +0.01; the change of Δ -0.04, -0.01
    assert cells[5] == "-0.0450"
    t = 12.706204736  # t(0.975, 1 degree of freedom): the half-width is t * sd / sqrt(2) = t * |d0 - d1| / 2
    assert cells[6] == f"+0.0250 [{0.025 - t * 0.005:+.4f}, {0.025 + t * 0.005:+.4f}]"
    assert cells[7] == f"+0.0000 [{-t * 0.01:+.4f}, {t * 0.01:+.4f}]"
    assert cells[8] == f"-0.0250 [{-0.025 - t * 0.015:+.4f}, {-0.025 + t * 0.015:+.4f}]"
    assert cells[9] == "same sign in 1/2 seeds"
    one = int8_markdown(rows[:1] + rows[2:3], "stock", dataclasses.replace(config, seeds=[0]))
    assert "+0.0300 (1 seed)" in one


def test_int8_validation_writes_under_the_requested_folder_even_when_relative(tmp_path, monkeypatch):
    # Ultralytics puts a relative project under its own runs folder (under pytest: next to its package), so a
    # relative --out must reach the validator as an absolute path
    from yolo_attn.deploy.int8 import _val

    seen = {}

    class FakeYOLO:
        def val(self, **kw):
            seen.update(kw)
            box = SimpleNamespace(map=0.25, map50=0.5, mp=0.0, mr=0.0)
            return SimpleNamespace(box=box, seg=SimpleNamespace(map=0.125, map50=0.375, mp=0.0, mr=0.0))

    monkeypatch.chdir(tmp_path)
    assert _val(FakeYOLO(), "data.yaml", 64, Path("runs/int8/trial"), "val-openvino") == (0.25, 0.5)
    assert _val(FakeYOLO(), "data.yaml", 64, Path("runs/int8/trial"), "val-openvino", "segment") == (0.125, 0.375)
    assert Path(seen["project"]) == tmp_path / "runs/int8/trial" and Path(seen["project"]).is_absolute()
    assert seen["name"] == "val-openvino" and seen["split"] == "val"


def test_export_check_refuses_unclear_requests():
    from yolo_attn.cli import main

    for argv in (["export-check"], ["export-check", "m.yaml", "--all-layers"], ["export-check", "--sweep", "x"],
                 ["export-check", "m.yaml", "--imgsz", "48"], ["export-check", "m.yaml", "--layers", "SE"],
                 ["export-check", "m.yaml", "--imgsz", "32"], ["export-check", "--all-layers", "--imgsz", "32"]):
        assert main(argv) == 1, argv


# ------------------------------------------------------------------------------------------------
# Each task's outputs (issue 39): small task models with SE, random weights, at imgsz 64 (at 32 the last level is one
# pixel: its BatchNorm statistics from two values blow the untrained features up to 1e9 and nothing is compared)
# ------------------------------------------------------------------------------------------------
TASK_CONFIGS = {"segment": "yolo11-seg-se-neck.yaml", "pose": "yolo11-pose-se-neck.yaml",
                "obb": "yolo11-obb-se-neck.yaml", "classify": "yolo11-cls-se-backbone-end.yaml"}
TASK_PARTS = {"segment": {"boxes", "scores", "mask coefficients", "prototypes"},
              "pose": {"boxes", "scores", "keypoints", "keypoint visibility"},
              "obb": {"boxes", "scores", "angle"}, "classify": {"probabilities"}}


def _task_model(task: str, folder: Path) -> Path:
    """The shipped SE config of ``task`` at scale n with 3 classes (pose: 4 keypoints with visibility)."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(TASK_CONFIGS[task])
    d.update(scale="n", nc=3, **({"kpt_shape": [4, 3]} if task == "pose" else {}))
    path = folder / f"yolo11n-{task}-se.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def _check_task(task: str, formats: list[str], tmp_path: Path, imgsz: int = 64):
    from yolo_attn.deploy.check import CheckSettings, calibration_images, check_model, default_images
    from yolo_attn.deploy.formats import get_format
    from yolo_attn.deploy.models import model_from_file

    images = default_images(2)
    cm = model_from_file(str(_task_model(task, tmp_path)), tmp_path, calibration_images(images, imgsz))
    assert cm.task == task and cm.layers == ("SE",)
    return check_model(cm, [get_format(f) for f in formats], CheckSettings(images=images, imgsz=imgsz), tmp_path)


def _assert_task_passed(task: str, results) -> None:
    from yolo_attn.deploy.check import PASSED

    for r in results:
        assert r.task == task and r.status == PASSED, f"{task} {r.format}: {r.status}: {r.reason}"
        assert set(r.max_diff) == TASK_PARTS[task], (r.format, r.max_diff)  # every output of the head compared
        if task == "classify":
            assert r.boxes is None and r.top1["images"] >= 2 and r.top1["same"] == r.top1["images"], r.top1
        else:
            assert r.boxes.reference > 0 and r.boxes.matched == r.boxes.reference, (r.format, r.boxes)


# one cheap format each, both runners among them, to keep the default suite short (every task through OpenVINO and
# the others: pytest -m deploy)
TASK_FORMATS = {"segment": ["onnx"], "pose": ["torchscript"], "obb": ["onnx"], "classify": ["torchscript"]}


@pytest.mark.parametrize("task", list(TASK_CONFIGS))
def test_each_task_exports_and_matches_pytorch(task, tmp_path, monkeypatch):
    """TorchScript and ONNX (ONNX Runtime is in the dev extra) of each task's model agree with PyTorch on every
    output of its head: masks' coefficients and prototypes, keypoints, angles, class probabilities."""
    monkeypatch.chdir(tmp_path)
    results = _check_task(task, TASK_FORMATS[task], tmp_path)
    _assert_task_passed(task, results)
    from yolo_attn.deploy.matrix import result_table

    row = result_table(results).splitlines()[2].split()
    assert row[1] == task and row[3] == "passed", row  # the report names the task


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_each_task_head_of_an_untrained_check_model_has_its_class_scores_spread(task, tmp_path):
    """The synthetic check model's class logits are spread (mean -2, std 2 on the check images at both compared
    sizes, 64 x 64 and the dynamic 64 x 128) for every detection-type head, not only Detect: left as built, an
    untrained YOLO11n-seg/pose/obb head's logits reach hundreds and float rounding alone failed TorchScript at
    0.0021 (tolerance 0.002); calibrated at 64 x 64 only, they reach hundreds at 64 x 128 (dynamic ONNX failed)."""
    from yolo_attn._ultralytics.export import task_outputs
    from yolo_attn.deploy.check import calibration_images, default_images
    from yolo_attn.deploy.models import LOGIT_MEAN, LOGIT_STD, model_from_file
    from yolo_attn.deploy.tasks import head_of, raw_parts

    sizes = calibration_images(default_images(2), 64)
    assert [tuple(x.shape[2:]) for x in sizes] == [(64, 64), (64, 128)]
    cm = model_from_file(str(_task_model(task, tmp_path)), tmp_path, sizes)
    model = cm.yolo.model.float().eval()
    with torch.no_grad():
        preds = [raw_parts(task_outputs(model(x), task)[0], head_of(model))["scores"].flatten() for x in sizes]
    scores = torch.cat(preds).double()
    logits = torch.log(scores) - torch.log1p(-scores)
    assert abs(float(logits.mean()) - LOGIT_MEAN) < 0.05 and abs(float(logits.std()) - LOGIT_STD) < 0.05, \
        (task, float(logits.mean()), float(logits.std()))


def _part_pred(task: str, nc: int = 2) -> tuple:
    from yolo_attn.deploy.tasks import Head

    g = torch.Generator().manual_seed(1)
    extra = {"segment": 4, "pose": 6, "obb": 1}.get(task, 0)
    head = Head(task, "X", nc, kpt_shape=(2, 3) if task == "pose" else None)
    if task == "classify":
        return head, [torch.softmax(torch.randn(2, nc, generator=g) * 3, 1)]
    y = torch.cat([torch.rand(1, 4, 84, generator=g) * 64, torch.rand(1, nc, 84, generator=g),
                   torch.rand(1, extra, 84, generator=g)], 1)
    return head, [y, torch.randn(1, 4, 8, 8, generator=g)] if task == "segment" else [y]


@pytest.mark.parametrize("task,part,spoil", [
    ("segment", "prototypes", lambda y: [y[0], y[1] * 1.5]),
    ("segment", "mask coefficients", lambda y: [torch.cat([y[0][:, :6], y[0][:, 6:] + 0.5], 1), y[1]]),
    ("pose", "keypoints", lambda y: [torch.cat([y[0][:, :6], y[0][:, 6:7] + 5, y[0][:, 7:]], 1)]),
    ("obb", "angle", lambda y: [torch.cat([y[0][:, :6], y[0][:, 6:] + 0.1], 1)]),
    ("classify", "probabilities", lambda y: [y[0].flip(1)]),
])
def test_a_task_output_that_differs_fails_naming_it(task, part, spoil):
    from yolo_attn.deploy.check import CheckSettings, _Diff, _verdict, compare_outputs
    from yolo_attn.deploy.formats import get_format

    head, y = _part_pred(task)
    s = CheckSettings(images=[], imgsz=64)
    same = _Diff()
    assert compare_outputs(y, [t + 1e-7 for t in y], s, 2e-3, same, head) == ""
    assert _verdict(get_format("onnx"), s, same) == ""
    bad = _Diff()
    assert compare_outputs(y, spoil(y), s, 2e-3, bad, head) == ""
    assert part in _verdict(get_format("onnx"), s, bad)
    if task == "segment":  # an export that lost the prototypes is no comparison of the wrong tensors
        assert "mask prototypes" in compare_outputs(y, y[:1], s, 2e-3, _Diff(), head)


def test_end_to_end_rows_are_compared_on_pairs_of_the_same_detection():
    """An end-to-end head (YOLO26's one-to-one branch) returns its detections ranked by score: rows that swapped
    places (scores a rounding error apart) are paired, not compared row by row; a keypoint moved is found."""
    from yolo_attn.deploy.check import CheckSettings, _Diff, _verdict, compare_outputs
    from yolo_attn.deploy.formats import get_format
    from yolo_attn.deploy.tasks import Head

    head = Head("pose", "Pose26", 2, end2end=True, kpt_shape=(2, 3))
    boxes = torch.tensor([[0, 0, 20, 20], [30, 30, 60, 50], [5, 40, 25, 60], [40, 0, 60, 20]], dtype=torch.float32)
    conf = torch.tensor([[0.9], [0.8], [0.5], [0.1]])
    kpts = torch.tensor([[5, 5, 0.9, 10, 10, 0.8]] * 4) + torch.arange(4.0)[:, None]
    ref = torch.cat([boxes, conf, torch.tensor([[0.0], [1.0], [0.0], [1.0]]), kpts], 1)[None]
    swapped = ref[:, [1, 0, 2, 3]].clone()  # the exported model ranked two rows the other way round
    swapped[..., [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]] += 1e-5  # and rounded differently (the class column is exact)
    s = CheckSettings(images=[], imgsz=64)
    d = _Diff()
    assert compare_outputs(ref, swapped, s, 2e-3, d, head) == "" and _verdict(get_format("onnx"), s, d) == ""
    assert d.agreement.matched == d.agreement.reference == 3 and d.parts.diff["keypoints"] < 1e-4
    moved = swapped.clone()
    moved[0, 2, 6] += 5  # one keypoint of the 0.5 detection, 5 pixels away
    bad = _Diff()
    assert compare_outputs(ref, moved, s, 2e-3, bad, head) == ""
    assert "keypoints 5" in _verdict(get_format("onnx"), s, bad)


def test_export_check_refuses_a_head_and_an_int8_calibration_it_cannot_check(tmp_path):
    from yolo_attn.deploy.check import NOT_CHECKED, CheckSettings, check_format
    from yolo_attn.deploy.formats import Format
    from yolo_attn.deploy.models import CheckModel
    from yolo_attn.deploy.tasks import head_of

    with pytest.raises(ValueError, match="this model's head is Identity"):
        head_of(SimpleNamespace(model=torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Identity())), "m.yaml")
    int8 = Format("int8-here", {"format": "onnx"}, int8=True)  # no packages to miss: the refusal comes first
    cm = CheckModel("seg", ("SE",), None, tmp_path / "seg.pt", synthetic=True, task="segment")
    res = check_format(cm, int8, CheckSettings(images=[]), tmp_path)
    assert res.status == NOT_CHECKED and res.task == "segment" and "--data" in res.reason, res.reason


# ------------------------------------------------------------------------------------------------
# The cheap formats for every layer (CI: pip install 'yolo_attn[deploy]' && pytest -m deploy)
# ------------------------------------------------------------------------------------------------
@pytest.mark.deploy
@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_layer_exports_and_matches_pytorch(spec, tmp_path, monkeypatch):
    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("needs the deploy extra (OpenVINO, ONNX Runtime): pip install 'yolo_attn[deploy]'")
    from yolo_attn.deploy.check import PASSED, CheckSettings, calibration_images, check_model, default_images
    from yolo_attn.deploy.formats import QUICK_FORMATS, get_format
    from yolo_attn.deploy.matrix import SUPPORT_FILE, per_layer, read_results
    from yolo_attn.deploy.models import model_for_layer

    monkeypatch.chdir(tmp_path)  # converters may write scratch files into the cwd
    images = default_images(2)
    assert len(images) == 2
    settings = CheckSettings(images=images, imgsz=64)
    cm = model_for_layer(spec, tmp_path, calibration_images(images, 64))
    assert cm.layers == (spec.name,)
    results = check_model(cm, [get_format(f) for f in QUICK_FORMATS], settings, tmp_path)
    recorded = per_layer(read_results(SUPPORT_FILE))[spec.name]  # the committed matrix (docs/deploy.md)
    for r in results:
        if recorded[r.format].status != PASSED:  # a failure the matrix records and docs/deploy.md explains
            assert r.status in (PASSED, recorded[r.format].status), f"{spec.name} {r.format}: {r.status}: {r.reason}"
            continue
        assert r.status == PASSED, f"{spec.name} {r.format}: {r.status}: {r.reason} (passed in the committed matrix)"
        assert r.boxes.reference > 0 and r.boxes.matched == r.boxes.reference, (r.format, r.boxes)
    dyn = next(r for r in results if r.format == "onnx-dynamic")
    assert dyn.sizes == [[1, 64, 64], [2, 64, 128]]  # the dynamic model also ran a batch at another size


@pytest.mark.deploy
@pytest.mark.parametrize("task", list(TASK_CONFIGS))
def test_each_task_matches_pytorch_in_every_cheap_format(task, tmp_path, monkeypatch):
    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("needs the deploy extra (OpenVINO, ONNX Runtime): pip install 'yolo_attn[deploy]'")
    monkeypatch.chdir(tmp_path)  # dynamic ONNX too: the untrained model is calibrated at its second size as well
    results = _check_task(task, ["torchscript", "onnx", "onnx-dynamic", "openvino"], tmp_path)
    _assert_task_passed(task, results)


# PNNX takes 7-25 s a model here: the two heads with the most outputs of their own (obb and classify pass too,
# measured by hand: docs/tasks.md)
@pytest.mark.deploy
@pytest.mark.parametrize("task", ["segment", "pose"])
def test_task_heads_match_pytorch_in_ncnn(task, tmp_path, monkeypatch):
    """NCNN (PNNX) returns every output of the segment and pose heads as PyTorch does."""
    if importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("pnnx") is None:
        pytest.skip("needs the deploy extra (ncnn, pnnx): pip install 'yolo_attn[deploy]'")
    monkeypatch.chdir(tmp_path)  # PNNX writes its scratch files into the cwd
    _assert_task_passed(task, _check_task(task, ["ncnn"], tmp_path))


def test_missing_openvino_says_which_extra_to_install(monkeypatch):
    import sys

    from yolo_attn.deploy.formats import DEPLOY_HINT, import_openvino

    monkeypatch.setitem(sys.modules, "openvino", None)  # ``import openvino`` now raises ImportError
    with pytest.raises(ImportError, match=re.escape(DEPLOY_HINT)):
        import_openvino()


def test_a_dying_converter_process_is_that_formats_failure(tmp_path):
    """The isolated check reports a child that ends without a result (here: its checkpoint is gone) as a failure
    naming the exit status and the child's last words, and the check goes on."""
    from yolo_attn.deploy.check import FAILED, CheckSettings, check_format_isolated
    from yolo_attn.deploy.formats import get_format
    from yolo_attn.deploy.models import CheckModel

    cm = CheckModel("gone", ("SE",), None, tmp_path / "gone.pt", synthetic=True)
    res = check_format_isolated(cm, get_format("torchscript"), CheckSettings(images=[]), tmp_path)
    assert res.status == FAILED and res.format == "torchscript" and res.layers == ["SE"]
    assert "the converter ended the process (exit status 1)" in res.reason and "gone.pt" in res.reason, res.reason


def test_a_model_named_like_a_yolov5_release_is_the_model_checked(tmp_path, monkeypatch):
    """Ultralytics opens ``yolov5n.pt`` as its own ``yolov5nu.pt`` (a download) when the path holds no 'u': the check's
    copy of a model named yolov5n must be opened as written."""
    from yolo_attn.deploy.models import copy_path, model_from_file

    monkeypatch.chdir(tmp_path)
    assert copy_path(Path("ex"), "yolov5n") == Path("ex/yolov5n-check.pt")  # renamed by Ultralytics otherwise
    assert copy_path(Path("ex"), "mine") == Path("ex/mine.pt")
    Path("ex").mkdir()
    checked = model_from_file("yolov5n.yaml", Path("ex"), torch.rand(2, 3, 64, 64), name="yolov5n")
    assert Path(checked.yolo.ckpt_path).resolve() == (tmp_path / "ex" / "yolov5n-check.pt").resolve()
    assert not any(tmp_path.rglob("yolov5nu*"))
