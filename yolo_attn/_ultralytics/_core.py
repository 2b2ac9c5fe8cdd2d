"""What every part of the bridge shares: Ultralytics itself, its functions as they were before yolo_attn wrapped
them, the layer names it resolves on its own, and the error type of a bad model-YAML row."""

from __future__ import annotations

try:  # Ultralytics is a hard dependency; fail with a clear message if it is missing or too old.
    import ultralytics
    from ultralytics.nn import tasks as _tasks
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError("yolo_attn needs the 'ultralytics' package: pip install 'ultralytics>=8.4.0,<8.5'") from exc

ULTRALYTICS_VERSION = ultralytics.__version__
_ORIGINAL_PARSE_MODEL = getattr(_tasks.parse_model, "__wrapped__", _tasks.parse_model)
_ORIGINAL_SAFE_LOAD = getattr(_tasks.torch_safe_load, "__wrapped__", _tasks.torch_safe_load)
_REPEATS_KEY = "_yolo_attn_repeats"  # {row index: YAML repeat count} for block rows, set by the parse wrapper
# names Ultralytics resolves before yolo_attn adds any (entries of an earlier import of this module excluded)
_ULTRALYTICS_NAMES = frozenset(k for k, v in vars(_tasks).items() if getattr(v, "yolo_attn_spec", None) is None)
# local variables of parse_model that this bridge reads (and, for ``c2``, writes; ``legacy`` too where it exists);
# tests/test_bridge.py checks them
PARSE_MODEL_LOCALS = ("ch", "f", "i", "d", "c2", "width", "depth", "max_channels", "scale")
_ORIGINAL_CHECK_YAML = getattr(_tasks.check_yaml, "__wrapped__", _tasks.check_yaml)
_ORIGINAL_YAML_MODEL_LOAD = getattr(_tasks.yaml_model_load, "__wrapped__", _tasks.yaml_model_load)


class YamlLayerError(ValueError):
    """A model YAML row naming a yolo_attn layer is invalid; the message names the file, row and layer."""


def ultralytics_names() -> frozenset[str]:
    """Layer names Ultralytics itself resolves (before yolo_attn registers anything)."""
    return _ULTRALYTICS_NAMES
