"""The hardware a trial ran on (``TrialRecord.hardware``) and the report's check that the arms of a seed shared it.

Training is not bit-reproducible across machines (another CPU model, GPU model or driver, torch or CUDA build gives
other numbers), so a paired difference between two arms of one seed carries any hardware difference between them.
:func:`hardware` is written into every record by both backends (:func:`.trial.run_trial`; the Ray backend adds the
node's id and address); :func:`kind` is the part that decides the numbers (not the host's name), and
:func:`pairing_warnings` is what the report says when the arms of a seed ran on different kinds. Records of older
versions have no ``hardware``: they are not checked.
"""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
from typing import Any, Iterable

KIND_KEYS = ("cpu", "machine", "gpu", "gpu_driver", "torch", "cuda")  # what makes two nodes one kind of hardware


def _gpu_driver() -> str | None:
    """The NVIDIA driver version as nvidia-smi reports it (None without one; torch knows only the CUDA API level)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    versions = sorted({line.strip() for line in out.splitlines() if line.strip()})
    return ", ".join(versions) or None


def hardware(device=None) -> dict[str, Any]:
    """CPU model, GPU models and driver (the GPUs this process sees; none on a CPU trial), torch and CUDA versions,
    and the host's name. ``device``: the trial's device (``cpu`` records no GPU even on a GPU machine)."""
    import torch

    from .trial import _cpu_model_and_flags

    gpus: list[str] = []
    if str(device).lower() != "cpu" and torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"cpu": _cpu_model_and_flags()[0], "machine": platform.machine(), "gpu": ", ".join(gpus) or None,
            "gpu_driver": _gpu_driver() if gpus else None, "torch": torch.__version__, "cuda": torch.version.cuda,
            "host": socket.gethostname()}


def kind(hw: dict | None) -> str | None:
    """One line naming the kind of hardware (what decides the numbers, not where): None for an old record."""
    if not hw:
        return None
    gpu = f"{hw.get('gpu')} (driver {hw.get('gpu_driver')}, CUDA {hw.get('cuda')})" if hw.get("gpu") else "no GPU"
    return f"{hw.get('cpu')} [{hw.get('machine')}], {gpu}, torch {hw.get('torch')}"


def pairing_warnings(records: Iterable, baseline: str) -> list[str]:
    """One line per seed whose arms (the baseline's and a model's record of that seed) ran on different kinds of
    hardware; records without hardware (older versions) are left out."""
    by_seed: dict[int, dict[str, str]] = {}
    for r in records:
        k = kind(getattr(r, "hardware", None))
        if k is not None:
            by_seed.setdefault(int(r.seed), {})[r.model] = k
    out = []
    for seed, kinds in sorted(by_seed.items()):
        base = kinds.get(baseline)
        other = {m: k for m, k in kinds.items() if m != baseline and base is not None and k != base}
        if other:
            names = "; ".join(f"{m} on {k}" for m, k in sorted(other.items()))
            out.append(f"seed {seed}: the arms ran on different hardware (baseline {baseline} on {base}; {names}): "
                       "their paired difference carries the hardware's; rerun them on one kind (compare --pair-hardware)")
    return out
