"""The sweep's result contract: :class:`SweepSummary` (``summary.json``), a :class:`ModelRow` per model and a
:class:`MetricDiff` per metric of a model against the baseline.

:func:`.report.summarize` builds them from the store, :func:`.report.write_outputs` writes them (through
:meth:`.store.Store.write_summary`) and :meth:`SweepSummary.from_json` reads them back (files of older versions
too: missing keys take their defaults, unknown ones are kept in ``extra``). The report's tables and plots,
the pilot's plan (:mod:`.plan`) and the studies (:mod:`yolo_attn.studies._verdicts`) read these objects, never
the JSON keys, so a field means one thing wherever it is read.

A :class:`MetricDiff` is the one interval type of a comparison: the paired interval (:class:`.stats.DiffCI`),
the seeds it pairs and, once the report has compared every model with the baseline, the family-wise part
(:class:`.stats.Adjusted`: Holm p, simultaneous interval, power, verdict). A contrast between two models of one
sweep (:func:`yolo_attn.studies._verdicts.contrast`) is a :class:`MetricDiff` without that part; its verdict then
follows the interval alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the statistics (scipy) load when a difference is read or computed, not with the store
    from . import stats

DEFAULT_EFFECT = 0.005  # mAP50-95: about the size of published gains of one attention layer
AGREEMENT_TOL = 0.02  # largest expected gap of Ultralytics' and COCOeval's mAP on the same predictions (see .report)


def _verdict_of_interval(ci: stats.DiffCI, mdd: float | None) -> str:
    """The verdict of an interval that was not part of a family-wise adjustment (no power statement beyond it)."""
    if ci.n_seeds < 2 or not (math.isfinite(ci.lo) and math.isfinite(ci.hi)):
        return "too few seeds to say"
    if ci.lo > 0:
        return "better"
    if ci.hi < 0:
        return "worse"
    from . import stats as _stats  # the statistics load with a difference read, not with the store

    if _stats.no_spread(ci):  # as stats.verdict: after the interval's own answer
        return _stats.NO_SPREAD
    if mdd is not None and math.isfinite(mdd):
        return f"no detectable difference (could detect ≥ {mdd:.3f})"
    return "no detectable difference"


@dataclass
class MetricDiff:
    """One metric of model - baseline: the paired interval over ``seeds`` and (after the report's adjustment over
    every model of the sweep) its family-wise part."""

    ci: stats.DiffCI
    seeds: list[int] = field(default_factory=list)
    adjusted: stats.Adjusted | None = None
    seeds_needed: int | None = None  # seeds per model to detect the report's effect at 80% power (family-wise)
    image_floor: float = math.nan  # smallest difference detectable with unlimited seeds (validation images alone)
    stored_verdict: str | None = None  # a verdict of an older file that has no family-wise part

    # what every reader asks of a difference, whichever part answers it
    @property
    def delta(self) -> float:
        return self.ci.delta

    @property
    def n_seeds(self) -> int:
        return self.ci.n_seeds

    @property
    def has_interval(self) -> bool:
        return self.n_seeds >= 2 and math.isfinite(self.ci.lo) and math.isfinite(self.ci.hi)

    @property
    def lo(self) -> float:
        """The model's own interval (NaN with one seed: an image-only interval would mislead)."""
        return self.ci.lo if self.n_seeds >= 2 else math.nan

    @property
    def hi(self) -> float:
        return self.ci.hi if self.n_seeds >= 2 else math.nan

    @property
    def per_seed(self) -> list[float]:
        return self.ci.per_seed

    @property
    def level(self) -> float:
        return self.ci.level

    @property
    def sd_seed(self) -> float | None:
        sd = self.ci.sd_seed
        return sd if self.n_seeds >= 2 and math.isfinite(sd) else None

    @property
    def significant(self) -> bool:
        """Different from the baseline after the family-wise adjustment (False without one)."""
        return bool(self.adjusted and self.adjusted.significant)

    @property
    def mdd(self) -> float | None:
        """Minimum detectable difference at 80% power: family-wise where adjusted, else at the interval's level."""
        if self.adjusted is not None:
            return self.adjusted.mdd
        if self.n_seeds < 2:
            return None
        from . import stats

        return float(stats.min_detectable(self.ci.sd_seed, self.ci.var_image, self.n_seeds, self.ci.n_boot))

    @property
    def p(self) -> float:
        """Holm-adjusted p where adjusted, else the interval's own."""
        return self.adjusted.p_holm if self.adjusted is not None else self.ci.p

    @property
    def verdict(self) -> str:
        if self.adjusted is not None:
            return self.adjusted.verdict
        return self.stored_verdict or _verdict_of_interval(self.ci, self.mdd)

    def brief(self) -> dict[str, Any]:
        """The figures a study writes for one difference."""
        return {"delta": self.delta, "lo": self.lo, "hi": self.hi, "n_seeds": self.n_seeds, "verdict": self.verdict,
                "per_seed": self.per_seed, "seeds": self.seeds, "mdd": self.mdd, "p": self.p, "level": self.level,
                "sd_seed": self.sd_seed}

    def to_json(self) -> dict[str, Any]:
        out = {**self.ci.as_dict(), "seeds": self.seeds}
        if self.adjusted is not None:
            out.update(self.adjusted.as_dict(), seeds_needed=self.seeds_needed, image_floor=self.image_floor)
        elif self.stored_verdict:
            out["verdict"] = self.stored_verdict
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MetricDiff":
        from . import stats

        adjusted = stats.Adjusted.from_json(d)
        return cls(stats.DiffCI.from_json(d), [int(s) for s in d.get("seeds") or []], adjusted, d.get("seeds_needed"),
                   stats.as_number(d.get("image_floor")), None if adjusted is not None else d.get("verdict"))


# figures of a model over its seeds: (source, metric) -> the row's mean and SD fields
SOURCES = ("ultra", "coco")
METRICS = ("map50", "map")


@dataclass
class ModelRow:
    """One model of the sweep's table (a row of ``summary.json``'s ``models``)."""

    model: str
    ref: Any = None  # the model YAML (or checkpoint) the trials built
    is_baseline: bool = False
    is_control: bool = False
    n_ok: int = 0
    n_trials: int = 0
    n_failed: int = 0
    ultra_map50_mean: float = math.nan
    ultra_map50_std: float = math.nan
    ultra_map_mean: float = math.nan
    ultra_map_std: float = math.nan
    coco_map50_mean: float = math.nan
    coco_map50_std: float = math.nan
    coco_map_mean: float = math.nan
    coco_map_std: float = math.nan
    precision: float = math.nan
    recall: float = math.nan
    params: int | None = None
    gflops_640: float | None = None
    params_ratio: float | None = None
    latency_ms: float | None = None
    latency_ratio: float | None = None  # interleaved batch-1 latency, ratio to the baseline
    train_images_per_s: float = math.nan
    train_speed_ratio: float | None = None  # not interleaved: trials ran under different machine load
    per_seed: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # seed -> ultra/coco metrics
    start_map_mean: float | None = None  # pretrained: Ultralytics mAP50-95 before any training step
    start_map_std: float | None = None
    head_start: str | None = None  # pretrained: how the detection head started
    diff: dict[str, MetricDiff] | None = None  # metric -> difference to the baseline (None for the baseline)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as read

    _OPTIONAL = ("start_map_mean", "start_map_std", "head_start", "diff")

    def mean(self, source: str, metric: str) -> float:
        """Mean over seeds of ``source`` (ultra: Ultralytics' validator, coco: COCOeval) ``metric`` (map50, map)."""
        return getattr(self, f"{source}_{metric}_mean")

    def std(self, source: str, metric: str) -> float:
        return getattr(self, f"{source}_{metric}_std")

    def difference(self, metric: str = "map") -> MetricDiff | None:
        return (self.diff or {}).get(metric)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "diff")}
        for k in self._OPTIONAL[:-1]:
            if out[k] is None:
                del out[k]
        if self.diff is not None:
            out["diff"] = {k: v.to_json() for k, v in self.diff.items()}
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ModelRow":
        if "model" not in d:
            raise ValueError("not a summary row (no model)")
        names = {f.name for f in fields(cls)} - {"extra", "diff"}
        known = {k: (math.nan if v is None and isinstance(getattr(cls, k, None), float) else v)
                 for k, v in d.items() if k in names}
        diff = {k: MetricDiff.from_json(v) for k, v in d["diff"].items() if v} if d.get("diff") else None
        return cls(**known, diff=diff, extra={k: v for k, v in d.items() if k not in names | {"diff"}})


@dataclass
class SummarySettings:
    """The settings every trial of the sweep shared, as the table states them."""

    epochs: int
    imgsz: int
    seeds: list[int]
    train_args: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    weights: str = "last"
    eval_split: str = "val"
    model_options: dict[str, Any] = field(default_factory=dict)
    task: str = "detect"  # Ultralytics' task of the models: which output the metric scores (yolo_attn.scoring)

    def to_json(self) -> dict[str, Any]:
        out = {"epochs": self.epochs, "imgsz": self.imgsz, "seeds": self.seeds, "train_args": self.train_args,
               "pretrained": self.pretrained, "weights": self.weights, "eval_split": self.eval_split, "task": self.task}
        return {**out, "model_options": self.model_options} if self.model_options else out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SummarySettings":
        return cls(int(d.get("epochs") or 0), int(d.get("imgsz") or 0), [int(s) for s in d.get("seeds") or []],
                   d.get("train_args") or {}, d.get("pretrained"), d.get("weights") or "last",
                   d.get("eval_split") or "val", d.get("model_options") or {}, d.get("task") or "detect")

    @property
    def metric(self) -> str:
        """What every mAP of the summary measures, in words: the task's scored output (boxes, masks)."""
        from ..scoring import SCORERS

        scorer = SCORERS.get(self.task)
        return scorer.described if scorer else f"{self.task} metric"

    @property
    def figures(self) -> tuple[str, str, str]:
        """The table's names of the two figures (``map``, ``map50``) and of the independent computation:
        ``mAP50-95``, ``mAP50``, ``COCOeval`` (``top-1``, ``top-5``, ``recount`` for classify)."""
        from ..scoring import SCORERS

        scorer = SCORERS.get(self.task)
        return (*scorer.figures, scorer.independent_short) if scorer else ("mAP50-95", "mAP50", "COCOeval")


@dataclass
class ModelDecision:
    """One model's decision under the sweep's rule (:mod:`.rounds`): the outcome, its words, the
    :class:`.sequential.Decision` and, for an open model, the :class:`.sequential.Lever` as dicts."""

    model: str
    outcome: str
    text: str
    decision: dict[str, Any] = field(default_factory=dict)
    lever: dict[str, Any] | None = None
    stopped_at: int | None = None  # seeds at which the model was decided (it trained no more)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ModelDecision":
        return cls(d["model"], d["outcome"], d.get("text") or d["outcome"], d.get("decision") or {}, d.get("lever"),
                   d.get("stopped_at"))


@dataclass
class DecisionReport:
    """The decisions of a sweep: the rule (``declared`` in config.json before the first trial, or the default rule
    applied at the final look of a fixed-seed sweep), the looks taken, one :class:`ModelDecision` per model, the
    trials the decisions used against the fixed design's, and the rule's recorded changes (``deviations``)."""

    rule: dict[str, Any]
    declared: bool
    looks_taken: list[int]
    models: list[ModelDecision]
    trials_used: int = 0
    trials_fixed: int = 0
    done: bool = False
    deviations: list[dict[str, Any]] = field(default_factory=list)

    def model(self, name: str) -> ModelDecision | None:
        return next((m for m in self.models if m.model == name), None)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "models"}
        return {**out, "models": [{f.name: getattr(m, f.name) for f in fields(m)} for m in self.models]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DecisionReport":
        return cls(d["rule"], bool(d.get("declared")), [int(n) for n in d.get("looks_taken") or []],
                   [ModelDecision.from_json(m) for m in d.get("models") or []], int(d.get("trials_used") or 0),
                   int(d.get("trials_fixed") or 0), bool(d.get("done")), list(d.get("deviations") or []))


@dataclass
class SweepSummary:
    """A sweep's ``summary.json``: its table rows, the settings behind them and what the run found along the way."""

    baseline: str
    settings: SummarySettings
    models: list[ModelRow]
    effect: float = DEFAULT_EFFECT  # the difference the power figures are for (mAP50-95)
    planned_seeds: list[int] = field(default_factory=list)
    seeds_extended: list[int] = field(default_factory=list)
    data: str | None = None
    n_eval_images: int | None = None
    n_boot: int = 0
    agreement_tolerance: float = AGREEMENT_TOL
    warnings: list[str] = field(default_factory=list)
    n_trials: int = 0
    n_ok: int = 0
    ci_method: str = ""
    out: str | None = None  # the sweep's folder
    complete: bool = False  # every planned trial has a record
    files: dict[str, str] = field(default_factory=dict)  # what the report wrote: json, csv, md, plot_*
    diagnosis: str | None = None  # compare --diagnose: the diagnosis report, relative to ``out``
    decision: DecisionReport | None = None  # the decisions under the sweep's rule (declared, or the default one)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as read

    def row(self, model: str) -> ModelRow | None:
        return next((r for r in self.models if r.model == model), None)

    @property
    def compared(self) -> list[ModelRow]:
        """The non-baseline rows with a mAP50-95 difference (the family of the adjustment)."""
        return [r for r in self.models if not r.is_baseline and r.difference("map")]

    def to_json(self) -> dict[str, Any]:
        out = {"baseline": self.baseline, "effect": self.effect, "planned_seeds": self.planned_seeds,
               "seeds_extended": self.seeds_extended, "data": self.data, "settings": self.settings.to_json(),
               "n_eval_images": self.n_eval_images, "n_boot": self.n_boot, "agreement_tolerance": self.agreement_tolerance,
               "models": [r.to_json() for r in self.models], "warnings": self.warnings, "n_trials": self.n_trials,
               "n_ok": self.n_ok, "ci_method": self.ci_method}
        if self.out is not None:
            out.update(out=self.out, complete=self.complete)
        if self.files:
            out["files"] = self.files
        if self.diagnosis:
            out["diagnosis"] = self.diagnosis
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "summary.json") -> "SweepSummary":
        missing = [k for k in ("baseline", "models") if k not in d]
        if missing:
            raise ValueError(f"{source}: not a sweep's summary (no {', '.join(missing)})")
        try:
            rows = [ModelRow.from_json(r) for r in d["models"]]
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{source}: a row of 'models' cannot be read: {exc}") from exc
        known = {f.name for f in fields(cls)}
        return cls(
            baseline=d["baseline"], settings=SummarySettings.from_json(d.get("settings") or {}), models=rows,
            effect=float(d.get("effect") or DEFAULT_EFFECT), planned_seeds=list(d.get("planned_seeds") or []),
            seeds_extended=list(d.get("seeds_extended") or []), data=d.get("data"), n_eval_images=d.get("n_eval_images"),
            n_boot=int(d.get("n_boot") or 0), agreement_tolerance=float(d.get("agreement_tolerance") or AGREEMENT_TOL),
            warnings=list(d.get("warnings") or []), n_trials=int(d.get("n_trials") or 0), n_ok=int(d.get("n_ok") or 0),
            ci_method=d.get("ci_method") or "", out=d.get("out"), complete=bool(d.get("complete")),
            files=dict(d.get("files") or {}), diagnosis=d.get("diagnosis"),
            decision=DecisionReport.from_json(d["decision"]) if d.get("decision") else None,
            extra={k: v for k, v in d.items() if k not in known})
