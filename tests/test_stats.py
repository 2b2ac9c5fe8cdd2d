"""The statistics of a sweep by simulation: interval coverage, family-wise error, power, verdicts.

Simulated sweeps (seeded, vectorised): per-seed paired differences ``d_s = e_s + tau (sqrt(rho) c + sqrt(1-rho) u_s)``
with seed noise e_s ~ N(0, ratio tau^2), a validation-image error c shared by every seed (the same images)
and a per-seed image error u_s; the image bootstrap replicates redraw the image part with the same
structure. The true difference is 0.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from scipy import stats as st

from yolo_attn.compare import stats

TAU = 0.003
SEEDS = (2, 3, 5, 10, 20)
RATIOS = (0.0, 0.1, 1.0, 10.0, 100.0)
RHOS = (0.0, 0.5, 1.0)
NOMINAL = 0.95
SLACK = 0.02  # the issue's bound: at most 2 points below nominal


def _image_noise(rng, shape_common, shape_seed, rho, tau=TAU):
    common, own = rng.standard_normal(shape_common), rng.standard_normal(shape_seed)
    return tau * (math.sqrt(rho) * common + math.sqrt(1 - rho) * own)


def _diffs(rng, n, S, ratio, rho, B):
    """n sweeps: per-seed differences (n, S) and bootstrap replicates (n, S, B)."""
    d = math.sqrt(ratio) * TAU * rng.standard_normal((n, S)) + _image_noise(rng, (n, 1), (n, S), rho)
    boot = d[:, :, None] + _image_noise(rng, (n, 1, B), (n, S, B), rho)
    return d, boot


def _coverage(d, boot, level=NOMINAL):
    a, b = stats.variance_parts(d, boot)
    h = stats.half_width(a, b, d.shape[-1], boot.shape[-1], level)
    return float(np.mean(np.abs(d.mean(-1)) <= h))


def test_coverage_over_seeds_and_variance_ratios():
    """>= nominal - 2 points for 2..20 seeds, seed/image variance ratio 0..100, image noise shared or not."""
    rng = np.random.default_rng(2024)
    bad = []
    for rho in RHOS:
        for ratio in RATIOS:
            for S in SEEDS:
                cov = _coverage(*_diffs(rng, 2000, S, ratio, rho, B=32))
                if cov < NOMINAL - SLACK:
                    bad.append((S, ratio, rho, cov))
    assert not bad, f"coverage below {NOMINAL - SLACK}: (seeds, ratio, rho, coverage) {bad}"


def test_paired_diff_ci_coverage_at_the_issue_settings():
    """Through the public entry point, as the sweep calls it: per-model seed SD 0.02, image noise 0.003.

    The former percentile bootstrap covered 65% (2 seeds) and 76% (3 seeds) here.
    """
    rng = np.random.default_rng(8)
    n, B = 600, 200
    for S in (2, 3, 5):
        hits = 0
        for _ in range(n):
            pts, reps = [], []
            for _m in range(2):  # model, baseline: same true mAP 0.3
                img_c, img_b = rng.standard_normal(), rng.standard_normal(B)
                img = math.sqrt(0.5) * img_c + math.sqrt(0.5) * rng.standard_normal(S)
                p = 0.3 + 0.02 * rng.standard_normal(S) + TAU * img
                r = p[:, None] + TAU * (math.sqrt(0.5) * img_b[None] + math.sqrt(0.5) * rng.standard_normal((S, B)))
                pts.append(p)
                reps.append(r)
            ci = stats.paired_diff_ci(pts[0], pts[1], reps[0], reps[1])
            hits += ci.lo <= 0 <= ci.hi
        assert hits / n >= NOMINAL - SLACK - 0.01, (S, hits / n)  # 0.01: simulation error of 600 sweeps


def test_degenerate_cases():
    # zero seed variance and zero image variance: a point, and it is the truth
    base = np.array([0.30, 0.35, 0.40])
    reps = np.random.default_rng(0).uniform(0.2, 0.5, (3, 300))
    ci = stats.paired_diff_ci(base + 0.05, base, reps + 0.05, reps)
    assert ci.lo == pytest.approx(0.05) and ci.hi == pytest.approx(0.05) and ci.p == 0.0
    # zero seed variance, shared image noise only: the interval is the image interval (t_{B-1} * sd of c)
    rng = np.random.default_rng(1)
    c_boot = TAU * rng.standard_normal(4000)
    d = np.full(5, 0.001)
    ci = stats.paired_diff_ci(d, np.zeros(5), d[:, None] + c_boot[None], np.zeros((5, 4000)))
    assert ci.var_seed == pytest.approx(0.0, abs=1e-20)
    assert (ci.hi - ci.lo) / 2 == pytest.approx(1.96 * TAU, rel=0.05)
    # one seed: no seed-level interval, and it says so
    one = stats.paired_diff_ci([0.41], [0.40], reps[:1] + 0.01, reps[:1])
    assert math.isnan(one.lo) and math.isnan(one.hi) and not one.excludes_zero and "1 seed" in one.note
    assert stats.verdict(one, False, math.nan) == "too few seeds to say"


def _family_null(rng, n, S, k, ratio, rho, B):
    """n sweeps of k models + 1 baseline, no true difference: per-model (a, b, delta) arrays (n, k)."""
    seed_sd = math.sqrt(ratio / 2) * TAU  # per model, so that the difference has variance ratio * tau^2
    x = 0.3 + seed_sd * rng.standard_normal((n, k + 1, S)) + _image_noise(rng, (n, k + 1, 1), (n, k + 1, S), rho / 2)
    xb = x[..., None] + _image_noise(rng, (n, k + 1, 1, B), (n, k + 1, S, B), rho / 2)
    d, boot = x[:, 1:] - x[:, :1], xb[:, 1:] - xb[:, :1]
    a, b = stats.variance_parts(d, boot)
    return d.mean(-1), a, b


def test_family_wise_error_of_any_model_differs():
    """4 models vs one baseline, all equal: 'some model differs' (Holm) happens in <= 5% of sweeps (+ sim error);
    without the adjustment it happens far more often."""
    rng = np.random.default_rng(11)
    n, k, B = 2000, 4, 64
    se = math.sqrt(0.05 * 0.95 / n)
    for S in (2, 3, 5, 10):
        for ratio in (0.0, 100.0):
            delta, a, b = _family_null(rng, n, S, k, ratio, 0.5, B)
            p = stats.p_value(delta, a, b, S, B, iters=30)  # resolution 1e-9: enough against 0.05 / 4
            fwer = (stats.holm(p) < 0.05).any(-1).mean()
            assert fwer <= 0.05 + 2.5 * se, (S, ratio, fwer)
            assert (p < 0.05).any(1).mean() > fwer  # unadjusted: more 'winners by chance'


def test_p_value_inverts_the_interval():
    rng = np.random.default_rng(3)
    d, boot = _diffs(rng, 50, 4, 1.0, 0.5, B=64)
    a, b = stats.variance_parts(d, boot)
    p = stats.p_value(d.mean(-1), a, b, 4, 64)
    h = stats.half_width(a, b, 4, 64, 1 - p)  # at level 1 - p the interval just touches 0
    np.testing.assert_allclose(h, np.abs(d.mean(-1)), rtol=1e-6)
    one = stats.paired_diff_ci(d[0] , np.zeros(4), boot[0], np.zeros((4, 64)))
    assert one.p == pytest.approx(p[0], rel=1e-6) and (one.p < 0.05) == one.excludes_zero


def test_holm_known_values():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.2, np.nan, 0.01])  # NaN (a 1-seed model) is not in the family
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.2) and out[2] == pytest.approx(0.02)
    rows = np.array([[0.01, 0.04, 0.03, 0.005], [0.2, np.nan, 0.01, 0.5]])  # row-wise, as in the simulation
    np.testing.assert_allclose(stats.holm(rows), [[0.03, 0.06, 0.06, 0.02], [0.4, np.nan, 0.03, 0.5]])


def test_power_matches_the_closed_form_normal_case():
    """df -> inf: two-sided z test power Phi(D/se - z) + Phi(-D/se - z); MDD at 80% = (z_.975 + z_.8) se."""
    sd, S = 0.02, 8
    se = sd / math.sqrt(S)
    z = st.norm.ppf(0.975)
    for eff in (0.0, 0.005, 0.01, 0.02):
        want = st.norm.cdf(eff / se - z) + st.norm.cdf(-eff / se - z)
        assert stats.power(eff, sd, 0.0, S, df=1e9) == pytest.approx(want, abs=1e-6)
    assert stats.min_detectable(sd, 0.0, S, df=1e9) == pytest.approx((z + st.norm.ppf(0.8)) * se, rel=1e-4)


def test_power_of_the_paired_t_test_by_simulation():
    """No image noise: the sweep's test is the paired t-test, whose power is the noncentral t (by simulation)."""
    rng = np.random.default_rng(5)
    sd, S, eff = 0.02, 5, 0.025
    d = eff + sd * rng.standard_normal((20000, S))
    a, b = stats.variance_parts(d)
    reject = np.abs(d.mean(-1)) > stats.half_width(a, b, S, 0, 0.95)
    assert reject.mean() == pytest.approx(stats.power(eff, sd, 0.0, S), abs=0.015)
    mdd = stats.min_detectable(sd, 0.0, S)
    assert stats.power(mdd, sd, 0.0, S) == pytest.approx(0.8, abs=1e-6)


def test_seeds_needed():
    sd = 0.01
    n = stats.seeds_needed(0.005, sd, 0.0)
    assert n is not None and stats.power(0.005, sd, 0.0, n) >= 0.8 > stats.power(0.005, sd, 0.0, n - 1)
    # the shared image variance does not shrink with seeds: an effect below ~2.8 of its SD is out of reach
    assert stats.seeds_needed(0.005, sd, (0.005 / 2.5) ** 2) is None
    assert stats.seeds_needed(0.005, sd, (0.005 / 4) ** 2) > n


def test_adjust_and_verdicts():
    rng = np.random.default_rng(6)
    base = 0.3 + 0.002 * rng.standard_normal(6)
    cis = {
        "same": stats.paired_diff_ci(base + 0.002 * rng.standard_normal(6), base),
        "up": stats.paired_diff_ci(base + 0.05 + 0.002 * rng.standard_normal(6), base),
        "down": stats.paired_diff_ci(base - 0.05 + 0.002 * rng.standard_normal(6), base),
        "one": stats.paired_diff_ci(base[:1] + 0.05, base[:1]),
    }
    adj = stats.adjust(cis)
    assert adj["up"].verdict == "better" and adj["down"].verdict == "worse"
    assert adj["same"].verdict.startswith("no detectable difference (could detect ≥ ")
    assert adj["one"].verdict == "too few seeds to say" and math.isnan(adj["one"].p_holm)
    assert adj["up"].family_size == 3 and adj["up"].sim_level == pytest.approx(1 - 0.05 / 3)
    lo, hi = cis["same"].lo, cis["same"].hi
    assert adj["same"].sim_lo < lo and adj["same"].sim_hi > hi  # simultaneous intervals are wider
    mdd = float(adj["same"].verdict.split("≥ ")[1].rstrip(")"))
    assert mdd == pytest.approx(adj["same"].mdd, abs=5e-4) and mdd > abs(cis["same"].delta)


# ------------------------------------------------------------------------------------------------
# The report from a synthetic store (no training): verdict lines, adjusted marker, extended seeds
# ------------------------------------------------------------------------------------------------
def _synthetic_sweep(root, seeds=(0, 1, 2, 3), planned=None, images_per_s=None):
    """A store with 3 models x seeds: 'good' detects every box, 'same' and the baseline ~half (seed-dependent).
    ``images_per_s``: model -> the training throughput its trials record (default: none recorded)."""
    from yolo_attn.scoring import cocoeval
    from yolo_attn.compare.contract import SweepConfig
    from yolo_attn.compare.store import Store

    rng = np.random.default_rng(0)
    images = [cocoeval.GtImage(f"im{i:03d}", 100, 80, np.array([[0, 0.5, 0.5, 0.4, 0.5]])) for i in range(40)]
    gt = cocoeval.coco_gt(images, ["a"])
    store = Store(root)
    for model in ("base", "same", "good"):
        for s in seeds:
            hit = np.ones(40, bool) if model == "good" else rng.random(40) < 0.5
            preds = {im.key: np.c_[im.labels, [[rng.uniform(0.3, 1)]]] for im, h in zip(images, hit) if h}
            res = cocoeval.evaluate(gt, cocoeval.coco_dets(gt, preds))
            tid = f"{model}__seed{s}"
            res.arrays.save(store.trial_dir(tid) / "eval.npz")
            m = {"map50": res.map50, "map": res.map}
            store.append({"trial_id": tid, "model": model, "model_ref": f"{model}.yaml", "seed": s, "status": "ok", "settings_hash": "h",
                          "coco": m, "ultra": {**m, "precision": 0.5, "recall": 0.5}, "n_val_images": 40,
                          "eval": f"trials/{tid}/eval.npz", "params": 1000, "duration_s": 120.0, "epochs_done": 4,
                          "curve": [{"epoch": e, "map": m["map"] * e / 4 + 0.01 * rng.standard_normal()}
                                    for e in range(1, 5)],
                          **({"train_images_per_s": images_per_s[model]} if images_per_s else {})})
    config = SweepConfig(settings_hash="h", data_fingerprint={}, epochs=4, imgsz=64, seeds=list(seeds), baseline="base",
                         models=[{"name": n, "params": 1000} for n in ("base", "same", "good")], data="synthetic.yaml",
                         planned_seeds=list(planned or ()))
    return store, config


def test_report_verdicts_from_a_synthetic_sweep(tmp_path):
    from yolo_attn.compare import report

    store, config = _synthetic_sweep(tmp_path / "a")
    summary = report.summarize(store, config, n_boot=200, effect=0.01)
    rows = {r.model: r for r in summary.models}
    good, same = rows["good"].diff["map"], rows["same"].diff["map"]
    assert good.verdict == "better" and good.significant and good.adjusted.family_size == 2
    assert same.verdict.startswith("no detectable difference (could detect ≥ ") or same.verdict in ("better", "worse")
    assert good.sd_seed > 0 and good.ci.n_boot == 200 and good.adjusted.sim_lo < good.lo
    md = report.markdown(summary)
    assert "## Verdicts" in md and "- good: better" in md and "Best placement (family-wise 5%): good" in md
    assert "Seeds extended" not in md and not summary.seeds_extended
    flat = report._flat(rows["good"])
    assert flat["d_map_verdict"] == "better" and flat["d_map_p_holm"] < 0.05


def test_summary_json_reads_back_as_the_report_wrote_it(tmp_path):
    """summary.json is the summary's one serialisation: read back (SweepSummary.from_json) it gives the same object (same table,
    same verdicts), and a file of an older version (no family-wise part, keys since renamed or added) still reads."""
    from yolo_attn.compare import report
    from yolo_attn.compare.summary import SweepSummary

    store, config = _synthetic_sweep(tmp_path / "r")
    summary = report.summarize(store, config, n_boot=100)
    summary.out, summary.complete = str(store.root), True
    report.write_outputs(store, store.trial_records(), summary)
    back = SweepSummary.from_json(json.loads((store.root / "summary.json").read_text()))
    assert json.dumps(back.to_json(), default=str) == json.dumps(summary.to_json(), default=str)
    assert report.markdown(back) == report.markdown(summary)
    assert back.row("good").diff["map"].verdict == "better" == summary.row("good").diff["map"].adjusted.verdict
    old = json.loads((store.root / "summary.json").read_text())
    old["legacy"] = 1
    for row in old["models"]:
        row.pop("n_failed")
        for d in (row.get("diff") or {}).values():
            for k in ("p_holm", "sim_lo", "sim_hi", "family_size", "sim_level", "significant", "mdd", "verdict",
                      "seeds_needed", "image_floor"):
                d.pop(k)
    older = SweepSummary.from_json(old)
    good = older.row("good").diff["map"]
    assert good.adjusted is None and good.delta == summary.row("good").diff["map"].delta
    assert good.verdict == "better" and older.row("good").n_failed == 0 and older.to_json()["legacy"] == 1
    (store.root / "summary.json").write_text('{"baseline": "base"}')
    with pytest.raises(ValueError, match="summary.json: not a sweep's summary .no models"):
        SweepSummary.from_json(json.loads((store.root / "summary.json").read_text()))


def test_report_labels_training_throughput_as_not_interleaved(tmp_path):
    """Training img/s of trials run at different times (other trials and processes beside them) is not a model
    property; the table says so in its header and a footnote, and points at the interleaved latency."""
    from yolo_attn.compare import report

    store, config = _synthetic_sweep(tmp_path / "t", seeds=(0, 1), images_per_s={"base": 50.0, "same": 50.0, "good": 40.0})
    summary = report.summarize(store, config, n_boot=50)
    md = report.markdown(summary)
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert header.rstrip(" |").endswith("latency × | train img/s × (not interleaved)")
    assert "train img/s × (not interleaved): training throughput ratio to the baseline" in md
    assert "trials run at different times" in md and "not a model property" in md
    assert "latency × (measured interleaved) is the speed to read" in md
    rows = {r.model: r for r in summary.models}
    assert rows["good"].train_speed_ratio == pytest.approx(0.8) and "| 0.80 |" in md


def test_replicates_worked_out_ahead_give_the_same_summary(tmp_path):
    """The bootstrap replicates a free core computes while the last trials run (report.WorkAhead) are the report's
    own numbers: the summary is identical; a changed evaluation file is not taken from it."""
    from yolo_attn.compare import report

    store, config = _synthetic_sweep(tmp_path / "w", seeds=(0, 1, 2))
    plain = report.summarize(store, config, n_boot=100)
    ahead = report.WorkAhead(store, "h", n_boot=100)
    steps = 0
    while ahead.step():
        steps += 1
    assert steps == 1 + 9 and ahead.plots_ready and len(ahead.replicates) == 9  # the import, then each trial once
    assert json.dumps(report.summarize(store, config, n_boot=100, ahead=ahead).to_json(), sort_keys=True, default=str) == \
        json.dumps(plain.to_json(), sort_keys=True, default=str)
    ok = list(store.latest("h").values())
    fresh = report._replicates(store, ok, 100, 0)
    for key in ahead.replicates:  # marked: an entry taken from ahead reads zeros
        ahead.replicates[key] = (np.zeros(100), np.zeros(100))
    good0 = store.root / "trials" / "good__seed0" / "eval.npz"
    os.utime(good0, ns=(good0.stat().st_atime_ns, good0.stat().st_mtime_ns + 10**9))  # the file changed since
    got = report._replicates(store, ok, 100, 0, ahead)
    assert np.array_equal(got["good__seed0"][1], fresh["good__seed0"][1])  # computed again, not taken
    assert all(not got[t][1].any() for t in got if t != "good__seed0")  # the others were taken from ahead


def test_report_names_seeds_added_after_looking_and_one_seed(tmp_path):
    from yolo_attn.compare import report

    store, config = _synthetic_sweep(tmp_path / "b", seeds=(0, 1, 2), planned=(0, 1))
    summary = report.summarize(store, config, n_boot=100)
    md = report.markdown(summary)
    assert summary.seeds_extended == [2] and "Seeds extended after looking" in md
    assert "not a fixed-design interval" in md
    store1, config1 = _synthetic_sweep(tmp_path / "c", seeds=(0,))
    md1 = report.markdown(report.summarize(store1, config1, n_boot=100))
    assert "1 seed: no interval" in md1 and "- good: too few seeds to say" in md1
    assert "[" not in md1.split("## Verdicts")[1]


def test_seeds_needed_beyond_the_search_uses_the_normal_formula():
    sd, eff = 0.05, 0.005
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert stats.seeds_needed(eff, sd, 0.0) == math.ceil((z * sd / eff) ** 2)  # ~785 > 200


def test_plan_from_a_pilot(tmp_path):
    from yolo_attn.compare import plan, report
    from yolo_attn.compare.store import Store

    store, config = _synthetic_sweep(tmp_path / "p")
    summary = report.summarize(store, config, n_boot=100, effect=0.2)
    p = plan.make_plan(summary, Store(tmp_path / "p").trial_records(), effect=0.2)
    assert p.family_size == 2 and p.alpha == pytest.approx(0.025) and p.pilot_epochs == 4
    assert p.s_per_epoch == pytest.approx(30.0)
    same = next(m for m in p.models if m.model == "same")
    d = summary.row("same").diff["map"].ci
    assert same.seeds_needed == stats.seeds_needed(0.2, d.sd_seed, d.var_image, 100, 0.025) > 1
    full = next(o for o in p.options if o.epochs == 4)
    assert full.seeds == max(m.seeds_needed for m in p.models)
    assert full.wall_s == pytest.approx(full.seeds * 3 * 4 * 30.0)
    assert [o.epochs for o in p.options] == [1, 2, 4]
    text = plan.format_plan(p, "pilot")
    assert "seeds needed" in text and "NEW folder" in text and "upper confidence bound" in text
    base4 = np.mean([r.coco["map"] for r in Store(tmp_path / "p").trial_records() if r.model == "base"])
    assert full.base_map == pytest.approx(base4) and f"| 4 | {base4:.3f} | {full.seeds} |" in text
    p_big = plan.make_plan(summary, Store(tmp_path / "p").trial_records(), effect=0.9)  # above the baseline's mAP
    assert "too early" in plan.format_plan(p_big, "pilot")


# ------------------------------------------------------------------------------------------------
# The pairing assumption: seed s of the model and of the baseline see the same data stream
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_same_seed_gives_both_models_the_same_batches(tmp_path, monkeypatch):
    """Two sweep trials (stock yolov5n vs an attention placement, which builds extra random weights and goes
    through yolo_attn's trainer), seed 0, and a third with seed 1: every training sample the dataset hands out
    (image order, mosaic and augmented pixels, boxes) is recorded. Same seed: identical streams; other seed: not."""
    import hashlib

    from ultralytics.data.dataset import YOLODataset

    from yolo_attn.compare.contract import TrialSpec
    from yolo_attn.compare.trial import run_trial
    from yolo_attn.models import materialize, resolve_model
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    data = tmp_path / "tiny.yaml"
    write_dataset(tmp_path / "tiny", ShapesConfig(n_train=16, n_val=4, imgsz=64, min_size=14, max_size=40), data)
    streams: dict[str, list] = {}
    current = {"id": None}
    orig = YOLODataset.__getitem__

    def recording(self, index):
        out = orig(self, index)
        if self.augment:  # training samples only (validation is not augmented)
            h = hashlib.sha1(out["img"].numpy().tobytes())
            h.update(np.asarray(out["bboxes"]).tobytes() + np.asarray(out["cls"]).tobytes())
            streams[current["id"]].append((index, h.hexdigest()))
        return out

    monkeypatch.setattr(YOLODataset, "__getitem__", recording)
    for model, seed in (("yolov5n.yaml", 0), ("yolov5n-se-backbone-end.yaml", 0), ("yolov5n.yaml", 1)):
        tid = f"{model}-{seed}"
        current["id"] = tid
        streams[tid] = []
        ref = materialize(resolve_model(model), tmp_path / "models")
        spec = TrialSpec(trial_id=tid, model=model, model_ref=ref, seed=seed, settings_hash="h",
                         trial_dir=str(tmp_path / tid), store_root=str(tmp_path), data=str(data), epochs=2, imgsz=64,
                         train_args={"batch": 8}, pretrained=None, nc=4, names=["circle", "square", "triangle", "cross"],
                         weights="last", device="cpu", threads=1, verbose=False)
        rec = run_trial(spec)
        assert rec.status == "ok", rec.error
    base, attn, other = streams["yolov5n.yaml-0"], streams["yolov5n-se-backbone-end.yaml-0"], streams["yolov5n.yaml-1"]
    assert len(base) == 32  # 16 images x 2 epochs, all recorded
    assert [i for i, _ in base] == [i for i, _ in attn]  # same order
    assert base == attn  # same augmented tensors and boxes
    assert base != other  # the seed does change the stream (the check can fail)


def test_plan_reads_a_finished_folder_and_not_an_unfinished_one(tmp_path, capsys):
    import argparse
    import dataclasses

    from yolo_attn.commands import compare as cmd
    from yolo_attn.compare import plan

    store, config = _synthetic_sweep(tmp_path / "f")
    store.init_config(config)
    summary, records = plan.finished_pilot(str(tmp_path / "f"), effect=0.2, n_boot=100)
    assert len(records) == 12 and summary.effect == 0.2
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)  # the command's real options, so a new flag cannot be missed here
    args = parser.parse_args(["--effect", "0.2", "--out", str(tmp_path / "f"), "--plan", "--boot", "100"])
    assert cmd.run(args) == 0  # trains nothing: the folder is finished
    assert "# Plan: seeds x epochs to detect a difference of 0.2" in capsys.readouterr().out
    store2, config2 = _synthetic_sweep(tmp_path / "g", seeds=(0, 1))
    store2.init_config(dataclasses.replace(config2, seeds=[0, 1, 2]))  # seed 2 not trained yet
    assert plan.finished_pilot(str(tmp_path / "g"), effect=0.2) is None


@pytest.mark.slow
def test_sweep_records_planned_seeds_and_names_an_extension(tmp_path):
    """compare() keeps the seeds of the folder's first run in config.json; a rerun with more seeds (allowed
    with --allow-changes) is reported as extended after looking. Nothing is trained (max_trials=0)."""
    import json

    from conftest import run_compare
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    data = tmp_path / "tiny.yaml"
    write_dataset(tmp_path / "tiny", ShapesConfig(n_train=8, n_val=4, imgsz=64, min_size=14, max_size=40), data)
    kw = dict(data=str(data), models=["yolov5n.yaml"], epochs=1, imgsz=64, n_boot=50, threads=1, progress=False,
              max_trials=0, out=str(tmp_path / "s"))
    first = run_compare(seeds=2, **kw)
    assert first.planned_seeds == [0, 1] and not first.seeds_extended
    again = run_compare(seeds=4, allow_changes=True, **kw)
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["seeds"] == [0, 1, 2, 3] and cfg["_planned_seeds"] == [0, 1]
    assert again.seeds_extended == [2, 3] and any("seeds extended" in w for w in again.warnings)


def test_report_says_when_image_noise_is_left_out(tmp_path):
    from yolo_attn.compare import report

    store, config = _synthetic_sweep(tmp_path / "n", seeds=(0, 1, 2))
    (tmp_path / "n" / "trials" / "same__seed1" / "eval.npz").unlink()  # per-image data of one trial lost
    summary = report.summarize(store, config, n_boot=100)
    same = summary.row("same").diff["map"]
    assert same.ci.n_boot == 0 and "leaves out validation-image noise" in same.ci.note
    assert "- same: no per-image evaluation data" in report.markdown(summary)


@pytest.mark.parametrize("n_boot", [0, 1, 49])
def test_too_few_bootstrap_replicates_are_refused_before_anything_trains(tmp_path, n_boot, capsys):
    """0 or 1 replicate would drop the validation-image variance (taken as 0): an interval narrower than stated."""
    from yolo_attn.cli import main
    from yolo_attn.compare import report
    from yolo_attn.compare.stats import MIN_BOOT

    out = tmp_path / "o"
    assert main(["compare", "--boot", str(n_boot), "--seeds", "2", "--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--boot {n_boot}: at least {MIN_BOOT} bootstrap replicates are needed" in err and "taken as 0" in err
    assert not (out / "config.json").exists() and not (out / "trials.jsonl").exists()
    store, config = _synthetic_sweep(tmp_path / "s")
    with pytest.raises(ValueError, match=f"at least {MIN_BOOT}"):
        report.summarize(store, config, n_boot=n_boot)
    assert report.summarize(store, config, n_boot=MIN_BOOT).models[1].diff["map"].ci.n_boot == MIN_BOOT


def test_seeds_that_agree_by_chance_keep_the_image_noise_of_their_mean():
    """2 seeds of top-1 on 80 images, both -1/80 (as a classify sweep measured): the seed part is 0 and the
    replicates of the two seeds are uncorrelated, so the shared part estimates 0 too. The interval keeps the image
    bootstrap's variance of the mean difference: not zero-width, and no verdict from it."""
    rng = np.random.default_rng(5)
    d = np.array([-1 / 80, -1 / 80])
    boot = d[:, None] + rng.normal(0, [[0.022], [0.012]], (2, 200))
    a, b = stats.variance_parts(d, boot)
    V = boot.mean(0).var(ddof=1)
    assert a == 0 and b == pytest.approx(V)
    ci = stats.paired_diff_ci(d, np.zeros(2), boot, np.zeros((2, 200)))
    assert ci.hi - ci.lo > 0.03 and not ci.excludes_zero


def test_zero_spread_supports_no_verdict_and_no_power_statement():
    """Two models that score 0 in every seed (untrained): the interval is a point at 0; it measured no noise, so the
    report neither says 'could detect >= 0.000' nor plans '2 seeds' from it."""
    d, reps = np.zeros(2), np.zeros((2, 100))
    ci = stats.paired_diff_ci(d, d, reps, reps)
    assert stats.no_spread(ci) and math.isnan(stats.min_detectable(ci.sd_seed, ci.var_image, 2, 100))
    adj = stats.adjust({"m": ci})["m"]
    assert adj.verdict == stats.NO_SPREAD and "could detect" not in adj.verdict
    noisy = stats.paired_diff_ci(np.array([0.01, -0.01]), np.zeros(2), reps + 0.001 * np.arange(100), reps)
    assert not stats.no_spread(noisy)
