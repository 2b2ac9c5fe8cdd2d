"""Config lookup: the model YAMLs shipped with yolo_attn resolve by name from any folder."""

from __future__ import annotations

import functools

import ultralytics

from ._core import _ORIGINAL_CHECK_YAML, _ORIGINAL_YAML_MODEL_LOAD, YamlLayerError, _tasks
from .yaml_checks import _check_rows

# Ultralytics' yaml_model_load calls ``check_yaml`` (the name imported into ultralytics.nn.tasks), which searches
# only Ultralytics' own cfg directory. The wrapper below keeps that behaviour and, only for a bare file name
# Ultralytics does not find, answers with the file of that name among yolo_attn's configs (yolo_attn/configs.py).
# yaml_model_load asks for 'yolov5s-cbam-neck.yaml' first and then for the scale-free 'yolov5-cbam-neck.yaml', so
# both spellings resolve.


def shipped_config(name) -> str | None:
    """Path of the shipped config called ``name`` (a bare file name not present in the cwd), else None."""
    import os

    name = str(name).strip()
    if not name or os.path.dirname(name) or os.path.exists(name):
        return None
    from ..configs import config_dir

    path = config_dir() / name
    return str(path) if path.is_file() else None


@functools.wraps(_ORIGINAL_CHECK_YAML)
def check_yaml(file, *args, **kwargs):
    """Ultralytics' check_yaml; a bare name it cannot find is looked up among yolo_attn's shipped configs."""
    ours = shipped_config(file)
    if ours is None:
        return _ORIGINAL_CHECK_YAML(file, *args, **kwargs)
    try:
        found = _ORIGINAL_CHECK_YAML(file, *args, **kwargs)
    except FileNotFoundError:
        return ours
    return found or ours


@functools.wraps(_ORIGINAL_YAML_MODEL_LOAD)
def yaml_model_load(path):
    """Ultralytics' yaml_model_load, then :func:`check_model_dict` and the row check: clear errors naming the file.

    Ultralytics indexes ``d["backbone"]``, ``d["nc"]`` before parse_model runs, so an empty YAML or one without
    these keys would otherwise end in a KeyError/TypeError traceback.
    """
    import yaml

    try:
        d = _ORIGINAL_YAML_MODEL_LOAD(path)
    except (TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:  # not YAML or not a mapping
        if isinstance(exc, YamlLayerError):
            raise
        raise YamlLayerError(f"{path}: a model YAML must be a mapping with nc, backbone and head "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    _check_rows(d)
    return d


def find_config(*names: str):
    """The first of ``names`` that Ultralytics' own ``check_yaml`` finds (its packaged model YAMLs, the working
    folder), as a Path; None when it finds none of them."""
    from pathlib import Path

    for name in names:
        try:
            found = _ORIGINAL_CHECK_YAML(name, hard=False)
        except Exception:  # some versions raise instead of returning None for hard=False
            found = None
        if found and Path(found).is_file():
            return Path(found)
    return None


def ultralytics_config_file(name: str) -> str:
    """Where Ultralytics keeps its own model YAML ``name``, relative to its install: ``ultralytics/cfg/models/v5/yolov5.yaml``.

    Used in the header of the shipped configs (each is derived from one of these files, under Ultralytics'
    licence). Raises FileNotFoundError when ``name`` is not one of Ultralytics' model YAMLs.
    """
    from pathlib import Path

    root = Path(ultralytics.__file__).resolve().parent
    found = find_config(name)
    path = found.resolve() if found else None
    if path is None or not path.is_relative_to(root):
        raise FileNotFoundError(f"{name} is not one of Ultralytics' model YAMLs")
    return path.relative_to(root.parent).as_posix()


def load_model_yaml(path) -> dict:
    """Ultralytics' ``yaml_model_load`` (name resolution, scale-free fallback), yolo_attn's configs included."""
    install_config_lookup()
    return _tasks.yaml_model_load(path)


def install_config_lookup() -> None:
    """Route ``check_yaml`` and ``yaml_model_load`` of ``ultralytics.nn.tasks`` through the wrappers (idempotent)."""
    import ultralytics.engine.model as engine_model  # YOLO("x.yaml") imports yaml_model_load by name

    _tasks.check_yaml = check_yaml
    for module in (_tasks, engine_model):
        if getattr(module, "yaml_model_load", None) is not None:
            module.yaml_model_load = yaml_model_load
