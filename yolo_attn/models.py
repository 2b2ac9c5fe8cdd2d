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
    A ``.pt`` is read by yolo_attn's safe reader (no code in the file runs; see :func:`yolo_attn.weights.read_model_checkpoint`)
    unless ``trust=True``.
    """
    from ._ultralytics.head import task_model_class
    from .weights import read_model_checkpoint

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
