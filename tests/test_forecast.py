"""``compare --plan --until-decided``: the forecast of the declared rule from a pilot's SDs (yolo_attn.compare.forecast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yolo_attn.compare import forecast as fc
from yolo_attn.compare import sequential as sq

RULE = sq.Rule(looks=(3, 5, 7, 10), max_seeds=10)


def test_no_true_difference_keeps_the_family_wise_error_and_mostly_ends_equivalent():
    code, seeds = fc.simulate(RULE, [0.005] * 3, [0.003] * 3, [0.0] * 3, n=2000, seed=1)
    fwer = ((code == 1) | (code == 2)).any(-1).mean()
    assert fwer <= RULE.alpha + 3 * math.sqrt(RULE.alpha * (1 - RULE.alpha) / 2000)
    assert (code == 3).mean() > 0.6  # seed SD 0.005 and image SD 0.003: margin 0.01 is within reach (measured 0.75)
    assert set(np.unique(seeds)) <= set(RULE.looks) and seeds.mean() < RULE.max_seeds


def test_a_true_difference_of_the_margin_is_rarely_called_equivalent():
    for sign in (1, -1):
        code, _ = fc.simulate(RULE, [0.005] * 3, [0.003] * 3, [sign * RULE.margin] * 3, n=2000, seed=2)
        assert (code == 3).mean() <= RULE.alpha + 3 * math.sqrt(RULE.alpha * (1 - RULE.alpha) / 2000)


def test_noise_beyond_the_margin_leaves_models_undecided_and_a_large_gain_is_found_early():
    noisy = fc.forecast(RULE, ["noisy", "clear"], [0.05, 0.002], [0.003, 0.001], [0.0, 0.05], n=1000)
    by = {o.model: o for o in noisy.pilot}
    assert by["noisy"].undecided > 0.8 and by["noisy"].mean_seeds == pytest.approx(10, abs=0.5)
    assert by["clear"].better > 0.99 and by["clear"].mean_seeds <= 5  # O'Brien-Fleming: the 3-seed look is strict
    assert noisy.trials_fixed == 30 and noisy.trials_pilot < noisy.trials_fixed
    # the null scenario sets every true difference to 0, whatever the pilot estimated
    assert all(o.effect == 0.0 for o in noisy.null) and {o.model: o.effect for o in noisy.pilot}["clear"] == 0.05


def test_forecast_is_reproducible_and_worded_with_the_rule():
    a = fc.forecast(RULE, ["se"], [0.004], [0.002], [0.001], n=500)
    assert a == fc.forecast(RULE, ["se"], [0.004], [0.002], [0.001], n=500)
    text = fc.format_forecast(a)
    assert "looks at 3, 5, 7, 10 seeds, margin ±0.01" in text and "+0.0010 (pilot estimate)" in text
    assert f"against {a.trials_fixed} for the fixed design of 10 seeds" in text
    with pytest.raises(ValueError, match="no model"):
        fc.forecast(RULE, [], [], [], [])


def test_plan_of_a_pilot_adds_the_forecast_of_the_rule(tmp_path):
    from test_stats import _synthetic_sweep
    from yolo_attn.compare import plan, report
    from yolo_attn.compare.store import Store

    store, config = _synthetic_sweep(tmp_path / "p")
    summary = report.summarize(store, config, n_boot=100, effect=0.2)
    records = Store(tmp_path / "p").trial_records()
    assert plan.make_plan(summary, records, effect=0.2).forecast is None
    p = plan.make_plan(summary, records, effect=0.2, rule=sq.Rule(looks=(2, 4), max_seeds=4))
    assert [o.model for o in p.forecast.null] == [m.model for m in p.models]
    assert [o.effect for o in p.forecast.pilot] == [summary.row(m.model).diff["map"].ci.delta for m in p.models]
    assert "## With --until-decided (looks at 2, 4 seeds" in plan.format_plan(p, "pilot")


def test_plan_until_decided_on_the_command_line_forecasts_the_rule_without_declaring_it(tmp_path, capsys):
    import argparse
    import json

    from test_stats import _synthetic_sweep
    from yolo_attn.commands import compare as cmd

    store, config = _synthetic_sweep(tmp_path / "f")
    store.init_config(config)
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    base = ["--effect", "0.2", "--out", str(tmp_path / "f"), "--plan", "--boot", "100"]
    assert cmd.run(parser.parse_args(base + ["--until-decided", "--looks", "2,4,6", "--margin", "0.02"])) == 0
    out = capsys.readouterr().out
    assert "## With --until-decided (looks at 2, 4, 6 seeds, margin ±0.02" in out and "for the fixed design of 6" in out
    assert "rule" not in json.loads((tmp_path / "f" / "config.json").read_text())  # forecast, not declared
    assert cmd.run(parser.parse_args(base)) == 0 and "--until-decided" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="different maximum seed counts"):
        cmd.run(parser.parse_args(base + ["--until-decided", "--looks", "2,4", "--max-seeds", "6"]))
