"""The models an export check exports: a model file given by the user, or one model per registered layer.

Every model is written as a checkpoint into the check's work folder and opened with ``YOLO(path)``, so that
Ultralytics' exporter writes its files beside it (never into the package or the current folder). A ``.pt``
is read by yolo_attn's safe reader first (:func:`yolo_attn.models.build_model`), like every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..registry import LAYERS, LayerSpec

BASE_SCALE = "n"
# The Ultralytics block a yolo_attn block layer derives from -> (base model, its block's placement name).
_BLOCK_BASES = {"C3": ("yolov5", "c3"), "C2f": ("yolov8", "c2f"), "C3k2": ("yolo11", "c3k2"), "A2C2f": ("yolo12", "a2c2f")}
# The placement of a block layer's check model: the last backbone block, except where the base's placement of
# that block has no backbone-end form (YOLO12's area-attention blocks: every A2C2f that has area attention).
_BLOCK_PLACEMENT = {"a2c2f": "a2c2f"}
INNER_LAYER = "SE"  # the attention inside a block layer of the per-layer check


@dataclass
class CheckModel:
    """A model ready for export: its name, the attention layers in it, the ``YOLO`` object and its checkpoint."""

    name: str
    layers: tuple[str, ...]
    yolo: Any
    checkpoint: Path
    synthetic: bool  # untrained weights (a model YAML): the head's class scores are spread (spread_class_scores)
    task: str = "detect"  # Ultralytics' task of its head (yolo_attn.deploy.tasks): the outputs compared

    @property
    def imgsz(self) -> int | None:
        args = getattr(self.yolo.model, "args", None) or {}
        return args.get("imgsz") if isinstance(args, dict) else None


def attention_layers(model: torch.nn.Module) -> tuple[str, ...]:
    """Registered layer names of a built model's rows, in order, without repeats."""
    names = []
    for m in getattr(model, "model", ()):
        name = type(m).__name__
        if name in LAYERS and name not in names:
            names.append(name)
    return tuple(names)


def _block_base(spec: LayerSpec) -> tuple[str, str]:
    for cls in spec.cls.__mro__:
        if cls.__module__.startswith("ultralytics.") and cls.__name__ in _BLOCK_BASES:
            return _BLOCK_BASES[cls.__name__]
    raise ValueError(f"{spec.name}: block layer derived from none of {', '.join(_BLOCK_BASES)}")


def layer_model_dict(spec: LayerSpec) -> tuple[dict, str]:
    """``(model dict, file name)`` of the per-layer check model: YOLOv5n with ``spec`` at backbone-end.

    Block layers replace the last backbone block of the base they derive from (``C3Attn``: YOLOv5n, with SE
    in its bottlenecks; ``AttnC2f``: YOLOv8n; ``AttnC3k2``: YOLO11n; the FMM blocks likewise), except
    ``AttnA2C2f``, which replaces the area attention of every YOLO12n ``A2C2f`` that has it (``a2c2f``).
    """
    from ..placement import make_yaml

    if spec.kind == "preserve":
        d, _ = make_yaml("yolov5.yaml", spec.name, [], "backbone-end")
        return d, f"yolov5{BASE_SCALE}-{spec.name.lower()}-backbone-end.yaml"
    base, block = _block_base(spec)
    if spec.family == "fmm":
        d, _ = make_yaml(f"{base}.yaml", None, None, "fmm-backbone-end")
        where = "backbone-end"
    else:
        where = _BLOCK_PLACEMENT.get(block, f"{block}-backbone-end")
        d, _ = make_yaml(f"{base}.yaml", INNER_LAYER, [], where)
        where = where.removeprefix(f"{block}-") if where != block else where
    return d, f"{base}{BASE_SCALE}-{spec.name.lower()}-{where}.yaml"


LOGIT_MEAN, LOGIT_STD = -2.0, 2.0  # class logits of the synthetic head on the check images


def _class_convs(model: torch.nn.Module) -> list[torch.nn.Conv2d]:
    """The last convolution of each class branch of the model's head: Detect's, and the Segment, Pose and OBB heads'
    built on it (and their YOLO26 forms); none for a classifier."""
    from .._ultralytics import detect_class_branches

    layers = getattr(model, "model", None)
    if not isinstance(layers, torch.nn.Sequential) or not len(layers):
        return []
    convs = []
    for _, branch in detect_class_branches(layers[-1]):
        convs += [level[-1] for level in branch if isinstance(level[-1], torch.nn.Conv2d)]
    return convs


def _batches(images: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    """``images``: one batch, or a list of batches at different sizes (every size the check compares)."""
    return list(images) if isinstance(images, (list, tuple)) else [images]


def _forward(model: torch.nn.Module, batch: torch.Tensor) -> None:
    try:
        model(batch)
    except RuntimeError as exc:
        raise RuntimeError(f"the model does not run on {tuple(batch.shape)} images (a size the check compares): "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


def calibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor | list[torch.Tensor]) -> None:
    """Set every BatchNorm's running statistics to those of its input on ``images`` (one forward pass per batch,
    the batches averaged: give every size the check compares, see :func:`yolo_attn.deploy.check.calibration_images`).

    Untrained, each convolution shrinks its input's spread (PyTorch's default initialisation), so by the head
    the features hardly depend on the image (standard deviations of 1e-6 were measured at YOLOv5n's P5) and
    float rounding would dominate any comparison. Normalised by their measured statistics, the features keep
    a unit spread through the network, like a trained model's, at each size they were measured at (calibrated at
    64 x 64 only, YOLO11n-seg's SPPF output reached 299 at 64 x 128 against 6.5, its class logits 600).
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: exactly the statistics of these passes
    model.train()
    try:
        with torch.no_grad():
            for batch in _batches(images):
                if len(batch) < 2:  # BatchNorm needs more than one value per channel (pooled branches): the mirror
                    batch = torch.cat([batch, batch.flip(-1)])
                _forward(model, batch)
    finally:
        model.eval()
        for bn, m in zip(bns, momenta):
            bn.momentum = m


def spread_class_scores(model: torch.nn.Module, images: torch.Tensor | list[torch.Tensor]) -> None:
    """Rescale the untrained head's class convolutions so that their logits on ``images`` (every batch) have mean
    :data:`LOGIT_MEAN` and standard deviation :data:`LOGIT_STD`.

    An untrained head's prior bias (about -11) puts every class score near 1e-5, which hides any difference in
    the features, and NMS would choose among near-ties. After the rescaling the scores spread over (0, 1) and
    follow the features (the attention layer's output among them). Run :func:`calibrate_batchnorm` first.
    Every detection-type head (Detect, Segment, Pose, OBB) is spread: left as built, the calibrated features of an
    untrained YOLO11n reach hundreds at P5 and so do its logits (measured: standard deviation 111, largest 553),
    scores saturate, and float rounding (relative 1e-5 there) alone moves a score by more than the tolerance.
    """
    convs = [c for c in _class_convs(model) if c.bias is not None]
    if not convs:  # never a silent no-op: unspread, a random head's logits reach hundreds (float noise fails the check)
        raise ValueError(f"{type(model.model[-1]).__name__} head: no class branches whose scores could be spread")
    seen: dict[int, list[torch.Tensor]] = {k: [] for k in range(len(convs))}
    hooks = [c.register_forward_hook(lambda m, i, o, k=k: seen[k].append((o - m.bias.view(1, -1, 1, 1)).flatten()))
             for k, c in enumerate(convs)]
    try:
        with torch.no_grad():
            for batch in _batches(images):
                _forward(model.eval(), batch)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for k, conv in enumerate(convs):
            out = torch.cat(seen[k])
            scale = LOGIT_STD / max(float(out.std()), 1e-12)
            conv.weight.mul_(scale)
            conv.bias.fill_(LOGIT_MEAN - float(out.mean()) * scale)


def _open(model: torch.nn.Module, path: Path, task: str = "detect"):
    from ultralytics import YOLO

    from ..weights import save_model_checkpoint

    save_model_checkpoint(model, path, half=False)
    return YOLO(str(path), task=task)


def copy_path(workdir: Path, stem: str) -> Path:
    """Where the check writes its copy of model ``stem``: ``<stem>.pt``, or ``<stem>-check.pt`` where Ultralytics
    would open another file for that name (``yolov5n.pt`` -> its own ``yolov5nu.pt`` release, downloaded)."""
    from .._ultralytics.export import read_as_named

    path = Path(workdir) / f"{stem}.pt"
    return path if read_as_named(path) else Path(workdir) / f"{stem}-check.pt"  # the string YOLO() is given


def model_for_layer(spec: LayerSpec, workdir: Path, images: torch.Tensor, seed: int = 0) -> CheckModel:
    """The per-layer check model of ``spec`` (seeded untrained weights, class scores spread on ``images``),
    written into ``workdir``."""
    from ..models import build_model
    from ..placement import dump_yaml

    d, fname = layer_model_dict(spec)
    yaml_path = dump_yaml(d, Path(workdir) / fname)
    torch.manual_seed(seed)
    model = build_model(str(yaml_path)).eval()
    calibrate_batchnorm(model, images)
    spread_class_scores(model, images)
    ckpt = copy_path(workdir, Path(fname).stem)
    return CheckModel(Path(fname).stem, attention_layers(model), _open(model, ckpt), ckpt, synthetic=True)


def model_from_file(ref: str, workdir: Path, images: torch.Tensor | None, trust: bool = False, seed: int = 0,
                    name: str | None = None) -> CheckModel:
    """A user's model YAML (seeded untrained weights, class scores spread on ``images``) or trained ``.pt``
    (read safely, weights as trained), written into ``workdir``."""
    from ..models import build_model
    from .tasks import head_of

    synthetic = not str(ref).endswith(".pt")
    torch.manual_seed(seed)
    model = build_model(str(ref), trust=trust).eval()
    task = head_of(model, str(ref)).task  # a head whose outputs the check does not know is refused here
    if synthetic:
        calibrate_batchnorm(model, images)
        if task != "classify":  # a classifier's probabilities come from its linear layer: nothing to spread
            spread_class_scores(model, images)
    stem = name or Path(str(ref)).stem
    ckpt = copy_path(workdir, stem)
    if Path(str(ref)).resolve() == ckpt.resolve():
        raise ValueError(f"{ref}: the check writes its copy of the model to this path; give another --out")
    return CheckModel(stem, attention_layers(model), _open(model, ckpt, task), ckpt, synthetic=synthetic, task=task)
