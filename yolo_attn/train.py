"""Training attention models with Ultralytics: ``train(**overrides)`` and ``yolo-attn train key=value ...``.

Arguments are Ultralytics' own training arguments (``model=``, ``data=``, ``epochs=``, ``imgsz=``,
``device=``, ...), validated by Ultralytics (an unknown key fails with the closest valid ones). On top
of plain Ultralytics training this module

* trains with the trainer of the model's task (:data:`TRAINERS`: :class:`AttnTrainerMixin` over Ultralytics'
  detection, segmentation, pose, OBB and classification trainers, defined at module level in yolo_attn):
  Ultralytics' multi-GPU DDP workers unpickle the trainer class by module, so they import yolo_attn (and with it the
  attention layers) before the model YAML is built there;
* gives CPU training every core: Ultralytics' ``select_device`` sets torch to ``cpu_count - 1``
  threads (1 on a 2-core machine, half the speed) for the whole process; the trainer sets the count
  given to :func:`train` (``threads=``; default :func:`cpu_threads`: every usable core, or the user's
  ``YOLO_ATTN_THREADS``) after each ``select_device``
  (trainer set-up and every validation). On a shared machine OpenMP's spin-waiting is bounded by
  :mod:`yolo_attn._threads` (set when ``yolo_attn`` is imported before torch);
* is offline-safe: plot labels use a local font instead of Ultralytics' Arial download (see
  :func:`yolo_attn._ultralytics.install_offline_font`), and no argument default fetches weights or data;
* returns a :class:`TrainResult` (final metrics of ``best.pt``, paths, wall time).

A model YAML may carry its own ``attn_init``, ``load`` (``structure`` or ``names``) and ``freeze`` under a
top-level ``yolo_attn:`` key (:mod:`yolo_attn.weights.options`); they override the run's values for that model.

Weight transfer (``pretrained=`` through :func:`yolo_attn.transfer_weights`) and the comparison sweep
(:mod:`yolo_attn.compare`) are built on this module. The weights reach the model in
:meth:`AttnTrainerMixin.setup_model` (a checkpoint read by the safe reader, the transfer of ``pretrained=``, a
model YAML's ``load`` and ``freeze``): override it for another way of loading weights. Pass
``callbacks={event: fn}`` to :func:`train` for progress reporting.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import _ultralytics

from ultralytics.models.yolo.classify import ClassificationTrainer  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.models.yolo.obb import OBBTrainer  # noqa: E402
from ultralytics.models.yolo.pose import PoseTrainer  # noqa: E402
from ultralytics.models.yolo.segment import SegmentationTrainer  # noqa: E402
from ultralytics.utils import DEFAULT_CFG, LOGGER  # noqa: E402

# With ray[tune] installed, Ultralytics' Ray Tune callback asks Ray for a trial id at every epoch even outside a
# Tune session, and Ray warns each time; outside Tune the answer (None) is expected, so that one warning is noise.
warnings.filterwarnings("ignore", message=r"`get_trial_id` is meant to only be called inside", category=UserWarning)

from . import _short_run  # noqa: E402

SHORT_RUN = _short_run.SHORT_RUN  # settings for short CPU runs (in yolo_attn/_short_run.py: importable without torch)


# Training arguments of yolo_attn itself (not Ultralytics'): name -> help
YOLO_ATTN_ARGS = {
    "trust": "True: unpickle a model=*.pt fully (runs code in the file; only for files you made) and let "
    "Ultralytics run the dataset YAML's download: entry when a split is missing. Default: read the .pt with "
    "yolo_attn's safe reader and never run a download:",
    "attn_init": "paper|identity: initialisation of every attention layer of the model YAML (identity: "
    "each starts as the identity, so pretrained= weights predict exactly as the stock model at epoch 0)",
    "attn_lr": "learning-rate multiplier of the attention layers' parameters (the inserted layers and the "
    "attention inside attention blocks), through their own optimizer parameter groups. Default 1",
}


def cpu_threads() -> int:
    """Threads for CPU training: ``YOLO_ATTN_THREADS`` if set, else every CPU this process may use.

    Ultralytics would use ``cpu_count - 1`` (1 on a 2-core machine, half the speed). The count does not
    depend on the machine's current load, so a run gives the same numbers whenever it is repeated (the
    thread count changes floating-point reduction order). Sharing the cores with other jobs is made
    safe by the bounded OpenMP spin-wait of :mod:`yolo_attn._threads`, not by a smaller count.
    """
    env = os.environ.get("YOLO_ATTN_THREADS")
    if env:
        return max(int(env), 1)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def restore_cpu_threads(device=None, n: int | None = None) -> int:
    """Undo Ultralytics' CPU thread setting (only for CPU devices); return the thread count in use."""
    if device is None or getattr(device, "type", str(device)) == "cpu":
        n = n or cpu_threads()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()


def _restore_threads_callback(obj) -> None:  # trainer or validator callback
    """Set the thread count the run chose (``obj.threads``: the trainer's, handed to its validators) again."""
    restore_cpu_threads(getattr(obj, "device", None), getattr(obj, "threads", None))


class AttnTrainerMixin:
    """What yolo_attn adds to Ultralytics' trainer of any task: yolo_attn active, all CPU threads, offline-safe plots.

    With ``pretrained=stock.pt`` and a model YAML, the pretrained weights arrive through
    :func:`yolo_attn.transfer_weights` (structure-aware, shape-checked, read without running pickled
    code) instead of Ultralytics' name matching, and the transfer report is printed and saved as
    ``transfer.json`` in the run folder. ``freeze=`` is then read in the *base* model's layer indices
    (or ``freeze=backbone``) and translated to the attention model's layers; attention layers and the
    attention inside replaced C3 blocks stay trainable.
    """

    transfer_report = None  # TransferReport of the last set-up, if pretrained weights were transferred
    start_metrics: dict[str, float] | None = None  # validation of the transferred model before any training step
    attn_lr = 1.0  # learning-rate multiplier of the attention parameters (build_optimizer)
    optimizer_choice = None  # _ultralytics.OptimizerChoice: the optimizer build_optimizer built
    trust = False  # model=*.pt: False reads it with yolo_attn's safe reader, True unpickles it fully (runs its code)
    frozen: list[str] = []  # parameter-name prefixes frozen through the base-index translation
    final_weights = "best"  # the checkpoint of the closing validation: best (Ultralytics' choice) or last
    predictions = None  # _ultralytics.PredictionLog of the validator: the latest pass's predictions, in memory
    closing_predictions: dict | None = None  # the scoring validation's predictions (PredictionLog.images), if it ran here
    closing_extras: dict | None = None  # and its other outputs (PredictionLog.extras: masks of segment models)
    scored_by: str | None = None  # that validation: "final epoch" (its own pass) or "closing validation" (of a checkpoint)
    final_eval_s = 0.0  # wall time of the closing validation

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None,
                 threads: int | None = None):
        super().__init__(cfg, overrides, _callbacks)
        _ultralytics.ddp.enable_cpu_ddp(self)  # YOLO_ATTN_CPU_DDP=N: a CPU run through the DDP path (tests)
        parent = _ultralytics.ddp.parent_settings()  # in a DDP worker: the settings of the trainer that launched it
        for key in ("trust", "attn_lr", "final_weights"):
            if key in parent:
                setattr(self, key, parent[key])
        # select_device() in BaseTrainer.__init__ set cpu_count - 1 threads; ``threads`` (default cpu_threads()) instead
        self.threads = restore_cpu_threads(self.device, threads or parent.get("threads"))
        # (newer Ultralytics hands a DDP worker the launching trainer's callbacks: each is added once)
        for event, fn in (("on_pretrain_routine_end", _restore_threads_callback), ("on_val_start", _restore_threads_callback),
                          ("on_pretrain_routine_end", _apply_translated_freeze),
                          ("on_pretrain_routine_end", _validate_transferred_start)):  # validators call select_device()
            if fn not in self.callbacks.setdefault(event, []):
                self.callbacks[event].append(fn)

    def train(self):
        """Ultralytics' training; with several devices (DDP) its worker processes get this trainer's yolo_attn
        settings (:func:`yolo_attn._ultralytics.ddp.settings_for_workers`), and nothing of the closing validation is
        held here (every rank validated a share of the images): ``predictions`` stay None."""
        if not _ultralytics.ddp.launches_ddp(self):
            return super().train()
        settings = {"trust": self.trust, "attn_lr": self.attn_lr, "final_weights": self.final_weights,
                    "threads": self.threads}
        with _ultralytics.ddp.settings_for_workers(settings):
            return super().train()

    def _read_model_checkpoint(self):
        """``model=*.pt`` through yolo_attn's safe reader (unless ``trust``); the model is then built from its YAML."""
        if self.trust or self.resume or not str(self.model).lower().endswith(".pt"):
            return None  # resume: Ultralytics reads the run's own last.pt
        import copy

        from .weights import read_model_checkpoint

        weights = read_model_checkpoint(self.model)
        self.model = copy.deepcopy(weights.yaml)  # built like a YAML below; no pickled code runs
        return weights

    def setup_model(self):
        """Build the model; ``pretrained=`` weights arrive through yolo_attn's transfer, never Ultralytics' loader
        (how the model starts: :func:`yolo_attn.weights.decide_start`)."""
        if self.resume or isinstance(self.model, torch.nn.Module):
            return super().setup_model()  # resume: Ultralytics reads the run's own last.pt (a clean copy unless trust)
        from .weights import decide_start

        start = decide_start(self.model, self.args.pretrained, freeze=self.args.freeze)
        weights = self._read_model_checkpoint()
        if start.source is not None:
            return self._setup_from(start)
        ckpt = super().setup_model()
        if weights is not None:
            from .weights import adapt_class_branch_to

            adapt_class_branch_to(self.model, weights.state_dict())  # keep a transfer's widened class branch
            self.model.load(weights)  # Ultralytics' own name/shape load, as for model=*.pt
        return ckpt

    def _setup_from(self, start):
        """The model built untrained, then ``start.source``'s weights brought in and its base-index freeze translated
        (:func:`yolo_attn.weights.load_start`; the checkpoint read once per process, safely)."""
        from .weights import load_checkpoint, load_start

        # Ultralytics builds an untrained model; what the transfer leaves at init (attention, a new head) starts from
        # the run's seed, per layer role
        with _ultralytics.untrained_build(self.args, self.args.seed, start.source, start.freeze):
            ckpt = super().setup_model()
        self.transfer_report, self.frozen = load_start(start, load_checkpoint(start.source), self.model)
        how = "by name and shape (Ultralytics' matching; yolo_attn.load: names)" if start.by_name else "by structure"
        LOGGER.info(f"yolo_attn: weight transfer from {start.source} {how}\n{self.transfer_report.table()}")
        if start.frozen:
            self._freeze_arg, self.args.freeze = start.freeze, None  # applied after Ultralytics' freeze step, in target names
        return ckpt

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        """Ultralytics' optimizer; with ``attn_lr`` != 1 the attention parameters move to groups of their own at ``lr * attn_lr``."""
        optimizer = super().build_optimizer(model, name=name, lr=lr, momentum=momentum, decay=decay, iterations=iterations)
        self.optimizer_choice = _ultralytics.optimizer_choice(optimizer)  # what optimizer=auto resolved to, recorded
        if self.attn_lr != 1.0:
            n = split_attention_groups(optimizer, attention_parameters(model), self.attn_lr)
            LOGGER.info(f"yolo_attn: {n} attention parameter tensors train at {self.attn_lr} x the learning rate")
        return optimizer

    def get_validator(self):
        validator = super().get_validator()
        validator.threads = self.threads  # its on_val_start callback restores the run's count after select_device()
        from .scoring import SCORERS

        if self.args.task in SCORERS:  # what the sweep scores: the pass's boxes, and masks for segment
            extras = SCORERS[self.args.task].log_extras
            self.predictions = _ultralytics.record_predictions(validator, armed=False, log_extras=extras)
        return validator

    def validate(self):
        """Ultralytics' per-epoch validation; with ``final_weights`` last, the final epoch's predictions are kept."""
        log = self.predictions
        if log is None:
            return super().validate()
        log.armed = self.final_weights == "last" and self.epoch + 1 >= self.epochs
        try:
            return super().validate()
        finally:
            if log.armed:
                log.epoch = self.epoch
            log.armed = False

    def final_eval(self):
        """Ultralytics' closing validation: of ``best.pt``, or with ``final_weights`` last the final epoch's own.

        With ``last``, the validation that ended the final epoch scored the very weights ``last.pt`` holds (in
        full precision; the file keeps them in half precision), so it is not run again: Ultralytics' clean-up
        of the checkpoints still runs, and ``scored_by`` says ``final epoch``. When that pass is not the latest
        one (training stopped early) ``last.pt`` is validated again, as ``best.pt`` is otherwise.
        """
        t0, log = time.perf_counter(), self.predictions
        if self.final_weights == "last" and self._final_epoch_scored():
            with _ultralytics.final_eval_of(self, None):
                super().final_eval()
            self.metrics = {k: v for k, v in (self.metrics or {}).items() if k.startswith("metrics/")}
            self.closing_predictions, self.closing_extras, self.scored_by = log.images, log.extras, "final epoch"
        else:
            passes = log.passes if log is not None else 0
            if log is not None:
                log.armed = True
            try:
                if self.final_weights == "last":
                    with _ultralytics.final_eval_of(self, self.last):
                        super().final_eval()
                else:
                    super().final_eval()
            finally:
                if log is not None:
                    log.armed = False
            ran = log is not None and log.recorded > passes
            self.closing_predictions, self.scored_by = (log.images, "closing validation") if ran else (None, None)
            self.closing_extras = log.extras if ran else None
        self.final_eval_s = time.perf_counter() - t0

    def _final_epoch_scored(self) -> bool:
        log = self.predictions
        return (log is not None and log.recorded and log.recorded == log.passes and log.epoch == self.epoch
                and self.epoch + 1 >= self.epochs)

    def save_model(self):
        saved = super().save_model()  # Ultralytics runs on_model_save only when this is true
        if self.transfer_report is not None:
            import json

            (Path(self.save_dir) / "transfer.json").write_text(json.dumps(self.transfer_report.as_dict(), indent=1))
        return saved


def _apply_translated_freeze(trainer) -> None:
    """Freeze the parameters named by the base-index ``freeze`` (after Ultralytics re-enabled every gradient)."""
    prefixes = tuple(getattr(trainer, "frozen", ()) or ())
    if not prefixes:
        return
    names = _ultralytics.freeze_in_trainer(trainer, prefixes)  # BN layers of frozen prefixes stay in eval mode
    trainer.args.freeze = getattr(trainer, "_freeze_arg", trainer.args.freeze)  # saved train_args keep the user's value
    LOGGER.info(f"yolo_attn: froze {len(names)} tensors in {len(prefixes)} layers given in base indices: {', '.join(prefixes)}")


def _validate_transferred_start(trainer) -> None:
    """Epoch 0 of a run from transferred weights: the validation before any training step (``start_metrics``)."""
    if trainer.transfer_report is not None and trainer.args.val:
        trainer.start_metrics = _ultralytics.validate_before_training(trainer)
        key = TASK_METRICS.get(getattr(trainer.args, "task", "detect"), "fitness")
        LOGGER.info(f"yolo_attn: before training {key} {trainer.start_metrics.get(key, float('nan')):.4f}")


# One trainer per Ultralytics task, defined at module level: Ultralytics' multi-GPU (DDP) workers import the trainer
# class by its module and name, and with it yolo_attn and the attention layers.
class AttnDetectionTrainer(AttnTrainerMixin, DetectionTrainer):
    """Ultralytics' detection trainer with what :class:`AttnTrainerMixin` adds."""


class AttnSegmentationTrainer(AttnTrainerMixin, SegmentationTrainer):
    """Ultralytics' instance-segmentation trainer with what :class:`AttnTrainerMixin` adds."""


class AttnPoseTrainer(AttnTrainerMixin, PoseTrainer):
    """Ultralytics' pose trainer with what :class:`AttnTrainerMixin` adds."""


class AttnOBBTrainer(AttnTrainerMixin, OBBTrainer):
    """Ultralytics' oriented-box trainer with what :class:`AttnTrainerMixin` adds."""


class AttnClassificationTrainer(AttnTrainerMixin, ClassificationTrainer):
    """Ultralytics' classification trainer with what :class:`AttnTrainerMixin` adds."""


TRAINERS = {"detect": AttnDetectionTrainer, "segment": AttnSegmentationTrainer, "pose": AttnPoseTrainer,
            "obb": AttnOBBTrainer, "classify": AttnClassificationTrainer}
# The metric each task's validator reports for a run (Ultralytics' keys): what the log and ``TrainResult.score`` show
TASK_METRICS = {"detect": "metrics/mAP50-95(B)", "segment": "metrics/mAP50-95(M)", "pose": "metrics/mAP50-95(P)",
                "obb": "metrics/mAP50-95(B)", "classify": "metrics/accuracy_top1"}


def attention_parameters(model) -> list[torch.nn.Parameter]:
    """Parameters inside attention layers (registered ``preserve`` layers, also those inside blocks), in model order."""
    from ultralytics.utils.torch_utils import unwrap_model

    from .registry import LAYERS

    preserve = tuple(s.cls for s in LAYERS if s.kind == "preserve")
    seen, out = set(), []
    for m in unwrap_model(model).modules():
        if isinstance(m, preserve):
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out


def split_attention_groups(optimizer, params, factor: float) -> int:
    """Move ``params`` out of each parameter group into a copy of that group at ``factor`` x its learning rate.

    The copies keep every other setting of their group (weight decay, Ultralytics' ``param_group`` name,
    so warm-up and the scheduler treat them like the group they came from). Returns the tensors moved.
    """
    ids = {id(p) for p in params}
    moved = 0
    for group in list(optimizer.param_groups):
        mine = [p for p in group["params"] if id(p) in ids]
        if not mine:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in ids]
        settings = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
        optimizer.add_param_group({**settings, "params": mine, "lr": group["lr"] * factor})
        moved += len(mine)
    return moved


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        metrics: final validation of ``best.pt`` (of ``last.pt`` with ``final_weights="last"``): ``metrics/precision(B)``, ``metrics/recall(B)``,
            ``metrics/mAP50(B)``, ``metrics/mAP50-95(B)``, ``fitness`` (Ultralytics' names).
        save_dir: the run folder (``results.csv``, plots, ``weights/``).
        best, last: checkpoint paths.
        seconds: wall time of the whole training call.
        args: the resolved Ultralytics arguments.
        trainer: the trainer object (per-epoch state, validator with its ``DetMetrics``).
    """

    metrics: dict[str, float]
    save_dir: Path
    best: Path
    last: Path
    seconds: float
    args: dict[str, Any] = field(repr=False)
    trainer: Any = field(repr=False)
    start_metrics: dict[str, float] | None = None  # with transferred pretrained= weights: validation before training
    predictions: dict | None = field(default=None, repr=False)  # the scoring validation's predictions per image file
    # (_ultralytics.PredictionLog.images: x1 y1 x2 y2 conf cls in original-image pixels); None if it ran elsewhere (DDP)
    final_eval_s: float = 0.0  # wall time of the closing validation (included in ``seconds``)
    scored_by: str | None = None  # the validation ``metrics`` and ``predictions`` are of: "final epoch" or "closing validation"

    task: str = "detect"  # Ultralytics' task of the model (its head): detect, segment, pose, obb or classify
    extras: dict | None = field(default=None, repr=False)  # the scoring validation's other outputs per image (masks)
    ddp: bool = False  # trained by Ultralytics' DDP worker processes (several devices): no metrics held here

    def summary(self) -> str:
        """The run's main metrics in words: mAP50 and mAP50-95 of each output (B box, M mask, P pose), or accuracy."""
        out = {"(B)": "box", "(M)": "mask", "(P)": "pose"}
        parts = [f"{out.get(k[-3:], '')} {k[len('metrics/'):-3] if k[-3:] in out else k[len('metrics/'):]} {v:.3f}".strip()
                 for k, v in self.metrics.items() if k.startswith("metrics/") and ("mAP" in k or "accuracy" in k)]
        if not parts and self.ddp:
            return "trained on several devices (DDP): each epoch's validation is in results.csv"
        return "  ".join(parts) or "no metrics (validation off)"

    @property
    def map50(self) -> float:
        return float(self.metrics.get("metrics/mAP50(B)", 0.0))

    @property
    def map(self) -> float:
        return float(self.metrics.get("metrics/mAP50-95(B)", 0.0))


def check_args(overrides: dict[str, Any]) -> dict[str, Any]:
    """Validate keys and values with Ultralytics' own checks; raise ``ValueError`` naming the bad argument.

    Unknown keys name the closest valid ones; values of a wrong type (``lr0='1e6'``) or out of range
    (``lr0=1e6``, ``fraction=2``) fail here instead of inside a trainer.
    """
    _check_sizes(overrides)
    _ultralytics.check_train_args(overrides)
    return overrides


def _check_sizes(overrides: dict[str, Any]) -> None:
    """``batch`` and ``imgsz`` values that Ultralytics would silently replace (its checks pass them through).

    ``batch=0`` or ``batch=-5`` would start AutoBatch (16 on a CPU), ``batch=2.5`` fails inside the data
    loader, ``imgsz=0`` would train at 32.
    """
    batch = overrides.get("batch")
    if batch is not None and not isinstance(batch, bool) and isinstance(batch, (int, float)):
        if not (batch == -1 or (batch >= 1 and float(batch).is_integer()) or 0 < batch < 1):
            raise ValueError(f"'batch={batch}' is an invalid value: use a positive whole number of images, -1 for "
                             "Ultralytics' AutoBatch, or a fraction 0 < batch < 1 of GPU memory for AutoBatch")
    imgsz = overrides.get("imgsz")
    sizes = imgsz if isinstance(imgsz, (list, tuple)) else [imgsz]
    if imgsz is not None and any(isinstance(v, (int, float)) and not isinstance(v, bool) and v < 1 for v in sizes):
        raise ValueError(f"'imgsz={imgsz}' is an invalid value: image sizes are positive numbers of pixels")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """Parse Ultralytics-style ``key=value`` tokens with Ultralytics' own helpers and type coercion.

    ``epochs=3`` -> ``{"epochs": 3}``, ``lr0=1e-3`` -> float, ``plots=False`` -> bool, ``imgsz=[128,160]``
    -> list, ``device=cpu`` -> str. A bare boolean key (``plots``) means ``True``. Unknown keys, missing
    values and stray words raise ``ValueError``.
    """
    overrides = _ultralytics.parse_cli_tokens(argv)
    own = {k: overrides.pop(k) for k in list(overrides) if k in YOLO_ATTN_ARGS}
    return {**check_args(overrides), **own}


def _resolve(overrides: dict[str, Any], trust: bool, scratch: Path) -> dict[str, Any]:
    """The run's arguments: ``cfg=`` merged, every file argument through :mod:`yolo_attn.file_args`, checked."""
    from . import file_args

    args = file_args.gate_checkpoints(file_args.expand_cfg(overrides), trust, scratch)
    if not args.get("model"):
        raise ValueError("model= is required (a model YAML such as yolov5n-se-neck.yaml, or a .pt)")
    args["task"] = _task(args)
    if not args.get("data"):
        from .datasets import shapes_data

        args["data"] = str(shapes_data(args["task"]))
        LOGGER.info(f"yolo_attn: no data= given, training on the synthetic shapes dataset of {args['task']} "
                    f"({args['data']})")
    from .datasets.check import require_data

    # checked as compare checks it; Ultralytics gets the checked copy (absolute paths, the YAML's download:
    # entry left out: it runs only with --trust), or a classification dataset's folder
    args["data"] = require_data(args["data"], trust=trust, task=args["task"])
    args["mode"] = "train"
    return check_args(args)


def _task(args: dict[str, Any]) -> str:
    """The run's task: the model's own (its head); a ``task=`` that names another is refused."""
    from .models import model_task_of

    task = model_task_of(args["model"], trust=bool(args.get("trust")))
    given = args.get("task")
    if given not in (None, "", task):
        raise ValueError(f"task={given}: model={args['model']} is a {task} model (its head decides the task; "
                         f"leave task= out or give task={task})")
    return task


def train(callbacks: dict[str, Callable | list[Callable]] | None = None, final_weights: str = "best",
          threads: int | None = None, **overrides) -> TrainResult:
    """Train a model YAML (or checkpoint) with the attention layers registered; return a :class:`TrainResult`.

    Args:
        callbacks: extra Ultralytics callbacks, ``{"on_fit_epoch_end": fn, ...}`` (``fn(trainer)``).
        **overrides: Ultralytics training arguments, e.g. ``model="yolov5n-se-neck.yaml",
            data="data/shapes.yaml", epochs=10, imgsz=128`` (``data`` defaults to the shipped shapes
            dataset; ``cfg=`` names a YAML of arguments that explicit ones override). See
            :data:`SHORT_RUN` for settings that suit a few epochs on a CPU.
        final_weights: the weights the closing validation evaluates: ``best`` (Ultralytics' choice, ``best.pt``) or
            ``last``, scored by the final epoch's own validation (``last.pt`` holds those weights in half precision;
            validated again only if training stopped early); ``TrainResult.metrics`` and ``.predictions`` are of it.
        threads: CPU threads of the run (default :func:`cpu_threads`); Ultralytics' own choice is undone after
            each of its ``select_device`` calls.
    """
    if final_weights not in ("best", "last"):
        raise ValueError(f"final_weights={final_weights!r}: expected best or last")
    import shutil
    import tempfile

    _ultralytics_offline_font()
    overrides = dict(overrides)
    attn_init = overrides.pop("attn_init", None)
    trust = bool(overrides.pop("trust", False))
    attn_lr = _attn_lr(overrides.pop("attn_lr", 1.0))
    cbs = _callbacks(callbacks)
    scratch = Path(tempfile.mkdtemp(prefix="yolo-attn-run-"))  # clean copies and the init YAML; removed at the end
    try:
        args = _resolve(overrides, trust, scratch)
        args["model"] = _with_attn_init(args, attn_init, scratch)
        t0 = time.perf_counter()
        trainer = TRAINERS[args["task"]](overrides=args, _callbacks=cbs, threads=threads)
        trainer.trust, trainer.attn_lr, trainer.final_weights = trust, attn_lr, final_weights
        trainer.train()
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    metrics = {k: float(v) for k, v in (trainer.metrics or {}).items() if isinstance(v, (int, float))}
    return TrainResult(
        metrics=metrics,
        save_dir=Path(trainer.save_dir),
        best=Path(trainer.best),
        last=Path(trainer.last),
        seconds=seconds,
        args=vars(trainer.args).copy(),
        trainer=trainer,
        start_metrics=trainer.start_metrics,
        predictions=trainer.closing_predictions,
        final_eval_s=trainer.final_eval_s,
        scored_by=trainer.scored_by,
        task=args["task"],
        extras=trainer.closing_extras,
        ddp=_ultralytics.ddp.launches_ddp(trainer),
    )


def _callbacks(extra: dict | None) -> dict:
    """Ultralytics' default callbacks with the caller's ``{event: fn or [fn, ...]}`` added; an unknown event refused."""
    from ultralytics.utils import callbacks as ul_callbacks

    cbs = ul_callbacks.get_default_callbacks()
    for event, fns in (extra or {}).items():
        if event not in cbs:
            raise ValueError(f"unknown callback event {event!r}; events: {', '.join(sorted(cbs))}")
        cbs[event].extend(fns if isinstance(fns, (list, tuple)) else [fns])
    return cbs


def _with_attn_init(args: dict, attn_init, scratch: Path) -> str:
    """The model to train: the model YAML rewritten with its ``attn_init`` (the run's or its own) in ``scratch``."""
    attn_init = _run_start(args, attn_init).attn_init
    if attn_init is not None and str(args["model"]).lower().endswith(".pt"):
        raise ValueError(f"attn_init={attn_init}: applies to a model YAML, but model={args['model']} is a checkpoint "
                         "(its attention layers were initialised when it was made; yolo-attn transfer --init sets it)")
    if attn_init is None:
        return args["model"]
    from .models import write_model_yaml

    # the trainer (and DDP workers) rebuild the model from a YAML file
    model = str(write_model_yaml(args["model"], scratch / "model", attn_init))
    LOGGER.info(f"yolo_attn: attention layers built with init={attn_init} ({model})")
    return model


def _run_start(args: dict, attn_init):
    """How the run's model starts (:func:`yolo_attn.weights.decide_start`: its YAML's ``yolo_attn:`` key against the
    run's values), checked before anything is built. ``train`` applies its ``attn_init``; the trainer's set-up brings
    in ``pretrained`` (its ``load``) and freezes."""
    from .weights import decide_start

    model = args["model"]
    start = decide_start(model, args.get("pretrained"), freeze=args.get("freeze"), attn_init=attn_init)
    if not start.options.empty:
        LOGGER.info(f"yolo_attn: options of {Path(str(model)).name} (its yolo_attn: key): {start.options.describe()}")
    return start


def _attn_lr(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ValueError(f"attn_lr={value!r}: expected a positive number (the attention layers' learning-rate multiplier)")
    return float(value)


def validate(model, data: str | Path | None = None, **overrides) -> dict[str, float]:
    """Validate a detection model with Ultralytics' ``DetectionValidator`` and return its metrics dict.

    ``model`` is a ``DetectionModel``, a checkpoint (``best.pt``) or a model YAML (built untrained, with
    the dataset's class count and names: the "before training" reference). ``overrides`` are
    Ultralytics validation arguments (``imgsz``, ``batch``, ``conf``, ``iou``, ...); plots are off unless
    asked for. ``data`` defaults to the shipped shapes dataset.
    """
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import callbacks as ul_callbacks

    _ultralytics_offline_font()
    if not data:
        from .datasets import shapes_yaml

        data = shapes_yaml()
    from .datasets import resolve_dataset

    data = resolve_dataset(data).yaml  # the checked copy: no download: entry runs
    args = check_args({"plots": False, **overrides, "data": str(data), "task": "detect", "mode": "val"})
    if isinstance(model, (str, Path)) and Path(str(model)).suffix in (".yaml", ".yml"):
        from .models import build_model

        info = check_det_dataset(args["data"])
        model = build_model(model, nc=info["nc"])
        model.names = info["names"]
    cbs = ul_callbacks.get_default_callbacks()
    cbs["on_val_start"].append(_restore_threads_callback)
    stats = DetectionValidator(args=args, _callbacks=cbs)(model=model)
    return {k: float(v) for k, v in (stats or {}).items() if isinstance(v, (int, float))}


def _ultralytics_offline_font() -> None:
    _ultralytics.install_offline_font()
