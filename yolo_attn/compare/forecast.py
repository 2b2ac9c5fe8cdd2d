"""``compare --plan --until-decided``: what the declared rule will likely decide, and after how many seeds.

A pilot sweep measures, per attention model, the SD over seeds of its paired difference to the baseline and the
variance of the shared validation-image part (:mod:`.plan`). From those, this module simulates sweeps run under a
decision rule (:class:`.sequential.Rule`: looks, margin, alpha, Holm across the models) through the same vectorised
functions that decide a real sweep (:func:`.sequential.look_arrays`, :func:`.sequential.run_looks`), and reports for
two scenarios -- every true difference 0, and each model's true difference equal to its pilot estimate -- the chance
of each outcome and the expected seeds per model, against the trials of the fixed design that runs every look's
maximum.

The simulated per-seed difference of model j at seed s is ``theta_j + sd_j z_s + u_j`` with ``z`` independent over
seeds and ``u_j ~ N(0, image_sd_j^2)`` the same for every seed (the same validation images); its image-bootstrap
replicates add ``image_sd_j w_b``, the same for every seed of a replicate (the bootstrap resamples the images once
for all seeds), so :func:`.stats.variance_parts` sees the pilot's two parts. The pilot's SDs come from few seeds:
the forecast is a guide, as the seed counts of :mod:`.plan` are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sequential as sq

N_SIMS = 2000  # simulated sweeps per scenario: Monte-Carlo SE of a probability <= 1.1 points
N_REPLICATES = 50  # image-bootstrap replicates per simulated seed


@dataclass(frozen=True)
class Outlook:
    """One model under one scenario: the chance of each final outcome and the expected seeds it trains."""

    model: str
    effect: float  # the true difference assumed (mAP50-95)
    better: float
    worse: float
    equivalent: float
    undecided: float
    mean_seeds: float


@dataclass(frozen=True)
class Forecast:
    """Both scenarios for every model, and the expected trials (models + baseline) against the fixed design's."""

    rule: sq.Rule
    null: list[Outlook]  # every true difference 0
    pilot: list[Outlook]  # each true difference = its pilot estimate
    trials_null: float
    trials_pilot: float
    trials_fixed: int


def simulate(rule: sq.Rule, sds, image_sds, effects, n: int = N_SIMS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outcome codes (n, k) (0 undecided, 1 better, 2 worse, 3 equivalent) and seeds run (n, k) of ``n`` sweeps of
    k models with per-seed SDs ``sds``, shared image SDs ``image_sds`` and true differences ``effects``."""
    sds, image_sds, effects = (np.asarray(x, float)[:, None] for x in (sds, image_sds, effects))
    k, S = sds.shape[0], rule.max_seeds
    rng = np.random.default_rng(seed)
    d = effects + sds * rng.standard_normal((n, k, S)) + image_sds * rng.standard_normal((n, k, 1))
    boot = d[..., None] + image_sds[..., None] * rng.standard_normal((n, k, 1, N_REPLICATES))
    alphas = tuple(rule.alpha / (k - r) for r in range(k))
    arr = sq.look_arrays(d, boot, rule, alphas)
    code, when, _, _ = sq.run_looks(arr["diff"], arr["h"], arr["heq"], np.full((n, k), len(rule.looks)), rule.margin)
    return code, np.asarray(rule.looks)[when]


def _outlooks(models, effects, code, seeds) -> list[Outlook]:
    rate = lambda j, c: float((code[:, j] == c).mean())  # noqa: E731
    return [Outlook(m, float(e), rate(j, 1), rate(j, 2), rate(j, 3), rate(j, 0), float(seeds[:, j].mean()))
            for j, (m, e) in enumerate(zip(models, effects))]


def forecast(rule: sq.Rule, models: list[str], sds, image_sds, estimates, n: int = N_SIMS, seed: int = 0) -> Forecast:
    """The rule's likely decisions for the pilot's models (their SDs and estimated differences)."""
    if not models:
        raise ValueError("forecast: the pilot compared no model with its baseline")
    zero = np.zeros(len(models))
    c0, s0 = simulate(rule, sds, image_sds, zero, n, seed)
    c1, s1 = simulate(rule, sds, image_sds, estimates, n, seed + 1)
    trials = lambda s: float((s.sum(-1) + s.max(-1)).mean())  # noqa: E731 - the baseline runs while any model runs
    return Forecast(rule, _outlooks(models, zero, c0, s0), _outlooks(models, estimates, c1, s1), trials(s0),
                    trials(s1), rule.max_seeds * (len(models) + 1))


def format_forecast(fc: Forecast) -> str:
    """The forecast as the plan's Markdown section."""
    r = fc.rule
    lines = [f"## With --until-decided (looks at {', '.join(map(str, r.looks))} seeds, margin ±{r.margin:g}, alpha "
             f"{r.alpha:g} family-wise)", "",
             f"Simulated from the pilot's SDs ({N_SIMS} sweeps per scenario; each probability ± about 1 point).", "",
             "| model | true difference assumed | better | worse | equivalent | undecided at the last look | "
             "expected seeds |", "|---|---|---|---|---|---|---|"]
    for o, label in [(o, "") for o in fc.null] + [(o, " (pilot estimate)") for o in fc.pilot]:
        lines.append(f"| {o.model} | {o.effect:+.4f}{label} | "
                     f"{100 * o.better:.0f}% | {100 * o.worse:.0f}% | {100 * o.equivalent:.0f}% | "
                     f"{100 * o.undecided:.0f}% | {o.mean_seeds:.1f} |")
    lines += ["", f"Expected trials (models and baseline): {fc.trials_null:.1f} if no model differs, "
              f"{fc.trials_pilot:.1f} if the pilot's estimates are true, against {fc.trials_fixed} for the fixed "
              f"design of {r.max_seeds} seeds.",
              "A model likely to end undecided needs a larger --margin, more seeds (--looks/--max-seeds) or more "
              "evaluation images (--eval-split test on a larger split): the image SD does not shrink with seeds."]
    return "\n".join(lines) + "\n"
