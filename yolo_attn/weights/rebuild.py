"""A model from a checkpoint file without running code from it: rebuilt from the model YAML the file carries (checked
like any model YAML), its weights loaded with every shape checked."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .heads import adapt_class_branch_to
from .read import load_checkpoint
from .unpickle import CheckpointError


def read_model_checkpoint(path: str | Path, trust: bool = False):
    """The float ``DetectionModel`` of an Ultralytics checkpoint, without running code from the file.

    By default the file is read by :func:`.read.load_checkpoint` (no pickled code runs, no size
    or cycle in the file can exhaust memory), the model is rebuilt from the YAML it carries (checked like any
    model YAML: only layer classes, no code) and its weights are loaded, every tensor shape-checked. The path
    is used as given: Ultralytics' name rewriting (``yolov5n.pt`` -> ``yolov5nu.pt``) and download fallback are
    never involved. ``trust=True`` unpickles the file fully (code in it runs): only for files you made.
    """
    ckpt = load_checkpoint(Path(path), trust=trust)
    if trust and isinstance(ckpt.model, nn.Module) and hasattr(ckpt.model, "model"):
        return ckpt.model.float()
    return model_from_checkpoint(ckpt)


def model_from_checkpoint(ckpt):
    """The float model of a :class:`~yolo_attn.weights.Checkpoint`, rebuilt from the YAML it carries (checked)."""
    import copy

    from .._ultralytics.head import task_model_class

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
    ch = int(cfg.get("channels") or 3)  # the input channels it was trained with (grayscale data: 1)
    model = task_model_class(cfg)(cfg, ch=ch, nc=ckpt.nc, verbose=False)
    model.yaml["yaml_file"] = original or str(path)
    adapt_class_branch_to(model, ckpt.state_dict)  # a class branch widened by a transfer between class counts
    load_exact_state_dict(model, ckpt.state_dict, path)
    if ckpt.names:
        model.names = dict(ckpt.names)  # copies: the checkpoint may be read again from load_checkpoint's memory
    train_args = ckpt.meta.get("train_args")
    if isinstance(train_args, dict):
        model.args = dict(train_args)
    return model.float()


def load_exact_state_dict(model, state_dict: dict, path) -> None:
    """Load ``state_dict`` into ``model``; every key must exist on both sides with the same shape."""
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
