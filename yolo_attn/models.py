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

    ``init="identity"`` builds every attention layer as the identity (for starting from stock weights).
    A ``.pt`` is read weights-only (Ultralytics' restricted loading: known classes only, no code runs)
    unless ``trust=True``.
    """
    from ultralytics.nn.tasks import DetectionModel

    if isinstance(model, dict):
        return DetectionModel(model_dict(model, init), nc=nc, verbose=verbose)
    path = Path(model)
    if path.suffix == ".pt":
        if init is not None:
            raise ValueError(f"{model}: init= applies to model YAMLs, not to a trained checkpoint")
        return read_model_checkpoint(path, trust=trust)
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{model}: expected a .yaml, .yml or .pt file")
    cfg = str(path) if init is None else model_dict(str(path), init)
    return DetectionModel(cfg, nc=nc, verbose=verbose)


def read_model_checkpoint(path: str | Path, trust: bool = False):
    """The float model of an Ultralytics checkpoint, read weights-only unless ``trust``."""
    from ultralytics.nn.tasks import torch_safe_load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=not trust)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read the checkpoint ({exc}); pass --trust for a file you made") from exc
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if model is None or not hasattr(model, "model"):
        raise ValueError(f"{path}: not an Ultralytics model checkpoint")
    return model.float()


def write_model_yaml(model: str | Path, out_dir: str | Path, init: str) -> Path:
    """Write ``model`` (a YAML path or name) with ``init`` applied, under its own file name in ``out_dir``."""
    import yaml

    d = model_dict(model, init)
    d.pop("yaml_file", None)
    d.pop("scale", None)  # the scale comes back from the file name, which is kept
    out = Path(out_dir) / Path(str(model)).name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# {Path(str(model)).name} with init: {init} on every attention layer (yolo_attn)\n" + yaml.safe_dump(d, sort_keys=False))
    return out
