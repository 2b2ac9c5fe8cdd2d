"""The weights pipeline: reading checkpoints safely, matching their layers to a model, copying, reporting, writing.

Every public name is importable from the package (``from yolo_attn.weights import transfer_weights``); the
package loads a module only when one of its names is first used, so importing it costs nothing. The modules
import each other directly.
"""

from importlib import import_module

_API = {
    # reading a checkpoint, bounded, without running code from it
    "CheckpointError": "unpickle", "Placeholder": "unpickle", "SafeUnpickler": "unpickle",
    "Checkpoint": "checkpoint", "LayerInfo": "checkpoint", "NonFiniteWeightsError": "checkpoint",
    "check_finite": "checkpoint", "checkpoint_from_module": "checkpoint", "checkpoint_from_object": "checkpoint",
    "module_state_dict": "checkpoint",
    "as_checkpoint": "read", "load_checkpoint": "read",
    "load_exact_state_dict": "rebuild", "model_from_checkpoint": "rebuild", "read_model_checkpoint": "rebuild",
    # writing one
    "model_checkpoint_dict": "write", "save_model_checkpoint": "write", "write_clean_checkpoint": "write",
    # the transfer: layers aligned, tensors copied, class branches resized, the report; the name-matched arm
    "align_layers": "align", "load_index_map": "align",
    "adapt_class_branch_to": "heads",
    "ForeignCheckpointError": "transfer", "transfer_weights": "transfer",
    "LayerResult": "report", "TransferReport": "report",
    "load_by_name": "by_name",
    # freezing in base-model indices
    "backbone_length": "freeze", "base_layer_count": "freeze", "check_freeze": "freeze", "freeze_prefixes": "freeze",
    "translate_freeze": "freeze",
    # a model YAML's own yolo_attn: key
    "KEY": "options", "LOADS": "options", "ModelOptions": "options", "ModelOptionsError": "options",
    "parse_model_options": "options", "read_model_options": "options",
    # how a model starts: the one decision (pretrained, load, freeze, attn_init) and the load that follows it
    "ModelStart": "start", "NO_FREEZE": "start", "check_load_freeze": "start", "decide_start": "start",
    "is_checkpoint": "start", "load_start": "start", "pretrained_path": "start",
}


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))


__all__ = sorted(_API)
