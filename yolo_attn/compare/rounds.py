"""The sweep's declared decision rule: seeds run in rounds until each model is decided (``compare --until-decided``),
and the decisions the report shows.

The deciding itself is :mod:`.sequential` (a pure function of the per-seed metrics); this module connects it to the
sweep. :class:`DecisionOptions` are ``compare()``'s options, turned into a :class:`~.sequential.Rule` declared in
``config.json`` before the first trial. :func:`replay` walks the rule's looks over what is recorded -- statelessly,
so a resumed sweep, a second process on the folder and the report reach the same decisions: at each look, the
models still running need the look's seeds (and the baseline with them); a model decided at a look stops there
(better, worse, equivalent), and the baseline runs while any model runs. What the next round trains is what the
first look not yet complete is missing. :func:`run_rounds` trains those rounds; :func:`decision_report` words the
outcome for the summary (:class:`.summary.DecisionReport`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .sequential import DEFAULT_LOOKS, DEFAULT_MARGIN, Decision, Rule, decide_family, describe, which_lever
from .summary import DecisionReport, ModelDecision

DECIDED = ("better", "worse", "equivalent")
# the rule's metric -> the record's COCOeval key and the index of its replicates in the report's (mAP50, mAP50-95)
METRIC_KEYS = {"mAP50-95": ("map", 1), "mAP50": ("map50", 0)}
DEFAULT_MAX_SEEDS = DEFAULT_LOOKS[-1]


def default_looks(max_seeds: int) -> tuple[int, ...]:
    """The looks of ``--until-decided`` with only a maximum: the default looks (3, 5, 7) below ``max_seeds - 1``,
    then ``max_seeds`` (10 gives the default 3, 5, 7, 10; 6 gives 3, 6)."""
    if max_seeds < 2:
        raise ValueError(f"--max-seeds {max_seeds}: a look needs at least 2 seeds (a 1-seed look has no seed variance)")
    return tuple(x for x in DEFAULT_LOOKS if x < max_seeds - 1) + (max_seeds,)


def parse_looks(text: str) -> tuple[int, ...]:
    """``--looks 2,4,6``: increasing seed counts (checked by :class:`.sequential.Rule`)."""
    try:
        return tuple(int(x) for x in str(text).split(","))
    except ValueError:
        raise ValueError(f"--looks {text!r}: expected increasing seed counts separated by commas, e.g. 3,5,7,10") from None


@dataclass(frozen=True)
class DecisionOptions:
    """``compare()``'s decision options. ``until_decided``: seeds in rounds up to each of ``looks`` (default
    :func:`default_looks` of the sweep's seed count); ``margin``: the difference worth having (default
    :data:`.sequential.DEFAULT_MARGIN`). A fixed-seed sweep given a ``margin`` declares a one-look rule at its seed
    count; without one it declares nothing and the report applies the default rule at its final look."""

    until_decided: bool = False
    margin: float | None = None
    looks: tuple[int, ...] | None = None
    alpha: float = 0.05

    def rule(self, n_seeds: int) -> Rule | None:
        """The rule this sweep of ``n_seeds`` seeds declares (None: nothing declared); ``ValueError`` naming the flag."""
        if self.looks is not None and not self.until_decided:
            raise ValueError("--looks: the seed counts of the looks of --until-decided (add it, or leave --looks out)")
        if not self.until_decided and self.margin is None:
            return None
        looks = tuple(self.looks) if self.looks else default_looks(n_seeds) if self.until_decided else (n_seeds,)
        if looks[-1] != n_seeds:
            raise ValueError(f"--looks {','.join(map(str, looks))}: the last look is the most seeds the sweep runs, "
                             f"but the sweep has {n_seeds} seeds (--seeds / --seed-list / --max-seeds)")
        if looks[0] < 2:
            what = "--looks" if self.until_decided else "--margin (a one-look rule at the sweep's seeds)"
            raise ValueError(f"{what}: a look needs at least 2 seeds, got {looks[0]}")
        margin = DEFAULT_MARGIN if self.margin is None else self.margin
        try:
            return Rule.declare("mAP50-95", alpha=self.alpha, margin=margin, looks=looks)
        except ValueError as exc:
            raise ValueError(f"--margin/--looks: {exc}") from None


def implicit_rule(n_seeds: int) -> Rule | None:
    """The default rule at the final look of a fixed-seed sweep that declared none (None under 2 seeds)."""
    return Rule(looks=(n_seeds,), max_seeds=n_seeds) if n_seeds >= 2 else None


def settle_rule(prior: dict | None, new: Rule | None, allow_changes: bool) -> tuple[Rule | None, dict | None]:
    """The rule to store for a sweep resumed with ``new`` whose ``config.json`` held ``prior`` (a rule's dict or None),
    and the deviation to record (None: none). The same rule keeps its declaration time; another one is refused
    (:class:`.store.ConfigMismatch`) unless ``allow_changes``, then recorded as a deviation."""
    from .store import ConfigMismatch

    old = Rule.from_dict(prior) if prior else None
    if old is None and new is None:
        return None, None
    if old is not None and new is not None and not old.differs(new):
        return old, None
    what = (", ".join(f"{f}: declared {getattr(old, f)!r}, now {getattr(new, f)!r}" for f in old.differs(new))
            if old and new else f"declared {old.to_dict() if old else 'none'}, now {new.to_dict() if new else 'none'}")
    if not allow_changes:
        raise ConfigMismatch(f"the results folder's sweep declared another decision rule ({what}): a rule cannot be "
                             "chosen after seeing the data. Use another --out, or --allow-changes to continue under the "
                             "new rule (recorded as a deviation in config.json and the report)")
    return new, {"from": old.to_dict() if old else None, "to": new.to_dict() if new else None, "changed": what}


# ------------------------------------------------------------------------------------------------
# Replay: the rule's looks over what is recorded
# ------------------------------------------------------------------------------------------------
@dataclass
class Replay:
    """Where a declared rule stands on the records: ``decisions`` (model -> :class:`.sequential.Decision`, at the
    model's deciding look or the latest look taken), ``looks_taken`` (seed counts), ``stopped`` (model -> seeds at
    which it was decided), ``needed`` ((model, seed) pairs the rule has asked for so far, the next round included),
    ``todo`` (the next round's pairs without a usable record) and ``done`` (every model decided, or the last look)."""

    rule: Rule
    models: list[str] = field(default_factory=list)  # the models compared with the baseline
    decisions: dict[str, Decision] = field(default_factory=dict)
    looks_taken: list[int] = field(default_factory=list)
    stopped: dict[str, int] = field(default_factory=dict)
    needed: list[tuple[str, int]] = field(default_factory=list)
    todo: list[tuple[str, int]] = field(default_factory=list)
    done: bool = False


def replay(rule: Rule, seeds: list[int], baseline: str, models: list[str], points: dict) -> Replay:
    """Walk ``rule``'s looks over ``points`` (model -> list of (metric, replicates or None) of its seeds in seed
    order, a contiguous prefix of ``seeds``). Replicates are used only where every point in use has them."""
    others = [m for m in models if m != baseline]
    out, prev = Replay(rule, others), 0
    for k, n in enumerate(rule.looks):
        running = [m for m in others if m not in out.stopped]
        out.needed += [(m, s) for s in seeds[prev:n] for m in [baseline, *running]]
        out.todo = [(m, s) for i, s in enumerate(seeds[:n]) for m in [baseline, *running] if len(points.get(m, ())) <= i]
        if out.todo or not others:
            return out
        out.looks_taken.append(n)
        fam = {m: points[m][: out.stopped.get(m, n)] for m in others}
        base = points[baseline][:n]
        with_reps = all(r is not None for pts in [*fam.values(), base] for _, r in pts)
        pair = (lambda pts: ([v for v, _ in pts], [r for _, r in pts] if with_reps else None))
        out.decisions = decide_family({m: pair(p) for m, p in fam.items()}, *pair(base), rule=rule)
        out.stopped.update({m: n for m in running if out.decisions[m].outcome in DECIDED})
        prev = n
        if len(out.stopped) == len(others) or k == len(rule.looks) - 1:
            out.done = True
            return out
    return out


def record_points(rule: Rule, seeds: list[int], ok_records, reps: dict) -> dict:
    """Model -> [(metric, replicates or None)] over the contiguous prefix of ``seeds`` with ok records
    (``reps``: trial id -> the report's (mAP50, mAP50-95) replicates)."""
    key, idx = METRIC_KEYS[rule.metric]
    by = {(r.model, r.seed): r for r in ok_records}
    out: dict[str, list] = {}
    for model in {r.model for r in ok_records}:
        pts = []
        for s in seeds:
            r = by.get((model, s))
            if r is None or not r.coco or key not in r.coco:
                break
            rep = reps.get(r.trial_id)
            pts.append((float(r.coco[key]), None if rep is None else rep[idx]))
        out[model] = pts
    return out


def replay_records(config, ok_records, reps: dict, rule: Rule | None = None) -> Replay | None:
    """:func:`replay` of the sweep's declared rule (or ``rule``) on its ok records; None without a rule."""
    rule = rule or (Rule.from_dict(config.rule) if config.rule else None)
    if rule is None:
        return None
    baseline = config.baseline or config.model_names[0]
    return replay(rule, config.seeds, baseline, config.model_names, record_points(rule, config.seeds, ok_records, reps))


# ------------------------------------------------------------------------------------------------
# Rounds: train what the next look needs, until decided
# ------------------------------------------------------------------------------------------------
def run_rounds(store, config, todo: list, train, replicates, max_trials: int | None, log) -> Replay:
    """Train the rule's rounds: ``todo`` the specs of the full design not yet recorded (or to retry),
    ``train(specs, n_recorded)`` trains one round, ``replicates(ok_records)`` gives the report's replicates by trial
    id. Stops when decided, at the last look, after ``max_trials`` trials, or when a round cannot be completed (a
    trial failed: ``--retry-failed``). Returns the last replay."""
    by_pair = {(s.model, s.seed): s for s in todo}
    tried: set = set()
    budget = math.inf if max_trials is None else max_trials
    told = 0
    while True:
        ok = [r for r in store.latest(config.settings_hash).values() if r.ok]
        rp = replay_records(config, ok, replicates(ok))
        told = _log_looks(rp, told, log)
        batch = [by_pair[p] for p in rp.todo if p in by_pair and p not in tried][: int(min(budget, len(rp.todo)))]
        if rp.done or not batch:
            return rp
        looking = next(n for n in rp.rule.looks if n > (rp.looks_taken[-1] if rp.looks_taken else 0))
        log(f"round to the look at {looking} seeds: {len(batch)} trial(s) "
            f"({', '.join(sorted({s.model for s in batch}))})")
        tried.update((s.model, s.seed) for s in batch)
        budget -= len(batch)
        train(batch, len(rp.needed) - len(batch))


def _log_looks(rp: Replay, told: int, log) -> int:
    """Say the decisions of each look taken since the last call; returns the looks said so far."""
    if len(rp.looks_taken) > told and rp.decisions:
        n = rp.looks_taken[-1]
        words = "; ".join(f"{m}: {d.outcome}" + (f" (stops at {rp.stopped[m]} seeds)" if m in rp.stopped else "")
                          for m, d in rp.decisions.items())
        log(f"look at {n} seeds: {words}")
    return len(rp.looks_taken)


# ------------------------------------------------------------------------------------------------
# The report's decisions
# ------------------------------------------------------------------------------------------------
def costs(ok_records, model: str, baseline: str, n_seeds: int, n_images: int | None) -> tuple[float | None, float | None]:
    """Measured seconds per extra seed (a trial of the model and one of the baseline) and per extra evaluation image
    (the evaluation and scoring of the model's and the baseline's ``n_seeds`` trials again, per image)."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    mine = [r for r in ok_records if r.model == model]
    base = [r for r in ok_records if r.model == baseline]
    dm, db = mean(r.duration_s for r in mine), mean(r.duration_s for r in base)
    seed = dm + db if dm is not None and db is not None else None
    ev = mean(((r.stage_s or {}).get("eval", 0) + (r.stage_s or {}).get("score", 0)) / r.n_val_images
              for r in mine + base if r.stage_s and r.n_val_images)
    return seed, (None if ev is None or not n_images else 2 * n_seeds * ev)


def decision_report(rp: Replay, ok_records, baseline: str, n_images: int | None, declared: bool,
                    deviations: list | None = None) -> DecisionReport:
    """The summary's decisions: each model's outcome in words, with the lever for an open model."""
    k = len(rp.models)
    rows = []
    for model, d in rp.decisions.items():
        lever = None
        if (d.outcome in ("continue", "undecided") and d.look >= 0 and math.isfinite(d.var_seed) and math.isfinite(d.hi)
                and n_images):
            seed_s, image_s = costs(ok_records, model, baseline, d.n_seeds, n_images)
            lever = which_lever(d, rp.rule, n_images=int(n_images), seed_cost=seed_s, image_cost=image_s, n_models=k)
        rows.append(ModelDecision(model, d.outcome, words(d, lever, baseline, rp.rule.max_seeds), d.to_dict(),
                                  None if lever is None else lever.to_dict(), rp.stopped.get(model)))
    base_n = rp.looks_taken[-1] if rp.looks_taken else 0
    used = base_n + sum(d.n_seeds for d in rp.decisions.values() if d.look >= 0)
    return DecisionReport(rp.rule.to_dict(), declared, list(rp.looks_taken), rows, used,
                          (k + 1) * rp.rule.max_seeds, rp.done, list(deviations or []))


def words(d: Decision, lever, baseline: str, max_seeds: int) -> str:
    """:func:`.sequential.describe` with the baseline named and the lever's measured cost."""
    text = describe(d).replace("to the baseline", f"to {baseline}", 1)
    if lever is None or d.outcome not in ("continue", "undecided"):
        return text
    ways = [f"{lever.seeds} more seeds" + _cost(lever.seeds_cost, "training") if lever.seeds is not None else None,
            f"{lever.images} more evaluation images" + _cost(lever.images_cost, "evaluation")
            if lever.images is not None else None]
    ways = [w for w in ways if w]
    tail = (" or ".join(ways) + " would decide it" if ways else "neither more seeds nor more evaluation images alone "
            "would decide it")
    if lever.beyond_rule:
        tail += f" (beyond the declared maximum of {max_seeds} seeds: that needs a new rule)"
    return f"{text}; {tail}"


def _cost(seconds: float | None, what: str) -> str:
    if seconds is None:
        return ""
    return f" (about {seconds / 60:.0f} min of {what})" if seconds >= 90 else f" (about {seconds:.0f} s of {what})"
