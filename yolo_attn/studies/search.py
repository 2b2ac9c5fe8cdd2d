"""Budgeted placement search: successive halving over layer x placement, then a confirmation sweep on new seeds.

Selection (``--backend local``, successive halving; Jamieson & Talwalkar 2016, "Non-stochastic best arm
identification and hyperparameter optimization", AISTATS): rung 0 trains every candidate (and stock,
for the Δ column) for ``min_epochs`` on the selection seeds; the best ``1/eta`` (at least ``keep``) by
mean COCOeval mAP50-95 go on to the next rung with ``eta`` times the epochs (capped at ``max_epochs``),
until ``keep`` candidates are left. Each rung is one ``compare`` sweep (``<out>/rung<k>/``); a rung
retrains from scratch with more epochs (no checkpoint is continued).

``--backend ray``: the same selection by Ray Tune's ASHA scheduler (Li et al. 2020, "A System for
Massively Parallel Hyperparameter Tuning", MLSys): every candidate x selection seed is one Tune trial
that trains for ``max_epochs`` and reports the validation mAP50-95 each epoch; ASHA stops trials at
the rungs ``min_epochs * eta^k`` when they are not in the top ``1/eta``.

Confirmation: the survivors and stock are trained again for ``max_epochs`` on ``confirm_seeds`` NEW
seeds (disjoint from the selection seeds) in one compare sweep (``<out>/confirm/``), so the reported
intervals come from runs that played no part in choosing the survivors (the selection's winner's curse
does not bias them). When the dataset has a test split, the confirmation is also scored on the test
images (``compare --eval-split test``), so the images that ranked the candidates (val) do not also grade
the winners; the report says which split it scored.

Budget: ``--max-trials`` bounds the number of trials up front (the confirmation seeds are reduced to
2 if needed; fewer than that is an error). ``--budget HOURS`` is checked before each rung from the
measured cost of a trial (a line through the measured trial times, :class:`TrialCost`): when the next rung plus the confirmation would overrun, halving
stops and the current best ``keep`` go to confirmation (said in the report). The search is resumable:
the decisions of finished rungs are kept in ``search_state.json`` and each rung's sweep resumes itself.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import atomic_save, atomic_write, atomic_write_json
from . import _single
from . import _verdicts as V
from .models import model_dict, safe_name, write_model
from .runner import SweepPlan, provenance, provenance_md, run_sweeps, sweep_config, trial_records

if TYPE_CHECKING:
    from ..compare.summary import SweepSummary

STATE = "search_state.json"
PRIOR_S_PER_EPOCH = 5.0  # yolov5n, imgsz 128, shipped shapes data, 2 CPU cores (trial of 6 epochs ~ 15-30 s)
BASELINE = "stock"


@dataclass(frozen=True)
class Candidate:
    layer: str
    placement: str

    @property
    def label(self) -> str:
        return safe_name(f"{self.layer}-{self.placement}")


@dataclass
class SearchOptions:
    layers: list[str]
    placements: list[str]
    data: str | None = None
    budget_hours: float | None = None
    max_trials: int | None = None
    min_epochs: int = 2
    max_epochs: int = 8
    eta: int = 2
    keep: int = 2
    selection_seeds: int = 1
    confirm_seeds: int = 3
    imgsz: int = 128
    scale: str = "n"
    batch: int | None = None
    out: str | None = None
    backend: str = "local"
    ray_address: str | None = None
    threads: int | None = None
    cpus_per_trial: int | None = None
    progress: bool = True
    margin: float | None = None  # the confirmation declares its decision rule with this margin (compare --margin)
    until_decided: bool = False  # the confirmation's seeds run in rounds until decided (compare --until-decided)

    def candidates(self) -> list[Candidate]:
        cands = [Candidate(lay, pl) for lay in self.layers for pl in self.placements]
        if len({c.label for c in cands}) != len(cands):
            raise ValueError("duplicate layer/placement candidates")
        return cands

    def fingerprint(self) -> dict:
        keep = ("layers", "placements", "data", "min_epochs", "max_epochs", "eta", "keep", "selection_seeds", "imgsz",
                "scale", "batch", "backend")
        fp = {k: getattr(self, k) for k in keep}
        fp.update({k: getattr(self, k) for k in ("margin", "until_decided") if getattr(self, k)})  # older states: absent
        return fp

    def confirm_decision(self):
        """The confirmation's decision options: a rule declared before its first trial when --margin or
        --until-decided is given (the selection's rungs declare none: their scores only rank)."""
        from ..compare.rounds import DecisionOptions

        if self.margin is None and not self.until_decided:
            return None
        return DecisionOptions(self.until_decided, self.margin)


# ------------------------------------------------------------------------------------------------ bookkeeping
def halving_schedule(n: int, min_epochs: int, max_epochs: int, eta: int, keep: int) -> list[tuple[int, int]]:
    """(number of candidates, epochs) of every selection rung; the last rung leaves ``keep`` survivors."""
    if eta < 2 or keep < 1 or min_epochs < 1 or max_epochs < min_epochs:
        raise ValueError(f"need eta >= 2, keep >= 1, 1 <= min_epochs <= max_epochs (got eta {eta}, keep {keep}, "
                         f"epochs {min_epochs}..{max_epochs})")
    rungs, k = [], 0
    while n > keep:
        rungs.append((n, min(max_epochs, min_epochs * eta**k)))
        n, k = max(keep, math.ceil(n / eta)), k + 1
    return rungs


def survivors_of(n: int, eta: int, keep: int) -> int:
    return max(keep, math.ceil(n / eta))


def select(scores: dict[str, float], k: int) -> list[str]:
    """The ``k`` best labels by score (NaN last, ties by label)."""
    def key(lbl):
        s = scores[lbl]
        return (0 if math.isfinite(s) else 1, -s if math.isfinite(s) else 0.0, lbl)

    return sorted(scores, key=key)[:k]


def confirmation_seeds(selection: list[int], n: int) -> list[int]:
    """``n`` seeds after every selection seed (disjoint from them by construction)."""
    start = max(selection, default=-1) + 1
    seeds = list(range(start, start + n))
    assert not set(seeds) & set(selection)
    return seeds


def trials_needed(schedule, n_sel: int, keep: int, n_conf: int) -> int:
    """Trials of the whole search (stock trained in every rung and in the confirmation)."""
    return sum((n + 1) * n_sel for n, _ in schedule) + (keep + 1) * n_conf


def fit_max_trials(schedule, n_sel: int, keep: int, n_conf: int, max_trials: int | None) -> int:
    """The confirmation seeds that fit ``max_trials`` (at least 2), or ValueError."""
    if max_trials is None:
        return n_conf
    for c in range(n_conf, 1, -1):
        if trials_needed(schedule, n_sel, keep, c) <= max_trials:
            return c
    need = trials_needed(schedule, n_sel, keep, 2)
    raise ValueError(f"--max-trials {max_trials} is too small: this search needs at least {need} trials "
                     f"({len(schedule)} rungs, {keep} survivors confirmed on 2 seeds); raise it, or use fewer "
                     "candidates or --keep 1")


def asha_survivors(reached: dict[str, tuple[int, float]], keep: int) -> list[str]:
    """The ``keep`` candidates that went furthest under ASHA, by their last reported score (ties by label)."""
    def key(lbl):
        e, m = reached[lbl]
        return (-e, -m if math.isfinite(m) else math.inf, lbl)

    return sorted(reached, key=key)[:keep]


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Labels not dominated in (lower cost, higher gain); ``points``: label -> (cost, gain)."""
    front = []
    for a, (ca, ga) in points.items():
        if not (math.isfinite(ca) and math.isfinite(ga)):
            continue
        dominated = any(cb <= ca and gb >= ga and (cb < ca or gb > ga) for b, (cb, gb) in points.items()
                        if b != a and math.isfinite(cb) and math.isfinite(gb))
        if not dominated:
            front.append(a)
    return sorted(front, key=lambda lbl: points[lbl][0])


def _decided(summary: SweepSummary, survivors: list[str]) -> str:
    """The confirmation's decisions under its declared rule, as the report's words ('' when none was declared)."""
    d = summary.decision
    if d is None or not d.declared:
        return ""
    rule = d.rule
    words = [m.text for s in survivors if (m := d.model(s)) is not None]
    return (f" Under the rule declared before the confirmation (margin ±{rule['margin']:g}, looks at "
            f"{', '.join(map(str, rule['looks']))} seeds, α {rule['alpha']:g} family-wise): " + "; ".join(words) + ".")


def _signed(v: float) -> str:
    return f"{v:+.3f}" if v is not None and math.isfinite(v) else "-"


# ------------------------------------------------------------------------------------------------ state
@dataclass
class RungRecord:
    index: int
    epochs: int
    candidates: list[str]
    scores: dict[str, float]  # mean COCOeval mAP50-95 over the selection seeds
    deltas: dict[str, float]  # minus stock at the same rung
    latency_ratio: dict[str, float | None]
    survivors: list[str]


BLIND_MAP = 0.02  # stock below this mAP50-95 at a rung: the models have barely started to learn


def blind_rung_notes(rungs: list[RungRecord]) -> list[str]:
    """A note per rung where stock itself had not started learning: its cut ranked how early models start."""
    notes = []
    for r in rungs:
        stock = [v - r.deltas[k] for k, v in r.scores.items()
                 if math.isfinite(v) and math.isfinite(r.deltas.get(k, math.nan))]  # stock = score - delta
        if stock and max(stock) < BLIND_MAP:
            notes.append(f"rung {r.index}: after {r.epochs} epochs stock scored {max(stock):.3f} mAP50-95 (below "
                         f"{BLIND_MAP}), so its cut ranked how early the models start to learn, which need not predict "
                         "where they end; raise --min-epochs")
    return notes


@dataclass
class SearchState:
    fingerprint: dict
    rungs: list[RungRecord] = field(default_factory=list)
    stopped_early: str | None = None
    s_per_epoch: float | None = None  # the last measured cost line (TrialCost.epoch_s, its slope)
    overhead_s: float | None = None  # and its intercept (TrialCost.overhead_s)
    confirm_seeds: list[int] | None = None  # decided once (budget included): a resumed search confirms on them
    confirm_notes: list[str] = field(default_factory=list)  # what the budget did to the confirmation

    @classmethod
    def load(cls, out: Path, fingerprint: dict) -> "SearchState":
        path = out / STATE
        if path.is_file():
            d = json.loads(path.read_text())
            if d.get("fingerprint") != json.loads(json.dumps(fingerprint)):
                raise ValueError(f"{out} holds a search with other settings ({path}); use another --out")
            return cls(d["fingerprint"], [RungRecord(**r) for r in d.get("rungs", [])], d.get("stopped_early"),
                       d.get("s_per_epoch"), d.get("overhead_s"), d.get("confirm_seeds"), d.get("confirm_notes") or [])
        return cls(json.loads(json.dumps(fingerprint)))

    def save(self, out: Path) -> None:
        atomic_write_json(out / STATE, asdict(self))


@dataclass(frozen=True)
class TrialCost:
    """Seconds a trial takes: a fixed part (model build, final validation, COCOeval, saving) plus one per epoch."""

    epoch_s: float
    overhead_s: float = 0.0

    def trial_s(self, epochs: int) -> float:
        return self.overhead_s + epochs * self.epoch_s


def measured_cost(folders: list[Path]) -> TrialCost | None:
    """The cost line ``duration_s = overhead_s + epochs * epoch_s`` through the ok trials of these sweep folders.

    Fitted by least squares on whole trial durations once trials of two or more epoch counts exist (both
    parts grow as models learn -- more detections to validate and evaluate -- so splitting one short
    trial's time into training and the rest would underprice a long one). With one epoch count only, the
    cost is taken as proportional to the epochs; that also applies when the fit is not a usable line.
    """
    import numpy as np

    pts = [(float(r.epochs_done), float(r.duration_s)) for f in folders for r in trial_records(f)
           if r.epochs_done and r.duration_s]
    if not pts:
        return None
    proportional = TrialCost(sum(d for _, d in pts) / sum(e for e, _ in pts))
    if len({e for e, _ in pts}) < 2:
        return proportional
    slope, intercept = np.polyfit([e for e, _ in pts], [d for _, d in pts], 1)
    return TrialCost(float(slope), float(intercept)) if slope > 0 and intercept >= 0 else proportional


# ------------------------------------------------------------------------------------------------ the search
class Search:
    """One search into ``opts.out``; ``compare_fn`` replaces compare (tests), ``asha_fn`` the Ray Tune stage."""

    def __init__(self, opts: SearchOptions, compare_fn=None, asha_fn=None, clock=time.time):
        self.opts, self.compare_fn, self.asha_fn, self.clock = opts, compare_fn, asha_fn, clock
        self.out = Path(opts.out or Path("runs") / "search" / time.strftime("%Y%m%d-%H%M%S"))
        self.cands = {c.label: c for c in opts.candidates()}
        if len(self.cands) < 2:
            raise ValueError("a search needs at least two candidates (layers x placements)")
        self.sel_seeds = list(range(opts.selection_seeds))
        self.schedule = halving_schedule(len(self.cands), opts.min_epochs, opts.max_epochs, opts.eta, opts.keep)
        self.n_conf = fit_max_trials(self.schedule, len(self.sel_seeds), opts.keep, opts.confirm_seeds, opts.max_trials)
        self.state = SearchState.load(self.out, opts.fingerprint())
        self.notes: list[str] = []
        self.plans: list[SweepPlan] = []
        self.paths: dict[str, str] = {}
        self.summaries: dict[str, SweepSummary] = {}
        self.request, self.run_options = self.sweep_request()

    def sweep_request(self):
        """The search's one request (data, image size, batch; each rung's plan fills in its candidates, seeds and
        epochs) and how its sweeps run (:func:`.runner.run_sweeps`)."""
        from ..compare.request import RunOptions, SweepRequest

        o = self.opts
        request = SweepRequest.build({"batch": o.batch} if o.batch else None, data=o.data, imgsz=o.imgsz)
        return request, RunOptions(backend=o.backend, ray_address=o.ray_address, threads=o.threads,
                                   cpus_per_trial=o.cpus_per_trial, progress=o.progress)

    def log(self, text: str) -> None:
        if self.opts.progress:
            print(f"[search] {text}", file=sys.stderr, flush=True)

    def model_path(self, label: str) -> str:
        if label not in self.paths:
            mdir = self.out / "models"
            if label == BASELINE:
                self.paths[label] = write_model(model_dict(scale=self.opts.scale), mdir, BASELINE, "stock")
            else:
                c = self.cands[label]
                self.paths[label] = write_model(model_dict(c.layer, [], [c.placement], self.opts.scale), mdir, label,
                                                f"{c.layer} at {c.placement}")
        return self.paths[label]

    def plan(self, name: str, labels: list[str], seeds: list[int], epochs: int, eval_split: str | None = None,
             decision=None) -> SweepPlan:
        """The sweep of one rung (or the confirmation), remembered for the report's 'what was run'."""
        plan = SweepPlan(name, [self.model_path(BASELINE)] + [self.model_path(lbl) for lbl in labels], BASELINE,
                         seeds, epochs, {lbl: lbl for lbl in [BASELINE, *labels]}, eval_split=eval_split,
                         decision=decision)
        self.plans.append(plan)
        return plan

    def confirm_split(self) -> str:
        """``test`` when the dataset has a test split (the confirmation is then graded on images selection never
        saw), else ``val``."""
        from ..compare.sweep import default_data, has_test_split
        from ..datasets import resolve_dataset

        return "test" if has_test_split(resolve_dataset(self.opts.data or default_data())) else "val"

    def sweep(self, name: str, labels: list[str], seeds: list[int], epochs: int, eval_split: str | None = None,
              decision=None) -> SweepSummary:
        plan = self.plan(name, labels, seeds, epochs, eval_split, decision)
        self.summaries[name] = run_sweeps([plan], self.request, self.run_options, self.out, self.compare_fn)[name]
        return self.summaries[name]

    # -------------------------------------------------------------------- budget
    def spent_s(self) -> float:
        return sum(float(r.duration_s or 0.0) for f in self.out.glob("*/") for r in trial_records(f))

    def cost(self) -> TrialCost:
        measured = measured_cost([p for p in self.out.glob("*/") if (p / "trials.jsonl").is_file()])
        if measured:
            return measured
        if self.state.s_per_epoch:
            return TrialCost(self.state.s_per_epoch, self.state.overhead_s or 0.0)
        return TrialCost(PRIOR_S_PER_EPOCH * (self.opts.imgsz / 128) ** 2)

    def confirm_cost_s(self, n_conf: int) -> float:
        return (self.opts.keep + 1) * n_conf * self.cost().trial_s(self.opts.max_epochs)

    def fits(self, n: int, epochs: int) -> bool:
        if self.opts.budget_hours is None:
            return True
        need = (n + 1) * len(self.sel_seeds) * self.cost().trial_s(epochs) + self.confirm_cost_s(2)
        return self.spent_s() + need <= self.opts.budget_hours * 3600

    # -------------------------------------------------------------------- selection
    def halving(self) -> list[str]:
        alive = list(self.cands)
        for k, (n, epochs) in enumerate(self.schedule):
            done = self.state.rungs[k] if k < len(self.state.rungs) else None
            if done is None:
                if self.state.stopped_early:
                    break
                if k > 0 and not self.fits(len(alive), epochs):
                    self.state.stopped_early = (f"budget: rung {k} ({len(alive)} candidates x {epochs} epochs) and the "
                                                "confirmation would not fit; halving stopped")
                    self.state.save(self.out)
                    break
                self.log(f"rung {k}: {len(alive)} candidates, {epochs} epochs, seeds {self.sel_seeds}")
                res = V.model_results(self.sweep(f"rung{k}", alive, self.sel_seeds, epochs))
                scores = {lbl: res[lbl].map_mean if lbl in res else math.nan for lbl in alive}
                base = res[BASELINE].map_mean if BASELINE in res else math.nan
                done = RungRecord(k, epochs, alive, scores, {lbl: s - base for lbl, s in scores.items()},
                                  {lbl: res[lbl].latency_ratio if lbl in res else None for lbl in alive},
                                  select(scores, survivors_of(len(alive), self.opts.eta, self.opts.keep)))
                self.state.rungs.append(done)
                cost = self.cost()
                self.state.s_per_epoch, self.state.overhead_s = cost.epoch_s, cost.overhead_s
                self.state.save(self.out)
            else:  # decided in an earlier run: listed in 'what was run', not rerun
                self.plan(f"rung{k}", done.candidates, self.sel_seeds, done.epochs)
            alive = done.survivors
        if self.state.rungs and len(alive) > self.opts.keep:  # stopped early: the current best go on
            alive = select(self.state.rungs[-1].scores, self.opts.keep)
        return alive

    def selection(self) -> list[str]:
        if self.opts.backend == "ray":
            return self.asha()
        return self.halving()

    def asha(self) -> list[str]:
        if self.state.rungs:
            return self.state.rungs[-1].survivors
        setup = AshaSetup(list(self.cands), {lbl: self.model_path(lbl) for lbl in self.cands}, self.sel_seeds,
                          self.opts.max_epochs, self.opts.min_epochs, self.opts.eta)
        budget_s = None
        if self.opts.budget_hours is not None:
            budget_s = max(60.0, self.opts.budget_hours * 3600 - self.confirm_cost_s(self.n_conf))
        run = self.asha_fn or run_asha
        reached = run(setup, self.opts, self.out / "asha", budget_s)  # label -> (epochs reached, mean metric there)
        survivors = asha_survivors(reached, self.opts.keep)
        levels = sorted({e for e, _ in reached.values()})
        for k, t in enumerate(levels):  # one record per epoch level reached, so the ranking reads like the rungs'
            cands = [lbl for lbl, (e, _) in reached.items() if e >= t]
            nxt = [lbl for lbl, (e, _) in reached.items() if k + 1 < len(levels) and e >= levels[k + 1]]
            self.state.rungs.append(RungRecord(k, t, cands, {lbl: reached[lbl][1] for lbl in cands},
                                               {lbl: math.nan for lbl in cands}, {lbl: None for lbl in cands},
                                               nxt if k + 1 < len(levels) else survivors))
        self.state.save(self.out)
        return survivors

    # -------------------------------------------------------------------- confirmation + report
    def confirm_seed_count(self) -> tuple[int, list[str]]:
        """Confirmation seeds the budget leaves room for (at least 2), and notes on what the budget did."""
        n, notes = self.n_conf, []
        if self.opts.budget_hours is not None:
            left = self.opts.budget_hours * 3600 - self.spent_s()
            while n > 2 and self.confirm_cost_s(n) > left:
                n -= 1
            if n < self.n_conf:
                notes.append(f"budget: confirmation on {n} seeds instead of {self.n_conf}")
            if self.confirm_cost_s(n) > left:
                notes.append("budget: the confirmation is expected to overrun the budget (it runs on 2 seeds anyway)")
        return n, notes

    def confirmation(self) -> list[int]:
        """The confirmation seeds, decided once and kept in the state. Deciding again on resume would count the
        confirmation's own finished trials against the budget and pick fewer seeds than the stored sweep has."""
        if self.state.confirm_seeds is None:
            stored = sweep_config(self.out / "confirm")  # a search saved before the state kept them
            if stored is not None:
                self.state.confirm_seeds = list(stored.seeds)
            else:
                n, self.state.confirm_notes = self.confirm_seed_count()
                self.state.confirm_seeds = confirmation_seeds(self.sel_seeds, n)
            self.state.save(self.out)
        self.notes.extend(self.state.confirm_notes)
        return list(self.state.confirm_seeds)

    def run(self, stream=None) -> dict:
        stream = stream or sys.stdout
        self.check_optimizer()
        survivors = self.selection()
        conf_seeds = self.confirmation()
        split = self.confirm_split()
        self.log(f"confirmation: {', '.join(survivors)} and stock on new seeds {conf_seeds}, {self.opts.max_epochs} "
                 f"epochs, scored on the {split} split")
        summary = self.sweep("confirm", survivors, conf_seeds, self.opts.max_epochs,
                             eval_split="test" if split == "test" else None, decision=self.opts.confirm_decision())
        report = self.report(survivors, conf_seeds, summary, split)
        print(report["md"], file=stream)
        return report

    def check_optimizer(self) -> None:
        """Refuse, before any training, a search whose rungs of different lengths would use different optimizers."""
        from ..compare.sweep import default_data, require_one_optimizer
        from ..compare.trial import sweep_train_args
        from ..datasets import resolve_dataset

        ds = resolve_dataset(self.opts.data or default_data())
        epochs = sorted({e for _, e in self.schedule} | {self.opts.max_epochs})
        t_args = sweep_train_args(self.request.sweep_args(), None)
        require_one_optimizer(t_args, len(ds.images("train")), len(ds.names), epochs)

    def ranking(self) -> list[str]:
        """Every candidate: furthest rung first, then by score there."""
        last = {}
        for r in self.state.rungs:
            for lbl in r.candidates:
                last[lbl] = (r.index, r.scores.get(lbl, math.nan))
        return sorted(last, key=lambda lbl: (-last[lbl][0], -(last[lbl][1] if math.isfinite(last[lbl][1]) else -1e9), lbl))

    def report(self, survivors: list[str], conf_seeds: list[int], summary: SweepSummary, split: str = "val") -> dict:
        res = V.model_results(summary)
        rank = self.ranking()
        lines = ["| rank | candidate | last rung (epochs) | mAP50-95 there | Δ to stock there | latency × |",
                 "|---|---|---|---|---|---|"]
        for i, lbl in enumerate(rank, 1):
            r = max((r for r in self.state.rungs if lbl in r.candidates), key=lambda r: r.index)
            lat = r.latency_ratio.get(lbl)
            lines.append(f"| {i} | {lbl}{' (survivor)' if lbl in survivors else ''} | {r.index} ({r.epochs}) | "
                         f"{r.scores[lbl]:.3f} | {_signed(r.deltas[lbl])} | {'-' if lat is None else f'{lat:.2f}'} |")
        conf_table = _single.effects_table(res, {BASELINE: "baseline", **{s: "survivor" for s in survivors}},
                                           [BASELINE, *survivors])
        answer = " ".join(V.sentence(res[s].effect if s in res else None, s) for s in survivors) + \
            _decided(summary, survivors)
        complete = summary.complete
        points, cost_gain = self.pareto_points(res, survivors)
        front = pareto_front(cost_gain)
        plot_note = self.plot_pareto(points, front)  # first: a failed plot is a note of the report
        notes = [*self.notes, *blind_rung_notes(self.state.rungs), *([plot_note] if plot_note else [])]
        md = "\n".join([
            "# Placement search", "" if complete else "\n**Incomplete**: rerun the same command to continue.\n",
            "## Question", "", f"Which of {len(self.cands)} layer x placement candidates "
            f"({', '.join(self.opts.layers)} at {', '.join(self.opts.placements)}) improve on stock, and what do they cost?",
            "", "## Answer", "",
            f"Selection ({'ASHA, Ray Tune' if self.opts.backend == 'ray' else 'successive halving'}, seeds "
            f"{self.sel_seeds}) kept {', '.join(survivors)}. Confirmed on new seeds {conf_seeds} (not used for "
            f"selection), {self.opts.max_epochs} epochs, {split_phrase(split, summary)}: {answer}", "",
            "## Confirmation (new seeds)", "", conf_table, "", "## Selection ranking", "", "\n".join(lines), "",
            f"Pareto front (latency × vs confirmed Δ): {', '.join(front) or '-'}.", "",
            "## Notes", "", *[f"- {n}" for n in [*notes,
                                                  *([self.state.stopped_early] if self.state.stopped_early else []),
                                                  "Selection scores are single short runs; only the confirmation "
                                                  "intervals support a claim."]], "",
            *provenance_md(provenance(self.out, self.plans, self.summaries)), ""])
        atomic_write(self.out / "search.md", md)
        data = {"survivors": survivors, "ranking": rank, "confirmation_seeds": conf_seeds, "selection_seeds": self.sel_seeds,
                "confirmation_split": split,
                "rungs": [asdict(r) for r in self.state.rungs], "confirmation": {k: v.as_dict() for k, v in res.items()},
                "pareto_front": front, "complete": complete, "notes": notes,
                "stopped_early": self.state.stopped_early}
        atomic_write_json(self.out / "search.json", data)
        return {"md": md, "data": data, "out": str(self.out), "complete": complete}

    def plot_pareto(self, points: list[dict], front: list[str]) -> str | None:
        """Write pareto.png; the reason as a note when plotting failed (the tables never depend on the plot)."""
        def plot(path):
            from .plots import pareto_plot

            pareto_plot(points, front, path, "Placement search: Δ mAP vs latency", "batch-1 CPU latency, ratio to stock")

        try:
            atomic_save(self.out / "pareto.png", plot)
        except Exception as exc:
            return f"plotting pareto.png failed: {type(exc).__name__}: {exc}"
        return None

    def pareto_points(self, res: dict, survivors: list[str]):
        points, cost_gain = [], {BASELINE: (1.0, 0.0)}
        for r in self.state.rungs:  # selection-run points (grey): last rung of each non-survivor
            for lbl in r.candidates:
                if lbl not in survivors and lbl not in [p["label"] for p in points]:
                    last = max((x for x in self.state.rungs if lbl in x.candidates), key=lambda x: x.index)
                    lat = last.latency_ratio.get(lbl)
                    points.append({"label": lbl, "cost": lat if lat is not None else math.nan, "delta": last.deltas[lbl],
                                   "lo": math.nan, "hi": math.nan, "confirmed": False})
        for s in survivors:
            m = res.get(s)
            if m and m.effect:
                cost = m.latency_ratio if m.latency_ratio is not None else math.nan
                points.append({"label": s, "cost": cost, "delta": m.effect.delta, "lo": m.effect.lo, "hi": m.effect.hi,
                               "confirmed": True, "verdict": m.effect.verdict})
                cost_gain[s] = (cost, m.effect.delta)
        points.append({"label": BASELINE, "cost": 1.0, "delta": 0.0, "lo": math.nan, "hi": math.nan, "confirmed": True})
        return points, cost_gain


def split_phrase(split: str, summary: SweepSummary) -> str:
    """Which images graded the confirmation, for the report's answer."""
    n = summary.n_eval_images
    imgs = f"{n} " if n else ""
    if split == "test":
        return f"scored on the {imgs}test images (selection ranked on the validation images, never on these)"
    return (f"scored on the {imgs}validation images, which also ranked the candidates (the dataset has no test "
            "split; import it with --test-fraction to grade the winners on unseen images)")


# ------------------------------------------------------------------------------------------------ Ray Tune ASHA
@dataclass
class AshaSetup:
    """What the ASHA stage runs: candidates x selection seeds, each trained up to ``max_t`` epochs."""

    candidates: list[str]
    model_refs: dict[str, str]
    seeds: list[int]
    max_t: int
    grace_period: int
    reduction_factor: int
    metric: str = "map"
    mode: str = "max"
    time_attr: str = "epoch"

    def scheduler_kwargs(self) -> dict:
        """Arguments of ``ray.tune.schedulers.ASHAScheduler``."""
        return {"time_attr": self.time_attr, "metric": self.metric, "mode": self.mode, "max_t": self.max_t,
                "grace_period": self.grace_period, "reduction_factor": self.reduction_factor}

    def grid(self) -> dict:
        """The grid (candidate x seed), before it is wrapped in ``tune.grid_search``."""
        return {"candidate": list(self.candidates), "seed": list(self.seeds)}

    def rungs(self) -> list[int]:
        """Epochs at which ASHA compares trials (``grace_period * reduction_factor^k < max_t``)."""
        out, t = [], self.grace_period
        while t < self.max_t:
            out.append(t)
            t *= self.reduction_factor
        return out


def asha_trainable(config: dict) -> None:
    """One Tune trial: train ``config['model_ref']`` and report validation mAP50-95 after every epoch."""
    from ray import tune

    from ..train import SHORT_RUN, train

    def report(trainer):
        m = (trainer.metrics or {}).get("metrics/mAP50-95(B)")
        # Ultralytics fires this once more after the last epoch (final validation): one report per epoch only
        if m is not None and trainer.epoch + 1 <= trainer.epochs:
            tune.report({"epoch": trainer.epoch + 1, "map": float(m)})

    args = {**SHORT_RUN, "warmup_epochs": 0, **config.get("train_args", {})}
    train(callbacks={"on_fit_epoch_end": report}, model=config["model_ref"], data=config["data"],
          epochs=config["max_t"], imgsz=config["imgsz"], seed=config["seed"], deterministic=True, plots=False,
          project=config["project"], name=f"{config['candidate']}-seed{config['seed']}", exist_ok=True, verbose=False, **args)


def run_asha(setup: AshaSetup, opts: SearchOptions, folder: Path, budget_s: float | None, trainable=None) -> dict:
    """Run the ASHA stage with Ray Tune; return label -> (epochs reached, mean metric over seeds at that epoch).

    ``trainable`` replaces :func:`asha_trainable` (tests: a synthetic learning curve). A Ray runtime
    started here is shut down at the end; a running one (``ray.init`` by the caller) is used as is.
    """
    from ..compare.backends import import_ray

    ray = import_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from ..compare.sweep import default_data

    folder.mkdir(parents=True, exist_ok=True)
    space = {"candidate": tune.grid_search(setup.candidates), "seed": tune.grid_search(setup.seeds),
             "max_t": setup.max_t, "imgsz": opts.imgsz, "data": str(Path(opts.data or default_data()).resolve()),
             "project": str(folder.resolve() / "trials"), "train_args": {"batch": opts.batch} if opts.batch else {}}
    fn = trainable or asha_trainable
    refs = dict(setup.model_refs)

    def wrapped(config):
        fn({**config, "model_ref": refs[config["candidate"]]})

    started = not ray.is_initialized()
    if started:
        ray.init(address=opts.ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(wrapped, {"cpu": opts.cpus_per_trial or 1}), param_space=space,
            tune_config=tune.TuneConfig(scheduler=ASHAScheduler(**setup.scheduler_kwargs()), num_samples=1,
                                        time_budget_s=budget_s),
            run_config=tune.RunConfig(storage_path=str(folder.resolve()), name="asha", verbose=0))
        results = tuner.fit()
        per: dict[str, list[tuple[int, float]]] = {}
        for r in results:
            if r.metrics and setup.metric in r.metrics:
                per.setdefault(r.config["candidate"], []).append(
                    (int(r.metrics[setup.time_attr]), float(r.metrics[setup.metric])))
    finally:
        if started:
            ray.shutdown()
    out = {lbl: (min(v[0] for v in vals), sum(v[1] for v in vals) / len(vals)) for lbl, vals in per.items()}
    if not out:
        raise RuntimeError(f"ASHA: no trial reported a metric (see {folder / 'asha'})")
    atomic_write_json(folder / "asha.json", {"setup": asdict(setup), "reached": out})
    return out
