"""CPU thread / OpenMP wait policies for a tiny sweep: alone, two at once, and beside a pytest run.

Each measurement runs ``yolo-attn compare --models yolov5n.yaml --seeds 1 --epochs E --imgsz 128`` (the
shipped shapes dataset, fresh --out) as a subprocess under one policy and reports its wall time:

* ``solo``: one sweep;
* ``pair``: two identical sweeps started together (the wall time of each);
* ``pytest``: one sweep beside ``pytest tests/PYTEST_FILE`` started together (both times).

Policies (environment of every process started): ``spin:N`` (``GOMP_SPINCOUNT=N``; ``spin:300000`` is
libgomp's own default, i.e. yolo_attn before it set a policy), ``passive`` (``OMP_WAIT_POLICY=PASSIVE``),
``yolo_attn`` (whatever yolo_attn sets, see yolo_attn/_threads.py), ``threads1`` (``YOLO_ATTN_THREADS=1``).
A run longer than --timeout is killed and reported as ``>timeout``.

    nice -n 10 python benchmarks/threads.py --policies spin:300000 yolo_attn passive threads1 --scenarios solo pair

Targets (issue 12): alone within 5% of spin:300000; two at once each within 2.5x of solo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def policy_env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "YOLO_ATTN_THREADS", "YOLO_ATTN_OPENMP")}
    if policy.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    elif policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy == "threads1":
        env["YOLO_ATTN_THREADS"] = "1"
    elif policy != "yolo_attn":
        raise ValueError(f"unknown policy {policy!r}")
    return env


def sweep_cmd(out: str, epochs: int) -> list[str]:
    return [sys.executable, "-m", "yolo_attn.cli", "compare", "--models", "yolov5n.yaml", "--seeds", "1", "--epochs",
            str(epochs), "--imgsz", "128", "--boot", "50", "--quiet", "--out", out]


def run_together(cmds: list[list[str]], env: dict, timeout: float) -> list[float | None]:
    """Start every command at once; wall time of each (None when killed at the timeout)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    times: list[float | None] = [None] * len(procs)
    while any(p.poll() is None for p in procs) and time.perf_counter() - t0 < timeout:
        for i, p in enumerate(procs):
            if times[i] is None and p.poll() is not None:
                times[i] = time.perf_counter() - t0
        time.sleep(0.2)
    for i, p in enumerate(procs):
        if p.poll() is None:
            p.kill()
            p.wait()
        elif times[i] is None:
            times[i] = time.perf_counter() - t0
        if p.returncode not in (0, None) and times[i] is not None and p.returncode > 0:
            err = p.stderr.read().decode(errors="replace")[-1500:]
            raise RuntimeError(f"{cmds[i][:6]} failed ({p.returncode}):\n{err}")
    return times


def measure(policy: str, scenario: str, epochs: int, timeout: float, pytest_file: str) -> dict:
    env = policy_env(policy)
    with tempfile.TemporaryDirectory(prefix="threads-bench-") as tmp:
        if scenario == "solo":
            cmds = [sweep_cmd(f"{tmp}/a", epochs)]
        elif scenario == "pair":
            cmds = [sweep_cmd(f"{tmp}/a", epochs), sweep_cmd(f"{tmp}/b", epochs)]
        elif scenario == "pytest":
            cmds = [sweep_cmd(f"{tmp}/a", epochs), [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                                    str(REPO / "tests" / pytest_file)]]
        else:
            raise ValueError(scenario)
        times = run_together(cmds, env, timeout)
    load = os.getloadavg()[0]
    return {"policy": policy, "scenario": scenario, "epochs": epochs, "seconds": times, "loadavg1_after": round(load, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", nargs="+", default=["spin:300000", "yolo_attn", "passive", "threads1"])
    ap.add_argument("--scenarios", nargs="+", default=["solo", "pair", "pytest"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--pytest-file", default="test_layers.py")
    ap.add_argument("--out", help="append JSON lines here")
    a = ap.parse_args()
    for _ in range(a.repeat):
        for scenario in a.scenarios:
            for policy in a.policies:  # policies interleaved, so a change in the machine's load hits them alike
                row = measure(policy, scenario, a.epochs, a.timeout, a.pytest_file)
                print(json.dumps(row), flush=True)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
