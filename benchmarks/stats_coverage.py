"""Coverage and family-wise error of compare's interval by simulation (the tables quoted in the README).

    OMP_NUM_THREADS=1 python benchmarks/stats_coverage.py [--old OLD_STATS.py]

1. The issue's setting through ``paired_diff_ci`` exactly as the sweep calls it: per-model seed SD 0.02,
   validation-image noise 0.003 per model (half of it shared by every seed: the same images), 1000
   bootstrap replicates, no true difference, 2000 sweeps per row. ``--old`` also runs a former
   ``stats.py`` (e.g. ``git show 6b555b4:yolo_attn/compare/stats.py > /tmp/old_stats.py``).
2. Coverage over the grid seeds x seed/image variance ratio x share of the image noise common to all
   seeds (vectorised, 2000 sweeps per cell, 200 replicates).
3. Family-wise error of "some model differs from the baseline" under the null, k models sharing the
   baseline: Holm-adjusted and unadjusted.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from yolo_attn.compare import stats  # noqa: E402

TAU = 0.003


def issue_table(mod, n=2000, B=1000, seed_sd=0.02, rho=0.5, seeds=(2, 3, 5, 10), rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    out = {}
    for S in seeds:
        hits = 0
        for _ in range(n):
            pts, reps = [], []
            for _m in range(2):
                c, cb = rng.standard_normal(), rng.standard_normal(B)
                img = math.sqrt(rho) * c + math.sqrt(1 - rho) * rng.standard_normal(S)
                p = 0.3 + seed_sd * rng.standard_normal(S) + TAU * img
                r = p[:, None] + TAU * (math.sqrt(rho) * cb[None] + math.sqrt(1 - rho) * rng.standard_normal((S, B)))
                pts.append(p)
                reps.append(r)
            ci = mod.paired_diff_ci(pts[0], pts[1], reps[0], reps[1])
            hits += ci.lo <= 0 <= ci.hi
        out[S] = hits / n
    return out


def _noise(rng, common, per_seed, rho):
    return TAU * (math.sqrt(rho) * rng.standard_normal(common) + math.sqrt(1 - rho) * rng.standard_normal(per_seed))


def grid(n=2000, B=200, seeds=(2, 3, 5, 10, 20), ratios=(0, 0.1, 1, 10, 100), rhos=(0, 0.5, 1), rng_seed=1):
    rng = np.random.default_rng(rng_seed)
    rows = []
    for rho in rhos:
        for ratio in ratios:
            cov = []
            for S in seeds:
                d = math.sqrt(ratio) * TAU * rng.standard_normal((n, S)) + _noise(rng, (n, 1), (n, S), rho)
                boot = d[:, :, None] + _noise(rng, (n, 1, B), (n, S, B), rho)
                a, b = stats.variance_parts(d, boot)
                cov.append(float(np.mean(np.abs(d.mean(-1)) <= stats.half_width(a, b, S, B))))
            rows.append((rho, ratio, cov))
    return seeds, rows


def fwer(k, S, ratio, n=2000, B=100, rho=0.5, rng_seed=2):
    rng = np.random.default_rng(rng_seed)
    sd = math.sqrt(ratio / 2) * TAU
    x = sd * rng.standard_normal((n, k + 1, S)) + _noise(rng, (n, k + 1, 1), (n, k + 1, S), rho / 2)
    xb = x[..., None] + _noise(rng, (n, k + 1, 1, B), (n, k + 1, S, B), rho / 2)
    d, boot = x[:, 1:] - x[:, :1], xb[:, 1:] - xb[:, :1]
    a, b = stats.variance_parts(d, boot)
    p = stats.p_value(d.mean(-1), a, b, S, B, iters=30)
    return float((stats.holm(p) < 0.05).any(-1).mean()), float((p < 0.05).any(-1).mean())


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="a former stats.py to compare in table 1")
    args = ap.parse_args()
    t0 = time.time()
    print("## 1. Issue setting (seed SD 0.02, image noise 0.003, 2000 sweeps, 1000 bootstrap replicates)\n")
    new = issue_table(stats)
    cols = {"new interval": new}
    if args.old:
        spec = importlib.util.spec_from_file_location("old_stats", args.old)
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_stats"] = old  # dataclasses look their module up
        spec.loader.exec_module(old)
        cols["former bootstrap"] = issue_table(old)
    print("| seeds | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for S in new:
        print(f"| {S} | " + " | ".join(f"{100 * c[S]:.1f}%" for c in cols.values()) + " |")
    print("\n## 2. Coverage grid (2000 sweeps per cell, 200 replicates; "
          "rho = share of image noise common to all seeds)\n")
    seeds, rows = grid()
    print("| rho | seed/image variance ratio | " + " | ".join(f"{s} seeds" for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    for rho, ratio, cov in rows:
        print(f"| {rho} | {ratio} | " + " | ".join(f"{100 * c:.1f}" for c in cov) + " |")
    allc = [c for _, _, cov in rows for c in cov]
    print(f"\nminimum {100 * min(allc):.1f}%, mean {100 * np.mean(allc):.1f}% over {len(allc)} cells")
    print("\n## 3. Family-wise error of 'some model differs' under the null (2000 sweeps, rho 0.5)\n")
    print("| models k | seeds | variance ratio | Holm | unadjusted |\n|---|---|---|---|---|")
    for k in (3, 4):
        for S in (2, 3, 5, 10):
            for ratio in (0, 1, 44, 100):
                h, u = fwer(k, S, ratio)
                print(f"| {k} | {S} | {ratio} | {100 * h:.1f}% | {100 * u:.1f}% |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
