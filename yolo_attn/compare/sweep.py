"""``compare(...)``: the sweep (every model x seed under identical settings), resumable, into one results folder."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._io import atomic_write
from .._ultralytics import quiet_ultralytics
from ..configs import scale_free_name
from ..models import build, materialize, model_cost, model_label, resolve_model
from ..datasets import DataCheckFailed, checked_dataset, resolve_dataset, shapes_yaml
from ..train import YOLO_ATTN_ARGS, check_args, cpu_threads
from . import report
from .contract import SweepConfig, TrialSpec
from .report import WorkAhead
from .request import ModelSpec, ReportOptions, RunOptions, SweepRequest
from .rounds import run_rounds, settle_rule
from .checks import check_batch, check_ddp, check_device, check_flags, check_model_names, open_results
from .store import TRIAL_NAME_MAX, Store, legacy_trial_id, stable_hash, trial_id
from .summary import SummarySettings, SweepSummary
from .trial import SWEEP_ARGS, check_pretrained_options, environment, sweep_train_args

DEFAULT_MODELS = ["yolov5n.yaml", "yolov5n-se-backbone-end.yaml", "yolov5n-cbam-neck.yaml", "yolov5n-eca-backbone.yaml"]


# --------------------------------------------------------------------------------------------
# Progress across the sweep
# --------------------------------------------------------------------------------------------
class Progress:
    """One status line for the sweep: every running trial with its epoch, trials done, elapsed time and ETA.

    The ETA is the epochs still to train divided by the rate of epochs so far (over all running trials,
    so trials side by side count as they run).
    """

    def __init__(self, n_trials: int, epochs: int, n_done: int = 0, stream=None, enabled: bool = True):
        self.n, self.epochs, self.k = n_trials, epochs, n_done
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.epochs_done = 0
        self.running: dict[str, int] = {}  # trial id -> epochs finished
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _eta(self) -> str:
        if not self.epochs_done:
            return "?"
        remaining = (self.n - self.k) * self.epochs - sum(self.running.values())
        per = (time.perf_counter() - self.t0) / self.epochs_done
        return _hms(per * max(0, remaining))

    def _status(self) -> str:
        parts = [f"{tid} epoch {e}/{self.epochs}" for tid, e in self.running.items()]
        return f"{self.k}/{self.n} done" + (f"; running {', '.join(parts)}" if parts else "")

    def __call__(self, ev: dict) -> None:
        kind, tid = ev["event"], ev.get("trial_id", "")
        if kind in ("trial_start", "trial_submitted"):
            self.running[tid] = 0
            where = f" (worker {ev['worker']})" if ev.get("worker") else ""
            self._line(f"trial {min(self.k + len(self.running), self.n)}/{self.n} {tid}: starting{where}", newline=len(self.running) > 1)
        elif kind == "epoch":
            self.epochs_done += 1
            self.running[tid] = ev["epoch"]
            m = ev.get("metrics", {})
            one = len(self.running) == 1 and "metrics/mAP50-95(B)" in m  # beside others it would be ambiguous
            extra = f" (val mAP50-95 {m['metrics/mAP50-95(B)']:.3f})" if one else ""
            self._line(self._status() + extra)
        elif kind == "worker_died":
            self.epochs_done -= self.running.pop(tid, 0)
            again = "; running it again" if ev.get("retry") else ""
            self._line(f"trial {tid}: its worker process {ev.get('worker')} died ({ev.get('reason')}){again}", newline=True)
        elif kind == "trial_done":
            self.k += 1
            self.running.pop(tid, None)
            self._line(f"trial {self.k}/{self.n} {tid}: {ev['status']}" + (f" ({ev['error']})" if ev.get("error") else ""),
                       newline=True)

    def _line(self, text: str, newline: bool = False) -> None:
        if not self.enabled:
            return
        msg = f"[compare] {text} | elapsed {_hms(time.perf_counter() - self.t0)} ETA {self._eta()}"
        if self.tty and not newline:
            self.stream.write("\r\033[K" + msg)
        else:
            self.stream.write(("\r\033[K" if self.tty else "") + msg + "\n")
        self.stream.flush()


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# --------------------------------------------------------------------------------------------
# Parameter-matched control
# --------------------------------------------------------------------------------------------
def width_control(base_ref: str, target_params: int, nc: int, out_dir: Path) -> tuple[Path, float, int]:
    """Write a stock YAML whose width_multiple gives the parameter count closest to ``target_params``.

    The base is the baseline's YAML at its scale (depth kept); ``scales`` is removed and explicit
    ``depth_multiple``/``width_multiple`` set. Channel counts are rounded to multiples of 8, so the
    count is a step function of the width: a fine scan picks the closest step.
    """
    import yaml

    from .._ultralytics import load_model_yaml

    d = load_model_yaml(base_ref)
    scale = d.get("scale") or ""
    depth, width = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    if d.get("scales") and scale in d["scales"]:
        depth, width = d["scales"][scale][:2]
    base = {k: v for k, v in d.items() if k not in ("scales", "scale", "yaml_file", "ch")}
    base.update(nc=nc, depth_multiple=float(depth))

    cache: dict[float, int] = {}

    def params_at(w: float) -> int:
        w = round(w, 4)
        if w not in cache:
            cache[w] = _params(w)
        return cache[w]

    def _params(w: float) -> int:
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils.torch_utils import get_num_params

        cfg = json.loads(json.dumps({**base, "width_multiple": round(w, 4)}))
        with quiet_ultralytics():
            return int(get_num_params(DetectionModel(cfg, nc=nc, verbose=False)))

    lo, hi = float(width), float(width) * 1.05
    while params_at(hi) < target_params and hi < 8 * width:
        lo, hi = hi, hi * 1.25
    for _ in range(9):  # bisection on the monotone step function (to ~1/500 of the bracket)
        mid = (lo + hi) / 2
        if params_at(mid) < target_params:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda w: abs(params_at(w) - target_params))
    best = round(best, 4)
    n = params_at(best)
    stem = Path(str(base_ref)).stem
    out_dir.mkdir(parents=True, exist_ok=True)
    short = re.sub(r'[^A-Za-z0-9]+', '_', stem)[:TRIAL_NAME_MAX - 32]  # room for "control-" and the width
    path = out_dir / f"control-{short}-w{str(best).replace('.', 'p')}.yaml"
    text = (f"# parameter-matched control: {stem} with width_multiple {best} ({n:,} parameters, target {target_params:,})\n"
            + yaml.safe_dump({**base, "width_multiple": best}, sort_keys=False))
    atomic_write(path, text)
    return path, best, n


# --------------------------------------------------------------------------------------------
# Latency (interleaved, one process)
# --------------------------------------------------------------------------------------------
def measure_latency(refs: dict[str, str], imgsz: int, nc: int, threads: int, rounds: int = 7, iters: int = 5,
                    built: dict | None = None) -> dict[str, float]:
    """Median batch-1 inference latency (ms) per model, models interleaved round by round, fused, eval mode.

    ``built``: models already built from these references (by reference), used instead of building them again
    (they are fused in place)."""
    import torch

    torch.set_num_threads(threads)
    models = {}
    with quiet_ultralytics():
        for name, ref in refs.items():
            m = ((built or {}).get(ref) or build(ref, nc)).eval()
            try:
                m = m.fuse(verbose=False)
            except TypeError:
                m = m.fuse()
            models[name] = m
    x = torch.zeros(1, 3, imgsz, imgsz)
    times = {n: [] for n in models}
    with torch.inference_mode():
        for m in models.values():
            for _ in range(2):
                m(x)
        for _ in range(rounds):
            for n, m in models.items():
                t = time.perf_counter()
                for _ in range(iters):
                    m(x)
                times[n].append((time.perf_counter() - t) / iters * 1e3)
    return {n: sorted(v)[len(v) // 2] for n, v in times.items()}


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------
def default_data(task: str = "detect") -> str:
    """The synthetic shapes dataset of ``task`` (for detection the one shipped in data/)."""
    from ..datasets import shapes_data

    return str(shapes_yaml() if task == "detect" else shapes_data(task))


EVAL_SPLITS = ("val", "test")


def _data_fingerprint(yaml_path: Path, eval_split: str = "val") -> dict:
    """Names and, per split the sweep reads, its image count and a hash of names and sizes (test only when
    it is scored on, so that a sweep scored on val keeps the fingerprint it always had)."""
    ds = resolve_dataset(yaml_path)
    root = ds.root
    fp = {"names": ds.names}
    for split in ("train", "val") + (("test",) if eval_split == "test" else ()):
        files = sorted({Path(f) for f in ds.images(split)})
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(root) if f.is_relative_to(root) else f}:{st.st_size}\n".encode())
        fp[split] = {"images": len(files), "hash": h.hexdigest()[:12]}
    return fp


def _file_hash(ref: str) -> str:
    p = Path(ref)
    if p.is_file():
        return hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    q = p.with_name(scale_free_name(p.name))
    if q.is_file():
        return hashlib.sha256(q.read_bytes()).hexdigest()[:12] + f"@{p.stem}"
    return f"builtin:{ref}"


@dataclass
class Resolved:
    """What a sweep's checks resolved from its request, before ``config.json`` is written (:func:`compare`'s stages
    fill it in turn): the dataset (as named, its checked YAML, class names, scored split), the models
    (:class:`.request.ModelSpec`, baseline, those built for the checks), the seeds and declared rule, the image size
    Ultralytics trains at, every trial's training arguments and the thread count kept across resumes."""

    seeds: list[int]
    epochs: int
    threads: int
    task: str = "detect"
    rule: Any = None
    pretrained: str | None = None
    weights: str = "last"
    data: str = ""
    data_yaml: Path | None = None
    names: Any = None
    eval_split: str = "val"
    specs: list[ModelSpec] = field(default_factory=list)
    baseline: str = ""
    imgsz: int = 0
    n_train: int = 0  # training images
    t_args: dict = field(default_factory=dict)
    built: dict = field(default_factory=dict)  # ref -> model built for the checks (and, if small, the latency)

    @property
    def nc(self) -> int:
        return len(self.names)


def compare(request: SweepRequest | None = None, run: RunOptions | None = None,
            report: ReportOptions | None = None) -> SweepSummary:
    """Train every model of ``request`` with every seed under identical settings and write the comparison.

    ``request`` (:class:`.request.SweepRequest`): what is computed, recorded in ``config.json`` and hashed;
    ``run`` (:class:`.request.RunOptions`): where and how it runs; ``report`` (:class:`.request.ReportOptions`):
    how the trials are summarised. Returns the sweep's summary; its files are in ``summary.out``.
    Trials run seed by seed (every model of seed 0, the baseline first, then seed 1, ...), so a sweep stopped early
    (``run.max_trials``, Ctrl-C) holds complete seeds. Every setting is checked (training arguments, model YAMLs,
    the pretrained checkpoint, the data) before ``config.json`` is written and before the first trial. Several
    processes may run the same sweep on one folder at once: they split the trials through the store's claims.
    A declared decision rule (``request.decision``, :class:`.rounds.DecisionOptions`) is written into
    ``config.json`` before the first trial; with ``until_decided`` the seeds run in rounds up to each look and a
    decided model trains no more (:func:`.rounds.run_rounds`; ``request.seeds`` is then the most the rule may run).
    """
    request, run, report = request or SweepRequest(), run or RunOptions(), report or ReportOptions()
    res = _checked_request(request, run, report)  # before anything is written
    store = open_results(Path(run.out) if run.out else default_out())
    run = _settled_threads(store, run)
    res.threads = run.threads
    log = (lambda s: print(f"[compare] {s}", file=sys.stderr, flush=True)) if run.progress else (lambda s: None)
    warn = lambda s: print(f"[compare] WARNING: {s}", file=sys.stderr, flush=True)  # noqa: E731  (also with --quiet)
    _resolve_data(res, request, store.root, log)
    _resolve_models(res, request, store.root, log, warn)
    _resolve_settings(res, request, log)
    config = _init_config(store, res, run.allow_changes)
    all_trials, todo = _trial_specs(store, config, res, run)
    ahead = WorkAhead(store, config.settings_hash, report.n_boot)
    train = _trainer(store, config.settings_hash, res, run, ahead, log, warn)
    if config.rule is not None:
        all_trials = _rounds(store, config, all_trials, todo, train, ahead, run.max_trials, log)
    else:
        log(f"{len(all_trials)} trials ({len(res.specs)} models x {len(res.seeds)} seeds): "
            f"{len(all_trials) - len(todo)} already recorded, {len(todo)} to run; results in {store.root}")
        todo = todo[:run.max_trials] if run.max_trials is not None else todo
        if todo:
            train(todo, len(all_trials) - len(todo))
    bench = _latency(store.root, config.settings_hash, res.specs, res.imgsz, res.nc, res.threads, log, res.built)
    return _write_report(store, config, all_trials, bench, report, log, ahead)


def _checked_request(request: SweepRequest, run: RunOptions, report: ReportOptions) -> Resolved:
    """The request's flags checked before anything is written or started; its seeds, rule and task resolved."""
    seed_list = check_flags(request.seeds, report.n_boot, run.threads, run.workers, run.max_trials, report.tolerance)
    rule = request.decision.rule(len(seed_list))
    check_args({"epochs": request.epochs, "imgsz": request.imgsz})  # Ultralytics' rules (epochs >= 1), imgsz >= 1
    check_batch(request.train_args.get("batch"))
    check_ddp(run.device, run.workers, request.train_args.get("batch"), run.backend)  # --device 0,1: DDP per trial
    if run.backend == "local":  # a Ray cluster's devices are not this machine's
        check_device(run.device)
    task = sweep_task(request.models)  # a task without a scorer is refused here, before anything is written or trained
    return Resolved(seeds=seed_list, epochs=int(request.epochs), threads=0, task=task, rule=rule,
                    pretrained=request.start.pretrained, weights=request.weights)


def _settled_threads(store: Store, run: RunOptions) -> RunOptions:
    """``run`` with the one thread count of every trial (:func:`_sweep_threads`); on Ray the CPUs it reserves."""
    threads, cpus = run.threads, run.cpus_per_trial
    if run.backend == "ray":  # a Ray trial trains with the CPUs Ray reserves for it, never more
        cpus = threads = cpus or threads or 1
    return replace(run, threads=_sweep_threads(store, threads, run.device), cpus_per_trial=cpus)


def _resolve_data(res: Resolved, request: SweepRequest, out_dir: Path, log) -> None:
    """The dataset (default: the synthetic shapes of the task, named in the report's title), checked, and the
    split of the final scoring."""
    res.data = request.data or default_data(res.task)
    ds = _checked_data(res.data, out_dir, log, res.task)
    res.data_yaml, res.names = ds.yaml, ds.names
    res.eval_split = choose_eval_split(ds, request.eval_split, request.weights, log)
    res.n_train = len(ds.images("train"))


def _resolve_models(res: Resolved, request: SweepRequest, out_dir: Path, log, warn) -> None:
    """The models copied, built and costed once (kept built for the latency when small), the baseline, the
    image size they train at."""
    res.specs, res.baseline = _model_specs(request, res.nc, out_dir, log, res.built)
    res.imgsz = _trained_imgsz(int(request.imgsz), res.specs, res.nc, warn, res.built)
    if sum(m.params for m in res.specs) > KEEP_BUILT_PARAMS:
        res.built.clear()  # large models: built again for the latency rather than held while the trials train


def _resolve_settings(res: Resolved, request: SweepRequest, log) -> None:
    """Every trial's training arguments, checked, and the one optimizer they train with."""
    res.t_args = check_sweep_settings(request.sweep_args(), res.pretrained, res.specs, res.nc)
    choice = require_one_optimizer(res.t_args, res.n_train, res.nc, [res.epochs])
    log(f"optimizer: {choice.name} (lr {choice.lr:g}, momentum {choice.momentum})")


def _trainer(store: Store, shash: str, res: Resolved, run: RunOptions, ahead, log, warn):
    """``train(specs, n_recorded)``: the trials run on the backend; the worker processes start at its first call,
    after every check."""
    def train(specs: list[TrialSpec], n_recorded: int) -> None:
        prog = Progress(n_recorded + len(specs), res.epochs, n_done=n_recorded, enabled=run.progress)
        plan = _plan(run, res.threads, len(specs), log, warn)
        run_trials(store, specs, shash, run, prog, log, plan=plan, spare_core=ahead.step)
        _restore_threads(res.threads)  # trials run in this process (--workers 0) leave their own count

    return train


def _rounds(store: Store, config: SweepConfig, all_trials: list[str], todo: list[TrialSpec], train, ahead,
            max_trials: int | None, log) -> list[str]:
    """The declared rule's rounds (:func:`.rounds.run_rounds`); returns the ids of the trials the rule has asked for
    so far (all of them recorded once it has decided)."""
    rule = config.rule
    first, second, _ = SummarySettings(0, 0, [], task=config.task).figures  # the rule names the box figures
    metric = {"mAP50-95": first, "mAP50": second}.get(rule["metric"], rule["metric"])
    log(f"decision rule (declared {rule['declared_at']}): margin ±{rule['margin']:g} {metric}, alpha "
        f"{rule['alpha']:g} family-wise, looks at {', '.join(map(str, rule['looks']))} seeds; results in {store.root}")
    order = sorted(config.model_names, key=lambda m: m != config.baseline)
    ids = dict(zip([(m, s) for s in config.seeds for m in order], all_trials))  # _trial_specs' order
    reps = lambda ok: report.trial_replicates(store, ok, ahead.n_boot, ahead=ahead)  # noqa: E731
    rp = run_rounds(store, config, todo, train, reps, max_trials, log)
    return [ids[p] for p in rp.needed]


def _restore_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def default_out() -> Path:
    """The results folder of a sweep run without ``--out``: ``runs/compare/<date-time>``."""
    return Path("runs") / "compare" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _plan(run: RunOptions, threads: int, n_todo: int, log, warn):
    """The local backend's worker processes for ``n_todo`` trials (None for Ray), said in the log; a capped
    ``--workers`` is said even with ``--quiet``."""
    from .workers import plan_workers

    if run.backend != "local":
        return None
    plan = plan_workers(threads, run.device, n_todo, run.workers)
    if plan.capped:
        warn(plan.capped)
    log(f"running {plan.describe()}" if plan.workers else f"running in this process with {threads} thread(s)")
    return plan


# --------------------------------------------------------------------------------------------
# The sweep's stages
# --------------------------------------------------------------------------------------------
KEEP_BUILT_PARAMS = 50_000_000  # the models built for the sweep's checks are kept for the latency up to this size


def _sweep_threads(store: Store, threads: int | None, device=None) -> int:
    """One thread count for every trial of the sweep, kept across resumes (stored in config.json): CPU float
    reductions depend on it, and a rerun must reproduce the same numbers whatever runs beside it. Chosen
    when the sweep starts: ``YOLO_ATTN_THREADS``, else :func:`.workers.default_threads` (1 on CPU: the
    cores go to trials running side by side, which scale better than threads)."""
    from .workers import default_threads

    env = os.environ.get("YOLO_ATTN_THREADS")
    prior = store.read_config()
    return int(threads or (prior.threads if prior else None) or (cpu_threads() if env else default_threads(device)))


def has_test_split(ds) -> bool:
    """Whether resolved dataset ``ds`` names a test split whose entries all exist."""
    return bool(ds.splits.get("test")) and not ds.missing("test")


def choose_eval_split(ds, eval_split: str | None, weights: str, log) -> str:
    """The split of the final scoring: ``eval_split`` checked against the data, else ``val`` -- with a note
    suggesting ``--eval-split test`` when the data has a test split (and the reason it matters)."""
    if eval_split is None:
        if has_test_split(ds) and ds.splits["test"] == ds.splits.get("val"):  # a class folder without val/
            log(f"note: {ds.source} has no val/ folder: training validates on test/ each epoch (as Ultralytics "
                "does) and the sweep scores on it, so no split is held out from what is chosen on it")
        elif has_test_split(ds):
            why = ("best.pt is chosen on val, so val scores are optimistic" if weights == "best" else
                   "when you choose among sweeps by their val scores, the chosen one's val score is optimistic")
            log(f"note: {ds.source} has a test split; this sweep scores on val (the default). --eval-split test "
                f"scores on images nothing was chosen on ({why})")
        return "val"
    if eval_split not in EVAL_SPLITS:
        raise ValueError(f"--eval-split {eval_split!r}: expected one of {', '.join(EVAL_SPLITS)}")
    if eval_split == "test" and not has_test_split(ds):
        gone = ds.missing("test")
        raise ValueError(f"--eval-split test: {ds.source} has no test split"
                         + (f" (its test entry {', '.join(map(str, gone))} does not exist)" if gone else
                            " (no 'test:' key); give one, or import the data with --test-fraction"))
    return eval_split


def sweep_task(models) -> str:
    """The one Ultralytics task of a sweep's models (their heads), which ``yolo_attn.scoring`` must score: a
    ``ValueError`` naming the models when they differ or the task has no scorer (before anything trains)."""
    from ..models import model_task_of
    from ..scoring import scorer

    refs = list(models or [m for m in DEFAULT_MODELS if _exists(m)])
    tasks = {ref: model_task_of(resolve_model(ref)) for ref in refs}
    if len(set(tasks.values())) > 1:
        raise ValueError("the models of a sweep must share one task: " + ", ".join(f"{Path(str(r)).name} ({t})"
                                                                                  for r, t in tasks.items()))
    task = next(iter(tasks.values()), "detect")
    scorer(task, where="compare")
    return task


def _checked_data(data: str, out_dir: Path, log, task: str = "detect"):
    """The resolved dataset, its checked copy of the YAML (absolute paths, no download:) in the results folder,
    checked (its labels read as ``task``) before anything trains."""
    ds, rep = checked_dataset(data, out_dir, task=task)
    atomic_write(out_dir / "data_check.json", json.dumps(rep.as_dict(), indent=2))
    if not rep.ok:
        raise DataCheckFailed(f"dataset check failed ({len(rep.fatal)} fatal problems, see {out_dir / 'data_check.json'}):\n"
                              + "\n".join(str(p) for p in rep.fatal[:20]))
    if rep.problems:
        log(f"dataset check: {len(rep.problems)} warning(s), see {out_dir / 'data_check.json'}")
    for note in ds.notes:
        log(f"dataset: {note}")
    return ds


def _model_spec(ref: str, nc: int, out_dir: Path, built: dict) -> ModelSpec:
    """Resolved, copied and built model reference: name, path, YAML hash, parameters and GFLOPs (the built model
    kept in ``built`` under its path, for the sweep's other checks)."""
    from ..weights import read_model_options

    resolved = resolve_model(ref)
    options = read_model_options(resolved)  # the YAML's own yolo_attn: key; errors name the user's file
    r = materialize(resolved, out_dir / "models")
    try:
        with quiet_ultralytics():
            model = build(r, nc)
        params, gflops = model_cost(r, nc, 640, model)
        built[r] = model
    except Exception as exc:  # the YAML does not build: stop before config.json and the first trial
        raise ValueError(f"model {ref} ({r}) does not build: {type(exc).__name__}: {exc}") from exc
    return ModelSpec(model_label(ref), r, _file_hash(r), params, gflops, options=None if options.empty else options)


def _model_specs(request: SweepRequest, nc: int, out_dir: Path, log, built: dict) -> tuple[list[ModelSpec], str]:
    """The request's models (default: :data:`DEFAULT_MODELS`) as specs, with the width control when asked for;
    and the baseline's name."""
    models = list(request.models or [m for m in DEFAULT_MODELS if _exists(m)])
    if not models:
        raise ValueError("no models given")
    check_model_names(models, [model_label(ref) for ref in models])  # before any file is copied or built
    specs = [_model_spec(ref, nc, out_dir, built) for ref in models]
    base_name = model_label(request.baseline) if request.baseline else specs[0].name
    if base_name not in [m.name for m in specs]:
        raise ValueError(f"baseline {request.baseline!r} is not one of the models")
    if request.control_width:
        base_spec = next(m for m in specs if m.name == base_name)
        target = max(m.params for m in specs)
        if target <= base_spec.params:
            log("control: no model has more parameters than the baseline; no control added")
        else:
            path, w, n = width_control(base_spec.ref, target, nc, out_dir / "models")
            ref = str(path.resolve())
            specs.append(ModelSpec(path.stem, ref, _file_hash(str(path)), *model_cost(ref, nc, 640), control=True,
                                   width_multiple=w))
            check_model_names([*models, ref], [m.name for m in specs])
            log(f"control: {path.name} ({n:,} parameters vs largest model {target:,})")
    return specs, base_name


def _trained_imgsz(imgsz: int, specs: list[ModelSpec], nc: int, warn, built: dict) -> int:
    """The image size every model is trained at, as Ultralytics rounds it (a multiple of the largest stride)."""
    from .._ultralytics import train_imgsz
    with quiet_ultralytics():
        used = max(train_imgsz(imgsz, built[m.ref] if m.ref in built else build(m.ref, nc)) for m in specs)
    if used != imgsz:
        warn(f"--imgsz {imgsz} is not a multiple of the models' largest stride: Ultralytics trains at {used}, "
            f"and {used} is what this sweep records")
    return used


class OptimizerDiffers(ValueError):
    """Trials of one sweep or search would train with different optimizers (``optimizer=auto``)."""


def require_one_optimizer(t_args: dict, n_train: int, nc: int, epochs: list[int]):
    """The one optimizer every trial of ``epochs`` (a sweep, or a search's rungs) trains with, as Ultralytics' own
    ``build_optimizer`` resolves ``t_args`` (``optimizer=auto`` picks by the iteration count, a rule that differs
    between Ultralytics versions); :class:`OptimizerDiffers` when the trials would not all use the same one."""
    from .._ultralytics import OptimizerChoice, resolve_optimizer, train_iterations

    name, batch, nbs = str(t_args.get("optimizer", "auto")), t_args.get("batch", 16), int(t_args.get("nbs", 64))
    lr0, momentum = float(t_args.get("lr0", 0.01)), float(t_args.get("momentum", 0.937))
    if name.lower() not in ("auto", "musgd"):  # used as named, with lr0 and momentum as given: nothing to resolve
        return OptimizerChoice(name, lr0, momentum)  # (building one costs seconds: torch's first optimizer)
    if not (isinstance(batch, int) and batch > 0):
        if name.lower() == "auto":
            raise OptimizerDiffers(f"optimizer=auto with batch={batch}: the optimizer would depend on the batch size "
                                   "chosen at run time; pin it (--train-arg optimizer=SGD) or give a batch size")
        batch = 1  # a named optimizer does not depend on the iteration count
    iters = {e: train_iterations(n_train, batch, nbs, e) for e in epochs}
    found = {e: resolve_optimizer(name, lr0, momentum, nc, it) for e, it in iters.items()}
    if len(set(found.values())) > 1:
        which = "; ".join(f"{e} epochs ({iters[e]} iterations): {c.name} lr {c.lr:g}" for e, c in sorted(found.items()))
        raise OptimizerDiffers(f"optimizer={name} would train trials of different lengths with different optimizers "
                               f"({which}); pin it, e.g. --train-arg optimizer=SGD")
    return next(iter(found.values()))


def check_sweep_settings(train_args: dict | None, pretrained: str | None, specs_m: list[ModelSpec], nc: int) -> dict:
    """Check what every trial would otherwise find out one by one; return the full training arguments.

    Training arguments: known Ultralytics keys (close matches suggested), not one the sweep sets itself,
    values of the right type and range (Ultralytics' own checks). ``pretrained``: a readable checkpoint
    (read without running pickled code) whose weights transfer into every model.
    """
    own = sorted(set(train_args or {}) & set(SWEEP_ARGS))
    if own:
        raise ValueError(f"--train-arg {', '.join(own)}: set by the sweep itself (use --epochs, --imgsz, --device, "
                         "--pretrained, --seeds)")
    from ..file_args import check_sweep_file_args

    check_sweep_file_args(train_args or {})
    t_args = sweep_train_args(train_args, pretrained)
    check_args({k: v for k, v in t_args.items() if k not in YOLO_ATTN_ARGS})  # trust, attn_init: yolo_attn's own
    check_pretrained_options(t_args, pretrained, [m.ref for m in specs_m])
    starts = check_model_options(t_args, pretrained, specs_m)
    if pretrained:
        from ..weights import ForeignCheckpointError, load_checkpoint, load_start, transfer_weights

        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"--pretrained {pretrained}: no such file")
        ckpt = load_checkpoint(pretrained)  # read once per process (safely): every model's check, trials run here
        for m in specs_m:
            with quiet_ultralytics():
                model = build(m.ref, nc, init=starts[m.name].attn_init)
            try:
                with quiet_ultralytics():
                    load_start(starts[m.name], ckpt, model)  # the trainer's transfer and freeze check
            except ForeignCheckpointError:
                fit = transfer_weights(ckpt, model, allow_foreign=True)
                raise ValueError(_foreign(pretrained, m.name, fit)) from None
            except Exception as exc:
                raise ValueError(f"--pretrained {pretrained} does not transfer into {m.name}: {exc}") from exc
    return t_args


def _foreign(pretrained: str, name: str, fit) -> str:
    """Why a checkpoint that fits little of a model (``fit``: the transfer's report) is refused, and what the sweep
    offers instead."""
    return (f"--pretrained {pretrained}: only {fit.tensors} of its {fit.source_tensors} tensors fit model {name} "
            "(another architecture or scale?). The sweep transfers checkpoints of the models' own base; to load only "
            "what fits by name and shape, give the model YAML the key 'yolo_attn: {load: names}' (docs/pretrained.md), "
            "or transfer it once with 'yolo-attn transfer --allow-foreign' and compare the result with --models FILE.pt")


def check_model_options(t_args: dict, pretrained: str | None, specs_m: list[ModelSpec]) -> dict:
    """Model name -> how it starts (:func:`yolo_attn.weights.decide_start`: each YAML's ``yolo_attn:`` key against the
    sweep's options), checked before anything is written."""
    from ..weights import ModelOptions, decide_start

    return {m.name: decide_start(m.ref, pretrained, freeze=t_args.get("freeze"), attn_init=t_args.get("attn_init"),
                                 options=m.options or ModelOptions(), where=f"model {m.name} ({m.ref})") for m in specs_m}


def _init_config(store: Store, res: Resolved, allow_changes: bool = False) -> SweepConfig:
    """Store the sweep's settings in config.json (or check them against the stored ones); the decision rule this run
    declares is settled with the stored one (:func:`.rounds.settle_rule`: the stored one kept, another refused or
    recorded). A folder whose training arguments hold ``trust`` (written before it left the settings) keeps it
    there, and so keeps its settings hash, whatever this run's ``trust``."""
    prior = store.read_config()
    rule, change = settle_rule(prior.rule, res.rule, allow_changes) if prior else (res.rule, None)
    changes = list(prior.rule_changes if prior else [])
    if change:
        changes.append({**change, "at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                        "trials_recorded": len(store.latest(prior.settings_hash))})
    legacy = {"trust": prior.train_args["trust"]} if prior and "trust" in prior.train_args else {}
    pretrained = res.pretrained
    config = SweepConfig(
        settings_hash="", data_fingerprint=_data_fingerprint(res.data_yaml, res.eval_split), epochs=res.epochs,
        imgsz=int(res.imgsz), train_args={**res.t_args, **legacy},
        pretrained_hash=_file_hash(pretrained) if pretrained else None, weights=res.weights, eval_split=res.eval_split,
        models=[m.stored() for m in res.specs], seeds=res.seeds, baseline=res.baseline, data_yaml=str(res.data_yaml),
        data=str(res.data), model_specs=res.specs, pretrained_path=str(Path(pretrained).resolve()) if pretrained else None,
        pretrained=str(pretrained) if pretrained else None, threads=res.threads, environment=environment(res.threads),
        # the seeds planned when the folder was created: extending them later is named in the report
        planned_seeds=prior.planned if prior else res.seeds, rule=rule.to_dict() if rule else None,
        rule_changes=changes, task=res.task)
    config.settings_hash = stable_hash(config.settings())
    config = store.init_config(config, allow_changes=allow_changes)
    # this run's own names and specs (a folder continued from another directory keeps its settings, not its paths)
    config.model_specs, config.data, config.pretrained = res.specs, str(res.data), str(pretrained) if pretrained else None
    return config


def _trial_specs(store: Store, config: SweepConfig, res: Resolved, run: RunOptions):
    """Every trial id of the sweep, and the specs of those to run (ok trials never again; failed ones with
    ``run.retry_failed``).

    Seed by seed: every model of the first seed (the baseline first), then every model of the next, so a sweep
    stopped early (interrupted, ``max_trials``) holds complete seeds, each a paired difference to the baseline.
    """
    shash = config.settings_hash
    latest = store.latest(shash)
    records = store.trial_records()  # of every settings: the trial folders they trained in
    models = sorted(res.specs, key=lambda m: m.name != config.baseline)  # stable: the rest as given
    ids = _trial_ids(store, latest, [m.name for m in models], res.seeds)
    all_trials, todo = [], []
    for s in res.seeds:
        for m in models:
            tid = ids[m.name, s]
            all_trials.append(tid)
            prev = latest.get(tid)
            if prev is not None and (prev.ok or not run.retry_failed):
                continue
            todo.append(TrialSpec(
                trial_id=tid, model=m.name, model_ref=m.ref, seed=s, settings_hash=shash,
                trial_dir=str(store.trial_folder(tid, shash, records).resolve()), store_root=str(store.root.resolve()),
                data=str(Path(res.data_yaml).resolve()), epochs=config.epochs, imgsz=config.imgsz,
                train_args=config.trial_args, pretrained=config.pretrained_path, nc=res.nc, names=res.names,
                weights=config.weights, eval_split=config.eval_split, device=run.device, threads=res.threads,
                verbose=run.verbose, task=config.task, trust=run.trust))
    return all_trials, todo


def _trial_ids(store: Store, latest: dict, names: list[str], seeds: list[int]) -> dict[tuple[str, int], str]:
    """(model, seed) -> trial id (:func:`_trial_id`); two models that would share one id are refused."""
    ids = {(name, s): _trial_id(latest, name, s) for s in seeds for name in names}
    owner: dict[str, str] = {}
    for (name, _), tid in ids.items():
        if owner.setdefault(tid, name) != name:  # a record of an earlier version holds the other's id
            raise ValueError(f"models {owner[tid]!r} and {name!r} would both train trial {tid} ({store.trials_path} "
                             "holds it under the name an earlier version gave it); rename one of the files")
    return ids


WAIT_POLL_S = 2.0  # how often a sweep looks at trials another process is training


def run_trials(store: Store, todo: list[TrialSpec], shash: str, run: RunOptions, prog, log, plan=None,
               spare_core=None) -> None:
    """Run ``todo`` on ``run``'s backend, claiming each trial first; then wait for those other processes hold.

    A trial another live process is training is skipped; when this process has nothing left, it waits
    until those trials are recorded, or their claims go stale (the process died), and then trains them.
    ``plan`` (a :class:`.workers.WorkerPlan`): the local backend's worker processes (None: in this process);
    ``spare_core``: work for a core the last trials leave free (the report's, :class:`.report.WorkAhead`). Interrupted (Ctrl-C), the claims of the trials
    it was running are released.
    """
    _prepare_trackers(store.root, log)
    try:
        _run_trials(store, todo, shash, run, prog, log, plan, spare_core)
    finally:
        store.release_all()


def _run_trials(store: Store, todo: list[TrialSpec], shash: str, run: RunOptions, prog, log, plan,
                spare_core=None) -> None:
    from .backends import run_local, run_ray

    t0 = time.time()

    def claim(spec: TrialSpec) -> bool:
        return store.claim(spec.trial_id, shash, run.retry_failed)

    def on_done(spec: TrialSpec, rec) -> None:
        try:
            store.append(rec)
        finally:
            store.release(spec.trial_id)
        prog({"event": "trial_done", "trial_id": rec.trial_id, "status": rec.status, "error": rec.error})

    waiting_logged = set()
    while True:
        if run.backend == "ray":
            run_ray(todo, on_done, address=run.ray_address, cpus_per_trial=run.cpus_per_trial, progress=prog,
                    claim=claim, pair_hardware=run.pair_hardware)
        else:
            run_local(todo, on_done, progress=prog, claim=claim, plan=plan, spare_core=spare_core)
        done = {r.trial_id for r in store.trial_records(shash) if r.ok or (r.recorded_at or 0) >= t0}
        todo = [s for s in todo if s.trial_id not in done]
        if not todo:
            return
        others = store.claimed_by_others([s.trial_id for s in todo])
        new = set(others) - waiting_logged
        if new:
            log(f"waiting for {len(others)} trial(s) another process is training:\n"
                + "\n".join(f"  {tid}: {store.describe_claim(tid, others[tid])}" for tid in sorted(new)))
            waiting_logged |= new
        time.sleep(WAIT_POLL_S if others else 0)


def _latency(out_dir: Path, shash: str, specs_m: list[ModelSpec], imgsz: int, nc: int, threads: int, log,
             built: dict | None = None) -> dict:
    """Latency, measured once per sweep in this process with the models interleaved (``built``: some already built)."""
    import torch

    bench_path = out_dir / "latency.json"
    bench = json.loads(bench_path.read_text()) if bench_path.is_file() else {}
    if bench.get("settings_hash") != shash or set(bench.get("ms", {})) != {m.name for m in specs_m}:
        log("measuring inference latency (models interleaved)")
        ms = measure_latency({m.name: m.ref for m in specs_m}, imgsz, nc, threads, built=built)
        bench = {"settings_hash": shash, "imgsz": imgsz, "threads": threads, "ms": ms}
        atomic_write(bench_path, json.dumps(bench, indent=2))
        torch.set_num_threads(threads)
    return bench


def _write_report(store: Store, config: SweepConfig, all_trials: list[str], bench: dict, options: ReportOptions, log,
                  ahead=None) -> SweepSummary:
    shash = config.settings_hash
    latest = store.latest(shash)  # trials.jsonl read once
    records = list(latest.values())
    summary = report.summarize(store, config, n_boot=options.n_boot, tol=options.tolerance, bench=bench["ms"],
                               effect=options.effect, ahead=ahead)
    out_dir = store.root
    summary.out = str(out_dir)
    summary.complete = all(t in latest for t in all_trials)
    files = report.write_outputs(store, records, summary)
    summary.files = {k: str(v) for k, v in files.items()}
    for w in summary.warnings:
        log(f"WARNING: {w}")
    _log_to_trackers(out_dir, summary, log)
    return summary


def _prepare_trackers(out_dir: Path, log) -> None:
    """The experiment trackers' store made once here, before trials start side by side (:mod:`.trackers`)."""
    from .trackers import prepare_store

    try:
        prepare_store(out_dir)
    except Exception as e:  # noqa: BLE001 - a tracker never stops a sweep; its own files are the record
        log(f"WARNING experiment tracker not prepared ({type(e).__name__}: {e}); trials may fail to log to it")


def _log_to_trackers(out_dir: Path, summary: SweepSummary, log) -> None:
    """The summary once to the experiment trackers Ultralytics logs trials to (:mod:`.trackers`); never fatal."""
    from .trackers import log_summary

    try:
        run = log_summary(out_dir, summary)
    except Exception as exc:  # the sweep's own files are the record; a tracker that fails is said
        log(f"WARNING: the summary was not logged to MLflow ({type(exc).__name__}: {exc})")
    else:
        if run:
            log(f"summary logged to MLflow (run {run})")


def _trial_id(latest: dict, name: str, seed: int) -> str:
    """The id of model ``name``'s trial with ``seed`` (:func:`.store.trial_id`), or the one an earlier version gave
    it where this sweep's records (``latest``) hold it under that id (a folder written before names got their hash)."""
    old = legacy_trial_id(name, seed)
    rec = latest.get(old)
    return old if rec is not None and rec.model == name else trial_id(name, seed)


def _exists(ref: str) -> bool:
    try:
        resolve_model(ref)
        return True
    except FileNotFoundError:
        return False


def fmt_summary(summary: SweepSummary) -> str:
    lines = [Path(summary.files["md"]).read_text()] if summary.files.get("md") else []
    lines.append(f"table: {summary.files.get('md')} (also .csv, .json)")
    for k in ("plot_diff", "plot_epochs", "plot_pr"):
        if k in summary.files:
            lines.append(f"plot:  {summary.files[k]}")
    if not summary.complete:
        lines.append("sweep incomplete: rerun the same command to train the remaining trials")
    return "\n".join(lines)


__all__ = ["compare", "DataCheckFailed", "Progress", "width_control", "measure_latency", "fmt_summary", "DEFAULT_MODELS"]
