"""Execution backends: run trial specs and hand each finished record to ``on_done`` as soon as it exists.

* ``local`` (default): several trials at once, each in a worker process of this machine
  (:mod:`.workers`, sized by :func:`.workers.plan_workers`); ``workers=0`` runs them one after the
  other in this process.
* ``ray``: each trial is a Ray task (``pip install 'yolo_attn[ray]'``) asking for 1 GPU where the
  cluster has GPUs, else ``cpus_per_trial`` CPUs, and training with exactly that many CPU threads (so
  the trials Ray packs onto one node never oversubscribe it); the driver writes every returned record
  (and the trial's evaluation arrays, shipped back with it, so workers on other machines need no shared
  disk) into the same store.

Both take ``claim(spec) -> bool``: a trial is run only after the store granted this process its claim
(another sweep on the same folder may be training it), and ``on_done`` releases it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .._io import atomic_write
from .._threads import openmp_env
from .contract import TrialRecord, TrialSpec
from .trial import run_trial
from .workers import WorkerPlan, WorkerPool, run_workers

OnDone = Callable[[TrialSpec, TrialRecord], None]
Claim = Callable[[TrialSpec], bool]


def run_local(specs: list[TrialSpec], on_done: OnDone, progress=None, claim: Claim | None = None,
              plan: WorkerPlan | None = None, started: WorkerPool | None = None,
              spare_core: Callable[[], bool] | None = None) -> None:
    """Run ``specs`` on ``plan``'s worker processes (``started``: some already running), or one after the other in
    this process without a plan (or 0 workers). ``spare_core``: work for a core the last trials leave free
    (:func:`.workers.run_workers`)."""
    if plan is not None and plan.workers > 0:
        run_workers(specs, on_done, plan, progress=progress, claim=claim, started=started, spare_core=spare_core)
        return
    for spec in specs:
        if claim is not None and not claim(spec):
            continue
        if progress:
            progress({"event": "trial_start", "trial_id": spec.trial_id})
        on_done(spec, run_trial(spec, progress=progress))


def _ray_task(spec: TrialSpec) -> tuple[TrialRecord, bytes | None]:
    """Body of the Ray task: run the trial, return its record and the bytes of its eval.npz."""
    rec = run_trial(spec, progress=lambda e: print(f"[{spec.trial_id}] epoch {e['epoch']}/{e['epochs']}", flush=True))
    p = Path(spec.trial_dir) / "eval.npz"
    return rec, (p.read_bytes() if rec.ok and p.is_file() else None)


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it (Ray is the optional ``ray`` extra)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend needs Ray: pip install 'yolo_attn[ray]' (or pip install 'ray[tune]')") from exc
    return ray


def _ray_init(ray, address: str | None, num_cpus: int | None, log: bool) -> None:
    kw = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
    pkg_root = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.update(openmp_env())  # workers start torch with the same OpenMP wait policy as this process
    ray.init(runtime_env={"env_vars": env}, log_to_driver=log, **kw)


def run_ray(specs: list[TrialSpec], on_done: OnDone, address: str | None = None, cpus_per_trial: int | None = None,
            progress=None, num_cpus: int | None = None, claim: Claim | None = None) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _ray_init(ray, address, num_cpus, bool(progress))
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        opts = {"num_cpus": cpus_per_trial or 1, **({"num_gpus": 1} if gpus >= 1 else {})}
        task = ray.remote(max_retries=0, **opts)(_ray_task)
        pending = {}
        for spec in specs:
            if claim is not None and not claim(spec):
                continue
            # threads = the CPUs Ray reserved for the task; Ray sets CUDA_VISIBLE_DEVICES to the task's GPU
            spec = replace(spec, threads=opts["num_cpus"], device=0 if gpus >= 1 and spec.device is None else spec.device)
            pending[task.remote(spec)] = spec
            if progress:
                progress({"event": "trial_submitted", "trial_id": spec.trial_id})
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    rec, data = ray.get(ref)
                except Exception as exc:  # the task itself died (worker crash, OOM kill)
                    rec, data = spec.record().fail(f"ray task failed: {type(exc).__name__}: {exc}"), None
                if data is not None:
                    atomic_write(Path(spec.trial_dir) / "eval.npz", data)
                on_done(spec, rec)
    finally:
        if started_here:
            ray.shutdown()
        sys.stdout.flush()
