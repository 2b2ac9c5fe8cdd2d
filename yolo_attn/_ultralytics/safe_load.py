"""Safe loading of checkpoints: a checkpoint naming a yolo_attn module this installation lacks fails with a clear
error instead of Ultralytics' pip auto-install, and every yolo_attn module class is allow-listed for
``torch.load(weights_only=True)``."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ._core import _ORIGINAL_SAFE_LOAD


class MissingLayerModuleError(ModuleNotFoundError):
    """A checkpoint needs a yolo_attn module that this installation does not have."""


@functools.wraps(_ORIGINAL_SAFE_LOAD)
def torch_safe_load(weight, *args, **kwargs):
    """Ultralytics' torch_safe_load, refusing to auto-install a missing yolo_attn module."""
    from pathlib import Path

    if Path(str(weight)).is_file():
        check_checkpoint_modules(weight)
    try:
        return _ORIGINAL_SAFE_LOAD(weight, *args, **kwargs)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("yolo_attn"):
            raise MissingLayerModuleError(_missing_message(weight, exc.name)) from exc
        raise


def _guard_check_requirements(original):
    """Wrap Ultralytics' ``check_requirements`` so that it never pip-installs a ``yolo_attn`` module.

    ``torch_safe_load`` calls ``check_requirements(e.name)`` for a module that unpickling could not import. When a
    fresh process loads a checkpoint without importing yolo_attn first, the unpickler imports yolo_attn (which
    installs this guard) while Ultralytics' own ``torch_safe_load`` is already running, so the wrapper of
    ``torch_safe_load`` cannot intercept the error; this guard does.
    """
    if getattr(original, "_yolo_attn_guard", False):
        return original

    @functools.wraps(original)
    def check_requirements(requirements=(), *args, **kwargs):
        names = [requirements] if isinstance(requirements, str) else []
        if isinstance(requirements, (list, tuple)):
            names = [r for r in requirements if isinstance(r, str)]
        for name in names:
            if name == "yolo_attn" or name.startswith("yolo_attn."):
                raise MissingLayerModuleError(_missing_message("the checkpoint being loaded", name), name=name)
        return original(requirements, *args, **kwargs)

    check_requirements._yolo_attn_guard = True
    return check_requirements


def _missing_message(weight, name) -> str:
    from .. import __version__

    return (
        f"{weight} was saved with a yolo_attn module '{name}' that yolo_attn {__version__} does not have. "
        "Install the yolo_attn version the checkpoint was trained with."
    )


def check_checkpoint_modules(weight) -> None:
    """Raise :class:`MissingLayerModuleError` if ``weight`` pickles yolo_attn classes that cannot be imported.

    Ultralytics answers a ModuleNotFoundError during unpickling by pip-installing a package of that name;
    this check runs first so that never happens for yolo_attn modules.
    """
    import importlib

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(weight)
    except Exception:  # not a zip checkpoint: torch.load reports the real problem
        return
    for full in names:
        if not full.startswith("yolo_attn."):
            continue
        module, _, attr = full.rpartition(".")
        try:
            ok = hasattr(importlib.import_module(module), attr)
        except ModuleNotFoundError:
            ok = False
        if not ok:
            raise MissingLayerModuleError(_missing_message(weight, full))


def _module_classes() -> list[type]:
    """Every nn.Module subclass defined in yolo_attn (for the weights_only allow-list)."""
    seen, todo = set(), [nn.Module]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return sorted(
        (c for c in seen if c.__module__.startswith("yolo_attn.") and "yolo_attn_spec" not in vars(c)),
        key=lambda c: (c.__module__, c.__qualname__),
    )
