"""COCOeval cross-check on known answers, the weighted (bootstrap) mAP, and the paired bootstrap CI."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_attn.compare import stats
from yolo_attn.compare.report import AGREEMENT_TOL
from yolo_attn.scoring import bootstrap, cocoeval


def _one_box_per_image(n: int, cls=None):
    """n 100x80 images, one box each (class i % 2 unless given), centred, 40% x 50% of the image."""
    return [cocoeval.GtImage(f"im{i:03d}", 100, 80, np.array([[i % 2 if cls is None else cls, 0.5, 0.5, 0.4, 0.5]]))
            for i in range(n)]


def _perfect(images, which=None, score=0.9):
    preds = {}
    for i, im in enumerate(images):
        if which is None or i in which:
            preds[im.key] = np.c_[im.labels, np.full(len(im.labels), score)]
    return preds


def test_coco_json_conversion_known_values():
    gt = cocoeval.coco_gt([cocoeval.GtImage("a", 200, 100, np.array([[1, 0.25, 0.5, 0.1, 0.2]]))], ["x", "y"])
    ann = gt["annotations"][0]
    assert gt["images"] == [{"id": 1, "file_name": "a", "width": 200, "height": 100}]
    assert ann["category_id"] == 2 and ann["bbox"] == pytest.approx([40.0, 40.0, 20.0, 20.0]) and ann["area"] == pytest.approx(400)
    dets = cocoeval.coco_dets(gt, {"a": np.array([[0, 0.5, 0.5, 0.5, 0.5, 0.7]])})
    assert dets == [{"image_id": 1, "category_id": 1, "bbox": pytest.approx([50.0, 25.0, 100.0, 50.0]), "score": 0.7}]


def test_perfect_predictions_give_one_both_ways():
    """COCOeval: exactly 1.0. Ultralytics 8.4's ``compute_ap`` appends (recall[-1], 0) to the envelope, so
    np.interp is 0 at x = 1.0 and the last trapezoid on the 101-point grid is 0.01 * (1 + 0) / 2: the
    figure is 0.99 + 0.005 = 0.995 by hand (1.0 up to that step; the gap is inside the sweep tolerance)."""
    images = _one_box_per_image(10)
    gt = cocoeval.coco_gt(images, ["a", "b"])
    dets = cocoeval.coco_dets(gt, _perfect(images))
    res = cocoeval.evaluate(gt, dets)
    assert res.map50 == pytest.approx(1.0) and res.map == pytest.approx(1.0)
    u50, u = cocoeval.ultralytics_map(gt, dets)
    assert u50 in (pytest.approx(1.0), pytest.approx(0.995)) and u == pytest.approx(u50)
    assert abs(u - res.map) < AGREEMENT_TOL


def test_half_the_images_known_values():
    """Exact boxes for images 0..4 of 10 (one box each, one class): recall stops at 0.5 with precision 1.

    By hand: COCOeval samples precision at the 101 recall thresholds 0, 0.01, ..., 1; thresholds
    0..0.50 (51 of them) get precision 1, the rest 0: AP = 51/101 at every IoU threshold.
    Ultralytics integrates the envelope [(0,1) ... (0.5,1), (0.5,0), (1,0)] with np.interp on the same
    grid and the trapezoidal rule; np.interp takes the right-hand value 0 at the jump x=0.5, so
    AP = 0.49 (x in [0, 0.49]) + 0.01 * (1 + 0) / 2 = 0.495.
    """
    images = _one_box_per_image(10, cls=0)
    gt = cocoeval.coco_gt(images, ["a"])
    dets = cocoeval.coco_dets(gt, _perfect(images, which=set(range(5))))
    res = cocoeval.evaluate(gt, dets)
    assert res.map50 == pytest.approx(51 / 101, abs=1e-9)
    assert res.map == pytest.approx(51 / 101, abs=1e-9)
    u50, u = cocoeval.ultralytics_map(gt, dets)
    assert u50 in (pytest.approx(0.495), pytest.approx(0.505)) and u == pytest.approx(u50)  # 0.505: trapezoid at x=0.5 from 1
    assert abs(u - res.map) < AGREEMENT_TOL  # the systematic gap is inside the sweep's tolerance


def test_no_detections_scores_zero():
    images = _one_box_per_image(4)
    gt = cocoeval.coco_gt(images, ["a", "b"])
    res = cocoeval.evaluate(gt, [])
    assert (res.map50, res.map) == (0.0, 0.0)
    assert res.arrays.n_gt.sum() == 4


def _random_case(seed=0, n=40, nc=3):
    rng = np.random.default_rng(seed)
    images, preds = [], {}
    for i in range(n):
        k = int(rng.integers(0, 5))
        lab = np.c_[rng.integers(0, nc, k), rng.uniform(0.25, 0.75, (k, 2)), rng.uniform(0.05, 0.3, (k, 2))]
        images.append(cocoeval.GtImage(f"im{i:03d}", int(rng.integers(60, 200)), int(rng.integers(60, 200)), lab))
        rows = []
        for r in lab:
            if rng.random() < 0.8:
                q = r.copy()
                q[1:5] += rng.normal(0, 0.02, 4)
                rows.append([*q, rng.uniform(0.3, 1.0)])
        for _ in range(int(rng.integers(0, 4))):
            rows.append([rng.integers(0, nc), *rng.uniform(0.2, 0.8, 2), *rng.uniform(0.05, 0.3, 2), rng.uniform(0, 0.6)])
        preds[images[-1].key] = np.array(rows, float).reshape(-1, 6)
    return images, preds, [f"c{j}" for j in range(nc)]


def test_weighted_map_reproduces_cocoeval_and_duplicates():
    images, preds, names = _random_case()
    gt = cocoeval.coco_gt(images, names)
    res = cocoeval.evaluate(gt, cocoeval.coco_dets(gt, preds))
    m50, m = cocoeval.weighted_map(res.arrays, np.ones((1, len(images))))
    assert m50[0] == pytest.approx(res.map50, abs=1e-12) and m[0] == pytest.approx(res.map, abs=1e-12)
    # an image drawn twice counts like a duplicated image: weights == COCOeval on the duplicated dataset
    w = np.ones(len(images))
    w[:6], w[6:12] = 2, 0
    dup = [(j, im) for im, c in zip(images, w) for j in range(int(c))]
    images2 = [cocoeval.GtImage(f"{j}_{im.key}", im.width, im.height, im.labels) for j, im in dup]
    preds2 = {f"{j}_{im.key}": preds[im.key] for j, im in dup}
    gt2 = cocoeval.coco_gt(images2, names)
    res2 = cocoeval.evaluate(gt2, cocoeval.coco_dets(gt2, preds2))
    d50, d = cocoeval.weighted_map(res.arrays, w[None])
    assert d50[0] == pytest.approx(res2.map50, abs=1e-12) and d[0] == pytest.approx(res2.map, abs=1e-12)


def test_ultralytics_and_cocoeval_agree_within_tolerance():
    images, preds, names = _random_case(seed=3)
    gt = cocoeval.coco_gt(images, names)
    dets = cocoeval.coco_dets(gt, preds)
    res = cocoeval.evaluate(gt, dets)
    u50, u = cocoeval.ultralytics_map(gt, dets)
    assert abs(u50 - res.map50) < AGREEMENT_TOL and abs(u - res.map) < AGREEMENT_TOL


def test_eval_arrays_roundtrip(tmp_path):
    images, preds, names = _random_case(seed=1, n=10)
    gt = cocoeval.coco_gt(images, names)
    arr = cocoeval.evaluate(gt, cocoeval.coco_dets(gt, preds)).arrays
    arr.save(tmp_path / "e.npz")
    back = cocoeval.EvalArrays.load(tmp_path / "e.npz")
    for k in ("cat", "img", "score", "tp", "ignore", "n_gt"):
        np.testing.assert_array_equal(getattr(arr, k), getattr(back, k))


# ------------------------------------------------------------------------------------------------
# stats
# ------------------------------------------------------------------------------------------------
def test_mean_std():
    assert stats.mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    assert np.isnan(stats.mean_std([])[0])


def test_image_weights_are_multinomial():
    W = bootstrap.image_weights(50, 200, seed=1)
    assert W.shape == (200, 50) and (W.sum(1) == 50).all()
    np.testing.assert_array_equal(W, bootstrap.image_weights(50, 200, seed=1))


def test_constant_difference_has_zero_width_ci():
    base = np.array([0.30, 0.35, 0.40])
    reps_b = np.random.default_rng(0).uniform(0.2, 0.5, (3, 500))
    ci = stats.paired_diff_ci(base + 0.05, base, reps_b + 0.05, reps_b)
    assert ci.delta == pytest.approx(0.05) and ci.lo == pytest.approx(0.05) and ci.hi == pytest.approx(0.05)
    assert ci.excludes_zero and ci.per_seed == pytest.approx([0.05] * 3)


def test_image_bootstrap_ci_matches_normal_theory():
    """Metric = mean per-image score; per-image differences ~ N(0.02, 0.1), N=2000 images, no seed noise.

    Known answer: the CI of a mean is delta +- 1.96 * sd / sqrt(N) = +-0.00438 around the sample delta.
    Three seeds with the same predictions: the seed part is 0, the shared image part is all there is.
    With one seed there is no seed-level interval, but the image variance is still estimated.
    """
    rng = np.random.default_rng(0)
    n = 2000
    base = rng.uniform(0.2, 0.8, n)
    model = base + rng.normal(0.02, 0.1, n)
    W = bootstrap.image_weights(n, 4000, seed=2)
    reps_m, reps_b = np.repeat((W @ model / n)[None], 3, 0), np.repeat((W @ base / n)[None], 3, 0)
    ci = stats.paired_diff_ci([model.mean()] * 3, [base.mean()] * 3, reps_m, reps_b)
    half = 1.96 * (model - base).std(ddof=1) / np.sqrt(n)
    assert ci.delta == pytest.approx((model - base).mean())
    assert (ci.hi - ci.lo) / 2 == pytest.approx(half, rel=0.1)
    assert (ci.lo + ci.hi) / 2 == pytest.approx(ci.delta, abs=1e-12)
    assert ci.excludes_zero
    one = stats.paired_diff_ci([model.mean()], [base.mean()], reps_m[:1], reps_b[:1])
    assert np.isnan(one.lo) and np.isnan(one.hi) and one.note
    assert 1.96 * np.sqrt(one.var_image) == pytest.approx(half, rel=0.1)


def test_pairing_removes_shared_image_noise():
    """Model = baseline + 0.01 on every image sample: paired CI is exact, unpaired would be wide."""
    rng = np.random.default_rng(4)
    reps_b = rng.uniform(0.2, 0.6, (2, 1000))
    ci = stats.paired_diff_ci([0.41, 0.51], [0.40, 0.50], reps_b + 0.01, reps_b)
    assert ci.lo == pytest.approx(0.01) and ci.hi == pytest.approx(0.01)


def test_seed_noise_gives_the_paired_t_interval():
    """No image replicates: the interval is the paired t-interval over seeds (known value)."""
    from scipy import stats as st

    base = np.array([0.40, 0.40, 0.40, 0.40])
    model = np.array([0.38, 0.46, 0.40, 0.44])  # seed-to-seed noise, no image noise
    ci = stats.paired_diff_ci(model, base)
    d = model - base
    half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert ci.delta == pytest.approx(0.02)
    assert (ci.lo, ci.hi) == pytest.approx((0.02 - half, 0.02 + half))
    assert ci.lo < 0.0 < ci.hi and ci.p == pytest.approx(st.ttest_rel(model, base).pvalue, rel=1e-6)


def test_mismatched_seeds_raise():
    with pytest.raises(ValueError):
        stats.paired_diff_ci([0.1, 0.2], [0.1])


def test_bootstrap_when_a_model_predicts_nothing_on_some_images():
    """Images without any prediction (false negatives only) count in every bootstrap sample that draws them:
    weighted_map equals COCOeval on the duplicated dataset; a model with no predictions at all scores 0
    on every sample (no NaN), and its difference to a model that detects gets a finite interval."""
    images = _one_box_per_image(12, cls=0)
    gt = cocoeval.coco_gt(images, ["a"])
    half = cocoeval.evaluate(gt, cocoeval.coco_dets(gt, _perfect(images, which=set(range(0, 12, 2)))))
    none = cocoeval.evaluate(gt, [])
    w = np.ones(12)
    w[1], w[3], w[0], w[2] = 3, 2, 0, 0  # empty-prediction images drawn more, detected ones dropped
    dup = [(j, im) for im, c in zip(images, w) for j in range(int(c))]
    images2 = [cocoeval.GtImage(f"{j}_{im.key}", im.width, im.height, im.labels) for j, im in dup]
    preds2 = {f"{j}_{im.key}": p for j, im in dup for k, p in _perfect(images, which=set(range(0, 12, 2))).items()
              if k == im.key}
    gt2 = cocoeval.coco_gt(images2, ["a"])
    ref = cocoeval.evaluate(gt2, cocoeval.coco_dets(gt2, preds2))
    m50, m = cocoeval.weighted_map(half.arrays, w[None])
    assert m50[0] == pytest.approx(ref.map50, abs=1e-12) and m[0] == pytest.approx(ref.map, abs=1e-12)
    W = bootstrap.image_weights(12, 300, seed=0)
    z50, z = cocoeval.weighted_map(none.arrays, W)
    assert np.all(z50 == 0) and np.all(z == 0)
    h50, h = cocoeval.weighted_map(half.arrays, W)
    assert np.isfinite(h).all() and h.std() > 0
    ci = stats.paired_diff_ci([half.map] * 2, [0.0] * 2, np.stack([h, h]), np.stack([z, z]))
    assert np.isfinite([ci.lo, ci.hi]).all() and ci.lo < half.map < ci.hi


def test_pixel_boxes_convert_to_coco_known_values():
    gt = cocoeval.coco_gt([cocoeval.GtImage("a", 100, 80, np.zeros((0, 5)))], ["x", "y"])
    dets = cocoeval.coco_dets_pixels(gt, {"a": np.array([[10.0, 20.0, 50.0, 60.0, 0.7, 1.0]])})
    assert dets == [{"image_id": 1, "category_id": 2, "bbox": [10.0, 20.0, 40.0, 40.0], "score": 0.7}]
    # the same box in YOLO's normalised layout gives the same COCO box
    same = cocoeval.coco_dets(gt, {"a": np.array([[1, 0.3, 0.5, 0.4, 0.5, 0.7]])})
    assert same[0]["bbox"] == pytest.approx(dets[0]["bbox"])


def test_evaluate_equals_pycocotools_full_summary():
    """evaluate() matches images of area range 'all' only: the same mAP as COCOeval's full evaluate + summarize."""
    import contextlib
    import io
    import json

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, preds, names = _random_case(seed=5)
    gt = cocoeval.coco_gt(images, names)
    dets = cocoeval.coco_dets(gt, preds)
    res = cocoeval.evaluate(gt, dets, max_det=100)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(dets))), iouType="bbox")
        ev.params.maxDets = [1, 10, 100]  # summarize() reads stats at 100
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert res.map == pytest.approx(ev.stats[0], abs=1e-12) and res.map50 == pytest.approx(ev.stats[1], abs=1e-12)
    assert 0 < res.map < res.map50 < 1
