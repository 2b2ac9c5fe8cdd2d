"""Study ``pretrained`` and what it stands on: per-model options (a model YAML's ``yolo_attn:`` key), Ultralytics'
name-and-shape load (arm b), the identity/paper start per model, the study's plan, report, and one tiny real run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from yolo_attn.models import build_model
from yolo_attn.studies import StudyOptions, get, run_study
from yolo_attn.weights import (ModelOptions, ModelOptionsError, load_by_name, parse_model_options, read_model_checkpoint,
                               read_model_options, transfer_weights)

from conftest import fake_summary, model_output, record_fake_trials

SE_MODEL = "yolov5n-se-backbone-end.yaml"  # SE inserted before SPPF (index 9): every later stock layer shifts by one


def _yaml_with(tmp_path: Path, options, name: str = "se-opts.yaml", base: str = SE_MODEL) -> Path:
    from yolo_attn._ultralytics import load_model_yaml

    d = {k: v for k, v in load_model_yaml(base).items() if k not in ("yaml_file",)}
    if options is not None:
        d["yolo_attn"] = options
    path = tmp_path / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ the reader
def test_model_options_reader_reads_valid_options(tmp_path):
    p = _yaml_with(tmp_path, {"attn_init": "paper", "load": "names"})
    assert read_model_options(p) == ModelOptions(attn_init="paper", load="names")
    p = _yaml_with(tmp_path, {"attn_init": "identity", "freeze": "backbone"}, "b.yaml")
    opts = read_model_options(p)
    assert opts.freeze == "backbone" and opts.load_mode == "structure" and opts.as_dict() == {
        "attn_init": "identity", "freeze": "backbone"}
    assert read_model_options(_yaml_with(tmp_path, {"freeze": [0, 1, 2]}, "c.yaml")).freeze == [0, 1, 2]
    assert read_model_options(_yaml_with(tmp_path, None, "none.yaml")).empty  # no key: no options
    assert read_model_options(SE_MODEL).empty  # a shipped config by name
    assert read_model_options("weights.pt").empty  # checkpoints carry none


def test_model_options_reader_refuses_unknown_keys_naming_the_file(tmp_path):
    p = _yaml_with(tmp_path, {"attn_init": "paper", "lr0": 0.1}, "mine.yaml")
    with pytest.raises(ModelOptionsError, match=r"mine\.yaml: yolo_attn: unknown key\(s\) lr0; known: attn_init, load"):
        read_model_options(p)


@pytest.mark.parametrize("raw, match", [
    ({"attn_init": "zeros"}, r"yolo_attn\.attn_init: expected one of paper, identity, got 'zeros'"),
    ({"load": "ultralytics"}, r"yolo_attn\.load: expected one of structure, names"),
    ({"freeze": "neck"}, r"yolo_attn\.freeze: expected 'backbone'"),
    ({"freeze": True}, r"yolo_attn\.freeze"),
    ({"freeze": [1, "x"]}, r"yolo_attn\.freeze"),
    ({"load": "names", "freeze": "backbone"}, r"yolo_attn\.load: names with freeze=backbone is not supported"),
    ("paper", r"yolo_attn: expected a mapping"),
])
def test_model_options_reader_refuses_bad_values(tmp_path, raw, match):
    p = _yaml_with(tmp_path, raw, "bad.yaml")
    with pytest.raises(ModelOptionsError, match=r"bad\.yaml: " + match):
        read_model_options(p)
    with pytest.raises(ModelOptionsError, match=match):  # the same checks for a dict (the sweep's stored options)
        parse_model_options(raw, "x")


def test_ultralytics_builds_the_same_model_whatever_the_key(tmp_path):
    """parse_model reads only the keys it knows: the yolo_attn: key changes nothing in the built model."""
    from ultralytics import YOLO

    plain = _yaml_with(tmp_path, None, "plain.yaml")
    keyed = _yaml_with(tmp_path, {"attn_init": "paper", "load": "names", "freeze": None}, "keyed.yaml")
    torch.manual_seed(0)
    a = YOLO(str(plain)).model
    torch.manual_seed(0)
    b = YOLO(str(keyed)).model  # Ultralytics' own entry point
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [type(m).__name__ for m in a.model] == [type(m).__name__ for m in b.model]
    assert b.yaml["yolo_attn"]["load"] == "names"  # kept in the model's YAML (and so in its checkpoints)


# ------------------------------------------------------------------------------------------------ arm (b)
def _randomised(model, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def test_names_load_is_ultralytics_own_load(stock_ckpt):
    """load_by_name gives exactly what Ultralytics' DetectionModel.load does with the same weights; the layers before
    the insertion equal the checkpoint's, the shifted ones keep their init where structure transfer copies them."""
    src = read_model_checkpoint(stock_ckpt).state_dict()
    ours, theirs, structure = (_randomised(build_model(SE_MODEL, nc=80), 3) for _ in range(3))
    report = load_by_name(stock_ckpt, ours)
    theirs.load(read_model_checkpoint(stock_ckpt), verbose=False)  # Ultralytics' own YOLO(yaml).load(pt) path
    so, st = ours.state_dict(), theirs.state_dict()
    assert all(torch.equal(so[k], st[k]) for k in so)
    for k, v in so.items():  # before the SE row (index 9) every tensor is the checkpoint's
        if int(k.split(".")[1]) < 9:
            assert torch.equal(v, src[k].to(v.dtype)), k
    # SPPF moved from 9 to 10: by name it keeps its init, by structure it is the checkpoint's layer 9
    transfer_weights(stock_ckpt, structure)
    w = "model.10.cv2.conv.weight"
    assert torch.equal(structure.state_dict()[w], src["model.9.cv2.conv.weight"])
    assert not torch.equal(so[w], src["model.9.cv2.conv.weight"])
    assert report.method == "names" and "by name and shape" in report.summary()
    assert report.tensors == len([k for k in so if int(k.split(".")[1]) < 9])  # nothing after the insertion fits
    assert report.head_start() == "scratch"  # the head moved to index 25: nothing of it arrives by name


def test_bridge_intersect_dicts_is_the_name_and_shape_rule():
    """The assumption arm (b) rests on: Ultralytics' intersect_dicts keeps a source tensor exactly when the target
    has a tensor of that name and shape (checked against the installed Ultralytics, like tests/test_bridge.py)."""
    from yolo_attn._ultralytics import intersect_dicts

    src = {"a": torch.ones(2), "b": torch.ones(3), "c": torch.ones(1), "d": torch.ones(2, 2)}
    dst = {"a": torch.zeros(2), "b": torch.zeros(4), "d": torch.zeros(2, 2), "e": torch.zeros(1)}
    got = intersect_dicts(src, dst)
    assert sorted(got) == ["a", "d"] and got["a"] is src["a"]  # source values, by name and shape only


def _tiny(rows: list, nc: int = 3) -> dict:
    return {"nc": nc, "depth_multiple": 1.0, "width_multiple": 1.0, "backbone": rows,
            "head": [[[len(rows) - 1], 1, "Detect", ["nc"]]]}


def test_names_load_copies_a_shifted_layer_of_equal_shape_into_the_wrong_place(tmp_path):
    """Three equal Conv rows, SE inserted after the first two: by name, target row 3 receives the source's row 3
    (what structure transfer gives row 4), while structure transfer gives it the source's row 2, its real counterpart."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_attn.weights import save_model_checkpoint

    conv = [-1, 1, "Conv", [16, 3, 1]]
    stock_rows = [[-1, 1, "Conv", [16, 3, 2]], conv, conv, conv, [-1, 1, "Conv", [32, 3, 2]]]
    attn_rows = stock_rows[:2] + [[-1, 1, "SE", []]] + stock_rows[2:]
    stock = _randomised(DetectionModel(_tiny(stock_rows), nc=3, verbose=False), 1)
    ckpt = save_model_checkpoint(stock, tmp_path / "tiny-stock.pt", half=False)
    src = stock.state_dict()
    by_name, by_structure = (_randomised(DetectionModel(_tiny(attn_rows), nc=3, verbose=False), 2) for _ in range(2))
    init = {k: v.clone() for k, v in by_name.state_dict().items()}
    load_by_name(ckpt, by_name)
    transfer_weights(ckpt, by_structure)
    n, s = by_name.state_dict(), by_structure.state_dict()
    w = "conv.weight"
    assert not torch.equal(src[f"model.2.{w}"], src[f"model.3.{w}"])
    assert torch.equal(n[f"model.3.{w}"], src[f"model.3.{w}"])  # by name: the wrong layer (equal shape)
    assert torch.equal(s[f"model.3.{w}"], src[f"model.2.{w}"])  # by structure: its counterpart
    assert torch.equal(s[f"model.4.{w}"], src[f"model.3.{w}"])
    assert torch.equal(n[f"model.4.{w}"], init[f"model.4.{w}"])  # source row 4 is 16 -> 32: no shape match, keeps init
    assert torch.equal(n[f"model.1.{w}"], src[f"model.1.{w}"]) and torch.equal(s[f"model.1.{w}"], src[f"model.1.{w}"])


# ------------------------------------------------------------------------------------------------ per-model init
def test_per_model_identity_start_predicts_like_stock_and_paper_does_not(stock_ckpt, tmp_path):
    """What train() does with a model YAML: its own attn_init overrides the run's (here paper) one; the YAML is built
    with it, seeded per layer role, and the checkpoint transferred."""
    from yolo_attn._ultralytics import seeded_layers
    from yolo_attn.models import write_model_yaml
    from yolo_attn.train import _run_start

    stock = read_model_checkpoint(stock_ckpt).float().eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    outs = {}
    for init in ("identity", "paper"):
        path = _yaml_with(tmp_path, {"attn_init": init}, f"se-{init}.yaml")
        run_value = "paper" if init == "identity" else "identity"
        chosen = _run_start({"model": str(path), "pretrained": str(stock_ckpt)}, run_value).attn_init
        assert chosen == init  # the model's own value wins over the run's
        built = write_model_yaml(path, tmp_path / f"built-{init}", chosen)
        assert read_model_options(built).attn_init == init  # the rewritten YAML keeps the key for the trainer
        with seeded_layers(0):
            model = build_model(built, nc=80)
        transfer_weights(stock_ckpt, model)
        outs[init] = model_output(model.eval(), x)
    assert torch.equal(outs["identity"], model_output(stock, x))
    assert not torch.equal(outs["paper"], model_output(stock, x))  # the paper gate rescales the features it sees
    # no per-model value: the run's value applies
    assert _run_start({"model": str(_yaml_with(tmp_path, None, "plain.yaml"))}, "identity").attn_init == "identity"


def test_train_refuses_per_model_freeze_without_pretrained(tmp_path):
    from yolo_attn.train import train

    p = _yaml_with(tmp_path, {"freeze": "backbone"}, "frozen.yaml")
    with pytest.raises(ModelOptionsError, match=r"frozen\.yaml: yolo_attn\.freeze=backbone: freezes pretrained layers"):
        train(model=str(p), epochs=1)
    p = _yaml_with(tmp_path, {"load": "names"}, "names.yaml")
    with pytest.raises(ModelOptionsError, match=r"names\.yaml: yolo_attn\.load=names"):
        train(model=str(p), epochs=1)


# ------------------------------------------------------------------------------------------------ sweep settings
def test_sweep_settings_hash_changes_with_the_model_options(tmp_path):
    from yolo_attn.compare.store import ConfigMismatch, Store
    from yolo_attn.compare.sweep import Resolved, _init_config, _model_spec
    from yolo_attn.datasets import shapes_yaml

    def config(options, out):
        path = _yaml_with(tmp_path, options, "se.yaml")
        spec = _model_spec(str(path), 4, out, {})
        res = Resolved(seeds=[0], epochs=1, threads=1, data="shapes", data_yaml=shapes_yaml(), specs=[spec],
                       baseline=spec.name, imgsz=64, t_args={"lr0": 0.01})
        return _init_config(Store(out), res, allow_changes=False)

    plain = config(None, tmp_path / "a")
    # sweeps without options keep the settings (and hash) they always had
    assert "model_options" not in plain.settings() and "model_options" not in json.loads((tmp_path / "a" / "config.json").read_text())
    paper = config({"attn_init": "paper"}, tmp_path / "b")
    identity = config({"attn_init": "identity"}, tmp_path / "c")
    assert {k: o.as_dict() for k, o in paper.model_options.items()} == {"se": {"attn_init": "paper"}}
    assert len({plain.settings_hash, paper.settings_hash, identity.settings_hash}) == 3
    with pytest.raises(ConfigMismatch, match="model_options"):  # the same folder with the key changed
        config({"attn_init": "identity"}, tmp_path / "b")


def test_sweep_refuses_per_model_options_it_cannot_honour(tiny, stock_ckpt, tmp_path):
    """Before config.json and before any trial: per-model freeze or names load without --pretrained, and a names
    load under a sweep-level --freeze, are refused naming the model."""
    from conftest import run_compare

    kw = dict(data=str(tiny), seeds=1, epochs=1, imgsz=64, progress=False, threads=1)
    frozen = _yaml_with(tmp_path, {"freeze": "backbone"}, "se-frozen.yaml")
    with pytest.raises(ModelOptionsError, match=r"model se-frozen .*yolo_attn\.freeze=backbone: freezes pretrained"):
        run_compare(models=["yolov5n.yaml", str(frozen)], out=str(tmp_path / "a"), **kw)
    names = _yaml_with(tmp_path, {"load": "names"}, "se-names.yaml")
    with pytest.raises(ValueError, match=r"model se-names .*: yolo_attn\.load: names with freeze=backbone is not"):
        run_compare(models=["yolov5n.yaml", str(names)], pretrained=str(stock_ckpt), train_args={"freeze": "backbone"},
                out=str(tmp_path / "b"), **kw)
    assert not any((tmp_path / d / "config.json").exists() for d in "ab")


# ------------------------------------------------------------------------------------------------ the study
def test_study_requires_a_checkpoint_and_the_others_refuse_one(tmp_path, stock_ckpt):
    with pytest.raises(ValueError, match="--pretrained STOCK.pt is required"):
        run_study(get("pretrained"), StudyOptions(out=str(tmp_path / "p"), progress=False), compare_fn=None)
    with pytest.raises(ValueError, match="study fmm: --pretrained is an option of the pretrained study only"):
        run_study(get("fmm"), StudyOptions(pretrained=str(stock_ckpt), out=str(tmp_path / "f"), progress=False))
    assert not (tmp_path / "p").exists() and not (tmp_path / "f").exists()


def test_study_plan_has_five_fine_tuned_and_two_scratch_models(tmp_path, stock_ckpt):
    study = get("pretrained")
    opts = study.with_defaults(StudyOptions(pretrained=str(stock_ckpt)))
    assert (opts.layer, opts.placement, opts.seeds, opts.epochs, opts.imgsz) == ("SE", "backbone-end", 2, 4, 192)
    ft, sc = study.plan(opts, tmp_path / "models")
    assert ft.name == "finetune" and sc.name == "scratch"
    assert ft.pretrained == str(Path(stock_ckpt).resolve()) and sc.pretrained is None
    assert ft.seeds == sc.seeds == [0, 1] and ft.baseline == sc.baseline == "stock"
    arms = {a: lbl for lbl, a in ft.meta["arms"].items()}
    assert list(arms) == ["a", "b", "c", "d", "e"] and [Path(m).stem for m in ft.models] == list(arms.values())
    assert {ft.roles[arms[a]][:3] for a in arms} == {"(a)", "(b)", "(c)", "(d)", "(e)"}
    options = {a: read_model_options(m) for a, m in zip(arms, ft.models)}
    assert options["a"].empty
    assert options["b"] == ModelOptions("paper", "names")
    assert options["c"] == ModelOptions("paper", "structure")
    assert options["d"] == ModelOptions("identity", "structure")
    assert options["e"] == ModelOptions("identity", "structure", "backbone")
    assert all("SE" in Path(m).read_text() for m in ft.models[1:]) and "SE" not in Path(ft.models[0]).read_text()
    assert [Path(m).stem for m in sc.models] == ["stock", "se-backbone-end"]
    assert sc.models[0] == ft.models[0] and read_model_options(sc.models[1]).empty
    assert sorted(sc.roles.values()) == ["SE at backbone-end, from scratch", "stock, from scratch"]
    # the checkpoint is part of the study's fingerprint (its bytes, not only its path)
    fp = opts.fingerprint()
    assert fp["pretrained"] == str(stock_ckpt) and len(fp["pretrained_sha256"]) == 12
    assert "pretrained" not in StudyOptions(seeds=2).fingerprint()  # other studies keep theirs


class FakeCompare:
    """Stands in for compare: summary rows with known per-seed mAPs, and trial records with start and curve."""

    def __init__(self, effects: dict[str, float], noise: dict[str, float], starts: dict[str, float]):
        self.effects, self.noise, self.starts = effects, noise, starts
        self.calls = []

    def __call__(self, request, run, report=None):
        models, seeds, epochs, out, baseline = request.models, request.seeds, request.epochs, run.out, request.baseline
        kw = {"pretrained": request.start.pretrained}
        self.calls.append({"out": out, "models": [Path(m).stem for m in models], "pretrained": kw.get("pretrained")})
        sweep = Path(out).name
        maps = {}
        for m in models:
            lbl = Path(m).stem
            eff = self.effects.get(f"{sweep}:{lbl}", 0.0)
            noise = self.noise.get(sweep, 0.0)
            maps[lbl] = [0.3 + (eff + noise * (-1) ** s if lbl != baseline else 0.0) for s in seeds]
        Path(out).mkdir(parents=True, exist_ok=True)
        def fields(lbl, s):
            final = maps[lbl][list(seeds).index(s)]
            return {"start": {"map": self.starts.get(f"{sweep}:{lbl}", 0.0)} if kw.get("pretrained") else None,
                    "curve": [{"epoch": e + 1, "map": final * (e + 1) / epochs} for e in range(epochs)],
                    "head_start": "scratch" if kw.get("pretrained") else None}

        record_fake_trials(out, models, seeds, epochs, baseline, fields)
        return fake_summary(out, baseline, maps, seeds, epochs)


def test_study_report_has_every_arm_the_contrasts_and_both_seed_sds(tmp_path, stock_ckpt):
    fake = FakeCompare(
        effects={"finetune:se-backbone-end-names-paper": -0.10, "finetune:se-backbone-end-structure-paper": -0.01,
                 "finetune:se-backbone-end-structure-identity": 0.0, "finetune:se-backbone-end-structure-identity-frozen": 0.0,
                 "scratch:se-backbone-end": 0.0},
        noise={"finetune": 0.001, "scratch": 0.02},  # per-seed Δ ±0.001 fine-tuned, ±0.02 from scratch
        starts={"finetune:stock": 0.2, "finetune:se-backbone-end-structure-identity": 0.2,
                "finetune:se-backbone-end-structure-identity-frozen": 0.2, "finetune:se-backbone-end-structure-paper": 0.05})
    opts = StudyOptions(pretrained=str(stock_ckpt), seeds=4, out=str(tmp_path / "study"), progress=False)
    res = run_study(get("pretrained"), opts, compare_fn=fake)
    assert [c["models"] for c in fake.calls] == [
        ["stock", "se-backbone-end-names-paper", "se-backbone-end-structure-paper", "se-backbone-end-structure-identity",
         "se-backbone-end-structure-identity-frozen"], ["stock", "se-backbone-end"]]
    assert fake.calls[0]["pretrained"] == str(Path(stock_ckpt).resolve()) and fake.calls[1]["pretrained"] is None
    out = Path(res["out"])
    js = json.loads((out / "study.json").read_text())
    r = js["results"]
    assert r["arms"]["d"]["start_map_mean"] == pytest.approx(0.2) and r["arms"]["c"]["start_map_mean"] == pytest.approx(0.05)
    assert r["arms"]["b"]["effect"]["delta"] == pytest.approx(-0.10) and r["arms"]["b"]["effect"]["hi"] < 0
    assert r["arms"]["a"]["curve"]["epochs"] == [0, 1, 2, 3, 4]
    sd = r["seed_sd"]
    assert sd["finetuned"] == pytest.approx(np.std([0.001, -0.001, 0.001, -0.001], ddof=1))
    assert sd["scratch"] == pytest.approx(np.std([0.02, -0.02, 0.02, -0.02], ddof=1)) and sd["scratch_seeds"] == 4
    c = r["contrasts"]["Structure transfer instead of Ultralytics' name load ((c) − (b), both paper init)"]
    assert c["delta"] == pytest.approx(0.09) and c["lo"] > 0
    md = (out / "study.md").read_text()
    for role in ("(a) stock, fine-tuned", "(b) Ultralytics' load", "(c) structure transfer, paper init",
                 "(d) structure transfer, identity start", "(e) = (d), backbone frozen"):
        assert role in md
    answer = js["answer"]
    assert "(b) Ultralytics' load (name and shape), paper init lowered mAP50-95 by 0.100" in answer
    assert "(d) structure transfer, identity start: no detectable effect" in answer  # Δ 0: not called an effect
    assert "raised mAP50-95 by 0.090" in answer  # (c) − (b)
    assert "With the identity start (d) and (e) begin exactly where (a) does" in answer
    assert "Seed SD of Δ: 0.0012 (4 seeds) fine-tuned" in answer and "against 0.0231 (4 seeds) from scratch" in answer
    assert "head does not transfer" in md and "head_start" in md
    assert f"yolo-attn compare --plan --out {out / 'finetune'}" in md
    assert (out / "study.png").stat().st_size > 1000
    assert js["options"]["pretrained_sha256"]


# ------------------------------------------------------------------------------------------------ real
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    base = tmp_path_factory.mktemp("data")
    y = base / "tiny.yaml"
    write_dataset(base / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


@pytest.mark.slow
def test_tiny_real_pretrained_study_end_to_end(tiny, stock_ckpt, tmp_path):
    """The whole study for real: 7 trials (1 seed, 1 epoch, imgsz 64, 24 training images), per-model options applied
    by the trainer: identity-start arms start exactly as stock, the paper-init ones do not, the names arm loads less."""
    from yolo_attn.compare.store import Store

    opts = StudyOptions(data=str(tiny), pretrained=str(stock_ckpt), seeds=1, epochs=1, imgsz=64, threads=1,
                        out=str(tmp_path / "study"), progress=False)
    res = run_study(get("pretrained"), opts)
    assert res["complete"]
    out = Path(res["out"])
    recs = {r.model: r for r in Store(out / "finetune").trial_records()}
    assert all(r.ok for r in recs.values()), [r.error for r in recs.values()]
    a, b, c = recs["stock"], recs["se-backbone-end-names-paper"], recs["se-backbone-end-structure-paper"]
    d, e = recs["se-backbone-end-structure-identity"], recs["se-backbone-end-structure-identity-frozen"]
    assert d.start == a.start and e.start == a.start  # identity start: the stock model's epoch 0, losses too
    assert c.start["loss"] != a.start["loss"] and b.start["loss"] != a.start["loss"]  # paper init: not
    assert "by name and shape" in b.transfer and "by name" not in d.transfer
    n_names, n_struct = (int(r.transfer.split()[1].split("/")[0]) for r in (b, d))
    assert n_names < n_struct  # after the inserted SE nothing arrives by name
    config = json.loads((out / "finetune" / "config.json").read_text())
    assert config["model_options"]["se-backbone-end-structure-identity-frozen"] == {
        "attn_init": "identity", "load": "structure", "freeze": "backbone"}
    # (e) really froze the backbone: its first conv is still the checkpoint's after training
    from yolo_attn.weights import load_checkpoint

    src = load_checkpoint(stock_ckpt).state_dict
    last = load_checkpoint(Path(e.run_dir) / "weights" / "last.pt").state_dict
    assert torch.equal(last["model.0.conv.weight"].float(), src["model.0.conv.weight"].float())
    last_d = load_checkpoint(Path(d.run_dir) / "weights" / "last.pt").state_dict
    assert not torch.equal(last_d["model.0.conv.weight"].float(), src["model.0.conv.weight"].float())
    scratch = {r.model: r for r in Store(out / "scratch").trial_records()}
    assert sorted(scratch) == ["se-backbone-end", "stock"] and all(r.start is None for r in scratch.values())
    md = (out / "study.md").read_text()
    for role in ("(a) stock", "(b) Ultralytics' load", "(c) structure transfer", "(d) structure transfer",
                 "(e) = (d)", "from scratch"):
        assert role in md
    assert "too few seeds to say" in md and "not estimable (1 seed)" in md
    assert "per-model options (YAML key yolo_attn)" in md
    summary = (out / "finetune" / "summary.md").read_text()
    assert "Per-model options" in summary and "load names" in summary
    assert (out / "study.png").is_file()
    assert run_study(get("pretrained"), opts)["cached"]
    assert math.isfinite(json.loads((out / "study.json").read_text())["results"]["arms"]["d"]["start_map_mean"])
