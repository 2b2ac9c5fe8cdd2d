"""OpenMP wait policy for CPU training on machines that run other jobs too. Imports nothing heavy (no torch).

PyTorch's Linux wheels use GNU OpenMP (libgomp). Between parallel regions its idle threads spin before
they sleep: ``GOMP_SPINCOUNT`` iterations, 300,000 by default (about 3 ms, longer on CPUs with a slow
``pause``). That is free on an idle machine and ruinous on a busy one: when two processes each run as
many threads as there are cores, a thread spins for its whole time slice waiting for a partner that is
descheduled, and a 30-second training run took over 800 seconds. ``OMP_WAIT_POLICY=PASSIVE`` (no
spinning) fixes that but costs a run alone about 30%, because every barrier then goes through the kernel.

yolo_attn sets a bounded spin count, :data:`SPINCOUNT` (measured in ``benchmarks/threads.py``), unless
the user chose a policy (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` in the environment, or
``YOLO_ATTN_OPENMP=keep``). libgomp reads the environment once, when torch loads it, so this must run
before the first ``import torch``: ``import yolo_attn`` does it (the ``yolo-attn`` command always); a
program that imports torch first should set ``GOMP_SPINCOUNT`` itself (see the README).
"""

from __future__ import annotations

import os
import sys

SPINCOUNT = 10000  # libgomp spins before sleeping (default 300000); see benchmarks/threads.py


def openmp_env() -> dict[str, str]:
    """The OpenMP variables for this process and its workers: the user's, else the bounded spin count."""
    user = {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ}
    if user or os.environ.get("YOLO_ATTN_OPENMP", "").lower() == "keep":
        return user
    return {"GOMP_SPINCOUNT": str(SPINCOUNT)}


def apply_openmp_defaults() -> bool:
    """Put :func:`openmp_env` into ``os.environ``; False when torch is loaded already (then it has no effect)."""
    if "torch" in sys.modules:
        return False
    os.environ.update(openmp_env())
    return True
