"""OpenMP wait policy for CPU training on machines that run other jobs too. Imports nothing heavy (no torch).

PyTorch's Linux wheels use GNU OpenMP (libgomp). Between parallel regions its idle threads spin before
they sleep: ``GOMP_SPINCOUNT`` iterations, 300,000 by default (about 3 ms, longer on CPUs with a slow
``pause``). That is free on an idle machine and ruinous on a busy one: when two processes each run as
many threads as there are cores, a thread spins for its whole time slice waiting for a partner that is
descheduled, and a 30-second training run took over 800 seconds. ``OMP_WAIT_POLICY=PASSIVE`` (no
spinning) fixes that but costs a run alone about 30%, because every barrier then goes through the kernel.

yolo_attn bounds the spin count, chosen from the machine's load when the process starts: :data:`SPIN_IDLE`
when the 1-minute load average leaves room for this process's threads, else :data:`SPIN_BUSY` (the
count libgomp itself uses when it knows its pool is oversubscribed). Measured in ``benchmarks/threads.py``;
the README has the figures. A policy the user chose (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` in the
environment, or ``YOLO_ATTN_OPENMP=keep``) is left alone. The spin count never changes a result, only
how idle threads wait. libgomp reads the environment once, when torch loads it, so this must run
before the first ``import torch``: ``import yolo_attn`` does it (the ``yolo-attn`` command always); a
program that imports torch first should set ``GOMP_SPINCOUNT`` itself (see the README).
"""

from __future__ import annotations

import os
import sys

SPIN_IDLE = 10000  # spins before sleeping (libgomp's default: 300000) on a machine with free cores
SPIN_BUSY = 1000  # ... on a machine whose cores are busy already


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def spincount(load: float | None = None, cpus: int | None = None, threads: int | None = None) -> int:
    """:data:`SPIN_IDLE` when this process's threads fit beside the current load, else :data:`SPIN_BUSY`.

    ``load``: the 1-minute load average (default: now); ``cpus``: usable CPUs; ``threads``: the threads this
    process will run (``YOLO_ATTN_THREADS``, else every usable CPU, as :func:`yolo_attn.train.cpu_threads`).
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available: assume the cores are shared
            return SPIN_BUSY
    cpus = cpus or usable_cpus()
    env = os.environ.get("YOLO_ATTN_THREADS", "")
    threads = threads or (max(int(env), 1) if env.isdigit() else cpus)
    return SPIN_IDLE if load + threads <= cpus + 0.5 else SPIN_BUSY


def openmp_env() -> dict[str, str]:
    """The OpenMP variables for this process and its workers: the user's, else a bounded spin count."""
    user = {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ}
    if user or os.environ.get("YOLO_ATTN_OPENMP", "").lower() == "keep":
        return user
    return {"GOMP_SPINCOUNT": str(spincount())}


def apply_openmp_defaults() -> bool:
    """Put :func:`openmp_env` into ``os.environ``; False when torch is loaded already (then it has no effect)."""
    if "torch" in sys.modules:
        return False
    os.environ.update(openmp_env())
    return True
