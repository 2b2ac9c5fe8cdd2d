"""Building Ultralytics models that carry yolo_attn layers."""

from __future__ import annotations

from pathlib import Path

from . import _ultralytics
from .registry import INITS


def model_dict(model: str | Path | dict, init: str | None = None) -> dict:
    """The model dict of a YAML path or name (scale from the name, as Ultralytics reads it).

    ``init`` ("paper" or "identity"), if given, is set on every attention layer of the model (see
    :func:`yolo_attn.placement.set_layer_options`).
    """
    from .placement import set_layer_options

    d = dict(model) if isinstance(model, dict) else _ultralytics.load_model_yaml(model)
    if init is None:
        return d
    if init not in INITS:
        raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
    return set_layer_options(d, init=init)


def build_model(
    model: str | Path | dict, nc: int | None = None, verbose: bool = False, init: str | None = None, trust: bool = False
):
    """Return an Ultralytics ``DetectionModel`` built from a YAML, or read from a ``.pt`` checkpoint.

    A task model's YAML (a Segment, Pose, OBB or Classify head) builds Ultralytics' model of that task
    (``SegmentationModel``...), so that its checkpoint trains and predicts as that task.

    ``init="identity"`` builds every attention layer as the identity (for starting from stock weights).
    A ``.pt`` is read by yolo_attn's safe reader (no code in the file runs; see :func:`read_model_checkpoint`)
    unless ``trust=True``.
    """
    from ._ultralytics.head import task_model_class

    if isinstance(model, dict):
        d = model_dict(model, init)
        return task_model_class(d)(d, nc=nc, verbose=verbose)
    path = Path(model)
    if path.suffix == ".pt":
        if init is not None:
            raise ValueError(f"{model}: init= applies to model YAMLs, not to a trained checkpoint")
        return read_model_checkpoint(path, trust=trust)
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{model}: expected a .yaml, .yml or .pt file")
    cfg = str(path) if init is None else model_dict(str(path), init)
    return task_model_class(cfg if isinstance(cfg, dict) else model_dict(cfg))(cfg, nc=nc, verbose=verbose)


def read_model_checkpoint(path: str | Path, trust: bool = False):
    """The float ``DetectionModel`` of an Ultralytics checkpoint, without running code from the file.

    By default the file is read by :func:`yolo_attn.weights.load_checkpoint` (no pickled code runs, no size
    or cycle in the file can exhaust memory), the model is rebuilt from the YAML it carries (checked like any
    model YAML: only layer classes, no code) and its weights are loaded, every tensor shape-checked. The path
    is used as given: Ultralytics' name rewriting (``yolov5n.pt`` -> ``yolov5nu.pt``) and download fallback are
    never involved. ``trust=True`` unpickles the file fully (code in it runs): only for files you made.
    """
    from torch import nn

    from .weights import load_checkpoint

    ckpt = load_checkpoint(Path(path), trust=trust)
    if trust and isinstance(ckpt.model, nn.Module) and hasattr(ckpt.model, "model"):
        return ckpt.model.float()
    return model_from_checkpoint(ckpt)


def model_from_checkpoint(ckpt):
    """The float model of a :class:`~yolo_attn.weights.Checkpoint`, rebuilt from the YAML it carries (checked)."""
    import copy

    from ._ultralytics.head import task_model_class
    from .weights import CheckpointError

    path = ckpt.path
    if ckpt.format == "yolov5":
        raise CheckpointError(f"{path}: is a checkpoint of the original YOLOv5 repository (anchor-based head); "
                              "build an Ultralytics model YAML and `yolo-attn transfer` its weights into it")
    if ckpt.yaml is None:
        raise CheckpointError(f"{path}: holds no model YAML to rebuild the model from ({ckpt.format} checkpoint); "
                              "build the model from its YAML and use `yolo-attn transfer` for the weights")
    cfg = copy.deepcopy(ckpt.yaml)
    original = cfg.get("yaml_file")
    cfg["yaml_file"] = f"{path} (its model YAML {original or ''})"  # errors of the row check name the file
    model = task_model_class(cfg)(cfg, nc=ckpt.nc, verbose=False)
    model.yaml["yaml_file"] = original or str(path)
    from .weights import adapt_class_branch_to

    adapt_class_branch_to(model, ckpt.state_dict)  # a class branch widened by a transfer between class counts
    load_exact_state_dict(model, ckpt.state_dict, path)
    if ckpt.names:
        model.names = ckpt.names
    train_args = ckpt.meta.get("train_args")
    if isinstance(train_args, dict):
        model.args = train_args
    return model.float()


def load_exact_state_dict(model, state_dict: dict, path) -> None:
    """Load ``state_dict`` into ``model``; every key must exist on both sides with the same shape."""
    from .weights import CheckpointError

    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    extra = [k for k in state_dict if k not in own]
    bad = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or extra or bad:
        raise CheckpointError(
            f"{path}: the weights do not fit the model YAML the file carries "
            f"({len(missing)} missing, {len(extra)} unexpected, {len(bad)} of another shape, e.g. "
            f"{(missing + extra + bad)[:3]})"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()}, strict=True)


def write_model_yaml(model: str | Path, out_dir: str | Path, init: str) -> Path:
    """Write ``model`` (a YAML path or name) with ``init`` applied, under its own file name in ``out_dir``."""
    import yaml

    d = model_dict(model, init)
    d.pop("yaml_file", None)
    d.pop("scale", None)  # the scale comes back from the file name, which is kept
    from ._io import atomic_write

    out = Path(out_dir) / Path(str(model)).name
    header = f"# {Path(str(model)).name} with init: {init} on every attention layer (yolo_attn)\n"
    return atomic_write(out, header + yaml.safe_dump(d, sort_keys=False))


def write_clean_checkpoint(ckpt, dest: str | Path, training: bool = False, train_args: dict | None = None) -> Path:
    """Write the safely read checkpoint ``ckpt`` again as a file that holds only what yolo_attn built from it.

    For the files Ultralytics reads with its full unpickler (``resume=``, ``distill_model=``): the model is rebuilt
    from the YAML the file carries and its weights loaded (every shape checked); the other top-level entries (epoch,
    optimizer and scaler state...) are kept only as plain data and tensors (``training``: a run to resume; else the
    model alone, a teacher). ``train_args`` replaces the file's own. Ultralytics then unpickles a file with torch,
    Ultralytics and yolo_attn classes only: nothing pickled in the original runs.
    """
    import torch

    from ._io import atomic_save

    model = model_from_checkpoint(ckpt)
    for p in model.parameters():
        p.requires_grad_(False)
    own = ckpt.meta.get("train_args")
    out = {**(ckpt.training_state if training else {}), "model": None, "ema": model.half(),
           "train_args": train_args if train_args is not None else (own if isinstance(own, dict) else {})}
    return atomic_save(Path(dest), lambda tmp: torch.save(out, tmp))


def model_task_of(model: str | Path, trust: bool = False) -> str:
    """Ultralytics' task of a model YAML (its head row) or checkpoint (the model it holds), read without running code."""
    from ._ultralytics.head import model_task

    if str(model).lower().endswith(".pt"):
        from .weights import load_checkpoint

        ckpt = load_checkpoint(Path(model), trust=trust)
        if ckpt.yaml is not None:
            return model_task(ckpt.yaml)
        task = (ckpt.meta.get("train_args") or {}).get("task")
        return task if task in ("detect", "segment", "pose", "obb", "classify") else "detect"
    return model_task(model_dict(model))
