"""yolo_attn: attention modules as first-class model-YAML layers for Ultralytics YOLO.

The layers, the placement generator and the comparison serve YOLOv5, YOLOv8, YOLO11, YOLO12 and YOLO26 models
of every Ultralytics task (detect, segment, pose, obb, classify).

``import yolo_attn`` registers every layer of :data:`yolo_attn.LAYERS` with Ultralytics: at once when
Ultralytics is loaded already, else as soon as it is (``import ultralytics``, ``from ultralytics import
YOLO``), so a model built after ``import yolo_attn`` finds the layers. The import itself loads neither
torch nor Ultralytics (``yolo-attn --help`` stays fast); the public names below load them on first use:

* :data:`LAYERS`, :func:`register`, :func:`build` — the layer registry (every family registered);
* :func:`make_yaml` — place a layer into a model YAML (renumbering every ``from`` index);
* :func:`transfer_weights` — load a stock checkpoint into an attention model, structure-aware;
* :func:`validate` — Ultralytics' validator on a model, checkpoint or YAML.

Training and comparison live in their modules: ``from yolo_attn.train import train`` and
``from yolo_attn.compare import compare``.
"""

from importlib import import_module, metadata


def _installed_version() -> str:
    """The version of the installed distribution (``pyproject.toml`` is the one place it is written).

    A checkout imported without being installed has no distribution metadata: ``0+unknown`` then.
    """
    try:
        return metadata.version("yolo_attn")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()

from ._threads import apply_openmp_defaults  # noqa: E402

apply_openmp_defaults()  # bounded OpenMP spin-wait, before anything loads torch (see yolo_attn/_threads.py)

from ._hooks import after_import  # noqa: E402


def _register_layers() -> None:
    """Importing the families registers every layer, with Ultralytics too (yolo_attn/modules/__init__.py)."""
    import_module("yolo_attn.modules")


after_import("ultralytics", _register_layers)

_LAZY = {
    "LAYERS": "yolo_attn.registry",
    "LayerSpec": "yolo_attn.registry",
    "UnknownLayerError": "yolo_attn.registry",
    "build": "yolo_attn.registry",
    "register": "yolo_attn.registry",
    "YamlLayerError": "yolo_attn._ultralytics",
    "install": "yolo_attn._ultralytics",
    "make_yaml": "yolo_attn.placement",
    "transfer_weights": "yolo_attn.weights",
    "load_checkpoint": "yolo_attn.weights",
    "validate": "yolo_attn.train",
    "build_model": "yolo_attn.models",
}


# Submodules that ``import yolo_attn`` used to import itself: ``yolo_attn.modules`` still works after it.
_SUBMODULES = ("modules", "registry", "_ultralytics")


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'yolo_attn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", *_LAZY]
