"""The one place where yolo_attn touches Ultralytics internals, one module per topic.

Ultralytics resolves a model-YAML layer name with ``globals()[name]`` inside ``ultralytics.nn.tasks.parse_model``
and, for a layer it does not know, calls the class with the YAML arguments only (no input channels), records the
input channels as the output channels, and repeats the layer ``n`` times. To make registered attention layers
first-class YAML layers, and to keep Ultralytics from downloading or installing anything on yolo_attn's behalf,
:func:`install`:

* puts one *YAML entry class* per registered name into ``ultralytics.nn.tasks``' namespace and wraps
  ``parse_model`` (:mod:`.parse`: the entry classes read the row being built from the running ``parse_model``
  frame, :mod:`.frames`; the wrapper first runs the checks of :mod:`.yaml_checks`, clear errors naming file, row
  and layer, and hands the repeat count of ``block`` rows to the layer itself, as Ultralytics does for ``C3``);
* wraps ``torch_safe_load`` and ``check_requirements`` so that a checkpoint naming a yolo_attn module this
  installation lacks fails with a clear error instead of Ultralytics' pip auto-install, and allow-lists every
  yolo_attn module class for ``torch.load(weights_only=True)`` (:mod:`.safe_load`);
* wraps ``check_yaml`` and ``yaml_model_load`` so the configs shipped with yolo_attn resolve by name from any
  folder (:mod:`.config_lookup`);
* routes ``check_font`` to a local font, so plots render offline (no Arial download; :mod:`.fonts`).

The other modules are what the rest of yolo_attn calls instead of Ultralytics internals: training arguments as
Ultralytics' command line parses and checks them (:mod:`.args`), datasets as Ultralytics reads them (:mod:`.data`),
trainer hooks (:mod:`.trainer`), the detection head and its loss (:mod:`.head`) and exported models (:mod:`.export`). ``tests/test_bridge.py`` checks every assumption made here against the
installed Ultralytics, and ``.ci/compat`` runs it against the oldest version ``pyproject.toml`` allows.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from ..registry import LAYERS
from .args import check_train_args, parse_cli_tokens
from .assets import stock_weights
from ._core import _ULTRALYTICS_NAMES, PARSE_MODEL_LOCALS, ULTRALYTICS_VERSION, YamlLayerError, _tasks, ultralytics_names
from .config_lookup import (check_yaml, find_config, install_config_lookup, load_model_yaml, shipped_config,
                            ultralytics_config_file, yaml_model_load)
from .console import messages_to_stderr, quiet_ultralytics
from . import ddp  # one run on several devices (Ultralytics' DDP), its CPU (gloo) form for tests
from .data import check_dataset_yaml, datasets_dir, find_packaged_file, pil_open, ultralytics_image_files
from .export import detections, export_format_names, exported_model
from .fonts import fallback_font, install_offline_font, offline_check_font
from .frames import FRAME_LOCALS_PROXY, write_frame_local
from .head import detect_class_branches, detection_head, detection_loss
from .integrations import integration_enabled
from .parse import _entry_class, parse_model, scale_block_options
from .safe_load import (MissingLayerModuleError, _guard_check_requirements, _module_classes, check_checkpoint_modules,
                        torch_safe_load)
from .trainer import (OptimizerChoice, PredictionLog, end_to_end_val_args, final_eval_of, freeze_in_trainer,
                      intersect_dicts, layer_roles, layer_seed, optimizer_choice, record_predictions, resolve_optimizer,
                      seeded_layers, train_imgsz, train_iterations, untrained_build, validate_before_training)
from .yaml_checks import MAX_CLASSES, MAX_REPEATS, check_activation, check_model_dict, resolve_layer

__all__ = [
    "FRAME_LOCALS_PROXY", "MAX_CLASSES", "MAX_REPEATS", "PARSE_MODEL_LOCALS", "ULTRALYTICS_VERSION",
    "MissingLayerModuleError", "OptimizerChoice", "PredictionLog", "YamlLayerError",
    "check_activation", "check_checkpoint_modules", "check_dataset_yaml", "check_model_dict", "check_train_args",
    "check_yaml",
    "datasets_dir", "ddp", "detect_class_branches", "detection_head", "detection_loss", "detections", "end_to_end_val_args",
    "export_format_names", "exported_model", "fallback_font", "final_eval_of", "find_config", "find_packaged_file", "freeze_in_trainer",
    "install", "integration_enabled",
    "install_config_lookup", "install_offline_font", "intersect_dicts", "layer_roles", "layer_seed", "load_model_yaml",
    "messages_to_stderr",
    "offline_check_font", "optimizer_choice", "parse_cli_tokens", "parse_model", "pil_open", "quiet_ultralytics",
    "record_predictions",
    "resolve_layer",
    "resolve_optimizer", "scale_block_options", "seeded_layers", "shipped_config", "stock_weights", "torch_safe_load",
    "train_imgsz",
    "train_iterations", "ultralytics_config_file", "untrained_build", "ultralytics_image_files", "ultralytics_names",
    "validate_before_training", "write_frame_local", "yaml_model_load",
]


def install() -> None:
    """Make every registered layer resolvable by Ultralytics (idempotent)."""
    namespace = vars(_tasks)
    for spec in LAYERS:
        current = namespace.get(spec.name)
        if getattr(current, "yolo_attn_spec", None) is not None and current.yolo_attn_spec.cls is spec.cls:
            continue
        if spec.overrides and spec.overrides != spec.name:
            raise RuntimeError(f"yolo_attn layer {spec.name!r}: overrides must be '' or its own name, got {spec.overrides!r}")
        if spec.name in _ULTRALYTICS_NAMES:
            if spec.overrides != spec.name:
                raise RuntimeError(
                    f"yolo_attn layer {spec.name!r} would shadow Ultralytics' own {spec.name!r}; "
                    "rename it or declare overrides=" + repr(spec.name)
                )
            if not (isinstance(current, type) and issubclass(current, nn.Module)):
                # e.g. 'Path', 'LOGGER', 'torch': Ultralytics' own code uses these names; never replace them
                raise RuntimeError(
                    f"yolo_attn layer {spec.name!r} would replace {spec.name!r} in ultralytics.nn.tasks, "
                    "which is not a model layer; rename it"
                )
        namespace[spec.name] = _entry_class(spec)
    _tasks.parse_model = parse_model
    _tasks.torch_safe_load = torch_safe_load
    install_config_lookup()  # model YAMLs shipped with yolo_attn resolve by name (config_lookup.py)
    _tasks.check_requirements = _guard_check_requirements(_tasks.check_requirements)
    torch.serialization.add_safe_globals(_module_classes())
    install_offline_font()  # plots render offline: no Arial download (fonts.py)


# Importing this package registers every layer with Ultralytics; after ``import yolo_attn`` it is imported (through
# yolo_attn.modules) once Ultralytics is loaded (yolo_attn/_hooks.py). The families first: they fill the registry.
importlib.import_module("yolo_attn.modules")

install()
