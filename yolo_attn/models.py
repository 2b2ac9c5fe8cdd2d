"""Building Ultralytics models that carry yolo_attn layers, and the model references the commands take (a file, a
shipped config, an Ultralytics name): found, copied into a results folder, built, costed."""

from __future__ import annotations

from pathlib import Path

from . import _ultralytics
from ._io import atomic_write
from ._ultralytics import quiet_ultralytics
from .configs import config_dir, scale_free_name
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


# --------------------------------------------------------------------------------------------
# Model references: the one lookup of a model name or file, its copy into a results folder, its cost
# --------------------------------------------------------------------------------------------
def _model_dirs() -> list[Path]:
    return [config_dir()]


def find_model_yaml(ref: str) -> tuple[str, Path]:
    """The one lookup of a model reference: (what to build it from, the file holding its YAML text).

    In order: an existing file; a shipped config (``yolov5n-se-backbone-end.yaml`` is the scale-free
    ``yolov5-se-backbone-end.yaml`` built at scale n, Ultralytics' naming: the name to build keeps the scale
    letter); the scale-free file beside the reference; an Ultralytics config such as ``yolov5n.yaml`` (found by
    Ultralytics' own ``check_yaml``, scale-free name first as Ultralytics builds it).
    """
    p = Path(str(ref)).expanduser()
    if p.is_file():
        return str(p.resolve()), p.resolve()
    if p.suffix == ".pt":
        raise FileNotFoundError(f"model checkpoint not found: {ref}")
    name = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    unified = scale_free_name(name)
    for d in _model_dirs():
        for c in (d / unified, d / name):
            if c.is_file():
                return str(d / name), c
    if p.with_name(unified).is_file():  # as Ultralytics builds a scaled name
        return str(p.with_name(name)), p.with_name(unified)
    found = _ultralytics.find_config(unified, name)
    if found is not None:
        return name, found
    raise FileNotFoundError(f"model {ref!r} not found (not a file, not in {', '.join(map(str, _model_dirs()))}, "
                            "not an Ultralytics config)")


def resolve_model(ref: str) -> str:
    """A model reference Ultralytics can build: an existing file (absolute), a shipped config (its path under the
    scaled name), or an Ultralytics name (:func:`find_model_yaml`)."""
    return find_model_yaml(ref)[0]


def materialize(ref: str, out_dir: Path) -> str:
    """Copy model YAML ``ref`` (a file, shipped config or Ultralytics config) into ``out_dir``, keeping its name.

    The copy holds the unscaled YAML text (with its ``scales``) under the scaled name, so Ultralytics
    builds the same scale from it; the sweep then depends only on files in its results folder, and
    their content is what the stored configuration fingerprints. Checkpoints are returned unchanged.
    """
    if str(ref).endswith(".pt"):
        return str(Path(ref).resolve())
    try:
        text = find_model_yaml(ref)[1].read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"model {ref!r}: YAML not found") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / Path(str(ref)).name
    if not dst.is_file() or dst.read_text() != text:
        atomic_write(dst, text)
    return str(dst.resolve())


def model_label(ref: str) -> str:
    return Path(str(ref)).stem


def build(ref: str, nc: int | None = None, init: str | None = None):
    if str(ref).endswith(".pt"):
        return build_model(ref)
    return build_model(ref, nc=nc, init=init)  # the model class of its task (DetectionModel, SegmentationModel...)


def model_cost(ref: str, nc: int | None, imgsz: int = 640, model=None) -> tuple[int, float]:
    """Parameters and GFLOPs (at ``imgsz``) of a model reference (``model``: that reference already built)."""
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    with quiet_ultralytics():
        m = model if model is not None else build(ref, nc)
        return int(get_num_params(m)), float(get_flops(m, imgsz))  # get_flops profiles a copy: m stays as it was
