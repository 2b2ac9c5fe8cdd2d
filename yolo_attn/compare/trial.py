"""One trial of a sweep: train one model with one seed, keep the scoring validation's predictions, score both ways.

:func:`run_trial` takes a :class:`~.contract.TrialSpec` (picklable, so a Ray worker can run it) and
returns a :class:`~.contract.TrialRecord`; it never raises for a failed trial: the exception (or a
non-finite loss, or more predictions per image than ``max_det``) is recorded with ``status: failed``.
Training goes through :func:`yolo_attn.train.train`, which keeps the predictions of the validation that scores
the trial in memory (:class:`yolo_attn._ultralytics.PredictionLog`); with ``--weights last`` that is the final
epoch's own validation, with ``best`` Ultralytics' closing validation of ``best.pt``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import platform
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .._ultralytics import quiet_ultralytics
from ..models import build
from ..scoring import VAL_ARGS, cocoeval
from ..train import SHORT_RUN, restore_cpu_threads
from .contract import TrialRecord, TrialSpec
from .hardware import hardware
from .store import mark_trial_folder

# Identical for every trial: the project's short-run CPU settings (yolo_attn.train.SHORT_RUN: SGD instead
# of Ultralytics' optimizer=auto, which picks AdamW at lr ~1e-4 on short runs, and no warm-up, which
# Ultralytics stretches to at least 100 iterations: the whole of a short trial) plus a few fixed choices.
DEFAULT_TRAIN_ARGS = {
    **SHORT_RUN,
    "weight_decay": 5e-4,
    "cos_lr": False,
    "workers": 0,
    "cache": False,
    "patience": 1000,
}
# Starting from --pretrained weights, in place of the from-scratch values above (chosen from measurements on real
# weights, docs/pretrained.md; every key can be overridden with --train-arg). attn_init: every attention layer
# starts as the identity, so each model predicts exactly as the stock checkpoint before training.
FINE_TUNE_ARGS = {
    "lr0": 0.005,
    "warmup_epochs": 1,
    "attn_init": "identity",
}
# Set by the sweep itself for every trial: not allowed in --train-arg.
SWEEP_ARGS = ("model", "data", "epochs", "imgsz", "seed", "deterministic", "plots", "val", "project", "name",
              "exist_ok", "verbose", "device", "pretrained", "mode", "task", "resume", *VAL_ARGS)


class NonFiniteLoss(FloatingPointError):
    pass







def _make_pretrained(ref: str, source: str, nc: int, out: Path, seed: int) -> tuple[str, str]:
    """Checkpoint of model checkpoint ``ref`` carrying ``source``'s weights; returns (path, the transfer's summary line).

    Only for ``--models X.pt``: a model YAML trains with ``pretrained=`` instead (the trainer transfers,
    freezes in base indices and validates before training). ``source`` is read by yolo_attn's safe reader.
    """
    from .._ultralytics import seeded_layers
    from ..weights import save_model_checkpoint, transfer_weights

    with seeded_layers(seed):
        model = build(ref, nc)
    report = transfer_weights(source, model)
    path = save_model_checkpoint(model, out / "pretrained_init.pt", half=False)
    return str(path), report.summary()


def _start_metrics(metrics: dict | None, columns: dict[str, str]) -> dict[str, float] | None:
    """The epoch-0 figures by Ultralytics' names ``columns`` (``Scorer.ultra_columns``), and its validation losses."""
    if not metrics:
        return None
    out = {k: float(metrics[v]) for k, v in columns.items() if v in metrics}
    out["loss"] = {k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith("val/")}
    return out


def _results_curve(csv_path: Path, columns: dict[str, str]) -> list[dict]:
    if not csv_path.is_file():
        return []
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    out = []
    for r in rows:
        r = {k.strip(): v for k, v in r.items() if k}

        def f(key):
            try:
                return float(r[key])
            except (KeyError, TypeError, ValueError):
                return math.nan

        out.append({"epoch": int(float(r.get("epoch", len(out) + 1))), **{k: f(v) for k, v in columns.items()}})
    return out


_GT_READ: dict[tuple, tuple[list, dict]] = {}  # this process's last ground truth read, by its files' sizes and times


def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _ground_truth(im_files, task: str = "detect") -> tuple[list[cocoeval.GtImage], dict[str, str]]:
    """GtImages (sorted by key) of the validator's images, read from their label files, and image file -> key.

    The key is the image path relative to the images' common folder with '/' replaced by '_' (unique,
    and how Ultralytics' validator names the ``save_txt`` file of each image). Every trial of a worker scores the
    same images: they are read again only when an image or label file changed (size or modification time).
    """
    from ..datasets import label_path

    files = [str(f) for f in im_files]
    key = (task, *((f, _stat_key(Path(f)), _stat_key(label_path(Path(f)))) for f in files))
    if key not in _GT_READ:
        _GT_READ.clear()
        _GT_READ[key] = _read_ground_truth(files, task)
    images, keys = _GT_READ[key]
    return list(images), dict(keys)


def _read_ground_truth(files: list[str], task: str = "detect") -> tuple[list[cocoeval.GtImage], dict[str, str]]:
    from ..datasets import image_size, label_path
    from ..scoring import scorer

    s = scorer(task)
    read, label_of = s.read_ground_truth, s.label_of or label_path
    root = os.path.commonpath([os.path.dirname(f) for f in files])
    images, keys = [], {}
    for f in files:
        keys[f] = key = "_".join(Path(f).relative_to(root).with_suffix("").parts)
        w, h = image_size(Path(f))
        labels, segments = read(label_of(Path(f)), w, h)
        images.append(cocoeval.GtImage(key, w, h, labels, segments))
    images.sort(key=lambda g: g.key)
    return images, keys


# --------------------------------------------------------------------------------------------
# What bit-reproducibility depends on
# --------------------------------------------------------------------------------------------
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "amx_tile", "amx_bf16", "amx_int8", "sve", "asimd")


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key in ("flags", "Features"):
            flags = set(value.split())
            break
    return model, sorted(f for f in _ISA_FLAGS if f in flags)


def environment(threads: int | None = None) -> dict:
    """Everything a CPU trial's bit-exact numbers depend on besides its settings: library versions, thread
    count and OpenMP policy, CPU model and vector ISA, torch's kernels (CPU capability, BLAS, oneDNN)."""
    import torch
    import ultralytics

    model, flags = _cpu_model_and_flags()
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    return {
        "python": platform.python_version(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
        "numpy": np.__version__, "threads": threads or torch.get_num_threads(), "cpu": model, "cpu_isa": flags,
        "machine": platform.machine(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas.group(1) if blas else None, "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "torch_config_sha256": hashlib.sha256(config.encode()).hexdigest()[:12],
        "openmp": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ},
    }


# --------------------------------------------------------------------------------------------
# The trial
# --------------------------------------------------------------------------------------------
class _Hooks:
    """Ultralytics callbacks of one trial: thread count, per-epoch timing and loss, non-finite loss, progress."""

    def __init__(self, spec: TrialSpec, threads: int, progress: Callable[[dict], None] | None):
        self.spec, self.threads, self.progress = spec, threads, progress
        self.train_s, self.images, self.epochs, self.t0, self.loss = 0.0, 0, 0, None, None
        self.train_started: float | None = None  # perf_counter() when the first epoch began (model and data ready)

    def __getstate__(self) -> dict:
        """Newer Ultralytics hands a DDP run's callbacks to its worker processes (pickled): there the trial's checks
        run, its progress messages (this process's own stream) do not."""
        return {**self.__dict__, "progress": None}

    def set_threads(self, _obj=None) -> None:
        restore_cpu_threads(None, self.threads)

    def train_start(self, _tr) -> None:
        self.set_threads()
        self.train_started = time.perf_counter()

    def epoch_start(self, tr) -> None:
        self.t0 = time.perf_counter()

    def epoch_end(self, tr) -> None:
        import torch

        loss = getattr(tr, "tloss", None)
        if isinstance(loss, dict):
            self.loss = {k: float(torch.as_tensor(v).float().mean()) for k, v in loss.items()}
        elif loss is not None:
            self.loss = [float(x) for x in torch.as_tensor(loss).float().reshape(-1)]
        if self.t0 is not None:
            self.train_s += time.perf_counter() - self.t0
            self.images += len(tr.train_loader.dataset)
            self.epochs += 1
            self.t0 = None

    def batch_end(self, tr) -> None:
        import torch

        loss = getattr(tr, "tloss", None)
        parts = list(loss.values()) if isinstance(loss, dict) else [] if loss is None else [loss]
        for v in parts:
            if not bool(torch.isfinite(torch.as_tensor(v, dtype=torch.float32)).all()):
                raise NonFiniteLoss(f"non-finite training loss {loss} at epoch {tr.epoch + 1}")

    def fit_epoch_end(self, tr) -> None:
        if self.progress and tr.epoch + 1 <= tr.epochs:
            self.progress({"event": "epoch", "trial_id": self.spec.trial_id, "epoch": tr.epoch + 1, "epochs": tr.epochs,
                           "metrics": {k: float(v) for k, v in (tr.metrics or {}).items() if isinstance(v, (int, float))}})

    def callbacks(self) -> dict[str, Callable]:
        return {"on_pretrain_routine_start": self.set_threads, "on_train_start": self.train_start,
                "on_train_epoch_start": self.epoch_start, "on_train_epoch_end": self.epoch_end,
                "on_train_batch_end": self.batch_end, "on_fit_epoch_end": self.fit_epoch_end,
                "on_val_start": self.set_threads}


def sweep_train_args(train_args: dict | None, pretrained: str | None) -> dict:
    """Every trial's training arguments: the short-run defaults, the fine-tuning ones with ``pretrained``, then the user's."""
    return {**DEFAULT_TRAIN_ARGS, **(FINE_TUNE_ARGS if pretrained else {}), **(train_args or {})}


def check_pretrained_options(t_args: dict, pretrained: str | None, refs: list[str]) -> None:
    """Refuse option combinations a trial would find out too late (or silently ignore)."""
    from ..registry import INITS
    from ..train import _attn_lr

    init, freeze = t_args.get("attn_init"), t_args.get("freeze")
    if init is not None and init not in INITS:
        raise ValueError(f"attn_init={init!r}: expected one of {', '.join(INITS)}")
    if "attn_lr" in t_args:
        _attn_lr(t_args["attn_lr"])
    checkpoints = [r for r in refs if str(r).endswith(".pt")]
    if checkpoints and init is not None:
        raise ValueError(f"attn_init={init}: applies to model YAMLs, but {checkpoints[0]} is a checkpoint "
                         "(its attention layers were initialised when it was made)")
    if freeze not in (None, 0, [], False):
        if not pretrained:
            raise ValueError(f"freeze={freeze}: freezes pretrained layers; give --pretrained")
        if checkpoints:
            raise ValueError(f"freeze={freeze} with --pretrained needs model YAMLs (base-index freezing); "
                             f"{checkpoints[0]} is a checkpoint")


def _train_args(spec: TrialSpec, model_ref: str | None = None) -> dict:
    args = {**DEFAULT_TRAIN_ARGS, **(spec.train_args or {})}
    if spec.trust:
        args["trust"] = True  # read by yolo_attn.train.train (model=*.pt), not passed to Ultralytics
    if spec.pretrained and not str(model_ref or spec.model_ref).endswith(".pt"):
        args["pretrained"] = spec.pretrained  # the trainer transfers it (yolo_attn.train.AttnDetectionTrainer)
    args.update(data=spec.data, epochs=spec.epochs, imgsz=spec.imgsz, seed=spec.seed, deterministic=True, plots=False,
                val=True, **VAL_ARGS, project=str(Path(spec.trial_dir)), name="train", exist_ok=True, verbose=bool(spec.verbose))
    if spec.device is not None:
        args["device"] = spec.device
    if _end_to_end_yaml(model_ref or spec.model_ref):
        args.setdefault("nms", False)  # every epoch's validation scores the one-to-one output the sweep scores
    return args


def _end_to_end_yaml(ref) -> bool:
    """Whether model YAML ``ref`` builds an end-to-end head (YOLO26's ``end2end: True``); False for a checkpoint."""
    from .._ultralytics import load_model_yaml

    return not str(ref).endswith(".pt") and bool(load_model_yaml(ref).get("end2end"))


def _train(spec: TrialSpec, model_ref: str, hooks: _Hooks):
    """Train with yolo_attn's trainer; return the weights to evaluate and the :class:`~yolo_attn.train.TrainResult`."""
    from ..train import train
    from .trackers import named_trial

    with named_trial(spec.store_root, spec.model, spec.seed):  # the trackers' names of this trial (Ultralytics' own)
        result = train(callbacks=hooks.callbacks(), model=model_ref, final_weights=spec.weights, threads=hooks.threads,
                       **_train_args(spec, model_ref))
    hooks.set_threads()
    run_dir = Path(spec.trial_dir) / "train"
    return run_dir / "weights" / ("best.pt" if spec.weights == "best" else "last.pt"), result


def _validate(spec: TrialSpec, weights: Path, hooks: _Hooks):
    """One validation of ``weights`` on the sweep's eval split in this process, its predictions held in memory: for
    a run whose closing validation happened elsewhere (multi-GPU training validates in Ultralytics' worker process)
    or on another split or head output (``spec.eval_split`` test; an end-to-end head validated with NMS).

    An end-to-end head (YOLO26) is validated on its NMS-free one-to-one output, as it is meant to be used."""
    from ultralytics import YOLO

    from .._ultralytics import end_to_end_val_args, record_predictions

    from ..scoring import scorer

    seen, extras = {}, scorer(spec.task).log_extras
    vmodel = YOLO(str(weights), task=spec.task)
    vmodel.add_callback("on_val_start", hooks.set_threads)
    vmodel.add_callback("on_val_start", lambda v: seen.setdefault("log", record_predictions(v, log_extras=extras)))
    vmodel.add_callback("on_val_end", lambda v: seen.update(validator=v))
    vargs = dict(data=spec.data, imgsz=spec.imgsz, batch=_train_args(spec).get("batch", 16), split=spec.eval_split,
                 plots=False, project=str(Path(spec.trial_dir)), name="val", exist_ok=True, verbose=False, **VAL_ARGS,
                 **end_to_end_val_args(vmodel))
    if spec.device is not None:
        vargs["device"] = scoring_device(spec.device)
    vmodel.val(**vargs)
    hooks.set_threads()
    return Evaluation.of(seen["validator"], seen["log"].images, seen["log"].extras, spec.task)


def scoring_device(device):
    """The one device a trial is scored on: the first of several (``0,1``: DDP trained on both, one process scores)."""
    from .._ultralytics import ddp

    return str(device).split(",")[0].strip("[] ") if ddp.device_count(device) > 1 else device


@dataclass
class Evaluation:
    """The one validation pass that scores a trial: Ultralytics' metrics, and its predictions per image file
    (``x1 y1 x2 y2 conf cls`` in original-image pixels, :class:`yolo_attn._ultralytics.PredictionLog`)."""

    ultra: dict[str, float]
    predictions: dict[str, np.ndarray]
    im_files: list[str]  # the validation images, in the validator's order
    names: dict[int, str]
    extras: dict[str, dict] = field(default_factory=dict)  # the pass's other outputs per image file (masks)

    @classmethod
    def of(cls, validator, predictions: dict, extras: dict | None, task: str) -> "Evaluation":
        from ..scoring import scorer

        return cls(scorer(task).ultra(validator), predictions, [str(f) for f in validator.dataloader.dataset.im_files],
                   dict(validator.names), extras or {})


def _closing_evaluation(spec: TrialSpec, result, weights: Path, hooks: _Hooks) -> tuple[Evaluation, str]:
    """The validation that scores the trial and how it ran: the trainer's own when it ran in this process on the eval
    split and the head output the sweep scores (``final epoch`` with ``--weights last``, else ``closing validation``
    of ``best.pt``), or one more validation of ``weights`` here (``again``)."""
    from .._ultralytics import end_to_end_val_args

    validator = getattr(result.trainer, "validator", None)
    e2e = end_to_end_val_args(result.trainer.model)
    same_output = all(getattr(result.trainer.args, k, None) == v for k, v in e2e.items())
    if result.predictions is None or validator is None or spec.eval_split != "val" or not same_output:
        return _validate(spec, weights, hooks), "again"
    return Evaluation.of(validator, result.predictions, result.extras, spec.task), result.scored_by


def _score(spec: TrialSpec, rec: TrialRecord, ev: Evaluation) -> None:
    """COCO JSON of ground truth and predictions, their hash, and COCOeval (with the arrays for the bootstrap)."""
    from ..scoring import scorer

    tdir, task = Path(spec.trial_dir), scorer(spec.task)
    gt_images, keys = _ground_truth(ev.im_files, task.task)
    missing = [f for f in ev.im_files if f not in ev.predictions]
    if missing or len(ev.predictions) != len(ev.im_files):
        raise ValueError(f"the validation pass holds predictions for {len(ev.predictions)} images, the validation set has "
                         f"{len(ev.im_files)}" + (f" (none for {missing[0]})" if missing else ""))
    over = {f: len(v) for f, v in ev.predictions.items() if len(v) > VAL_ARGS["max_det"]}
    if over:
        f, n = next(iter(over.items()))
        raise ValueError(f"{len(over)} image(s) have more predictions than max_det={VAL_ARGS['max_det']} ({f}: {n})")
    gt = task.ground_truth(gt_images, ev.names)
    dets = task.detections(gt, {keys[f]: rows for f, rows in ev.predictions.items()},
                           {keys[f]: extra for f, extra in ev.extras.items()})
    cocoeval.write_json(gt, tdir / "gt_coco.json")
    pred_file = cocoeval.write_json(dets, tdir / "predictions_coco.json")
    rec.predictions_sha256 = hashlib.sha256(pred_file.read_bytes()).hexdigest()
    rec.n_detections = len(dets)
    res = task.score(gt, dets, max_det=VAL_ARGS["max_det"])  # the records were written and hashed above
    res.arrays.save(tdir / "eval.npz")
    rec.coco = {"map50": res.map50, "map": res.map}
    rec.n_val_images = len(gt_images)
    rec.eval = str((tdir / "eval.npz").relative_to(Path(spec.store_root))) if spec.store_root else str(tdir / "eval.npz")


def _fresh_trial_dir(spec: TrialSpec) -> Path:
    """The trial's folder, marked with its settings (a folder of other settings is refused, never overwritten),
    without a dead attempt's Ultralytics folders: Ultralytics appends to results.csv and prediction files."""
    tdir = Path(spec.trial_dir)
    mark_trial_folder(tdir, spec.trial_id, spec.settings_hash)
    for sub in ("train", "val"):
        if (tdir / sub).is_dir():
            shutil.rmtree(tdir / sub)
    return tdir


def run_trial(spec: TrialSpec, progress: Callable[[dict], None] | None = None) -> TrialRecord:
    """Train, validate and score one (model, seed); return its record (``status`` ok or failed). Never raises.

    ``record.stage_s`` splits the wall time: ``build`` (model, transfer, data loaders: up to the first
    epoch), ``train`` (the epochs with their validations), ``eval`` (the closing validation; with ``--weights
    last`` only the checkpoints' clean-up, the final epoch's validation having scored the trial), ``score`` (COCO JSON, COCOeval, evaluation arrays) and ``other`` (the rest: costs, records).
    """
    import torch

    threads = spec.threads or torch.get_num_threads()
    rec = spec.record(started_at=time.time(), threads=threads)
    t_start = time.perf_counter()
    hooks = _Hooks(spec, threads, progress)
    try:
        _run(spec, rec, hooks, t_start)
    except Exception as exc:  # a failed trial is recorded, the sweep goes on
        rec.fail(f"{type(exc).__name__}: {exc}", traceback.format_exc()[-4000:])
    finally:
        restore_cpu_threads(None, threads)
    rec.finished_at = time.time()
    rec.duration_s = time.perf_counter() - t_start
    if rec.stage_s is not None:
        rec.stage_s["other"] = round(max(rec.duration_s - sum(rec.stage_s.values()), 0.0), 3)
    return rec


def _run(spec: TrialSpec, rec: TrialRecord, hooks: _Hooks, t_start: float) -> None:
    from .. import _ultralytics  # noqa: F401  (registers the attention layers in this process)
    from ..scoring import scorer

    tdir = _fresh_trial_dir(spec)
    hooks.set_threads()
    rec.environment = environment(hooks.threads)
    rec.hardware = hardware(spec.device)
    model_ref = spec.model_ref
    if spec.pretrained and str(model_ref).endswith(".pt"):
        model_ref, rec.transfer = _make_pretrained(model_ref, spec.pretrained, spec.nc, tdir, spec.seed)
    with quiet_ultralytics(not spec.verbose):
        t_train = time.perf_counter()
        weights, result = _train(spec, model_ref, hooks)
        t_eval = time.perf_counter()
        report = result.trainer.transfer_report
        choice = result.trainer.optimizer_choice
        rec.optimizer = choice.as_dict() if choice is not None else None
        if report is not None:
            rec.transfer, rec.head_start = report.summary(), report.head_start()
        columns = scorer(spec.task).ultra_columns()  # the scored output's columns (boxes, masks, keypoints, classes)
        rec.start = _start_metrics(result.start_metrics, columns)
        rec.curve = _results_curve(weights.parents[1] / "results.csv", columns)
        ev, rec.scored_by = _closing_evaluation(spec, result, weights, hooks)
        eval_s = result.final_eval_s if rec.scored_by != "again" else time.perf_counter() - t_eval
    rec.ultra = ev.ultra
    rec.train_loss = hooks.loss
    t_score = time.perf_counter()
    _score(spec, rec, ev)
    built = hooks.train_started or t_train
    rec.stage_s = {k: round(v, 3) for k, v in (("build", built - t_start),
                                                ("train", t_eval - built - result.final_eval_s),
                                                ("eval", eval_s), ("score", time.perf_counter() - t_score))}
    rec.train_time_s, rec.train_images, rec.epochs_done = hooks.train_s, hooks.images, hooks.epochs
    if not hooks.epochs and rec.curve:  # trained by DDP worker processes: the epochs their results.csv holds
        rec.epochs_done = len(rec.curve)
    rec.train_images_per_s = hooks.images / hooks.train_s if hooks.train_s > 0 else None
    rec.run_dir = str(weights.parents[1])
    rec.status = "ok"
    if any(not math.isfinite(v) for v in (*rec.ultra.values(), *rec.coco.values())):
        rec.fail("non-finite metric")
