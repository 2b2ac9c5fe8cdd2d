"""Execution backends: run trial specs and hand each finished record to ``on_done`` as soon as it exists.

* ``local`` (default): several trials at once, each in a worker process of this machine
  (:mod:`.workers`, sized by :func:`.workers.plan_workers`); ``workers=0`` runs them one after the
  other in this process.
* ``ray``: each trial is a Ray task (``pip install 'yolo_attn[ray]'``) asking for 1 GPU where the
  cluster has GPUs, else ``cpus_per_trial`` CPUs, and training with exactly that many CPU threads (so
  the trials Ray packs onto one node never oversubscribe it). The driver's yolo_attn travels with the task
  (runtime environment ``working_dir``), a task of a lost worker or node runs again elsewhere (``max_retries``, never for the
  trial's own errors), and the driver writes every returned record, the trial's evaluation arrays and, from
  a node that does not share the sweep folder, its whole trial folder (:mod:`.cluster`) into the same store.
  ``pair_hardware``: the arms of each seed on one node (a placement group per seed).

Both take ``claim(spec) -> bool``: a trial is run only after the store granted this process its claim
(another sweep on the same folder may be training it), and ``on_done`` releases it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .._threads import openmp_env
from .cluster import driver_versions, input_files, run_on_node, stage_package, write_home, write_marker
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


def _ray_task(spec: TrialSpec, token: str, files: dict, expected: dict) -> tuple[TrialRecord, dict, bool]:
    """Body of the Ray task (:func:`.cluster.run_on_node`): the record, the files for the driver, whether they are
    the whole trial folder (the node does not share the sweep folder)."""
    def run(s: TrialSpec) -> TrialRecord:
        return run_trial(s, progress=lambda e: print(f"[{s.trial_id}] epoch {e['epoch']}/{e['epochs']}", flush=True))

    return run_on_node(spec, token, files, expected, run)


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it (Ray is the optional ``ray`` extra)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend needs Ray: pip install 'yolo_attn[ray]' (or pip install 'ray[tune]')") from exc
    return ray


RAY_RETRIES = 3  # a trial whose worker or node is lost runs again elsewhere, up to this many times (never for its own errors)


def _ray_init(ray, address: str | None, num_cpus: int | None, log: bool, staging: Path) -> dict[str, str]:
    """Connect to (or start) Ray with the sweep's runtime environment for every task: the driver's yolo_attn as the
    ``working_dir`` (a folder holding only a copy of the package, :func:`.cluster.stage_package`; Ray uploads it once
    per content, takes a local folder only here at the job level, and then puts no driver's folder on a worker's
    ``sys.path``: ``py_modules`` would lose to the driver's current folder, the checkout itself when run from it)
    and the OpenMP wait policy of this process. Nothing of the driver's paths is needed on a node. Returns the versions
    of the shipped code (:func:`.cluster.version_problem`)."""
    kw = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
    expected = stage_package(staging)
    env = {"working_dir": str(staging), "env_vars": openmp_env()}
    ray.init(log_to_driver=log, runtime_env=env, **kw)
    return expected


def _placement(ray, specs: list[TrialSpec], opts: dict) -> tuple[dict, "_Groups"]:
    """``--pair-hardware``: one STRICT_PACK placement group per seed, a bundle per arm, so every arm of a seed runs on
    one node (one kind of hardware; Ray moves the whole group when its node is lost). Returns the scheduling strategy
    of each trial id and the groups (:class:`_Groups`: each removed once its seed's arms are recorded)."""
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": opts["num_cpus"], **({"GPU": opts["num_gpus"]} if "num_gpus" in opts else {})}
    by_seed: dict[int, list[TrialSpec]] = {}
    for s in specs:
        by_seed.setdefault(s.seed, []).append(s)
    strategies, groups = {}, _Groups(ray)
    for arms in by_seed.values():
        pg = placement_group([dict(bundle) for _ in arms], strategy="STRICT_PACK")
        for i, s in enumerate(arms):
            strategies[s.trial_id] = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
            groups.of[s.trial_id] = pg
    return strategies, groups


class _Groups:
    """The placement groups of ``--pair-hardware`` by trial id. A group holds its bundles' resources on its node until
    it is removed, so each is removed as soon as every arm of its seed is recorded: kept to the end of the sweep, they
    would leave the groups of later seeds (more seeds than room) or of a seed whose node was lost (Ray places that
    group again, whole) waiting for resources forever."""

    def __init__(self, ray):
        self.ray, self.of = ray, {}

    def recorded(self, trial_id: str) -> None:
        pg = self.of.pop(trial_id, None)
        if pg is not None and all(other is not pg for other in self.of.values()):
            self.ray.util.remove_placement_group(pg)

    def remove_all(self) -> None:
        for pg in {id(pg): pg for pg in self.of.values()}.values():
            self.ray.util.remove_placement_group(pg)
        self.of = {}


def _task_gpus(ray, device) -> tuple[int, str | int | None]:
    """The GPUs each trial's task reserves and the device it trains on there (Ray shows a task only its own GPUs,
    numbered from 0): one GPU where the cluster has any; with a ``device`` naming several (``0,1``) that many of one
    node, trained with DDP, refused here (before any trial) when no node has as many."""
    from .._ultralytics.ddp import device_count

    n = device_count(device) if device is not None else 1
    if n > 1:
        most = max((node.get("Resources", {}).get("GPU", 0) for node in ray.nodes() if node.get("Alive")), default=0)
        if most < n:
            raise ValueError(f"--device {device}: each trial trains on {n} GPUs of one node (DDP), and the largest node "
                             f"of the Ray cluster has {most:g}")
        return n, ",".join(str(i) for i in range(n))
    if ray.cluster_resources().get("GPU", 0) >= 1:
        return 1, 0 if device is None else device
    return 0, device


def run_ray(specs: list[TrialSpec], on_done: OnDone, address: str | None = None, cpus_per_trial: int | None = None,
            progress=None, num_cpus: int | None = None, claim: Claim | None = None, pair_hardware: bool = False) -> None:
    """Each trial a Ray task, retried by Ray when its worker or node is lost (``max_retries``; an error of the trial
    itself is its failed record, never retried); the records and returned files written here as they arrive."""
    ray = import_ray()
    started_here = not ray.is_initialized()  # else the caller's runtime environment ships the package
    staging = tempfile.mkdtemp(prefix="yolo_attn-ray-")
    groups = None
    try:
        expected = _ray_init(ray, address, num_cpus, bool(progress), Path(staging)) if started_here else driver_versions()
        n_gpus, device = _task_gpus(ray, specs[0].device if specs else None)
        opts = {"num_cpus": cpus_per_trial or 1, **({"num_gpus": n_gpus} if n_gpus else {})}
        task = ray.remote(max_retries=RAY_RETRIES, retry_exceptions=False, **opts)(_ray_task)
        # threads = the CPUs Ray reserved for the task; Ray sets CUDA_VISIBLE_DEVICES to the task's GPUs
        todo = [replace(s, threads=opts["num_cpus"], device=device) for s in specs if claim is None or claim(s)]
        strategies, groups = _placement(ray, todo, opts) if pair_hardware else ({}, None)
        tokens = {root: write_marker(Path(root)) for root in {s.store_root or s.trial_dir for s in todo}}
        pending = {}
        for spec in todo:
            extra = {"scheduling_strategy": strategies[spec.trial_id]} if spec.trial_id in strategies else {}
            ref = task.options(**extra).remote(spec, tokens[spec.store_root or spec.trial_dir], input_files(spec), expected)
            pending[ref] = spec
            if progress:
                progress({"event": "trial_submitted", "trial_id": spec.trial_id})
        _collect(ray, pending, on_done, groups.recorded if groups else None)
    finally:
        if groups is not None:
            groups.remove_all()
        if started_here and ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(staging, ignore_errors=True)
        sys.stdout.flush()


def _collect(ray, pending: dict, on_done: OnDone, recorded: Callable[[str], None] | None = None) -> None:
    """Hand each finished task's record to ``on_done`` as it arrives, its files written into the trial folder first;
    then ``recorded(trial_id)``."""
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            spec = pending.pop(ref)
            try:
                rec, files, came_home = ray.get(ref)
            except Exception as exc:  # the task died RAY_RETRIES + 1 times, or Ray itself failed
                rec, files, came_home = spec.record().fail(f"ray task failed: {type(exc).__name__}: {exc}"), {}, False
            write_home(spec, rec, files, came_home)
            on_done(spec, rec)
            if recorded is not None:
                recorded(spec.trial_id)
