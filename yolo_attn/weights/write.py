"""Writing checkpoints: the one writer (``yolo-attn transfer``, compare's pretrained start points, ``make-stock``), and
the clean copies of checkpoints that Ultralytics reads with its full unpickler (``resume=``, ``distill_model=``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .rebuild import model_from_checkpoint


def model_checkpoint_dict(model: torch.nn.Module, half: bool = True, train_args: dict | None = None,
                          yolo_attn: dict | None = None) -> dict:  # fmt: skip
    """An Ultralytics-format checkpoint dict for ``model`` (as Ultralytics' ``Model.save`` writes one).

    The model is copied (float16 if ``half``, gradients off); ``train_args`` extend ``{"model": yaml_file,
    "task": the model's task}`` (``detect``, ``segment``...); ``yolo_attn`` is stored under the ``"yolo_attn"`` key next to the version.
    """
    from copy import deepcopy
    from datetime import datetime

    from ultralytics import __version__ as ul_version

    from .. import __version__
    from .._ultralytics.head import model_task

    m = deepcopy(model).float()
    m = (m.half() if half else m).to(memory_format=torch.contiguous_format)
    for p in m.parameters():
        p.requires_grad_(False)
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file", "")
    return {
        "date": datetime.now().astimezone().isoformat(),
        "version": ul_version,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "model": m,
        "ema": None,
        "train_args": {"model": str(yaml_file), "task": model_task(model), **(train_args or {})},
        "yolo_attn": {"version": __version__, **(yolo_attn or {})},
    }


def save_model_checkpoint(model: torch.nn.Module, path: str | Path, half: bool = True, train_args: dict | None = None,
                          yolo_attn: dict | None = None) -> Path:  # fmt: skip
    """Write ``model`` as an Ultralytics checkpoint that ``YOLO(path)`` loads, atomically (no half-written file)."""
    from .._io import atomic_save

    ckpt = model_checkpoint_dict(model, half=half, train_args=train_args, yolo_attn=yolo_attn)
    return atomic_save(path, lambda tmp: torch.save(ckpt, tmp))


def write_clean_checkpoint(ckpt, dest: str | Path, training: bool = False, train_args: dict | None = None) -> Path:
    """Write the safely read checkpoint ``ckpt`` again as a file that holds only what yolo_attn built from it.

    For the files Ultralytics reads with its full unpickler (``resume=``, ``distill_model=``): the model is rebuilt
    from the YAML the file carries and its weights loaded (every shape checked); the other top-level entries (epoch,
    optimizer and scaler state...) are kept only as plain data and tensors (``training``: a run to resume; else the
    model alone, a teacher). ``train_args`` replaces the file's own. Ultralytics then unpickles a file with torch,
    Ultralytics and yolo_attn classes only: nothing pickled in the original runs.
    """
    from .._io import atomic_save

    model = model_from_checkpoint(ckpt)
    for p in model.parameters():
        p.requires_grad_(False)
    own = ckpt.meta.get("train_args")
    out = {**(ckpt.training_state if training else {}), "model": None, "ema": model.half(),
           "train_args": train_args if train_args is not None else (own if isinstance(own, dict) else {})}
    return atomic_save(Path(dest), lambda tmp: torch.save(out, tmp))
