"""The declared decision rule (yolo_attn/compare/sequential.py): known answers, input checks, Holm across models,
the boundaries against published values, and its error rates by a small seeded simulation."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from yolo_attn.compare import sequential as sq
from yolo_attn.compare import stats

TAU = 0.003
WHEN = "2026-01-01T00:00:00+00:00"


def rule(looks=(3, 5, 7, 10), alpha=0.05, margin=0.01, spending="obrien-fleming"):
    return sq.Rule("mAP50-95", alpha, margin, tuple(looks), looks[-1], WHEN, spending)


def standardized(n, seed=0):
    """n values with mean exactly 0 and sample SD exactly 1."""
    z = np.random.default_rng(seed).standard_normal(n)
    return (z - z.mean()) / z.std(ddof=1)


def _benchmark():
    """benchmarks/sequential_sim.py: the simulated sweeps of its tables, checked here in two of its cells."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "sequential_sim.py"
    spec = importlib.util.spec_from_file_location("sequential_sim", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SIM = _benchmark()


def outcomes(r, d, boot):
    return SIM.run(r, d, boot)[0]


# ------------------------------------------------------------------------------------------------
def test_rule_round_trip_and_checks():
    r = sq.Rule.declare(margin=0.02, looks=[2, 4, 8])
    assert r.max_seeds == 8 and r.looks == (2, 4, 8) and r.declared_at.endswith("+00:00")
    assert sq.Rule.from_dict(r.to_dict()) == r and r.to_dict()["looks"] == [2, 4, 8]
    assert r.differs(sq.Rule.from_dict({**r.to_dict(), "declared_at": WHEN})) == []
    assert r.differs(sq.Rule.from_dict({**r.to_dict(), "alpha": 0.1})) == ["alpha"]
    bad = {"alpha": (0.7, "Rule.alpha"), "margin": (0.0, "Rule.margin"), "looks": ([1, 3], "Rule.looks"),
           "spending": ("linear", "Rule.spending"), "declared_at": ("yesterday", "Rule.declared_at"),
           "max_seeds": (9, "Rule.max_seeds"), "metric": ("", "Rule.metric")}
    for field, (value, msg) in bad.items():
        with pytest.raises(ValueError, match=msg):
            sq.Rule.from_dict({**r.to_dict(), field: value} if field != "looks" else
                              {**r.to_dict(), "looks": value, "max_seeds": 3})
    with pytest.raises(ValueError, match="Rule.looks"):
        rule(looks=(3, 3, 5))
    with pytest.raises(ValueError, match=r"missing \['alpha'\]"):
        sq.Rule.from_dict({k: v for k, v in r.to_dict().items() if k != "alpha"})
    with pytest.raises(ValueError, match=r"unknown \['delta'\]"):
        sq.Rule.from_dict({**r.to_dict(), "delta": 0.01})


def test_boundaries_spend_alpha_and_match_published_values():
    for name in sq.SPENDING:
        assert sq.spent(name, 0.05, 1.0) == pytest.approx(0.05) and sq.spent(name, 0.05, 0.0) == 0.0
    # at a large df the t boundaries are the normal ones: Lan-DeMets O'Brien-Fleming, one-sided 0.025, 5 equal looks
    # (Jennison & Turnbull 2000, table 7.6; the first is exact, later ones Monte Carlo and two SEs on the safe side)
    c = sq.t_boundaries(0.025, tuple(10**5 * k for k in range(1, 6)), 5 * 10**5, "obrien-fleming", 1)
    np.testing.assert_allclose(c, [4.877, 3.357, 2.680, 2.290, 2.031], atol=0.015)
    # one look: the fixed design's t quantile; a 2-seed first look (1 df): enormous but finite
    assert sq.t_boundaries(0.05, (6,), 6)[0] == pytest.approx(stats.t_quantile(0.975, 5))
    first = sq.t_boundaries(0.05, (2, 4, 6, 8, 10), 10)[0]
    assert 1e4 < first < math.inf
    lv = sq.nominal_levels(rule())
    assert np.all(np.diff(lv) > 0) and lv[-1] < 0.05 and lv.sum() <= 0.05 + 0.02  # less than alpha at each look


def test_one_look_is_the_sweeps_interval():
    """A rule with one look decides on exactly the interval the report shows today (stats.paired_diff_ci)."""
    rng = np.random.default_rng(3)
    m, b = 0.3 + 0.01 * rng.standard_normal(5), 0.3 + 0.01 * rng.standard_normal(5)
    mr, br = m[:, None] + TAU * rng.standard_normal((5, 60)), b[:, None] + TAU * rng.standard_normal((5, 60))
    dec = sq.decide(m, b, mr, br, rule=rule(looks=(5,)))
    ci = stats.paired_diff_ci(m, b, mr, br)
    assert (dec.lo, dec.hi, dec.diff) == pytest.approx((ci.lo, ci.hi, ci.delta), rel=1e-9)
    assert dec.final and dec.outcome in ("better", "worse", "equivalent", "undecided")


def test_known_answers():
    r = rule()
    base = 0.3 + 0.01 * standardized(10, 1)
    # a large, clear effect: better at the first look that can see it
    big = sq.decide(base + 0.05 + 0.002 * standardized(10, 2), base, rule=r)
    assert big.outcome == "better" and big.lo > 0 and big.n_seeds < 10 and not big.final
    assert sq.decide(base - 0.05 + 0.002 * standardized(10, 2), base, rule=r).outcome == "worse"
    # no effect with a small SD: equivalent, its equivalence interval inside the margin
    same = sq.decide(base + 0.0005 * standardized(10, 3), base, rule=r)
    assert same.outcome == "equivalent" and -0.01 < same.eq_lo and same.eq_hi < 0.01 and same.lo <= 0 <= same.hi
    # noisy: continue at every look but the last, then undecided with its interval
    noisy = base + 0.002 + 0.03 * standardized(10, 4)
    words = [sq.decide(noisy[:n], base[:n], rule=r).outcome for n in (3, 5, 7)]
    last = sq.decide(noisy, base, rule=r)
    assert words == ["continue"] * 3 and last.outcome == "undecided" and last.final and last.lo < 0 < last.hi
    assert sq.decide(noisy, base, rule=r, look=1).outcome == "continue"  # the first 5 seeds only
    assert sq.decide(noisy[:6], base, rule=r).n_seeds == 5  # the 6th waits for the next look
    early = sq.decide(noisy[:2], base, rule=r)
    assert early.outcome == "continue" and math.isnan(early.lo) and early.look == -1
    # with the image bootstrap, as the sweep calls it
    rng = np.random.default_rng(5)
    br = base[:, None] + TAU * rng.standard_normal((10, 60))
    dec = sq.decide(base + 0.05, base, br + 0.05, br, rule=r)
    assert dec.outcome == "better" and dec.n_boot == 60 and dec.var_image >= 0
    text = sq.describe(last, sq.which_lever(last, r, n_images=100))
    assert text.startswith("undecided after 10 seeds: ") and "would decide it" in text


def test_input_checks_name_what_is_wrong():
    r, p = rule(), np.linspace(0.3, 0.4, 5)
    reps = np.zeros((5, 60))
    cases = [
        (dict(model_points=p, base_points=p[:3]), "base_points"),
        (dict(model_points=np.r_[p[:4], np.nan], base_points=p), "finite"),
        (dict(model_points=p, base_points=p, model_reps=reps), "both or neither"),
        (dict(model_points=p, base_points=p, model_reps=reps[:4], base_reps=reps), "seeds x B"),
        (dict(model_points=p, base_points=p, model_reps=reps[:, :10], base_reps=reps[:, :10]), "bootstrap"),
        (dict(model_points=p, base_points=p, look=3), "look 3: needs 10 seeds"),
        (dict(model_points=p, base_points=p, look=7), "look: an index"),
        (dict(model_points=p, base_points=p, n_models=0), "n_models"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(ValueError, match=msg):
            sq.decide(**kwargs, rule=r)
    with pytest.raises(ValueError, match="rule: a declared Rule"):
        sq.decide(p, p, rule={"alpha": 0.05})
    with pytest.raises(ValueError, match="models"):
        sq.decide_family({}, p, rule=r)


def test_holm_passes_alpha_on():
    """Model b alone clears alpha/2 (Bonferroni) no more, but once model a is better it is tested at alpha."""
    r = rule(looks=(4, 8))
    c_half, c_full = (sq.t_boundaries(al, r.looks, 8)[-1] for al in (0.025, 0.05))
    base = np.zeros(8)
    b = (c_half + c_full) / 2 / math.sqrt(8) + standardized(8, 7)  # final t statistic between the two boundaries
    a = 1.0 + 0.01 * standardized(8, 8)
    assert sq.decide(b, base, rule=r, n_models=2).outcome == "undecided"
    fam = sq.decide_family({"a": (a[:4], None), "b": (b, None)}, base, rule=r)
    assert fam["a"].outcome == "better" and fam["a"].n_seeds == 4 and fam["a"].alpha_family == 0.025
    assert fam["b"].outcome == "better" and fam["b"].alpha_family == 0.05 and fam["b"].lo > 0
    # without the first model the second stays undecided at its Holm share
    assert sq.decide_family({"a": (np.zeros(8), None), "b": (b, None)}, base, rule=r)["b"].outcome == "undecided"


@pytest.mark.parametrize("looks,sd", [((2, 4, 6, 8, 10), 0.01), ((3, 5, 7, 10), 0.005)])
def test_error_rates_by_simulation(looks, sd):
    """3 models: 'some model better or worse' with no true difference <= alpha (+3 MC SE); 'equivalent' with a
    true difference of +margin or -margin <= alpha (+3 MC SE)."""
    rng, r, n = np.random.default_rng(40), rule(looks), 3000
    code = outcomes(r, *SIM.sweeps(rng, n, looks[-1], sd, 0.0, B=50))
    fwer = ((code == 1) | (code == 2)).any(-1).mean()
    assert fwer <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n), fwer
    for sign in (1, -1):
        eq = (outcomes(r, *SIM.sweeps(rng, n, looks[-1], sd, sign * r.margin, B=50)) == 3).mean(-1)
        assert eq.mean() <= 0.05 + 3 * eq.std(ddof=1) / math.sqrt(n) + 1e-9, (sign, eq.mean())


def test_pure_t_error_at_many_small_looks():
    """Without the image bootstrap (paired t only, the worst case): the nested t statistics at 9 looks of 2..10
    seeds keep alpha; normal-theory boundaries turned into t quantiles gave 5.8% here."""
    rng, r, n = np.random.default_rng(41), rule(tuple(range(2, 11))), 40000
    code = outcomes(r, rng.standard_normal((n, 1, 10)), None)
    assert (code > 0).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n)


def test_which_lever():
    r = rule()
    dec = sq.Decision("undecided", -0.01, 0.02, 0.005, 10, 3, True, 0.96, -0.008, 0.018, 0.92, 0.01, 0.05, 0.04,
                      2.4, 2e-6, 4e-6, 200)
    lv = sq.which_lever(dec, r, n_images=500, seed_cost=60.0, image_cost=0.1)
    width = lambda k, b: float(stats.half_width(2e-6 * 10 / (10 + k), b, 10 + k, 200, lv.level))  # noqa: E731
    assert lv.target == pytest.approx(0.005) and lv.beyond_rule
    assert width(lv.seeds, 4e-6) < lv.target <= width(lv.seeds - 1, 4e-6)
    assert width(0, 4e-6 * 500 / (500 + lv.images)) < lv.target <= width(0, 4e-6 * 500 / (499 + lv.images))
    assert lv.seeds_cost == 60.0 * lv.seeds and lv.images_cost == pytest.approx(0.1 * lv.images)
    # the shared image variance alone is wider than the target: no number of seeds decides; images can
    floor = sq.which_lever(replace(dec, var_image=1e-5, var_seed=1e-7), r, n_images=500)
    assert floor.seeds is None and floor.images > 0 and floor.seeds_cost is None
    # the seed part alone is wider than the target: more images cannot decide it
    assert sq.which_lever(replace(dec, var_seed=1e-5), r, n_images=500).images is None
    with pytest.raises(ValueError, match="n_images"):
        sq.which_lever(dec, r, n_images=0)


def test_trials_that_all_scored_zero_decide_nothing():
    """Untrained models score 0 in every seed: the interval has zero width, which is no evidence of equivalence."""
    from yolo_attn.compare.sequential import Rule, decide

    rule = Rule.declare(looks=(2,))
    d = decide([0.0, 0.0], [0.0, 0.0], rule=rule)
    assert d.outcome == "undecided"
    assert decide([0.30, 0.31], [0.30, 0.31], rule=rule).outcome == "equivalent"  # the same scores, not zero: decided
    low = decide([0.004, 0.005], [0.005, 0.004], rule=rule)  # learned less than the margin 0.01: no evidence either way
    assert low.outcome == "undecided" and "both score below the margin ±0.01" in sq.describe(low)
    assert decide([0.030, 0.031], [0.004, 0.005], rule=rule).outcome == "better"  # the model learned: decided
