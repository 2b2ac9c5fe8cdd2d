"""Error rates and expected seeds of the declared decision rule (yolo_attn/compare/sequential.py) by simulation.

    OMP_NUM_THREADS=1 python benchmarks/sequential_sim.py [--sims 10000] [--power-sims 4000] [--out PATH]

Cells of the coverage test (benchmarks/stats_coverage.py, table 1): per-model seed SD 0.005 / 0.01 / 0.02,
validation-image noise 0.003 per model (half of it shared by every seed: the same images), image-bootstrap
replicates with the same structure; 3 attention models against one baseline (Holm across them), margin 0.01,
alpha 0.05, looks at (2, 4, 6, 8, 10) or (3, 5, 7, 10) seeds. The simulated sweeps go through the module's own
vectorised functions (``look_arrays``, ``run_looks``): the code that :func:`decide` runs for one sweep.

1. Error rates: P(one model alone declared better or worse | true difference 0), P(some model of 3 declared better
   or worse | every true difference 0) (family-wise, Holm), and P(a model declared equivalent | true difference
   +0.01 or -0.01), each with its Monte-Carlo standard error.
2. Seeds: at the alternative theta that the fixed 10-seed design detects with 80% power, the fixed design (one
   look, same alpha and Holm) with the fewest seeds that reaches the sequential design's power; then, with every
   model at true difference 0, theta/2, theta and 1.5 theta, the chance of "better" and of "equivalent", the
   expected seeds per model and trials (models and baseline; the baseline runs while any model runs), and the
   trials saved against that fixed design.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from yolo_attn.compare import sequential as sq  # noqa: E402
from yolo_attn.compare import stats  # noqa: E402

TAU, RHO, MARGIN, ALPHA, K = 0.003, 0.5, 0.01, 0.05, 3
DESIGNS = ((2, 4, 6, 8, 10), (3, 5, 7, 10))
SDS = (0.005, 0.01, 0.02)
OUT = Path(__file__).resolve().parent / "results" / "sequential.md"


def sweeps(rng, n, S, sd, effect, B=100, k=K):
    """n simulated sweeps of k models + 1 baseline: per-seed differences (n, k, S) and replicates (n, k, S, B)."""
    shared = math.sqrt(RHO) * rng.standard_normal((n, k + 1, 1))
    p = sd * rng.standard_normal((n, k + 1, S)) + TAU * (shared + math.sqrt(1 - RHO) * rng.standard_normal((n, k + 1, S)))
    p[:, 1:] += effect
    img = math.sqrt(RHO) * rng.standard_normal((n, k + 1, 1, B)) + math.sqrt(1 - RHO) * rng.standard_normal((n, k + 1, S, B))
    r = p[..., None] + TAU * img
    return p[:, 1:] - p[:, :1], r[:, 1:] - r[:, :1]


def run(rule: sq.Rule, d, boot):
    """Decisions of the rule for simulated sweeps: outcome codes (n, k) and seeds run per model (n, k)."""
    k = d.shape[-2]
    alphas = tuple(rule.alpha / (k - r) for r in range(k))
    arr = sq.look_arrays(d, boot, rule, alphas)
    avail = np.full(d.shape[:-1], len(rule.looks))
    code, when, _, _ = sq.run_looks(arr["diff"], arr["h"], arr["heq"], avail, rule.margin)
    return code, np.asarray(rule.looks)[when]


def simulate(rule, n, sd, effect, rng, chunk=2500, k=K):
    """Outcome codes and seeds of n sweeps of k models, in chunks (memory)."""
    codes, seeds = [], []
    for start in range(0, n, chunk):
        d, boot = sweeps(rng, min(chunk, n - start), rule.max_seeds, sd, effect, k=k)
        c, s = run(rule, d, boot)
        codes.append(c)
        seeds.append(s)
    return np.concatenate(codes), np.concatenate(seeds)


def rate(hit):
    """Mean over sweeps of a per-sweep quantity and its Monte-Carlo standard error."""
    x = np.asarray(hit, float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.shape[0]))


def error_row(looks, sd, n, rng):
    rule = _rule(looks)
    code, _ = simulate(rule, n, sd, 0.0, rng)
    fwer = rate(((code == 1) | (code == 2)).any(-1))
    eq = [rate((simulate(rule, n, sd, s * MARGIN, rng)[0] == 3).mean(-1)) for s in (1, -1)]
    return fwer, eq[0], eq[1]


def fixed_power(n, sd, effect, rng, want, max_seeds=12):
    """Chance of ``want`` (1 better, 3 equivalent) per model of the one-look design at 2..max_seeds seeds."""
    d, boot = sweeps(rng, n, max_seeds, sd, effect)
    out = {}
    for N in range(2, max_seeds + 1):
        code, _ = run(_rule((N,)), d[..., :N], boot[..., :N, :])
        out[N] = float((code == want).mean())
    return out


def design_effect(sd, n_seeds=10, power=0.8):
    """The true difference the fixed design of ``n_seeds`` detects with ``power`` (Holm's first step, normal-t
    approximation of stats.min_detectable): the alternative the sequential design is compared at."""
    sd_diff = math.sqrt(2 * sd**2 + 2 * (1 - RHO) * TAU**2)
    return stats.min_detectable(sd_diff, 2 * RHO * TAU**2, n_seeds, 100, ALPHA / K, power)


def seeds_rows(looks, sd, n, rng):
    """E[seeds] and E[trials] at true differences 0, theta/2, theta, 1.5 theta (theta: :func:`design_effect`),
    against the fixed design with the sequential design's power at theta."""
    rule, theta = _rule(looks), design_effect(sd, looks[-1])
    rows = []
    for effect in (0.0, theta / 2, theta, 1.5 * theta):
        code, seeds = simulate(rule, n, sd, effect, rng)
        trials = seeds.sum(-1) + seeds.max(-1)
        rows.append((effect, rate(code == 1), rate(code == 3), float(seeds.mean()), rate(trials)))
    power = rows[2][1][0]
    curve = fixed_power(n, sd, theta, rng, 1)
    fixed = next((N for N, p in curve.items() if p >= power), None)
    if fixed and fixed > 2:  # seeds come whole: interpolate the power curve between fixed - 1 and fixed
        lo, hi = curve[fixed - 1], curve[fixed]
        fixed = fixed - 1 + (power - lo) / (hi - lo) if hi > lo else float(fixed)
    return theta, power, fixed, rows


def _rule(looks):
    return sq.Rule("mAP50-95", ALPHA, MARGIN, tuple(looks), looks[-1], "2026-01-01T00:00:00+00:00", "obrien-fleming")


def tables(n_err, n_pow, seed=0):
    rng = np.random.default_rng(seed)
    err = ["| looks | seed SD | P(better/worse), true diff 0, 1 model | P(better/worse), all true diff 0, 3 models "
           "(FWER, Holm) | P(equivalent), true +δ | P(equivalent), true −δ |", "|---|---|---|---|---|---|"]
    pw = ["| looks | seed SD | θ | P(better) at θ | fixed design, same power: seeds | true diff | P(better) | "
          "P(equivalent) | E[seeds per model] | E[trials] | fixed trials | saved |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda r: f"{100 * r[0]:.2f}% ± {100 * r[1]:.2f}"  # noqa: E731
    for looks in DESIGNS:
        for sd in SDS:
            one = rate(np.isin(simulate(_rule(looks), n_err, sd, 0.0, rng, k=1)[0][:, 0], (1, 2)))
            fwer, eq_up, eq_down = error_row(looks, sd, n_err, rng)
            err.append(f"| {looks} | {sd} | {fmt(one)} | {fmt(fwer)} | {fmt(eq_up)} | {fmt(eq_down)} |")
            theta, power, fixed, rows = seeds_rows(looks, sd, n_pow, rng)
            for i, (effect, better, equiv, per_model, trials) in enumerate(rows):
                head = (f"| {looks} | {sd} | {theta:.4f} | {100 * power:.1f}% | "
                        f"{f'{fixed:.2f}' if fixed else '> 12'} |" if i == 0 else "| | | | | |")
                saved = f"{100 * (1 - trials[0] / (fixed * (K + 1))):.0f}%" if fixed else "-"
                pw.append(f"{head} {effect:.4f} | {100 * better[0]:.1f}% | {100 * equiv[0]:.1f}% | {per_model:.2f} | "
                          f"{trials[0]:.1f} ± {trials[1]:.1f} | {f'{fixed * (K + 1):.1f}' if fixed else '-'} | {saved} |")
    return err, pw


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=10000, help="sweeps per cell for the error rates")
    ap.add_argument("--power-sims", type=int, default=3000, help="sweeps per cell for the expected seeds")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    t0 = time.time()
    err, pw = tables(args.sims, args.power_sims)
    text = "\n".join([
        "# The declared decision rule by simulation",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/sequential_sim.py --sims {args.sims} --power-sims {args.power_sims}`"
        " (benchmarks/sequential_sim.py says what is simulated). alpha 0.05, margin δ = 0.01, O'Brien-Fleming-type "
        "spending, 3 models and one baseline, image noise 0.003 per model (half shared by all seeds), "
        "100 bootstrap replicates. ± is one Monte-Carlo standard error.",
        "",
        f"## 1. Error rates ({args.sims} sweeps per cell; bound: 5%)",
        "", *err, "",
        f"## 2. Seeds to a decision against the fixed design with the same chance of the right answer "
        f"({args.power_sims} sweeps per cell)",
        "",
        "θ: the true difference that the fixed 10-seed design (one look, Holm's first step) detects with 80% "
        "power (stats.min_detectable). Fixed design: one look, same alpha and Holm, at the seeds whose per-model power "
        "at θ equals the sequential design's (simulated power curve, interpolated between whole seeds). Each row: every model at that true difference; E[trials]: "
        "model seeds summed over the 3 models plus the baseline's (it runs while any model runs); the fixed design "
        "runs 4 x its seeds; saved: 1 - E[trials] / fixed trials.",
        "", *pw, "",
        f"({time.time() - t0:.0f} s)",
    ])
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
