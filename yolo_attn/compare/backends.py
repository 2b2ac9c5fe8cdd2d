"""Execution backends: run trial specs and hand each finished record to ``on_done`` as soon as it exists.

* ``local`` (default): sequential, in this process.
* ``ray``: each trial is a Ray task (``pip install 'yolo_attn[ray]'``) asking for 1 GPU where the
  cluster has GPUs, else ``cpus_per_trial`` CPUs; the driver writes every returned record (and the
  trial's evaluation arrays, shipped back with it, so workers on other machines need no shared disk)
  into the same store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from .trial import run_trial


def run_local(specs: list[dict], on_done: Callable[[dict, dict], None], progress=None) -> None:
    for spec in specs:
        if progress:
            progress({"event": "trial_start", "trial_id": spec["trial_id"]})
        rec = run_trial(spec, progress=progress)
        on_done(spec, rec)


def _ray_task(spec: dict) -> tuple[dict, bytes | None]:
    """Body of the Ray task: run the trial, return its record and the bytes of its eval.npz."""
    rec = run_trial(spec, progress=lambda e: print(f"[{spec['trial_id']}] epoch {e['epoch']}/{e['epochs']}", flush=True))
    data = None
    p = Path(spec["trial_dir"]) / "eval.npz"
    if rec.get("status") == "ok" and p.is_file():
        data = p.read_bytes()
    return rec, data


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_ray(specs: list[dict], on_done: Callable[[dict, dict], None], address: str | None = None,
            cpus_per_trial: int | None = None, progress=None, num_cpus: int | None = None) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("--backend ray needs Ray: pip install 'yolo_attn[ray]' (or pip install ray)") from exc
    started_here = False
    if not ray.is_initialized():
        kw = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
        pkg_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        ray.init(runtime_env={"env_vars": env}, log_to_driver=bool(progress), **kw)
        started_here = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus >= 1:
            opts = {"num_gpus": 1, "num_cpus": cpus_per_trial or 1}
        else:
            opts = {"num_cpus": cpus_per_trial or 1}
        task = ray.remote(max_retries=0, **opts)(_ray_task)
        pending = {}
        for spec in specs:
            spec = dict(spec)
            spec["threads"] = spec.get("threads") or opts["num_cpus"]
            if gpus >= 1 and spec.get("device") is None:
                spec["device"] = 0  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU
            pending[task.remote(spec)] = spec
            if progress:
                progress({"event": "trial_submitted", "trial_id": spec["trial_id"]})
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    rec, data = ray.get(ref)
                except Exception as exc:  # the task itself died (worker crash, OOM kill)
                    rec, data = {k: spec[k] for k in ("trial_id", "model", "model_ref", "seed", "settings_hash")}, None
                    rec.update(status="failed", error=f"ray task failed: {type(exc).__name__}: {exc}")
                if data is not None:
                    p = Path(spec["trial_dir"]) / "eval.npz"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    if not p.is_file() or p.read_bytes() != data:
                        tmp = p.with_name(".eval.npz.tmp")
                        tmp.write_bytes(data)
                        tmp.replace(p)
                on_done(spec, rec)
    finally:
        if started_here:
            ray.shutdown()
        sys.stdout.flush()
