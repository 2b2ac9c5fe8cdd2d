"""Placement search (yolo_attn.studies.search): successive-halving bookkeeping, disjoint confirmation seeds,
budget, resume after interruption, the Pareto front, and the Ray Tune ASHA configuration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from test_studies import FakeCompare
from yolo_attn.studies.search import (AshaSetup, asha_survivors, Search, SearchOptions, confirmation_seeds, fit_max_trials,
                                      halving_schedule, pareto_front, select, trials_needed)

LAYERS, PLACEMENTS = ["SE", "CBAM", "ECA"], ["backbone-end", "neck", "sppf"]
# known effects: the candidates' true order is se-neck > cbam-neck > eca-neck > se-sppf > ... (no noise ties)
EFFECTS = {"se-neck": 0.09, "cbam-neck": 0.08, "eca-neck": 0.07, "se-sppf": 0.06, "cbam-sppf": 0.05,
           "eca-sppf": 0.04, "se-backbone-end": 0.03, "cbam-backbone-end": 0.02, "eca-backbone-end": 0.01}


def _opts(tmp_path, **kw):
    return SearchOptions(layers=LAYERS, placements=PLACEMENTS, out=str(tmp_path / "search"), progress=False, **kw)


def test_halving_schedule_and_trial_count():
    assert halving_schedule(9, 2, 8, 2, 2) == [(9, 2), (5, 4), (3, 8)]
    assert halving_schedule(9, 1, 3, 3, 1) == [(9, 1), (3, 3)]
    assert halving_schedule(2, 2, 8, 2, 2) == []
    sched = halving_schedule(9, 2, 8, 2, 2)
    assert trials_needed(sched, 1, 2, 3) == 10 + 6 + 4 + 9
    assert fit_max_trials(sched, 1, 2, 3, 100) == 3
    assert fit_max_trials(sched, 1, 2, 3, 26) == 2  # confirmation seeds reduced to fit
    with pytest.raises(ValueError, match="too small"):
        fit_max_trials(sched, 1, 2, 3, 20)
    with pytest.raises(ValueError):
        halving_schedule(9, 2, 8, 1, 2)


def test_select_and_confirmation_seeds():
    assert select({"a": 0.1, "b": math.nan, "c": 0.3, "d": 0.3}, 3) == ["c", "d", "a"]
    assert confirmation_seeds([0, 1], 3) == [2, 3, 4]
    assert not set(confirmation_seeds([0, 5], 4)) & {0, 5}


def test_pareto_front():
    pts = {"stock": (1.0, 0.0), "cheap": (1.02, 0.01), "dear": (1.5, 0.05), "bad": (1.6, 0.02), "worse": (1.1, -0.01)}
    assert pareto_front(pts) == ["stock", "cheap", "dear"]


def test_successive_halving_keeps_the_best_half(tmp_path, capsys):
    fake = FakeCompare(EFFECTS, noise=0.001)
    res = Search(_opts(tmp_path), compare_fn=fake).run()
    rungs = [c for c in fake.calls if "rung" in c["out"]]
    assert [len(c["models"]) - 1 for c in rungs] == [9, 5, 3]  # + stock in every rung
    assert [c["epochs"] for c in rungs] == [2, 4, 8]
    assert set(rungs[1]["models"]) == {"stock", "se-neck", "cbam-neck", "eca-neck", "se-sppf", "cbam-sppf"}
    assert set(rungs[2]["models"]) == {"stock", "se-neck", "cbam-neck", "eca-neck"}
    assert res["data"]["survivors"] == ["se-neck", "cbam-neck"]
    conf = fake.calls[-1]
    assert conf["out"].endswith("confirm") and conf["models"] == ["stock", "se-neck", "cbam-neck"]
    assert conf["epochs"] == 8 and conf["seeds"] == [1, 2, 3]
    assert not set(conf["seeds"]) & {s for c in rungs for s in c["seeds"]}  # confirmation seeds never used to select
    out = Path(res["out"])
    assert res["data"]["ranking"][:3] == ["se-neck", "cbam-neck", "eca-neck"] and len(res["data"]["ranking"]) == 9
    md = (out / "search.md").read_text()
    assert "se-neck raised mAP50-95" in md and "Pareto front" in md
    assert (out / "pareto.png").stat().st_size > 1000


def test_search_resumes_after_interruption(tmp_path):
    class Interrupt(FakeCompare):
        def __call__(self, request, run, report=None):
            if "rung1" in run.out:
                raise KeyboardInterrupt
            return super().__call__(request, run, report)

    with pytest.raises(KeyboardInterrupt):
        Search(_opts(tmp_path), compare_fn=Interrupt(EFFECTS)).run()
    state = json.loads((tmp_path / "search" / "search_state.json").read_text())
    assert len(state["rungs"]) == 1
    # the second run scores candidates differently: rung 0's recorded decision must still stand
    flipped = {k: -v for k, v in EFFECTS.items()}
    fake = FakeCompare(flipped)
    res = Search(_opts(tmp_path), compare_fn=fake).run()
    assert not any("rung0" in c["out"] for c in fake.calls)
    assert set(fake.calls[0]["models"]) - {"stock"} == set(state["rungs"][0]["survivors"])
    assert res["complete"] and "sweep `rung0`" in res["md"]  # the earlier run's rung is still in 'what was run'
    with pytest.raises(ValueError, match="other settings"):
        Search(_opts(tmp_path, max_epochs=16), compare_fn=fake)


def test_budget_stops_halving_and_confirms_current_best(tmp_path):
    # 10 s per epoch measured: rung 0 costs 10 trials x 2 epochs = 200 s; rung 1 (6 x 4 = 240 s) + a 2-seed
    # confirmation (3 x 2 x 8 = 480 s) does not fit in 0.2 h = 720 s
    fake = FakeCompare(EFFECTS, s_per_epoch=10.0)
    res = Search(_opts(tmp_path, budget_hours=0.2), compare_fn=fake).run()
    assert sum("rung" in c["out"] for c in fake.calls) == 1
    assert res["data"]["stopped_early"].startswith("budget")
    assert res["data"]["survivors"] == ["se-neck", "cbam-neck"]
    assert fake.calls[-1]["seeds"] == [1, 2]  # confirmation reduced to what the budget allows (at least 2)
    assert "budget: confirmation on 2 seeds instead of 3" in res["data"]["notes"]


def test_budget_counts_the_fixed_part_of_a_trial_once(tmp_path):
    """10 s fixed + 2 s per epoch per trial, 660 s budget. Before rung 1 only 2-epoch trials exist, so the cost is
    proportional (7 s/epoch): rung 1 + a 2-seed confirmation = 504 s, fits (140 s spent). After rung 1 the line
    through 2- and 4-epoch trials is exact: rung 2 (4 x 26 s) + confirmation (6 x 26 s) = 260 s, fits (248 s spent).
    Proportional pricing (5.6 s/epoch) would have said 450 s and stopped halving for nothing."""
    from yolo_attn.studies.search import measured_cost

    fake = FakeCompare(EFFECTS, s_per_epoch=2.0, overhead_s=10.0)
    res = Search(_opts(tmp_path, budget_hours=660 / 3600), compare_fn=fake).run()
    assert not res["data"]["stopped_early"]
    assert sum("rung" in c["out"] for c in fake.calls) == 3
    rung0 = measured_cost([tmp_path / "search" / "rung0"])
    assert rung0.overhead_s == 0 and rung0.epoch_s == pytest.approx(7.0)  # one epoch count: proportional
    both = measured_cost([tmp_path / "search" / "rung0", tmp_path / "search" / "rung1"])
    assert both.epoch_s == pytest.approx(2.0) and both.overhead_s == pytest.approx(10.0)
    assert both.trial_s(8) == pytest.approx(26.0)
    state = json.loads((tmp_path / "search" / "search_state.json").read_text())
    assert state["s_per_epoch"] == pytest.approx(2.0) and state["overhead_s"] == pytest.approx(10.0)


def test_rungs_where_nothing_has_learned_yet_are_flagged(tmp_path):
    """Stock below 0.02 mAP50-95 at a rung (the candidates may be a little above): the report says that cut ranked
    how early models start to learn."""
    fake = FakeCompare({"se-neck": 0.02, "cbam-neck": 0.01}, noise=0.0005, base=0.005)
    res = Search(_opts(tmp_path), compare_fn=fake).run()
    notes = res["data"]["notes"]
    assert any(n.startswith("rung 0: after 2 epochs stock scored 0.00") and "--min-epochs" in n for n in notes)
    assert "how early the models start to learn" in (tmp_path / "search" / "search.md").read_text()
    # stock learned: no such note
    ok = Search(_opts(tmp_path / "b"), compare_fn=FakeCompare(EFFECTS, noise=0.002)).run()
    assert not any("start to learn" in n for n in ok["data"]["notes"])


def test_finished_search_rerun_keeps_its_confirmation_seeds(tmp_path):
    """1,500 s budget, 10 s per epoch: all rungs (760 s) and a 3-seed confirmation (720 s) fit. Rerun, the spent
    budget includes the confirmation itself; deciding the seeds again would shrink them to 2 and clash with the
    stored sweep. The rerun confirms on the same seeds and reports the same numbers."""
    opts = _opts(tmp_path, budget_hours=1500 / 3600)
    fake = FakeCompare(EFFECTS, s_per_epoch=10.0)
    first = Search(opts, compare_fn=fake).run()
    assert fake.calls[-1]["seeds"] == [1, 2, 3] and not first["data"]["stopped_early"]
    second = Search(opts, compare_fn=fake).run()
    assert fake.calls[-1]["seeds"] == [1, 2, 3]
    assert second["data"]["confirmation_seeds"] == first["data"]["confirmation_seeds"] == [1, 2, 3]
    assert json.loads((tmp_path / "search" / "search_state.json").read_text())["confirm_seeds"] == [1, 2, 3]


def test_asha_setup_and_selection(tmp_path):
    setup = AshaSetup(["a", "b"], {"a": "a.yaml", "b": "b.yaml"}, [0], max_t=8, grace_period=2, reduction_factor=2)
    assert setup.scheduler_kwargs() == {"time_attr": "epoch", "metric": "map", "mode": "max", "max_t": 8,
                                        "grace_period": 2, "reduction_factor": 2}
    assert setup.rungs() == [2, 4] and setup.grid() == {"candidate": ["a", "b"], "seed": [0]}
    seen = {}

    def fake_asha(setup, opts, folder, budget_s):
        seen["setup"] = setup
        # ASHA stopped the weak ones early; the strong ones reached max_t
        return {lbl: ((8, EFFECTS[lbl]) if EFFECTS[lbl] > 0.05 else (2, 0.5)) for lbl in setup.candidates}

    fake = FakeCompare(EFFECTS)
    res = Search(_opts(tmp_path, backend="ray"), compare_fn=fake, asha_fn=fake_asha).run()
    assert seen["setup"].max_t == 8 and seen["setup"].grace_period == 2 and len(seen["setup"].candidates) == 9
    assert res["data"]["survivors"] == ["se-neck", "cbam-neck"]  # a high score at an early stop does not count
    assert len(fake.calls) == 1 and fake.calls[0]["seeds"] == [1, 2, 3]
    # the ranking puts every candidate that went further first, whatever its score at an earlier stop
    assert res["data"]["ranking"][:4] == ["se-neck", "cbam-neck", "eca-neck", "se-sppf"]
    assert asha_survivors({"a": (8, 0.1), "b": (2, 0.9), "c": (8, 0.2)}, 2) == ["c", "a"]
    assert asha_survivors({"a": (8, 0.1), "b": (2, 0.9), "c": (4, 0.2)}, 2) == ["a", "c"]


@pytest.mark.ray
def test_asha_scheduler_builds_from_the_setup():
    pytest.importorskip("ray.tune", reason="Ray Tune not installed (pip install 'yolo_attn[ray]')")
    from ray.tune.schedulers import ASHAScheduler

    setup = AshaSetup(["a"], {"a": "a.yaml"}, [0], max_t=8, grace_period=2, reduction_factor=2)
    sched = ASHAScheduler(**setup.scheduler_kwargs())
    assert sched.metric == "map"


@pytest.mark.ray
@pytest.mark.slow
def test_asha_stops_weak_candidates_in_a_tiny_local_ray_run(tmp_path):
    """Ray Tune with a synthetic learning curve per candidate (about a minute on 2 busy cores: Ray's start-up)."""
    pytest.importorskip("ray.tune", reason="Ray Tune not installed (pip install 'yolo_attn[ray]')")
    from yolo_attn.studies.search import run_asha

    quality = {"good": 0.5, "mid": 0.3, "bad": 0.1, "worst": 0.05}

    def curve(config):
        from ray import tune

        for e in range(1, config["max_t"] + 1):
            tune.report({"epoch": e, "map": quality[config["candidate"]] * (1 - math.exp(-e / 3))})

    setup = AshaSetup(list(quality), {k: k for k in quality}, [0], max_t=8, grace_period=2, reduction_factor=2)
    reached = run_asha(setup, SearchOptions(layers=["SE"], placements=["neck"]), tmp_path / "asha", None, trainable=curve)
    assert reached["good"][0] == 8 and reached["worst"][0] < 8  # ASHA stopped the weakest at a rung
    assert json.loads((tmp_path / "asha" / "asha.json").read_text())["reached"]["good"][0] == 8


def test_search_command_is_discovered():
    from yolo_attn.cli import build_parser

    a = build_parser().parse_args(["search", "--layers", "SE", "CBAM", "--placements", "neck", "--max-trials", "30"])
    assert a.layers == ["SE", "CBAM"] and a.max_trials == 30 and a.budget is None


@pytest.mark.ray
@pytest.mark.slow
def test_asha_trainable_reports_every_epoch(tmp_path, monkeypatch):
    """The real Tune trainable (outside Ray, tune.report captured): trains SE at neck 2 epochs at imgsz 64."""
    tune = pytest.importorskip("ray.tune", reason="Ray Tune not installed (pip install 'yolo_attn[ray]')")
    from yolo_attn.compare.sweep import default_data
    from yolo_attn.studies.models import model_dict, write_model
    from yolo_attn.studies.search import asha_trainable

    reports = []
    monkeypatch.setattr(tune, "report", lambda metrics, **kw: reports.append(dict(metrics)))
    ref = write_model(model_dict("SE", [], ["neck"]), tmp_path, "se-neck", "test")
    asha_trainable({"model_ref": ref, "data": default_data(), "max_t": 2, "imgsz": 64, "seed": 0, "candidate": "se-neck",
                    "project": str(tmp_path / "trials"), "train_args": {"workers": 0}})
    assert [r["epoch"] for r in reports] == [1, 2] and all(0.0 <= r["map"] <= 1.0 for r in reports)


def test_a_failed_pareto_plot_is_a_note_of_the_written_report(tmp_path, monkeypatch):
    """The plot is drawn before search.md/search.json are written, so its failure is in both, not lost."""
    from yolo_attn.studies import plots

    def broken(*a, **kw):
        raise RuntimeError("no display")

    monkeypatch.setattr(plots, "pareto_plot", broken)
    res = Search(_opts(tmp_path), compare_fn=FakeCompare(EFFECTS, noise=0.001)).run()
    out = Path(res["out"])
    assert not (out / "pareto.png").exists()
    assert "plotting pareto.png failed: RuntimeError: no display" in (out / "search.md").read_text()
    assert any("no display" in n for n in json.loads((out / "search.json").read_text())["notes"])


def test_confirmation_declares_the_rule_when_asked_and_the_report_words_its_decisions(tmp_path):
    """--margin/--until-decided reach the confirmation sweep only (the rungs' scores only rank), and the report
    gives each survivor's decision under the declared rule; a search started without them keeps its fingerprint."""
    from yolo_attn.compare.summary import DecisionReport, ModelDecision

    class Deciding(FakeCompare):
        def __call__(self, request, run, report=None):
            summary = super().__call__(request, run, report)
            if request.decision.until_decided or request.decision.margin is not None:
                rule = request.decision.rule(len(request.seeds))
                summary.decision = DecisionReport(rule.to_dict(), True, [rule.looks[-1]], [
                    ModelDecision(r.model, "equivalent", f"{r.model}: equivalent to stock within ±{rule.margin:g}")
                    for r in summary.compared])
            return summary

    fake = Deciding(EFFECTS, noise=0.001)
    res = Search(_opts(tmp_path, margin=0.02, until_decided=True), compare_fn=fake).run()
    decisions = [c["request"].decision for c in fake.calls]
    assert all(not d.until_decided and d.margin is None for d in decisions[:-1])  # the rungs declare nothing
    assert decisions[-1].until_decided and decisions[-1].margin == 0.02
    assert decisions[-1].rule(3).looks == (3,)  # --confirm-seeds 3: one look at 3 seeds
    md = (Path(res["out"]) / "search.md").read_text()
    assert "Under the rule declared before the confirmation (margin ±0.02, looks at 3 seeds" in md
    assert "se-neck: equivalent to stock within ±0.02" in md and "cbam-neck: equivalent to stock within ±0.02" in md
    plain = _opts(tmp_path / "p")
    assert "margin" not in plain.fingerprint() and plain.confirm_decision() is None
    assert _opts(tmp_path, margin=0.02).fingerprint()["margin"] == 0.02
