"""The weights pipeline: reading checkpoints safely, matching their layers to a model, copying, reporting, writing.

Every public name is importable from the package (``from yolo_attn.weights import transfer_weights``); the
package loads a module only when one of its names is first used, so importing it costs nothing. The modules
import each other directly.
"""

from importlib import import_module

_API = {
    # reading a checkpoint, bounded, without running code from it
    "Checkpoint": "unpickle", "CheckpointError": "unpickle", "LayerInfo": "unpickle", "Placeholder": "unpickle",
    "SafeUnpickler": "unpickle", "checkpoint_from_module": "unpickle", "checkpoint_from_object": "unpickle",
    "load_checkpoint": "unpickle", "module_state_dict": "unpickle",
    # writing one
    "model_checkpoint_dict": "unpickle", "save_model_checkpoint": "unpickle",
    # the transfer, its report, the name-matched arm, freezing in base indices
    "ForeignCheckpointError": "transfer", "NonFiniteWeightsError": "transfer", "LayerResult": "transfer",
    "TransferReport": "transfer", "adapt_class_branch_to": "transfer", "align_layers": "transfer",
    "backbone_length": "transfer", "base_layer_count": "transfer", "check_finite": "transfer",
    "check_freeze": "transfer", "freeze_prefixes": "transfer", "load_by_name": "transfer", "load_index_map": "transfer",
    "transfer_weights": "transfer", "translate_freeze": "transfer",
    # a model YAML's own yolo_attn: key
    "KEY": "options", "LOADS": "options", "ModelOptions": "options", "ModelOptionsError": "options",
    "check_with_pretrained": "options", "effective": "options", "parse_model_options": "options",
    "read_model_options": "options",
}


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))


__all__ = sorted(_API)
