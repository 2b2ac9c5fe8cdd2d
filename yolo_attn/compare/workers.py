"""Trial worker processes of the local backend: several trials at once, one process each.

The sweep process (the *driver*) claims each trial, hands it to an idle worker, and writes the record
the worker sends back, so claims and ``trials.jsonl`` have one writer as with one process. A worker is
``python -m yolo_attn.compare.workers``: it reads one :class:`~.contract.TrialSpec` per line (JSON) on
stdin, runs :func:`.trial.run_trial` (the code the Ray backend runs too) and writes its progress and
the finished :class:`~.contract.TrialRecord` as JSON lines on its stdout; library output goes to
stderr. Every worker trains with the sweep's thread count (set before torch loads), so a trial's
numbers do not depend on how many run at once.

* Sizing (:func:`plan_workers`): on CPU one worker per ``threads`` usable cores; with GPUs (and no
  ``--device``) one worker per GPU, each seeing only its own (``CUDA_VISIBLE_DEVICES``); with a ``--device``
  naming several GPUs one worker, each trial trained on all of them (Ultralytics' DDP). Whether sized so or
  asked for (``--workers``), never more than the trials to run, the usable cores over ``threads``, or the
  memory available over :data:`MEMORY_PER_TRIAL` (:func:`worker_limits`); a capped request is named.
* A worker that dies (killed, out of memory) has its trial run again in a new worker, once
  (:data:`MAX_ATTEMPTS`); a second death records the trial as failed.
* Ctrl-C (or any error in the driver) stops every worker; the sweep then releases its claims. Workers
  ignore SIGINT themselves (the driver stops them) and exit when the driver's end of their stdin
  closes, so a driver killed outright leaves no worker training on.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from .._threads import openmp_env, usable_cpus
from .contract import TrialRecord, TrialSpec

MEMORY_PER_TRIAL = 1.5 * 2**30  # bytes per CPU trial (a worker at the shipped sizes: RSS about 1.05 GiB, measured)
MAX_ATTEMPTS = 2  # runs of one trial when its worker process dies
STOP_WAIT_S = 5.0  # after SIGTERM, how long a worker gets before SIGKILL
CPU_THREADS = 1  # default threads per CPU trial (benchmarks/main_job.py: processes scale, threads barely do)


def _gpus(device) -> list[str]:
    """The GPUs a sweep without --device spreads over: CUDA_VISIBLE_DEVICES' entries, else 0..n-1."""
    if device is not None:
        return []
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:
        return []
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return (visible or [str(i) for i in range(n)])[:n]


def _several_devices(device) -> bool:
    from .._ultralytics.ddp import device_count  # (no Ultralytics import: it reads the device string)

    return device is not None and device_count(device) > 1


def default_threads(device=None) -> int:
    """Threads per trial: :data:`CPU_THREADS` on CPU; with GPUs, the cores shared out between them."""
    gpus = _gpus(device)
    return max(1, usable_cpus() // len(gpus)) if gpus else CPU_THREADS


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class WorkerPlan:
    """How many trial processes run at once, with how many threads each, and each one's GPU (if any)."""

    workers: int
    threads: int
    gpus: list[str] = field(default_factory=list)  # worker i sees GPU gpus[i % len(gpus)] only
    capped: str | None = None  # why fewer workers run than --workers asked for (one line), None when not capped

    def describe(self) -> str:
        where = f" on GPUs {', '.join(self.gpus)}" if self.gpus else ""
        return f"{self.workers} worker process(es) x {self.threads} thread(s){where}"


def check_workers(workers: int | None) -> None:
    """``--workers``: None (sized from the machine), 0 (in this process) or a positive count."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"--workers must be 0 (in this process) or more, got {workers!r}")


def worker_limits(threads: int, n_trials: int) -> dict[str, int]:
    """What bounds the trial processes that may run at once, each limit with its reason: the trials to run, the
    usable cores (``os.sched_getaffinity``) over ``threads`` per trial, and the memory available now over
    :data:`MEMORY_PER_TRIAL`. Each limit is at least 1."""
    cpus = usable_cpus()
    limits = {f"{n_trials} trial(s) to run": n_trials,
              f"{cpus} usable core(s) / {threads} thread(s) per trial": cpus // max(threads, 1)}
    mem = available_memory()
    if mem is not None:
        limits[f"{mem / 2**30:.1f} GiB available / {MEMORY_PER_TRIAL / 2**30:g} GiB per trial"] = int(
            mem // MEMORY_PER_TRIAL)
    return {why: max(1, n) for why, n in limits.items()}


def plan_workers(threads: int, device=None, n_trials: int = 1, workers: int | None = None) -> WorkerPlan:
    """The local backend's plan (see the module notes): ``workers`` if given, else one per GPU or per ``threads``
    usable cores; either way at most one per trial to run, per ``threads`` usable cores and per
    :data:`MEMORY_PER_TRIAL` of available memory (:func:`worker_limits`). A request above that is capped, and the
    plan says so in one line (``capped``)."""
    check_workers(workers)
    gpus = _gpus(device)
    if workers == 0:
        return WorkerPlan(0, threads, gpus)
    if _several_devices(device):  # each trial trains on all of them (DDP): one at a time (compare refuses more)
        return WorkerPlan(1, threads, gpus)
    limits = worker_limits(threads, n_trials)
    n = min(limits.values())
    if workers is None or workers <= n:
        return WorkerPlan(workers or (min(n, len(gpus)) if gpus else n), threads, gpus)
    why = "; ".join(f"{reason} -> {k}" for reason, k in limits.items() if k < workers)
    return WorkerPlan(n, threads, gpus, capped=f"--workers {workers} capped to {n} ({why})")


# --------------------------------------------------------------------------------------------
# The driver's side
# --------------------------------------------------------------------------------------------
class _Worker:
    """One worker process and the thread that reads its messages into the driver's queue."""

    def __init__(self, index: int, plan: WorkerPlan, events: queue.Queue, spin_env: dict[str, str]):
        self.index, self.spec = index, None
        env = {**os.environ, **spin_env, "OMP_NUM_THREADS": str(plan.threads)}
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        if plan.gpus:
            env["CUDA_VISIBLE_DEVICES"] = plan.gpus[index % len(plan.gpus)]
        self.gpu = bool(plan.gpus)
        self.proc = subprocess.Popen([sys.executable, "-m", "yolo_attn.compare.workers"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, events: queue.Queue) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                events.put((self, msg))
        self.proc.wait()
        events.put((self, None))  # the process ended

    def send(self, spec: TrialSpec) -> None:
        self.spec = replace(spec, device=0) if self.gpu and spec.device is None else spec
        try:
            self.proc.stdin.write(json.dumps(asdict(self.spec)) + "\n")
            self.proc.stdin.flush()
        except OSError:  # the process is ending: its reader reports it and the trial goes back to the queue
            pass

    def close(self) -> None:
        """No more trials: the worker exits once its current one is done."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        """End the process now (SIGTERM, then SIGKILL after :data:`STOP_WAIT_S`)."""
        self.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class WorkerPool:
    """Worker processes started ahead of their trials: they import torch and Ultralytics (and warm up, see
    :func:`_warm_up`) while the sweep still checks its data and models. :func:`run_workers` takes them over;
    :meth:`stop` ends any it did not use (call it in a ``finally``)."""

    def __init__(self, plan: WorkerPlan):
        self.plan = plan
        self.events: queue.Queue = queue.Queue()
        self.spin_env = openmp_env(threads=plan.workers * plan.threads)  # all workers' threads, as one job
        self.idle = [_Worker(i, plan, self.events, self.spin_env) for i in range(plan.workers)]

    def take(self, n: int) -> list[_Worker]:
        """Up to ``n`` of the started workers; the others are closed (they exit without a trial)."""
        used, rest = self.idle[:n], self.idle[n:]
        self.idle = []
        for w in rest:
            w.close()
        return used

    def stop(self) -> None:
        for w in self.idle:
            w.stop()
        self.idle = []


def run_workers(specs: list[TrialSpec], on_done: Callable[[TrialSpec, TrialRecord], None], plan: WorkerPlan,
                progress=None, claim=None, started: WorkerPool | None = None,
                spare_core: Callable[[], bool] | None = None) -> None:
    """Run ``specs`` on ``plan.workers`` worker processes (those of ``started`` first); hand each record to
    ``on_done`` as it arrives. Once no trial is left to start and a worker has none, ``spare_core()`` is called
    between messages to do a short piece of other work on the free core (it returns False when it has none now)."""
    started = started if started is not None and started.idle and started.plan.threads == plan.threads else None
    events: queue.Queue = started.events if started else queue.Queue()
    pending, attempts, pool = deque(specs), {}, []
    spin_env = started.spin_env if started else openmp_env(threads=plan.workers * plan.threads)
    ready = started.take(min(plan.workers, len(pending))) if started else []
    emit = progress or (lambda ev: None)

    def assign(w: _Worker) -> bool:
        while pending:
            spec = pending.popleft()
            if spec.trial_id not in attempts and claim is not None and not claim(spec):
                continue  # recorded meanwhile, or another sweep on the folder trains it
            attempts[spec.trial_id] = attempts.get(spec.trial_id, 0) + 1
            emit({"event": "trial_start", "trial_id": spec.trial_id, "worker": w.pid})
            w.send(spec)
            return True
        w.close()
        return False

    def start() -> None:
        w = ready.pop(0) if ready else _Worker(len(pool), plan, events, spin_env)
        pool.append(w)
        assign(w)

    try:
        for _ in range(min(plan.workers, len(pending))):
            start()
        while any(w.spec is not None for w in pool):
            spare = spare_core is not None and not pending and sum(w.spec is not None for w in pool) < plan.workers
            worked = spare and spare_core()
            try:
                w, msg = events.get_nowait() if worked else events.get(timeout=1.0)
            except queue.Empty:
                continue
            if msg is None:
                _worker_ended(w, attempts, pending, on_done, emit)
                if pending:
                    start()
            elif msg.get("event") == "record" and w.spec is not None:
                spec, w.spec = w.spec, None
                on_done(spec, TrialRecord.from_dict(msg["record"]))
                assign(w)
            elif msg.get("event") == "epoch":
                emit(msg)
    except BaseException:  # Ctrl-C or an error in on_done: no worker may go on training
        for w in pool:
            w.stop()
        raise
    _join(pool)


def _join(pool: list) -> None:
    """Every trial is done: the workers exit on their own, all at once (one that does not is stopped)."""
    for w in pool:
        w.close()
    for w in pool:
        try:
            w.proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            w.stop()


def _worker_ended(w: _Worker, attempts: dict, pending: deque, on_done, emit) -> None:
    """A worker process ended: its trial (if one was running) goes back to the queue, or fails after its last attempt."""
    if w.spec is None:
        return
    spec, w.spec = w.spec, None
    why = _death(w.proc.returncode)
    emit({"event": "worker_died", "trial_id": spec.trial_id, "worker": w.pid, "reason": why,
          "retry": attempts[spec.trial_id] < MAX_ATTEMPTS})
    if attempts[spec.trial_id] < MAX_ATTEMPTS:
        pending.appendleft(spec)
    else:
        on_done(spec, spec.record().fail(f"the worker process running this trial died {attempts[spec.trial_id]} times "
                                         f"(last: {why}; out of memory?)"))


# --------------------------------------------------------------------------------------------
# The worker's side
# --------------------------------------------------------------------------------------------
def main() -> None:
    """Worker entry point: trial specs on stdin, progress and records on stdout (see the module notes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver stops us
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, never into the message stream
    state = {"busy": False}
    lines: queue.Queue = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            lines.put(line)
        if state["busy"]:  # the driver is gone: stop training for nobody
            os._exit(3)
        lines.put(None)

    threading.Thread(target=read_stdin, daemon=True).start()

    def send(msg: dict) -> None:
        out.write(json.dumps(msg, default=str) + "\n")

    from .trial import run_trial

    _warm_up()
    while (line := lines.get()) is not None:
        spec = TrialSpec(**json.loads(line))
        state["busy"] = True
        rec = run_trial(spec, progress=send)
        send({"event": "record", "record": rec.as_dict()})
        state["busy"] = False
    out.close()
    sys.stderr.flush()
    # Every record is sent and every trial file closed: skip the interpreter's teardown of torch (about 1 s, which
    # the sweep's report would wait for)
    os._exit(0)


def _warm_up() -> None:
    """What a worker's first trial would pay anyway, done while the driver may still be checking the sweep: torch,
    Ultralytics' trainer, and torch's first optimizer (whose construction imports torch's compiler stack, about 3 s).
    No random numbers are drawn, so the trials' results are unchanged."""
    import importlib

    import torch

    importlib.import_module("ultralytics.models.yolo.detect")
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


if __name__ == "__main__":
    main()
