"""The common runner of the studies: a study is a list of ``compare`` sweeps in sub-folders of one study folder.

``run_study(study, options)``:

1. the study module plans its sweeps (:class:`SweepPlan`: model YAMLs written into ``<out>/models``,
   baseline, seeds, epochs);
2. each sweep runs through :func:`yolo_attn.compare.compare` into ``<out>/<sweep name>/`` -- same store,
   resume and statistics as ``yolo-attn compare``; an interrupted study resumes trial by trial;
3. the study module analyses the sweeps' summaries (:class:`Analysis`), and the runner writes
   ``study.md``, ``study.json`` and ``study.png`` (atomically) with what was run (seeds, epochs,
   image size, data and its hash, versions, wall time).

A finished study (``study.json`` complete, same options) rerun prints its report at once, without
touching the sweeps.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .._io import atomic_save, atomic_write, atomic_write_json

if TYPE_CHECKING:
    from ..compare.contract import TrialRecord
    from ..compare.summary import SweepSummary

STUDY_JSON, STUDY_MD, STUDY_PNG = "study.json", "study.md", "study.png"


@dataclass
class StudyOptions:
    """What the user asked for (``yolo-attn study NAME ...``); None means the study's default."""

    data: str | None = None
    layer: str | None = None
    placement: str | None = None
    seeds: int | None = None
    epochs: int | None = None
    imgsz: int | None = None
    scale: str = "n"
    widths: list[float] | None = None
    placements: list[str] | None = None
    out: str | None = None
    batch: int | None = None
    backend: str = "local"
    ray_address: str | None = None
    threads: int | None = None
    cpus_per_trial: int | None = None  # Ray: CPUs per trial
    max_trials: int | None = None
    progress: bool = True
    diagnose: bool = False  # after the sweeps: yolo-attn diagnose on each sweep's checkpoints
    pretrained: str | None = None  # stock checkpoint the fine-tuning sweeps start from (study pretrained)
    margin: float | None = None  # every sweep declares its decision rule with this margin (compare --margin)

    def fingerprint(self) -> dict:
        """The options that decide the study's results (not where or how fast it runs).

        ``pretrained`` only where given (with a hash of the file's bytes), so the studies that take none keep
        the fingerprint they always had."""
        keep = ("data", "layer", "placement", "seeds", "epochs", "imgsz", "scale", "widths", "placements", "batch")
        out = {k: getattr(self, k) for k in keep}
        if self.pretrained:
            out["pretrained"] = str(self.pretrained)
            out["pretrained_sha256"] = _sha256(self.pretrained)
        if self.margin is not None:  # only where given: studies without it keep their fingerprint
            out["margin"] = self.margin
        return out


def _sha256(path) -> str | None:
    import hashlib

    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:12] if p.is_file() else None


@dataclass
class SweepPlan:
    """One ``compare`` sweep of a study."""

    name: str  # sub-folder of the study folder
    models: list[str]  # model YAML paths; labels are their file stems
    baseline: str  # label of the baseline model
    seeds: list[int]
    epochs: int
    roles: dict[str, str] = field(default_factory=dict)  # label -> what the model stands for in the study
    meta: dict = field(default_factory=dict)  # study-specific facts of this sweep (e.g. its width)
    eval_split: str | None = None  # split of the final scoring (None: compare's default, val)
    pretrained: str | None = None  # stock checkpoint every model of the sweep starts from (compare's --pretrained)
    decision: object = None  # compare's DecisionOptions for this sweep (a declared rule; None: the request's own)


@dataclass
class Analysis:
    """What a study concluded, for study.md / study.json / study.png."""

    question: str
    answer: str  # the paragraph: question answered with its interval, as strong as the interval allows
    tables: list[str]  # markdown tables
    data: dict  # JSON-able numbers behind the tables
    plot: Callable[[Path], None] | None = None
    notes: list[str] = field(default_factory=list)


def apply_defaults(opts: StudyOptions, **defaults) -> StudyOptions:
    """``opts`` with every option left at None set to the study's default."""
    return replace(opts, **{k: v for k, v in defaults.items() if getattr(opts, k) is None})


def seed_list(opts: StudyOptions) -> list[int]:
    if opts.seeds is None or opts.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {opts.seeds}")
    return list(range(int(opts.seeds)))


def _versions() -> dict:
    from .._versions import installed_versions

    return installed_versions(("yolo_attn", "ultralytics", "torch", "numpy", "scipy"), missing="unknown")


def trial_records(sweep_dir: str | Path) -> list[TrialRecord]:
    """The ok trial records of a sweep folder's current settings, as its store reads them (the record that counts
    per trial; damaged lines skipped with a warning)."""
    from ..compare.store import Store

    root = Path(sweep_dir)
    if not (root / "trials.jsonl").is_file():
        return []
    store = Store(root)
    config = store.read_config()
    latest = store.latest(config.settings_hash if config else None)
    return [r for r in latest.values() if r.ok]


def sweep_config(sweep_dir: Path):
    """The sweep's :class:`~yolo_attn.compare.contract.SweepConfig`, or None for a folder without one."""
    from ..compare.store import Store

    return Store(sweep_dir).read_config() if (sweep_dir / "config.json").is_file() else None


def provenance(out: Path, plans: list[SweepPlan], summaries: dict[str, SweepSummary]) -> dict:
    """What was run: per sweep its seeds, epochs, image size, training arguments; the data and its hash; versions."""
    sweeps, data_fp, compute_s = [], None, 0.0
    for p in plans:
        cfg = sweep_config(out / p.name)
        data_fp = data_fp or (cfg.data_fingerprint if cfg else None)
        recs = trial_records(out / p.name)
        secs = sum(float(r.duration_s or 0.0) for r in recs)
        compute_s += secs
        s = summaries.get(p.name)
        sweeps.append({"name": p.name, "models": [Path(m).stem for m in p.models], "baseline": p.baseline,
                       "seeds": p.seeds, "epochs": p.epochs, "imgsz": cfg.imgsz if cfg else None,
                       "train_args": cfg.train_args if cfg else None, "pretrained": p.pretrained,
                       "pretrained_hash": cfg.pretrained_hash if cfg else None,
                       "model_options": cfg.settings().get("model_options") if cfg else None,
                       "threads": cfg.threads if cfg else None, "trials_ok": s.n_ok if s else len(recs),
                       "trials": s.n_trials if s else len(p.models) * len(p.seeds),
                       "trial_seconds": round(secs, 1), "decisions": _declared_decisions(s)})
    data = next((s.data for s in summaries.values() if s.data), None)
    return {"data": str(data) if data else None, "data_fingerprint": data_fp, "sweeps": sweeps,
            "trial_seconds_total": round(compute_s, 1), "versions": _versions(), "command": " ".join(sys.argv)}


def _declared_decisions(summary: SweepSummary | None) -> str | None:
    """A sweep's decisions under the rule it declared before its first trial, in words (None: none declared)."""
    d = summary.decision if summary is not None else None
    if d is None or not d.declared:
        return None
    return f"margin ±{d.rule['margin']:g}: " + "; ".join(m.text for m in d.models)


def provenance_md(prov: dict) -> list[str]:
    fp = prov.get("data_fingerprint") or {}
    hashes = ", ".join(f"{k} {fp[k].get('images')} images (hash {fp[k].get('hash')})" for k in ("train", "val")
                       if isinstance(fp.get(k), dict))
    lines = ["## What was run", "", f"- data: `{prov['data']}`" + (f" -- {hashes}" if hashes else "")]
    for s in prov["sweeps"]:
        lines.append(f"- sweep `{s['name']}`: models {', '.join(s['models'])} (baseline {s['baseline']}); seeds "
                     f"{s['seeds']}; {s['epochs']} epochs; imgsz {s['imgsz']}; {s['trials_ok']}/{s['trials']} trials ok; "
                     f"{s['trial_seconds'] / 60:.1f} min of training+validation; {s['threads']} thread(s)"
                     + (f"; from pretrained `{s['pretrained']}` (hash {s.get('pretrained_hash')})" if s.get("pretrained") else "")
                     + (f"; per-model options (YAML key yolo_attn) {json.dumps(s['model_options'], sort_keys=True)}"
                        if s.get("model_options") else "")
                     + (f"; decisions under the rule it declared ({s['decisions']})" if s.get("decisions") else ""))
    v = prov["versions"]
    lines.append(f"- total trial time {prov['trial_seconds_total'] / 60:.1f} min; versions: "
                 + ", ".join(f"{k} {v[k]}" for k in ("yolo_attn", "ultralytics", "torch", "numpy", "scipy", "python")))
    targs = [s.get("train_args") for s in prov["sweeps"] if s.get("train_args")]
    if targs and all(t == targs[0] for t in targs):
        lines.append(f"- training arguments (every trial): `{json.dumps(targs[0], sort_keys=True)}`")
    else:
        lines.extend(f"- training arguments (sweep `{s['name']}`): `{json.dumps(s['train_args'], sort_keys=True)}`"
                     for s in prov["sweeps"] if s.get("train_args"))
    lines.append(f"- command: `{prov['command']}`")
    return lines


def render_md(name: str, analysis: Analysis, prov: dict, complete: bool) -> str:
    lines = [f"# Study: {name}", ""]
    if not complete:
        lines += ["**Incomplete**: some trials have not run yet; rerun the same command to continue. "
                  "The numbers below use the trials finished so far.", ""]
    lines += ["## Question", "", analysis.question, "", "## Answer", "", analysis.answer, ""]
    for t in analysis.tables:
        lines += [t, ""]
    if analysis.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in analysis.notes] + [""]
    lines += provenance_md(prov)
    lines += ["", f"Plot: {STUDY_PNG}. Each sweep's own table and plots are in its sub-folder (summary.md)."]
    return "\n".join(lines) + "\n"


def write_report(out: Path, name: str, analysis: Analysis, prov: dict, complete: bool, fingerprint: dict) -> dict[str, Path]:
    files = {}
    if analysis.plot is not None:
        try:
            files["png"] = atomic_save(out / STUDY_PNG, analysis.plot)
        except Exception as exc:  # a plot must never lose the report
            analysis.notes.append(f"plotting failed: {type(exc).__name__}: {exc}")
    files["md"] = atomic_write(out / STUDY_MD, render_md(name, analysis, prov, complete))
    files["json"] = atomic_write_json(out / STUDY_JSON, {
        "study": name, "complete": complete, "options": fingerprint, "question": analysis.question,
        "answer": analysis.answer, "results": analysis.data, "notes": analysis.notes, "provenance": prov})
    return files


def finished_report(out: Path, fingerprint: dict) -> str | None:
    """study.md of a complete study run with the same options (None when the study must run)."""
    path = out / STUDY_JSON
    if not path.is_file() or not (out / STUDY_MD).is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if saved.get("complete") and saved.get("options") == json.loads(json.dumps(fingerprint)):
        return (out / STUDY_MD).read_text()
    return None


def study_request(opts: StudyOptions):
    """The study's one request (:class:`~yolo_attn.compare.request.SweepRequest`: data, image size, batch; each
    sweep's plan fills in its models, seeds and epochs) and how its sweeps run (:class:`RunOptions`)."""
    from ..compare.request import RunOptions, SweepRequest
    from ..compare.rounds import DecisionOptions

    request = SweepRequest.build({"batch": opts.batch} if opts.batch else None, data=opts.data, imgsz=opts.imgsz,
                                 decision=DecisionOptions(margin=opts.margin))
    run = RunOptions(backend=opts.backend, ray_address=opts.ray_address, threads=opts.threads,
                     cpus_per_trial=opts.cpus_per_trial, max_trials=opts.max_trials, progress=opts.progress)
    return request, run


def plan_request(plan: SweepPlan, request, run, out: Path):
    """``request`` and ``run`` (the study's or the search's) for the sweep of ``plan``, into ``out/<plan.name>``."""
    start = replace(request.start, pretrained=plan.pretrained) if plan.pretrained else request.start
    decision = {} if plan.decision is None else {"decision": plan.decision}
    return (replace(request, models=tuple(plan.models), seeds=tuple(plan.seeds), epochs=plan.epochs,
                    baseline=plan.baseline, eval_split=plan.eval_split, start=start, **decision),
            replace(run, out=str(out / plan.name)))


def run_sweeps(plans: list[SweepPlan], request, run, out: Path, compare_fn=None) -> dict[str, SweepSummary]:
    """Run (or resume) every sweep of ``plans`` with the study's ``request`` and ``run`` options
    (:func:`study_request`); return sweep name -> compare summary. ``run.max_trials`` counts across the sweeps.
    ``compare_fn`` replaces compare in tests."""
    if compare_fn is None:
        from ..compare import compare as compare_fn
    summaries = {}
    left = run.max_trials
    for i, p in enumerate(plans, 1):
        if run.progress:
            print(f"[study] sweep {i}/{len(plans)} '{p.name}': {len(p.models)} models x {len(p.seeds)} seeds, "
                  f"{p.epochs} epochs", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        request_p, run_p = plan_request(p, request, replace(run, max_trials=left), out)
        summaries[p.name] = compare_fn(request_p, run_p)
        if left is not None:
            left = max(0, left - _trained_now(summaries[p.name], t0))
    return summaries


def _trained_now(summary: SweepSummary, t0: float) -> int:
    """Trials recorded by this call (for --max-trials across sweeps)."""
    recs = trial_records(summary.out) if summary.out else []
    start = time.time() - (time.perf_counter() - t0)
    return sum(1 for r in recs if float(r.recorded_at or 0) >= start)


DIAGNOSIS_MD = Path("diagnose") / "diagnose.md"


def diagnose_sweeps(out: Path, plans: list[SweepPlan], diagnose_fn=None, progress: bool = True) -> dict[str, str]:
    """``yolo-attn diagnose`` on every sweep of a finished study, each into ``<out>/<sweep>/diagnose``.

    A sweep whose diagnosis exists already is not diagnosed again (an interrupted ``--diagnose`` resumes
    sweep by sweep). Returns sweep name -> path of its diagnose.md relative to ``out``.
    """
    if diagnose_fn is None:
        from ..diagnose import diagnose_sweep as diagnose_fn
    links = {}
    for p in plans:
        md = out / p.name / DIAGNOSIS_MD
        if not md.is_file():
            if progress:
                print(f"[study] diagnosing sweep '{p.name}' ({len(p.models)} models x {len(p.seeds)} seeds)",
                      file=sys.stderr, flush=True)
            diagnose_fn(out / p.name, out / p.name / "diagnose", progress=print if progress else None)
        links[p.name] = str(md.relative_to(out))
    return links


def _diagnoses_missing(out: Path) -> bool:
    """True when a saved study's sweeps lack a diagnosis (``--diagnose`` asked of a finished study)."""
    try:
        sweeps = [s["name"] for s in json.loads((out / STUDY_JSON).read_text())["provenance"]["sweeps"]]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return any(not (out / name / DIAGNOSIS_MD).is_file() for name in sweeps)


def run_study(study, opts: StudyOptions, compare_fn=None, stream=None, diagnose_fn=None) -> dict:
    """Run study module ``study`` (capacity, fuse, fmm, placement, pretrained) with ``opts``; print and return its report."""
    stream = stream or sys.stdout
    if opts.pretrained and not getattr(study, "TAKES_PRETRAINED", False):
        raise ValueError(f"study {study.NAME}: --pretrained is an option of the pretrained study only (this study trains "
                         "from scratch)")
    opts = study.with_defaults(opts)
    out = Path(opts.out or Path("runs") / "study" / study.NAME)
    fp = {"study": study.NAME, **opts.fingerprint()}
    done = finished_report(out, fp)
    if done is not None and opts.diagnose and _diagnoses_missing(out):
        done = None  # rebuild the report (the sweeps are finished: nothing trains) with the diagnoses linked
    if done is not None:
        print(done, file=stream)
        print(f"(finished study, report from {out / STUDY_MD})", file=stream)
        return {"out": str(out), "complete": True, "cached": True}
    plans = study.plan(opts, out / "models")
    summaries = run_sweeps(plans, *study_request(opts), out, compare_fn)
    complete = all(s.complete for s in summaries.values())
    analysis = study.analyse(opts, plans, summaries, out)
    if opts.diagnose and complete:
        links = diagnose_sweeps(out, plans, diagnose_fn, opts.progress)
        analysis.notes.append("Diagnosis (fit, receptive field, gates, regularisation; `yolo-attn diagnose`) of each "
                              "sweep's checkpoints: " + ", ".join(f"[{k}]({v})" for k, v in links.items()) + ".")
    elif opts.diagnose:
        analysis.notes.append("--diagnose: not run, the study is incomplete (rerun the same command to finish it).")
    prov = provenance(out, plans, summaries)
    files = write_report(out, study.NAME, analysis, prov, complete, fp)
    print(files["md"].read_text(), file=stream)
    print(f"report: {files['md']} (also {STUDY_JSON}" + (f", {STUDY_PNG}" if "png" in files else "") + ")", file=stream)
    if not complete:
        print("study incomplete: rerun the same command to train the remaining trials", file=stream)
    return {"out": str(out), "complete": complete, "cached": False, "files": {k: str(v) for k, v in files.items()},
            "analysis": analysis.data, "options": asdict(opts)}
