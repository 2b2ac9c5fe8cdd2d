"""yolo_attn: attention modules as first-class YOLOv5 model-YAML layers for Ultralytics.

``import yolo_attn`` registers every layer of :data:`yolo_attn.LAYERS` with Ultralytics.
"""

__version__ = "0.1.0"

from . import modules  # noqa: E402,F401  (registers every family)
from ._ultralytics import YamlLayerError, install  # noqa: E402
from .registry import LAYERS, LayerSpec, UnknownLayerError, build, register  # noqa: E402

install()

__all__ = ["LAYERS", "LayerSpec", "UnknownLayerError", "YamlLayerError", "build", "register", "install", "__version__"]
