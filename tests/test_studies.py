"""Studies (yolo_attn.studies): planning, wording, the interaction test, resume, and one tiny real run.

Most tests replace ``compare`` by a fake that returns a summary with known per-seed mAPs (the point is
the study's bookkeeping and wording, not training); one slow test runs a real tiny study end to end.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from yolo_attn.compare import stats
from yolo_attn.compare.summary import MetricDiff
from yolo_attn.studies import StudyOptions, get, run_study
from yolo_attn.studies import _verdicts as V
from yolo_attn.studies.capacity import interaction

from conftest import fake_summary, record_fake_trials


class FakeCompare:
    """Stands in for ``yolo_attn.compare.compare``: mAP = base + effect(model) + seed noise, summary like compare's."""

    def __init__(self, effects: dict, noise: float = 0.002, base: float = 0.30, rng_seed: int = 0,
                 s_per_epoch: float | None = None, alternating: bool = False, overhead_s: float | None = None):
        self.effects, self.noise, self.base, self.s_per_epoch = effects, noise, base, s_per_epoch
        self.overhead_s = overhead_s  # when set: records carry train_time_s, and duration_s adds this fixed part
        self.alternating = alternating  # model noise +-noise/4 by seed parity: the mean difference is exactly the effect
        self.rng = np.random.default_rng(rng_seed)
        self.calls = []

    def effect(self, label: str) -> float:
        return next((v for k, v in self.effects.items() if k in label), 0.0)

    def __call__(self, request, run, report=None):
        models, seeds, epochs, out, baseline = request.models, request.seeds, request.epochs, run.out, request.baseline
        self.calls.append({"models": [Path(m).stem for m in models], "seeds": list(seeds), "epochs": epochs, "out": out,
                           "max_trials": run.max_trials, "request": request, "run": run})
        for m in models:  # the studies must hand compare real, buildable YAML files
            assert Path(m).is_file() and "width_multiple" in yaml.safe_load(Path(m).read_text())
        seed_noise = {s: self.rng.normal(0, self.noise) for s in seeds}
        def own(k, s):
            if self.alternating:
                return 0.0 if k == 0 else self.noise / 4 * (-1) ** (s + k)
            return self.rng.normal(0, self.noise / 4)

        maps = {Path(m).stem: [self.base + self.effect(Path(m).stem) + seed_noise[s] + own(k, s) for s in seeds]
                for k, m in enumerate(models)}
        Path(out).mkdir(parents=True, exist_ok=True)
        if self.s_per_epoch is not None:  # trial records through the real store (time accounting of the search)
            record_fake_trials(out, models, seeds, epochs, baseline, self._fields(epochs), run.allow_changes)
        return fake_summary(out, baseline, maps, seeds, epochs, lambda lbl: {
            "params": 1000, "params_ratio": 1.0, "latency_ms": 10.0 + len(lbl) / 10, "latency_ratio": 1.0 + len(lbl) / 100})


    def _fields(self, epochs):
        duration = self.s_per_epoch * epochs
        if self.overhead_s is None:
            return lambda lbl, s: {"duration_s": duration}
        return lambda lbl, s: {"train_time_s": duration, "duration_s": duration + self.overhead_s}


def _opts(tmp_path, **kw):
    return StudyOptions(out=str(tmp_path / "study"), progress=False, **kw)


# ------------------------------------------------------------------------------------------------ wording
def _diff(delta, lo, hi, n, verdict=None, mdd=math.nan, per_seed=None, seeds=None) -> MetricDiff:
    """A difference as the report holds it: the interval and (with ``verdict``) the family-wise part."""
    ci = stats.DiffCI(delta, lo, hi, per_seed or [delta] * n, n, var_seed=1e-4, var_image=0.0)
    adj = None if verdict is None else stats.Adjusted(0.01 if verdict in ("better", "worse") else 0.2, lo, hi, 3, 0.983,
                                                       verdict in ("better", "worse"), mdd, verdict)
    return MetricDiff(ci, seeds or list(range(n)), adj)


def test_sentence_never_stronger_than_the_interval():
    better = _diff(0.02, 0.01, 0.03, 4, "better")
    assert "raised" in V.sentence(better, "SE") and "[+0.010, +0.030]" in V.sentence(better, "SE")
    unclear = _diff(0.02, -0.01, 0.05, 4, "no detectable difference (could detect ≥ 0.060)", mdd=0.06)
    s = V.sentence(unclear, "SE")
    assert "no detectable effect" in s and "0.060" in s and "raised" not in s
    holm = _diff(0.02, 0.001, 0.04, 4, "no detectable difference (could detect ≥ 0.050)", mdd=0.05)
    assert "does not hold after the adjustment" in V.sentence(holm, "SE") and "raised" not in V.sentence(holm, "SE")
    one = _diff(0.02, math.nan, math.nan, 1, "too few seeds to say")
    assert "too few seeds to say" in V.sentence(one, "SE") and "raised" not in V.sentence(one, "SE")


def test_fallback_verdict_follows_the_interval():
    """A difference without the family-wise part (a file of an older version, a contrast) is judged by its interval."""
    d = {"delta": 0.01, "lo": 0.002, "hi": 0.02, "n_seeds": 3, "per_seed": [0.01] * 3, "seeds": [0, 1, 2]}
    assert MetricDiff.from_json(d).verdict == "better"
    d.update(lo=-0.001)
    assert MetricDiff.from_json(d).verdict.startswith("no detectable difference")
    d.update(lo=-0.03, hi=-0.001, delta=-0.01)
    assert MetricDiff.from_json(d).verdict == "worse"
    one = {"delta": 0.01, "lo": 0.002, "hi": 0.02, "n_seeds": 1, "per_seed": [0.01], "seeds": [0]}
    e = MetricDiff.from_json(one)  # an image-only interval of a single seed is not reported as an interval
    assert e.verdict == "too few seeds to say" and not e.has_interval and math.isnan(e.lo)
    # a verdict written by the statistics wins over the fallback, and is written back
    d["verdict"] = "too few seeds to say"
    assert MetricDiff.from_json(d).verdict == "too few seeds to say"
    assert MetricDiff.from_json(MetricDiff.from_json(d).to_json()).verdict == "too few seeds to say"


def test_contrast_is_paired_over_common_seeds():
    a = _diff(0.0, 0, 0, 3, per_seed=[0.05, 0.06, 0.07], seeds=[0, 1, 2])
    b = _diff(0.0, 0, 0, 4, per_seed=[0.01, 0.02, 0.03, 0.5], seeds=[0, 1, 2, 9])
    c = V.contrast(a, b)
    assert c.seeds == [0, 1, 2] and c.per_seed == pytest.approx([0.04, 0.04, 0.04])
    assert c.delta == pytest.approx(0.04) and c.adjusted is None


# ------------------------------------------------------------------------------------------------ interaction
def test_interaction_slope_recovers_a_known_negative_trend():
    rng = np.random.default_rng(1)
    widths = [0.125, 0.25, 0.5, 1.0] * 6
    diffs = [0.04 - 0.01 * math.log2(w / 0.125) + rng.normal(0, 0.002) for w in widths]
    fit = interaction(widths, diffs)
    assert fit["slope"] == pytest.approx(-0.01, abs=0.002) and fit["hi"] < 0 and fit["p"] < 1e-6
    # same as the textbook t-test on the slope
    from scipy import stats as st

    x = np.log2(widths)
    res = st.linregress(x, diffs)
    assert fit["p"] == pytest.approx(res.pvalue) and fit["se"] == pytest.approx(res.stderr)


def test_interaction_without_trend_is_not_called_a_trend():
    rng = np.random.default_rng(2)
    widths = [0.125, 0.25, 0.5] * 5
    fits = [interaction(widths, rng.normal(0.01, 0.01, len(widths))) for _ in range(400)]
    covered = np.mean([f["lo"] <= 0 <= f["hi"] for f in fits])
    assert 0.93 <= covered <= 0.97  # the slope interval has its nominal 95% coverage under no trend
    from yolo_attn.studies.capacity import interaction_sentence

    f = next(f for f in fits if f["lo"] <= 0 <= f["hi"])
    assert interaction_sentence(f).startswith("No detectable change")


def test_detectable_slope_has_its_power():
    """At a true slope equal to the stated detectable slope, the t-test rejects in about 80% of simulated studies."""
    from scipy import stats as st

    rng = np.random.default_rng(3)
    widths = np.array([0.125, 0.25, 0.5] * 6)
    x = np.log2(widths)
    sigma = 0.01
    n = len(x)
    se_true = sigma / np.sqrt(((x - x.mean()) ** 2).sum())
    slope = (st.t.ppf(0.975, n - 2) + st.t.ppf(0.80, n - 2)) * se_true
    fits = [interaction(widths, 0.02 + slope * x + rng.normal(0, sigma, n)) for _ in range(2000)]
    power = np.mean([f["p"] < 0.05 for f in fits])
    assert 0.76 <= power <= 0.84
    # and the stated detectable slope estimates that value
    assert np.median([f["detectable_slope"] for f in fits]) == pytest.approx(slope, rel=0.1)


def test_interaction_needs_enough_points():
    assert math.isnan(interaction([0.25, 0.25], [0.1, 0.2])["slope"])


# ------------------------------------------------------------------------------------------------ studies
def test_capacity_study_reports_shrinking_effect(tmp_path, capsys):
    effects = {"se-backbone-end-w0p125": 0.06, "se-backbone-end-w0p25": 0.03, "se-backbone-end-w0p5": 0.0}
    fake = FakeCompare(effects, noise=0.002)
    res = run_study(get("capacity"), _opts(tmp_path, seeds=4), compare_fn=fake)
    assert [c["models"][0] for c in fake.calls] == ["stock-w0p125", "stock-w0p25", "stock-w0p5"]
    js = json.loads((Path(res["out"]) / "study.json").read_text())
    fit = js["results"]["interaction"]
    assert fit["hi"] < 0 and fit["slope"] == pytest.approx(-0.03, abs=0.01)
    md = (Path(res["out"]) / "study.md").read_text()
    assert "The effect shrinks as width grows" in md and "At width 0.125, SE raised" in md
    assert "not measured" in md  # mAP on the training images; loss gap not available from a fake run
    assert (Path(res["out"]) / "study.png").stat().st_size > 1000
    # width multiples really written into the models
    w = yaml.safe_load((Path(res["out"]) / "models" / "stock-w0p5.yaml").read_text())["width_multiple"]
    assert w == 0.5


def test_fuse_study_no_effect_is_worded_as_such(tmp_path):
    fake = FakeCompare({}, noise=0.01, alternating=True)  # per-seed differences ±0.0025 (mul − add ±0.005), mean 0
    res = run_study(get("fuse"), _opts(tmp_path, seeds=4), compare_fn=fake)
    models = fake.calls[0]["models"]
    assert models == ["stock", "se-backbone-mul", "se-backbone-add", "se-backbone-norelu"]
    text = (Path(res["out"]) / "study.md").read_text()
    add_yaml = (Path(res["out"]) / "models" / "se-backbone-add.yaml").read_text()
    assert "fuse: add" in add_yaml
    answer = json.loads((Path(res["out"]) / "study.json").read_text())["answer"]
    assert "raised" not in answer and "lowered" not in answer  # no true effect (seeded data): no claim of one
    assert answer.count("no detectable effect") == 4  # mul, add, mul − add, SE relu: false
    assert "Multiplying instead of adding the gate" in text and "mul − add" in text


def test_fuse_study_rejects_non_gating_layer(tmp_path):
    with pytest.raises(ValueError, match="gating layer"):
        run_study(get("fuse"), _opts(tmp_path, layer="SimAM"), compare_fn=FakeCompare({}))


def test_fmm_study_models_and_contrast(tmp_path):
    fake = FakeCompare({"c3attn": 0.05, "c3fmm": 0.01}, noise=0.002)
    res = run_study(get("fmm"), _opts(tmp_path, seeds=4), compare_fn=fake)
    out = Path(res["out"])
    assert "C3FMM" in (out / "models" / "c3fmm-backbone.yaml").read_text()
    assert "C3Attn" in (out / "models" / "c3attn-se-backbone.yaml").read_text()
    c = json.loads((out / "study.json").read_text())["results"]["contrast_attn_minus_fmm"]
    assert c["delta"] == pytest.approx(0.04, abs=0.01) and c["lo"] > 0


def test_placement_study_ranks_all_shipped_placements(tmp_path):
    from yolo_attn.studies.placement import shipped_placements

    fake = FakeCompare({"se-neck": 0.05, "se-sppf": -0.05}, noise=0.002)
    res = run_study(get("placement"), _opts(tmp_path), compare_fn=fake)
    assert len(fake.calls[0]["models"]) == 1 + len(shipped_placements("SE")) >= 6
    js = json.loads((Path(res["out"]) / "study.json").read_text())
    assert js["results"]["ranking"][0] == "neck" and js["results"]["ranking"][-1] == "sppf"
    assert "latency ×" in (Path(res["out"]) / "study.md").read_text()


def test_placement_names_effects_that_fail_the_family_adjustment(tmp_path):
    """A placement whose own interval excludes 0 but whose family-wise verdict does not is named as such, and
    plotted in its own colour (not as 'better')."""
    class Holm(FakeCompare):
        def __call__(self, *a, **kw):
            s = super().__call__(*a, **kw)
            d = s.row("se-sppf").diff["map"]  # its own interval excludes 0, Holm's test does not
            d.adjusted = stats.Adjusted(0.2, d.ci.lo - 0.01, d.ci.hi + 0.01, 2, 0.975, False, 0.09,
                                        "no detectable difference (could detect ≥ 0.090)")
            return s

    res = run_study(get("placement"), _opts(tmp_path, placements=["neck", "sppf", "backbone"]),
                    compare_fn=Holm({"se-neck": 0.08, "se-sppf": 0.05}, noise=0.002))
    answer = json.loads((Path(res["out"]) / "study.json").read_text())["answer"]
    assert "Placements that improved on stock: neck" in answer
    assert "SE at sppf: no detectable effect" in answer and "does not hold after the adjustment" in answer
    assert "SE at backbone" not in answer  # no effect, own interval includes 0: not singled out
    md = (Path(res["out"]) / "study.md").read_text()
    assert "this model alone" in md and "verdict (family-wise)" in md


def test_plot_colours_follow_the_verdict():
    """The one colour rule of every effect plot (the sweep's diff_to_baseline.png, the studies' forests and points)."""
    from yolo_attn.compare.plots import colour

    assert colour(0.01, 0.05, "better") == "tab:green" and colour(-0.05, -0.01, "worse") == "tab:red"
    assert colour(0.01, 0.05, "no detectable difference (could detect ≥ 0.1)") == "tab:olive"
    assert colour(-0.01, 0.05, "no detectable difference (could detect ≥ 0.1)") == "tab:gray"
    assert colour(0.01, 0.05) == "tab:green" and colour(-0.01, 0.05) == "tab:gray"  # no verdict: the interval


def test_finished_study_prints_its_report_without_running(tmp_path, capsys):
    fake = FakeCompare({})
    run_study(get("fmm"), _opts(tmp_path, seeds=2), compare_fn=fake)
    capsys.readouterr()

    def boom(**kw):
        raise AssertionError("a finished study must not run its sweeps again")

    res = run_study(get("fmm"), _opts(tmp_path, seeds=2), compare_fn=boom)
    assert res["cached"] and "# Study: fmm" in capsys.readouterr().out
    # other options: the study runs again
    run_study(get("fmm"), _opts(tmp_path, seeds=3), compare_fn=fake)
    assert fake.calls[-1]["seeds"] == [0, 1, 2]


def test_incomplete_study_is_not_cached(tmp_path):
    class Partial(FakeCompare):
        def __call__(self, *a, **kw):
            s = super().__call__(*a, **kw)
            s.complete = False
            return s

    run_study(get("fmm"), _opts(tmp_path, seeds=2), compare_fn=Partial({}))
    js = json.loads((tmp_path / "study" / "study.json").read_text())
    assert js["complete"] is False and "Incomplete" in (tmp_path / "study" / "study.md").read_text()
    fake = FakeCompare({})
    assert not run_study(get("fmm"), _opts(tmp_path, seeds=2), compare_fn=fake)["cached"] and fake.calls


def test_diagnose_runs_once_per_sweep_and_is_linked(tmp_path):
    """--diagnose: every sweep's checkpoints diagnosed into <sweep>/diagnose, linked from study.md; a finished study
    asked for a diagnosis later gets one without training again; a diagnosed sweep is not diagnosed twice."""
    calls = []

    def fake_diagnose(root, out, progress=None):
        calls.append(Path(root).name)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "diagnose.md").write_text("# diagnosis\n")

    fake = FakeCompare({})
    run_study(get("capacity"), _opts(tmp_path, seeds=2, widths=[0.25, 0.5]), compare_fn=fake)
    assert calls == [] and "Diagnosis" not in (tmp_path / "study" / "study.md").read_text()
    n_runs = len(fake.calls)

    def boom(**kw):
        raise AssertionError("a finished study must not train again for its diagnosis")

    opts = _opts(tmp_path, seeds=2, widths=[0.25, 0.5], diagnose=True)
    res = run_study(get("capacity"), opts, compare_fn=fake, diagnose_fn=fake_diagnose)
    assert calls == ["w0p25", "w0p5"] and len(fake.calls) == n_runs + 2  # sweeps only re-read (fake: called)
    assert all(c["max_trials"] is None for c in fake.calls)
    md = (Path(res["out"]) / "study.md").read_text()
    assert "[w0p25](w0p25/diagnose/diagnose.md)" in md and "[w0p5](w0p5/diagnose/diagnose.md)" in md
    # everything diagnosed and the options unchanged: the report comes from the cache
    res = run_study(get("capacity"), opts, compare_fn=boom, diagnose_fn=fake_diagnose)
    assert res["cached"] and calls == ["w0p25", "w0p5"]
    # a lost diagnosis is redone, only that one
    (tmp_path / "study" / "w0p5" / "diagnose" / "diagnose.md").unlink()
    run_study(get("capacity"), opts, compare_fn=fake, diagnose_fn=fake_diagnose)
    assert calls == ["w0p25", "w0p5", "w0p5"]


def test_diagnose_waits_for_a_complete_study(tmp_path):
    class Partial(FakeCompare):
        def __call__(self, *a, **kw):
            return dataclasses.replace(super().__call__(*a, **kw), complete=False)

    def never(*a, **kw):
        raise AssertionError("an incomplete study is not diagnosed")

    run_study(get("fmm"), _opts(tmp_path, seeds=2, diagnose=True), compare_fn=Partial({}), diagnose_fn=never)
    assert "--diagnose: not run, the study is incomplete" in (tmp_path / "study" / "study.md").read_text()


def test_study_command_diagnose_flag():
    from yolo_attn.cli import build_parser

    assert build_parser().parse_args(["study", "fmm", "--diagnose"]).diagnose
    assert not build_parser().parse_args(["study", "fmm"]).diagnose


def test_study_command_is_discovered():
    from yolo_attn.cli import build_parser

    args = build_parser().parse_args(["study", "capacity", "--widths", "0.25", "0.5", "--seeds", "2"])
    assert args.name == "capacity" and args.widths == [0.25, 0.5]


# ------------------------------------------------------------------------------------------------ real
@pytest.mark.slow
def test_tiny_real_study_end_to_end(tmp_path):
    """placement study, stock vs SE at backbone-end on the shipped shapes data: 1 seed, 1 epoch, imgsz 64 -- real
    training (about a minute on 2 busy cores), report written with provenance, rerun prints it from the cache."""
    opts = StudyOptions(placements=["backbone-end"], seeds=1, epochs=1, imgsz=64, out=str(tmp_path / "placement"),
                        progress=False, threads=1)
    res = run_study(get("placement"), opts)
    assert res["complete"]
    js = json.loads((tmp_path / "placement" / "study.json").read_text())
    prov = js["provenance"]
    assert prov["data_fingerprint"]["val"]["hash"] and prov["versions"]["ultralytics"]
    assert prov["sweeps"][0]["seeds"] == [0] and prov["sweeps"][0]["epochs"] == 1 and prov["sweeps"][0]["imgsz"] == 64
    assert "too few seeds to say" in js["answer"]  # 1 seed: no interval, and the report says so
    assert js["results"]["ranking"] == ["backbone-end"]
    assert (tmp_path / "placement" / "study.png").is_file()
    assert run_study(get("placement"), opts)["cached"]
    # --diagnose on the finished study: the real diagnosis of its checkpoints, linked, nothing retrained
    before = (tmp_path / "placement" / "sweep" / "trials.jsonl").read_text()
    res = run_study(get("placement"), dataclasses.replace(opts, diagnose=True))
    diag = json.loads((tmp_path / "placement" / "sweep" / "diagnose" / "diagnose.json").read_text())
    assert sorted(m["ref"]["label"] for m in diag["models"]) == ["se-backbone-end", "stock"] and not res["cached"]
    assert "(sweep/diagnose/diagnose.md)" in (tmp_path / "placement" / "study.md").read_text()
    assert (tmp_path / "placement" / "sweep" / "trials.jsonl").read_text() == before


def test_provenance_keeps_per_model_options_as_written(tmp_path):
    """A sweep's per-model options (ModelSpec.options, a ModelOptions) reach study.json and study.md as the
    setting config.json hashes them."""
    from yolo_attn.compare.contract import SweepConfig
    from yolo_attn.compare.request import ModelSpec
    from yolo_attn.compare.store import Store
    from yolo_attn.studies.runner import SweepPlan, provenance, provenance_md
    from yolo_attn.weights import ModelOptions

    spec = ModelSpec("se", "/m/se.yaml", "h", options=ModelOptions(attn_init="paper", load="names"))
    cfg = SweepConfig(settings_hash="x", data_fingerprint={}, epochs=1, imgsz=64, models=[spec.stored()], seeds=[0],
                      model_specs=[spec])
    Store(tmp_path / "s").init_config(cfg)
    prov = json.loads(json.dumps(provenance(tmp_path, [SweepPlan("s", ["/m/se.yaml"], "se", [0], 1)], {})))
    assert prov["sweeps"][0]["model_options"] == {"se": {"attn_init": "paper", "load": "names"}}
    assert '{"se": {"attn_init": "paper", "load": "names"}}' in "\n".join(provenance_md(prov))


def test_a_study_margin_declares_every_sweeps_rule_and_lists_the_decisions(tmp_path):
    from yolo_attn.compare.summary import DecisionReport, ModelDecision

    class Deciding(FakeCompare):
        def __call__(self, request, run, report=None):
            summary = super().__call__(request, run, report)
            rule = request.decision.rule(len(request.seeds))
            if rule is not None:
                summary.decision = DecisionReport(rule.to_dict(), True, [rule.looks[-1]], [ModelDecision(
                    r.model, "equivalent", f"{r.model}: equivalent to stock within ±{rule.margin:g}")
                    for r in summary.compared])
            return summary

    fake = Deciding({"se-backbone-end": 0.0}, noise=0.002)
    res = run_study(get("placement"), _opts(tmp_path, seeds=3, placements=["backbone-end"], margin=0.02),
                    compare_fn=fake)
    assert all(c["request"].decision.margin == 0.02 and not c["request"].decision.until_decided for c in fake.calls)
    md = (Path(res["out"]) / "study.md").read_text()
    assert "decisions under the rule it declared (margin ±0.02: se-backbone-end: equivalent to stock within ±0.02)" in md
    assert _opts(tmp_path, margin=0.02).fingerprint()["margin"] == 0.02 and "margin" not in _opts(tmp_path).fingerprint()
