"""The sweep's declared decision rule (yolo_attn/compare/rounds.py): the rule in config.json, refused when changed,
rounds that stop decided models, resume mid-rounds, and the report's words. Trials are stand-ins (no training):
``backends.run_trial`` is replaced by a function that records metrics chosen per model and seed."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from yolo_attn.compare import ConfigMismatch, Store

from conftest import run_compare
from yolo_attn.compare import backends, rounds
from yolo_attn.compare.rounds import DecisionOptions
from yolo_attn.compare.sequential import DEFAULT_MARGIN, Rule

from conftest import tiny_sweep_data

WHEN = "2026-01-01T00:00:00+00:00"
# per-seed mAP50-95 of the baseline, and each model's difference to it: "up" clearly better, "same" within the
# margin, both with almost no seed noise (the first look at 3 seeds stops only such: its t boundary is 284), "noisy" a small difference under large seed noise (never decided)
BASE = [0.50, 0.53, 0.48, 0.51, 0.49, 0.52, 0.50, 0.47, 0.54, 0.51]
UP = [0.0500, 0.0501, 0.0499, 0.0500, 0.0501, 0.0499, 0.0500, 0.0501, 0.0499, 0.0500]
SAME = [0.0001, -0.0001, 0.0002, 0.0, -0.0002, 0.0001, 0.0, -0.0001, 0.0002, 0.0]
NOISY = [0.03, -0.04, 0.05, -0.02, 0.01, -0.05, 0.04, -0.03, 0.02, -0.01]
DIFFS = {"up": UP, "same": SAME, "noisy": NOISY}


def metric(model: str, seed: int) -> float:
    base = BASE[seed % len(BASE)]
    return base if model not in DIFFS else base + DIFFS[model][seed % len(BASE)]


def _points(models, n):
    return {m: [(metric(m, s), None) for s in range(n)] for m in models}


# ------------------------------------------------------------------------------------------------
# The replay alone
# ------------------------------------------------------------------------------------------------
def test_replay_stops_decided_models_and_asks_for_the_next_round():
    rule = Rule(looks=(3, 5, 10), max_seeds=10, declared_at=WHEN)
    models = ["base", "up", "same", "noisy"]
    rp = rounds.replay(rule, list(range(10)), "base", models, _points(models, 0))
    assert rp.todo == [(m, s) for s in range(3) for m in models] and not rp.looks_taken and not rp.done

    early = rounds.decision_report(rounds.replay(rule, list(range(10)), "base", models, _points(models, 2)), [], "base",
                                   8, True)  # before the first look: nothing decided, no lever asked for
    assert early.models == [] and early.looks_taken == [] and early.trials_fixed == 40 and not early.done

    rp = rounds.replay(rule, list(range(10)), "base", models, _points(models, 3))
    assert rp.looks_taken == [3]
    assert rp.decisions["up"].outcome == "better" and rp.decisions["same"].outcome == "equivalent"
    assert rp.decisions["noisy"].outcome == "continue"
    assert rp.stopped == {"up": 3, "same": 3}
    assert rp.todo == [(m, s) for s in (3, 4) for m in ("base", "noisy")]  # the decided models train no more

    pts = _points(["base", "noisy"], 10)
    pts.update(_points(["up", "same"], 3))
    rp = rounds.replay(rule, list(range(10)), "base", models, pts)
    assert rp.done and rp.looks_taken == [3, 5, 10] and rp.decisions["noisy"].outcome == "undecided"
    assert len(rp.needed) == 2 * 10 + 2 * 3 and not rp.todo
    assert rp.decisions["up"].n_seeds == 3  # decided at the first look: its decision stays that look's


def test_decision_options_declare_the_rule_or_refuse_naming_the_flag():
    assert DecisionOptions().rule(3) is None  # a fixed-seed sweep declares nothing
    one = DecisionOptions(margin=0.02).rule(4)
    assert one.looks == (4,) and one.margin == 0.02
    r = DecisionOptions(True).rule(10)
    assert r.looks == (3, 5, 7, 10) and r.margin == DEFAULT_MARGIN and r.max_seeds == 10
    assert rounds.default_looks(6) == (3, 6) and rounds.default_looks(2) == (2,)
    with pytest.raises(ValueError, match="--looks 2,4: the last look"):
        DecisionOptions(True, looks=(2, 4)).rule(6)
    with pytest.raises(ValueError, match="--looks: the seed counts of the looks of --until-decided"):
        DecisionOptions(False, looks=(2, 4)).rule(4)
    with pytest.raises(ValueError, match="--margin"):
        DecisionOptions(False, margin=0.01).rule(1)
    with pytest.raises(ValueError, match="Rule.margin"):
        DecisionOptions(True, margin=-1.0).rule(4)


def test_cli_margin_default_is_the_rules(capsys):
    from yolo_attn.commands import compare as cmd

    assert cmd.DEFAULT_MARGIN == DEFAULT_MARGIN and cmd.DEFAULT_MAX_SEEDS == rounds.DEFAULT_MAX_SEEDS


def test_cli_seed_counts_of_until_decided_must_agree():
    import argparse

    from yolo_attn.commands import compare as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    dec, seeds = cmd._decision(parser.parse_args(["--until-decided", "--looks", "2,4,6"]))
    assert seeds == 6 and dec.looks == (2, 4, 6) and dec.until_decided
    assert cmd._decision(parser.parse_args(["--until-decided"]))[1] == 10
    assert cmd._decision(parser.parse_args(["--until-decided", "--seeds", "6", "--max-seeds", "6"]))[1] == 6
    with pytest.raises(ValueError, match="--max-seeds 8, --looks .* 6 name different"):
        cmd._decision(parser.parse_args(["--until-decided", "--looks", "2,4,6", "--max-seeds", "8"]))
    with pytest.raises(ValueError, match="--max-seeds: the most seeds of --until-decided"):
        cmd._decision(parser.parse_args(["--max-seeds", "8"]))


# ------------------------------------------------------------------------------------------------
# The sweep, with stand-in trials
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_sweep_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """The stock yolov5n YAML under three more names: the sweep tells the models apart by name only."""
    from ultralytics.nn.tasks import yaml_model_load

    import yaml

    d = yaml_model_load("yolov5n.yaml")
    d = {k: v for k, v in d.items() if k in ("nc", "scales", "backbone", "head")}
    folder = tmp_path_factory.mktemp("models")
    out = []
    for name in ("base", "up", "same", "noisy"):
        p = folder / f"yolov5n-{name}.yaml"
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        out.append(str(p))
    return out


def _name(model: str) -> str:
    return model.removeprefix("yolov5n-")


@pytest.fixture
def fake_trials(monkeypatch):
    """Trials recorded without training: COCOeval and Ultralytics mAP50-95 from :func:`metric`; returns the list
    of (model, seed) trained, in order."""
    trained = []

    def run_trial(spec, progress=None):
        trained.append((_name(spec.model), spec.seed))
        v = metric(_name(spec.model), spec.seed)
        scores = {"map": v, "map50": min(1.0, v + 0.2)}
        return spec.record(status="ok", ultra={**scores, "precision": 0.5, "recall": 0.5}, coco=scores,
                           n_val_images=8, duration_s=2.0, stage_s={"train": 1.5, "eval": 0.3, "score": 0.2},
                           epochs_done=spec.epochs, started_at=time.time(), finished_at=time.time())

    monkeypatch.setattr(backends, "run_trial", run_trial)
    return trained


def _sweep(data, models, out, **kw):
    args = dict(data=str(data), models=models, epochs=1, imgsz=64, threads=1, workers=0, progress=False, n_boot=50)
    return run_compare(out=str(out), **{**args, **kw})


def test_until_decided_stores_the_rule_and_stops_decided_models(data, model_files, fake_trials, tmp_path):
    out = tmp_path / "s"
    dec = DecisionOptions(True, looks=(3, 5, 10))
    s = _sweep(data, model_files, out, seeds=10, decision=dec)
    per_model = {m: sum(1 for x, _ in fake_trials if x == m) for m in ("base", "up", "same", "noisy")}
    assert per_model == {"base": 10, "up": 3, "same": 3, "noisy": 10}
    assert fake_trials[:4] == [("base", 0), ("up", 0), ("same", 0), ("noisy", 0)]  # seed by seed, baseline first

    stored = json.loads((out / "config.json").read_text())["rule"]
    assert stored["looks"] == [3, 5, 10] and stored["margin"] == DEFAULT_MARGIN and stored["alpha"] == 0.05
    assert stored["max_seeds"] == 10 and stored["metric"] == "mAP50-95" and stored["declared_at"]
    assert Store(out).read_config().rule == stored

    assert s.complete and s.decision.declared and s.decision.looks_taken == [3, 5, 10]
    assert s.decision.trials_used == 26 and s.decision.trials_fixed == 40
    by = {m.model: m for m in s.decision.models}
    assert by["yolov5n-up"].outcome == "better" and by["yolov5n-up"].stopped_at == 3
    assert by["yolov5n-same"].outcome == "equivalent" and by["yolov5n-noisy"].outcome == "undecided"
    assert s.row("yolov5n-up").n_trials == 3 and s.row("yolov5n-base").n_trials == 10 and s.n_trials == 26
    assert not s.seeds_extended  # the declared looks are no optional stopping

    md = (out / "summary.md").read_text()
    assert "## Decision under the declared rule" in md and stored["declared_at"] in md
    assert "Looks taken: 3, 5, 10" in md and "Trials used: 26 of the fixed design's 40" in md
    assert "- yolov5n-up: better by +0.05" in md and "(stopped training at 3 seeds)" in md
    assert "equivalent to yolov5n-base within ±0.01" in md
    assert "- yolov5n-noisy: undecided after 10 seeds:" in md and "would decide it" in md
    assert "optional stopping" not in md
    again = len(fake_trials)
    _sweep(data, model_files, out, seeds=10, decision=dec)  # rerun: nothing more to train
    assert len(fake_trials) == again


def test_a_resumed_sweep_with_another_rule_is_refused_or_recorded(data, model_files, fake_trials, tmp_path):
    out = tmp_path / "s"
    models = model_files[:2]
    _sweep(data, models, out, seeds=4, decision=DecisionOptions(True, looks=(2, 4)), max_trials=2)
    declared = json.loads((out / "config.json").read_text())["rule"]
    time.sleep(1.1)  # a new declaration would carry another time
    _sweep(data, models, out, seeds=4, decision=DecisionOptions(True, looks=(2, 4)), max_trials=0)
    assert json.loads((out / "config.json").read_text())["rule"] == declared  # the same rule keeps its time
    with pytest.raises(ConfigMismatch, match=r"another decision rule \(margin: declared 0.01, now 0.02\)"):
        _sweep(data, models, out, seeds=4, decision=DecisionOptions(True, margin=0.02, looks=(2, 4)))
    with pytest.raises(ConfigMismatch, match="another decision rule"):
        _sweep(data, models, out, seeds=4)  # a fixed-seed rerun would drop the declared rule
    s = _sweep(data, models, out, seeds=4, decision=DecisionOptions(True, margin=0.02, looks=(2, 4)), allow_changes=True)
    config = Store(out).read_config()
    assert config.rule["margin"] == 0.02 and config.rule_changes[0]["trials_recorded"] == 2
    assert any("decision rule was changed after 2 trial(s)" in w for w in s.warnings)
    assert s.decision.deviations and "decision rule was changed" in (out / "summary.md").read_text()


def test_resume_mid_rounds_continues_where_the_records_stand(data, model_files, fake_trials, tmp_path):
    """Stopped inside the second round (max_trials), the rerun trains only what the looks still need: the same trials
    as an uninterrupted sweep, and the same decisions."""
    dec = DecisionOptions(True, looks=(3, 5, 10))
    a = tmp_path / "a"
    first = _sweep(data, model_files, a, seeds=10, decision=dec, max_trials=14)
    assert not first.complete and first.decision.looks_taken == [3] and not first.decision.done
    assert "still running" in (a / "summary.md").read_text()
    assert len(fake_trials) == 14
    s = _sweep(data, model_files, a, seeds=10, decision=dec)
    assert len(fake_trials) == 26 and len(set(fake_trials)) == 26  # nothing trained twice
    fresh = _sweep(data, model_files, tmp_path / "b", seeds=10, decision=dec)
    assert [m.text for m in s.decision.models] == [m.text for m in fresh.decision.models]


def test_fixed_seed_sweep_reports_the_default_rule_at_its_final_look(data, model_files, fake_trials, tmp_path):
    out = tmp_path / "s"
    s = _sweep(data, model_files[:3], out, seeds=3)
    assert "rule" not in json.loads((out / "config.json").read_text())  # nothing declared: resumes keep reading
    assert len(fake_trials) == 9 and s.decision is not None and not s.decision.declared
    md = (out / "summary.md").read_text()
    assert "## Decision at the final look under the default rule" in md and "Not declared before the sweep" in md
    assert "**Verdict per model:**" in md and "- yolov5n-up: better" in md
    assert {m.model: m.outcome for m in s.decision.models}["yolov5n-same"] in ("equivalent", "undecided")


def test_a_folder_of_the_release_before_rules_resumes_with_its_settings(data, fake_trials, tmp_path):
    """tests/data/sweep_before_rule: config.json and trials.jsonl of a 2-model x 2-seed sweep (stand-in trials) written
    by the release before declared rules (commit 920d9ae), on this dataset. A fixed-seed rerun with this version keeps
    its settings hash and trains nothing; declaring a rule on it now is a change of settings."""
    import shutil

    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    from conftest import REPO

    out = tmp_path / "out"
    shutil.copytree(REPO / "tests" / "data" / "sweep_before_rule", out)
    d = yaml_model_load("yolov5n.yaml")
    d = {k: v for k, v in d.items() if k in ("nc", "scales", "backbone", "head")}
    models = []
    for name in ("base", "up"):
        p = tmp_path / f"yolov5n-{name}.yaml"
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        models.append(str(p))
    stored = json.loads((out / "config.json").read_text())
    config = Store(out).read_config()
    assert config.rule is None and config.settings_hash == stored["settings_hash"] == "cbf18397cdca"
    s = _sweep(data, models, out, seeds=2)
    assert not fake_trials and s.complete and s.n_ok == 4
    again = json.loads((out / "config.json").read_text())
    assert again["settings_hash"] == "cbf18397cdca" and "rule" not in again
    assert s.decision is not None and not s.decision.declared  # the default rule at the final look, labelled so
    with pytest.raises(ConfigMismatch, match="another decision rule"):
        _sweep(data, models, out, seeds=2, decision=DecisionOptions(margin=0.01))
