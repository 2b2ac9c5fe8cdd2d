"""OpenMP wait policy for CPU training on machines that run other jobs too. Imports nothing heavy (no torch).

PyTorch's Linux wheels use GNU OpenMP (libgomp). Between parallel regions its idle threads spin before
they sleep: ``GOMP_SPINCOUNT`` iterations, 300,000 by default (about 3 ms, longer on CPUs with a slow
``pause``). That is free on an idle machine and ruinous on a busy one: when two processes each run as
many threads as there are cores, a thread spins for its whole time slice waiting for a partner that is
descheduled, and a 30-second training run took over 800 seconds. ``OMP_WAIT_POLICY=PASSIVE`` (no
spinning) fixes that but costs a run alone about 30%, because every barrier then goes through the kernel.

yolo_attn bounds the spin count, chosen when the process starts: :data:`SPIN_IDLE` when this process's
threads fit beside the threads that are runnable at that moment, else :data:`SPIN_BUSY` (the count libgomp
itself uses when it knows its pool is oversubscribed). "Runnable now" is the kernel's count of running
tasks (``/proc/loadavg``, the least of a few samples), not the 1-minute load average, which lags: a run
started just after another one finished would look busy. Measured on a 2-core machine
(``benchmarks/threads.py``, tiny sweep, README): alone, 300,000 / 3,000 / 2,000 / 1,000 spins took about
26 / 27 / 28 / 28 s; two at once, 119 / 73 / 64 / 54 s each (10,000 spins: 140 s). No single count is both
free alone and graceful when shared, hence the choice at start-up, which a job started later still gets
right (it sees the first one running).
A policy the user chose (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` in the
environment, or ``YOLO_ATTN_OPENMP=keep``) is left alone. The spin count never changes a result, only
how idle threads wait. libgomp reads the environment once, when torch loads it, so this must run
before the first ``import torch``: ``import yolo_attn`` does it (the ``yolo-attn`` command always); a
program that imports torch first should set ``GOMP_SPINCOUNT`` itself (see the README).
"""

from __future__ import annotations

import os
import sys

SPIN_IDLE = 2000  # spins before sleeping (libgomp's default: 300000) on a machine with free cores
SPIN_BUSY = 1000  # ... on a machine whose cores are busy already


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def runnable_others(samples: int = 5, pause: float = 0.02) -> float | None:
    """Tasks runnable right now besides this one (least of ``samples`` reads of ``/proc/loadavg``); None if unknown."""
    import time

    seen = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        seen.append(running - 1)  # this process is one of them
        if i + 1 < samples:
            time.sleep(pause)
    return float(max(min(seen), 0))


def spincount(load: float | None = None, cpus: int | None = None, threads: int | None = None) -> int:
    """:data:`SPIN_IDLE` when this process's threads fit beside ``load``, else :data:`SPIN_BUSY`.

    ``load``: threads of other jobs runnable now (default: :func:`runnable_others`, else the 1-minute load
    average); ``cpus``: usable CPUs; ``threads``: the threads this process will run (``YOLO_ATTN_THREADS``,
    else every usable CPU, as :func:`yolo_attn.train.cpu_threads`).
    """
    if load is None:
        load = runnable_others()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available: assume the cores are shared
            return SPIN_BUSY
    cpus = cpus or usable_cpus()
    env = os.environ.get("YOLO_ATTN_THREADS", "")
    threads = threads or (max(int(env), 1) if env.isdigit() else cpus)
    return SPIN_IDLE if load + threads <= cpus + 0.5 else SPIN_BUSY


def openmp_env(threads: int | None = None) -> dict[str, str]:
    """The OpenMP variables for this process and its workers: the user's, else a bounded spin count
    (``threads``: the threads they will run together, as :func:`spincount`)."""
    user = {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ}
    if user or os.environ.get("YOLO_ATTN_OPENMP", "").lower() == "keep":
        return user
    return {"GOMP_SPINCOUNT": str(spincount(threads=threads))}


def apply_openmp_defaults() -> bool:
    """Put :func:`openmp_env` into ``os.environ``; False when torch is loaded already (then it has no effect)."""
    if "torch" in sys.modules:
        return False
    os.environ.update(openmp_env())
    return True
