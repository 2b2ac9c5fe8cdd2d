"""yolo_attn: attention modules as first-class YOLOv5 model-YAML layers for Ultralytics.

``import yolo_attn`` registers every layer of :data:`yolo_attn.LAYERS` with Ultralytics. The main
entry points are re-exported here and imported on first use:

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

from ._threads import apply_openmp_defaults

apply_openmp_defaults()  # bounded OpenMP spin-wait, before the import below loads torch (see yolo_attn/_threads.py)

from . import modules  # noqa: E402,F401  (registers every family)
from ._ultralytics import YamlLayerError, install  # noqa: E402
from .registry import LAYERS, LayerSpec, UnknownLayerError, build, register  # noqa: E402

install()

_LAZY = {
    "make_yaml": "yolo_attn.placement",
    "transfer_weights": "yolo_attn.transfer",
    "load_checkpoint": "yolo_attn.checkpoint",
    "validate": "yolo_attn.train",
    "build_model": "yolo_attn.models",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolo_attn' has no attribute {name!r}")


__all__ = ["LAYERS", "LayerSpec", "UnknownLayerError", "YamlLayerError", "build", "register", "install", "__version__", *_LAZY]
