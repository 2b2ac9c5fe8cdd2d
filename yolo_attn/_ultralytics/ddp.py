"""One training run on several devices with Ultralytics' DDP (``device=0,1``).

Ultralytics trains such a run in worker processes it starts itself (``torch.distributed.run`` on a script it writes:
older versions import the trainer class by module and name there, newer ones unpickle it, both import yolo_attn with
it; the activation without an import, ``yolo_attn-autoload.pth``, covers any other entry). What the launching
trainer holds besides Ultralytics' arguments (yolo_attn's own settings: ``trust``, ``attn_lr``, ``final_weights``,
the thread count) would not reach the workers, so the launching process hands them over in one environment variable,
:data:`SETTINGS_ENV`, for the time of the launch, and each worker's trainer reads them back (:func:`parent_settings`).

Every rank validates its share of the images and Ultralytics gathers the statistics, so the predictions of one
validation are never all in one process: whoever needs them (the sweep's scoring) validates the saved checkpoint again
in one process after training.

Ultralytics refuses DDP without CUDA. :data:`CPU_ENV` (``YOLO_ATTN_CPU_DDP=N``, for tests and diagnosis) makes a CPU
run take the same path with N processes and torch.distributed's gloo backend: Ultralytics' own launch, samplers, DDP
wrapping, sharded validation and rank-0 checkpoints; only the process group (gloo instead of NCCL) and the device
(CPU) differ. It needs the Ultralytics versions whose validator takes the trainer's device in a worker (8.4.190 does;
8.4.0 puts every worker's validation on a CUDA device).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

SETTINGS_ENV = "YOLO_ATTN_DDP_SETTINGS"  # the launching trainer's yolo_attn settings, JSON, while it launches
CPU_ENV = "YOLO_ATTN_CPU_DDP"  # N > 1: a CPU run trains in N processes (gloo); tests and diagnosis only


def ddp_rank() -> int:
    """This process's rank in an Ultralytics DDP run (-1: not a DDP worker)."""
    from ultralytics.utils import RANK

    return int(RANK)


def launches_ddp(trainer) -> bool:
    """Whether ``trainer.train()`` will start DDP worker processes instead of training here."""
    return bool(getattr(trainer, "ddp", False))


def device_count(device) -> int:
    """The devices a ``device=`` value names (``0,1`` -> 2; ``cpu``, ``0``, None -> 1)."""
    text = str(device if device is not None else "").strip().lower()
    for prefix in ("cuda:", "npu:", "xpu:"):
        text = text[len(prefix):] if text.startswith(prefix) else text
    parts = [p for p in text.replace("[", "").replace("]", "").replace(" ", "").split(",") if p]
    return max(len(parts), 1)


@contextmanager
def settings_for_workers(settings: dict):
    """Inside: the DDP workers this process starts read ``settings`` (:func:`parent_settings`)."""
    old = os.environ.get(SETTINGS_ENV)
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SETTINGS_ENV, None)
        else:
            os.environ[SETTINGS_ENV] = old


def parent_settings() -> dict:
    """In a DDP worker, the launching trainer's settings (:func:`settings_for_workers`); ``{}`` elsewhere."""
    if ddp_rank() == -1:
        return {}
    text = os.environ.get(SETTINGS_ENV)
    return json.loads(text) if text else {}


def cpu_processes() -> int:
    """The processes a CPU run trains in (:data:`CPU_ENV`; 1: none of this)."""
    text = os.environ.get(CPU_ENV, "").strip()
    try:
        n = int(text) if text else 1
    except ValueError:
        raise ValueError(f"{CPU_ENV}={text!r}: expected a whole number of processes") from None
    return max(n, 1)


def enable_cpu_ddp(trainer) -> bool:
    """Make a CPU ``trainer`` train in :func:`cpu_processes` processes (gloo) through Ultralytics' DDP path; call it
    right after Ultralytics' ``__init__``. Returns whether it did."""
    n = cpu_processes()
    if n < 2 or getattr(trainer.device, "type", None) != "cpu":
        return False
    worker = ddp_rank() != -1
    trainer.world_size = int(os.environ.get("WORLD_SIZE", n)) if worker else n
    trainer.ddp = not worker  # the launching process starts the workers, as Ultralytics does for several GPUs
    if not worker:  # as for GPUs: the trackers' callbacks are rank 0's own, never the launching process's
        for event, fns in trainer.callbacks.items():
            trainer.callbacks[event] = [f for f in fns if not _integration(f)]
    trainer._setup_ddp = lambda *args: _setup_cpu_ddp(trainer)  # Ultralytics' own selects a CUDA device
    return True


def _integration(fn) -> bool:
    """Whether callback ``fn`` is one of Ultralytics' tracker integrations (MLflow, Comet, TensorBoard, ...)."""
    module = getattr(fn, "__module__", "") or ""
    return module.startswith("ultralytics.utils.callbacks.") and module != "ultralytics.utils.callbacks.base"


def _setup_cpu_ddp(trainer) -> None:
    """A worker's process group on CPU (gloo), in place of Ultralytics' CUDA set-up; the DDP wrapper Ultralytics
    builds next is told the model is on the CPU (it passes a CUDA device index)."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    class CpuDistributedDataParallel(DistributedDataParallel):
        def __init__(self, module, device_ids=None, output_device=None, **kwargs):
            super().__init__(module, device_ids=None, output_device=None, **kwargs)

    torch.nn.parallel.DistributedDataParallel = CpuDistributedDataParallel  # this worker process only
    dist.init_process_group("gloo", rank=ddp_rank(), world_size=trainer.world_size, timeout=timedelta(minutes=30))
