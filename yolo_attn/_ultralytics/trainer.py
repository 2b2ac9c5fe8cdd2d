"""Trainer hooks: weight matching, freezing, the training image size, seeded layer construction, the epoch-0
validation, the optimizer a run uses, and the predictions of a validation held in memory."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .frames import _running_parse_locals


def intersect_dicts(source: dict, target: dict) -> dict:
    """Ultralytics' own name-and-shape matching (``ultralytics.utils.torch_utils.intersect_dicts``, what
    ``DetectionModel.load`` copies): the tensors of ``source`` whose name exists in ``target`` with the same shape."""
    from ultralytics.utils.torch_utils import intersect_dicts as _intersect

    return _intersect(source, target)


def freeze_in_trainer(trainer, prefixes) -> list[str]:
    """Freeze the parameters of ``trainer.model`` whose names start with one of ``prefixes``; return their names.

    Runs after Ultralytics' own freeze step (which re-enables every gradient it does not freeze), and
    adds the prefixes to the trainer's ``freeze_layer_names`` so Ultralytics keeps those layers'
    BatchNorm in eval mode while training.
    """
    prefixes = tuple(prefixes)
    names = [n for n, p in trainer.model.named_parameters() if n.startswith(prefixes)]
    for n, p in trainer.model.named_parameters():
        if n.startswith(prefixes):
            p.requires_grad = False
    trainer.freeze_layer_names = list(trainer.freeze_layer_names) + list(prefixes)
    return names


def train_imgsz(imgsz: int, model) -> int:
    """The image size Ultralytics' trainer trains ``model`` at when asked for ``imgsz``.

    The trainer rounds the size up with ``check_imgsz`` to a multiple of the model's largest stride, at
    least 32 (its grid size), and never below that grid size; the same call is made here (its own warning
    silenced: the caller says which setting was rounded).
    """
    import logging

    from ultralytics.utils import LOGGER
    from ultralytics.utils.checks import check_imgsz

    stride = getattr(model, "stride", None)
    grid = max(int(stride.max()) if isinstance(stride, torch.Tensor) else 32, 32)
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        return int(check_imgsz(int(imgsz), stride=grid, floor=grid, max_dim=1))
    finally:
        LOGGER.setLevel(level)


# Seeded construction and the epoch-0 validation of a training run (the pretrained path of yolo_attn.train)
def layer_roles(d: dict) -> list[str]:
    """A role per row of model dict ``d``: module name, YAML arguments and the count of earlier rows with both equal.

    The role says which rows correspond across two models without depending on row positions: a stock
    ``Detect`` row has the same role in a model with inserted attention layers, and the k-th inserted
    ``SE [16]`` the same role in every model holding one.
    """
    import json

    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    seen: dict[str, int] = {}
    roles = []
    for row in rows:
        key = f"{row[2]}:{json.dumps(row[3], sort_keys=True, default=str)}"
        roles.append(f"{key}#{seen.get(key, 0)}")
        seen[key] = seen.get(key, 0) + 1
    return roles


def layer_seed(seed: int, role: str) -> int:
    """The generator seed of one layer role under run seed ``seed`` (63 bits of SHA-256 of both)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{int(seed)}|{role}".encode()).digest()[:8], "little") >> 1


class untrained_build:  # noqa: N801 - a context manager, like seeded_layers
    """Inside, the trainer's ``setup_model`` builds an untrained model: Ultralytics' own would read ``args.pretrained``
    with torch's full unpickler and apply ``args.freeze`` in the base model's layer indices, so both are hidden
    while it runs; layers are seeded per role (:class:`seeded_layers`). On exit the arguments read
    ``pretrained`` and ``freeze`` (the run's effective values), which yolo_attn's transfer and freeze then apply."""

    def __init__(self, args, seed: int, pretrained, freeze):
        self.args, self.seeded, self.restore = args, seeded_layers(seed), (pretrained, freeze)

    def __enter__(self):
        self.args.pretrained, self.args.freeze = False, None
        self.seeded.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            return self.seeded.__exit__(*exc)
        finally:
            self.args.pretrained, self.args.freeze = self.restore


class seeded_layers:  # noqa: N801 - used as a context manager, like torch.no_grad
    """Inside, every layer ``parse_model`` builds draws its initial values from its own seed, ``layer_seed(seed, role)``.

    The global torch generator is re-seeded when the first parameter of a new row is registered (torch's
    parameter-registration hook, before the layer's constructor initialises it), so each layer's random
    start depends only on the run seed and the layer's role (:func:`layer_roles`), not on the layers built
    before it: the same stock layers and the same head start alike in every model of one seed, whatever
    attention layers precede them. The CPU generator's state is restored on exit. A layer that draws random
    numbers before registering its first parameter draws those from the previous layer's stream.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._row: tuple[int, int] | None = None
        self._roles: dict[int, list[str]] = {}

    def _hook(self, module, name, param):
        loc = _running_parse_locals()
        if loc is None or not isinstance(loc.get("i"), int) or not isinstance(loc.get("d"), dict):
            return None
        d, i = loc["d"], loc["i"]
        roles = self._roles.setdefault(id(d), layer_roles(d))
        if self._row != (id(d), i) and i < len(roles):
            self._row = (id(d), i)
            torch.manual_seed(layer_seed(self.seed, roles[i]))
        return None

    def __enter__(self):
        self._rng = torch.random.get_rng_state()
        self._handle = nn.modules.module.register_module_parameter_registration_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        torch.random.set_rng_state(self._rng)
        return False


def validate_before_training(trainer) -> dict[str, float]:
    """Ultralytics' own per-epoch validation of ``trainer``'s model before its first training step.

    Call it from ``on_pretrain_routine_end`` (the EMA copy then equals the model). It runs the same
    validator and data loader as the validation after each epoch, so the numbers are comparable with
    ``results.csv``; the trainer's best fitness is left as it was (epoch 0 never becomes ``best.pt``).
    """
    names = tuple(getattr(trainer, "loss_names", None) or ())
    as_dict = not names  # newer Ultralytics: loss items are a dict whose names come from the first batch's loss
    if not names:  # set by Ultralytics from the first training batch's loss; before it, from the model's criterion
        from ultralytics.utils.torch_utils import unwrap_model

        model = unwrap_model(trainer.model)
        criterion = getattr(model, "criterion", None) or model.init_criterion()
        # an end-to-end head's criterion (YOLO26's E2ELoss) reports the items of its one-to-one branch; a classifier's
        # one loss has no names
        names = tuple(getattr(criterion, "loss_names", None) or getattr(getattr(criterion, "one2one", None), "loss_names",
                                                                        None) or ("loss",))
    had_epoch, best, loss = hasattr(trainer, "epoch"), trainer.best_fitness, getattr(trainer, "loss", None)
    trainer.loss_items = ({k: torch.zeros((), device=trainer.device) for k in names} if as_dict
                          else torch.zeros(len(names), device=trainer.device))  # older: one tensor (8.4.0)
    trainer.loss = torch.zeros((), device=trainer.device)  # validate() reads it as a fallback fitness
    trainer.epoch = trainer.start_epoch - 1
    try:
        metrics, _fitness = trainer.validate()
    finally:
        trainer.best_fitness, trainer.loss_items, trainer.loss = best, None, loss
        if not had_epoch:
            del trainer.epoch
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) or hasattr(v, "item")}


# The optimizer a training run uses (optimizer=auto resolves by the number of iterations)
@dataclass(frozen=True)
class OptimizerChoice:
    """The optimizer a run trains with: its class name, base learning rate and momentum; MuSGD's mixing factors."""

    name: str
    lr: float
    momentum: float | None
    muon: float | None = None  # MuSGD: weight of the Muon (orthogonalised) update
    sgd: float | None = None  # MuSGD: weight of the SGD update

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def optimizer_choice(optimizer: torch.optim.Optimizer) -> OptimizerChoice:
    """What Ultralytics' ``build_optimizer`` built: the lowest group learning rate is the base one (MuSGD boosts the
    class branches' groups)."""
    groups = optimizer.param_groups
    first = groups[0]
    momentum = first.get("momentum", (first.get("betas") or (None,))[0])
    muon, sgd = getattr(optimizer, "muon", None), getattr(optimizer, "sgd", None)
    return OptimizerChoice(type(optimizer).__name__, float(min(g["lr"] for g in groups)),
                           None if momentum is None else float(momentum),
                           None if muon is None else float(muon), None if sgd is None else float(sgd))


def train_iterations(n_images: int, batch: int, nbs: int, epochs: int) -> int:
    """The iteration count Ultralytics' trainer gives ``build_optimizer`` (what ``optimizer=auto`` decides by)."""
    return math.ceil(n_images / max(batch, nbs)) * epochs


def resolve_optimizer(name: str, lr0: float, momentum: float, nc: int, iterations: int) -> OptimizerChoice:
    """The optimizer Ultralytics' own ``build_optimizer`` picks for these settings (``auto`` included), built for a
    one-convolution stand-in model so that nothing is trained or loaded."""
    from types import SimpleNamespace

    from ultralytics.engine.trainer import BaseTrainer

    class _StandIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Conv2d(1, 1, 1))

    args = SimpleNamespace(optimizer=name, lr0=lr0, momentum=momentum, warmup_bias_lr=0.0)
    host = SimpleNamespace(args=args, data={"nc": nc})
    import logging

    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its choice is logged at INFO; the caller reports it
    try:
        opt = BaseTrainer.build_optimizer(host, _StandIn(), name=name, lr=lr0, momentum=momentum, iterations=iterations)
    finally:
        logger.setLevel(level)
    return optimizer_choice(opt)


def end_to_end_val_args(model) -> dict[str, Any]:
    """Validation arguments that make Ultralytics score an end-to-end head (YOLO26's one-to-one branch) NMS-free.

    Newer Ultralytics versions apply NMS to the one-to-many branch unless ``nms=False``; 8.4.0 reads ``nms`` as an
    export option (default False) and validates an end-to-end head NMS-free. ``{}`` for any other head.
    """
    net = getattr(model, "model", model)  # a YOLO wrapper or the DetectionModel
    head = net.model[-1] if isinstance(getattr(net, "model", None), nn.Sequential) else None
    return {"nms": False} if getattr(head, "one2one_cv2", None) is not None else {}


class PredictionLog:
    """The predictions of the validation pass that scores a run, image by image, held in memory (no ``save_txt`` files).

    ``images[im_file]`` is an ``(n, 6)`` float array ``x1 y1 x2 y2 conf cls`` in pixels of the original
    image: the boxes Ultralytics' validator scored, scaled back by the validator itself (``scale_preds``,
    what ``save_txt`` and ``save_json`` write); for rotated boxes ``(n, 7)``, ``xc yc w h angle conf cls``. Only
    passes that start while ``armed`` is true are copied (copying costs about as much as a tenth of the pass);
    ``passes`` counts every pass seen, ``recorded`` is the number of the pass ``images`` holds (0: none yet) and
    ``epoch`` the trainer epoch it ran at, if any.
    """

    def __init__(self, armed: bool = True, log_extras=None):
        self.images: dict[str, Any] = {}
        self.extras: dict[str, dict] = {}  # per image file: what ``log_extras`` keeps of the pass's other outputs
        self.log_extras = log_extras  # (outputs besides boxes as numpy arrays, the dataset dict) -> ``extras`` entry
        self.armed = armed
        self.passes = 0
        self.recorded = 0
        self.epoch: int | None = None

    def start_pass(self) -> bool:
        """A validation pass starts: counted; an armed log empties for it. Whether this pass is copied."""
        self.passes += 1
        if self.armed:
            self.images, self.extras, self.recorded, self.epoch = {}, {}, self.passes, None
        return self.armed


_ROW_KEYS = ("bboxes", "conf", "cls")  # what ``PredictionLog.images`` holds of a prediction


def record_predictions(validator, armed: bool = True, log_extras=None) -> PredictionLog:
    """Make ``validator`` keep the predictions of its latest armed pass in a :class:`PredictionLog`.

    Wraps two methods of this validator object: ``init_metrics`` (a pass starts: an armed log empties) and
    ``update_metrics`` (after Ultralytics scored a batch, an armed pass's predictions are copied, scaled to
    each original image). ``log_extras(outputs, data)`` is given each
    image's other scaled outputs (masks, keypoints) as numpy arrays and ``validator.data``; what it returns is kept
    in ``extras``.
    """
    log = PredictionLog(armed, log_extras)
    init_metrics, update_metrics = validator.init_metrics, validator.update_metrics
    copying = [False]
    if _is_classification(validator):
        return _record_classes(validator, log)

    def init(model):
        init_metrics(model)
        copying[0] = log.start_pass()
        if log.armed and log.log_extras is not None and getattr(validator, "process", None) is not None:
            from ultralytics.utils import ops

            # masks at the input's resolution, as Ultralytics computes them for save_json: scale_preds maps those to
            # the original image (the default, a quarter of it, would be mapped wrongly); its own mask mAP of the
            # pass is then of these masks too
            validator.process = ops.process_mask_native

    def update(preds, batch):
        update_metrics(preds, batch)  # Ultralytics' own scoring first (it may set classes to 0: single_cls)
        if not copying[0]:
            return
        for si, pred in enumerate(preds):
            pbatch = validator._prepare_batch(si, batch)
            scaled = validator.scale_preds(pred, pbatch) if len(pred["cls"]) else pred
            rows = torch.cat([scaled["bboxes"].float(), pred["conf"].float()[:, None], pred["cls"].float()[:, None]], 1)
            log.images[str(pbatch["im_file"])] = rows.cpu().numpy().astype("float64")
            if log.log_extras is not None:
                outputs = {k: v.cpu().numpy() for k, v in scaled.items() if k not in _ROW_KEYS and torch.is_tensor(v)}
                if "kpts" in outputs:  # 8.4.0's pose validator: the scaled keypoints (its 'keypoints' are unscaled)
                    outputs["keypoints"] = outputs.pop("kpts")
                log.extras[str(pbatch["im_file"])] = log.log_extras(outputs, validator.data)

    validator.init_metrics, validator.update_metrics = init, update
    return log


def _is_classification(validator) -> bool:
    from ultralytics.models.yolo.classify import ClassificationValidator

    return isinstance(validator, ClassificationValidator)


class SampleIds(torch.utils.data.Dataset):
    """A classification dataset whose items also carry their position (``sample``), and its image files in that
    order (``im_files``): a validation batch then says which image each row of class probabilities is of, whatever
    order the loader draws the images in (Ultralytics' classification loaders shuffle validation too)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.im_files = [str(s[0]) for s in dataset.samples]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "sample": i}

    def __getattr__(self, name: str):  # the wrapped dataset's own attributes (torch_transforms, samples, ...)
        if name in ("dataset", "im_files"):  # not set yet (while unpickling in a loader's worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _record_classes(validator, log: PredictionLog) -> PredictionLog:
    """:func:`record_predictions` of a classification validator: ``images[im_file]`` is the image's ``(1, nc)`` row of
    class probabilities (the scores Ultralytics ranks for its top-1 and top-5). The validator reads a loader of the
    same dataset whose batches name their images (:class:`SampleIds`), in order."""
    from ultralytics.data import build_dataloader

    loader = validator.dataloader
    if loader is not None and not isinstance(loader.dataset, SampleIds):
        validator.dataloader = build_dataloader(SampleIds(loader.dataset), loader.batch_size,
                                                getattr(loader, "num_workers", 0), shuffle=False, rank=-1)
    init_metrics, update_metrics = validator.init_metrics, validator.update_metrics
    copying = [False]

    def init(model):
        init_metrics(model)
        copying[0] = log.start_pass()

    def update(preds, batch):
        update_metrics(preds, batch)
        if not copying[0]:
            return
        if "sample" not in batch:
            raise RuntimeError("the classification validator's batches do not name their images (its loader was "
                               "replaced after yolo_attn's): the predictions cannot be scored image by image")
        files = validator.dataloader.dataset.im_files
        probs = preds.float().cpu().numpy().astype("float64")
        for i, row in zip(batch["sample"].tolist(), probs):
            log.images[files[int(i)]] = row[None, :]

    validator.init_metrics, validator.update_metrics = init, update
    return log


class final_eval_of:  # noqa: N801 - a context manager, like seeded_layers
    """Inside: Ultralytics' closing validation (``trainer.final_eval``) validates ``weights`` instead of ``best.pt``,
    or nothing with ``weights=None`` (the run was scored already); its clean-up of the checkpoints still runs.

    ``final_eval`` strips the optimizer from ``last.pt`` and ``best.pt`` and validates ``trainer.best`` if that
    file exists; here ``trainer.best`` names ``weights`` (or a file that does not exist) for the call, and
    ``best.pt`` is stripped afterwards as Ultralytics would have.
    """

    def __init__(self, trainer, weights=None):
        self.trainer, self.weights = trainer, weights

    def __enter__(self):
        self.best = self.trainer.best
        target = self.weights if self.weights is not None else self.best.with_name(".not-validated-again.pt")
        self.target = type(self.best)(target)
        self.trainer.best = self.target
        return self

    def __exit__(self, *exc):
        from ultralytics.utils import RANK
        from ultralytics.utils.torch_utils import strip_optimizer

        self.trainer.best = self.best
        if exc[0] is None and RANK in (-1, 0) and self.best.exists() and self.best.resolve() != self.target.resolve():
            strip_optimizer(self.best)  # rank 0's file (DDP): another rank would read it while it is written
        return False
