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
    python benchmarks/threads.py --workload steps --steps 40 ...   # training steps only, no sweep around them

Targets: alone within 5% of spin:300000; two at once each within 2.5x of solo.
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


# The "steps" workload: the training kernels without the sweep around them (data checks, validation,
# latency), for a machine too busy to time whole sweeps: yolov5n forward+backward+SGD at 128x128, batch 8,
# with yolo_attn's thread count. Prints the seconds of the timed steps.
STEPS = """
import sys, time
import yolo_attn  # first: sets the OpenMP policy before torch loads
import torch
from ultralytics.nn.tasks import DetectionModel
from yolo_attn.train import cpu_threads
torch.set_num_threads(cpu_threads())
torch.manual_seed(0)
m = DetectionModel("yolov5n.yaml", nc=4, verbose=False).train()
opt = torch.optim.SGD(m.parameters(), lr=1e-3)
x = torch.rand(8, 3, 128, 128)
def tensors(o):
    if isinstance(o, torch.Tensor):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from tensors(v)
    elif isinstance(o, (list, tuple)):
        for v in o:
            yield from tensors(v)
def step():
    opt.zero_grad()
    sum(o.float().pow(2).mean() for o in tensors(m(x))).backward()
    opt.step()
for _ in range(3):
    step()
t = time.perf_counter()
for _ in range(int(sys.argv[1])):
    step()
print(time.perf_counter() - t)
"""


def sweep_cmd(out: str, epochs: int, workload: str = "sweep", steps: int = 40) -> list[str]:
    if workload == "steps":
        return [sys.executable, "-c", STEPS, str(steps)]
    return [sys.executable, "-m", "yolo_attn.cli", "compare", "--models", "yolov5n.yaml", "--seeds", "1", "--epochs",
            str(epochs), "--imgsz", "128", "--boot", "50", "--quiet", "--out", out]


def run_together(cmds: list[list[str]], env: dict, timeout: float) -> list[float | None]:
    """Start every command at once; wall time of each (None when killed at the timeout).

    A command that prints a number as its last output line (the steps workload) reports that number instead.
    """
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]
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
        last = (p.stdout.read().decode(errors="replace").strip().splitlines() or [""])[-1]
        if times[i] is not None and _is_number(last):
            times[i] = float(last)
    return times


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def measure(policy: str, scenario: str, epochs: int, timeout: float, pytest_file: str, workload: str = "sweep",
            steps: int = 40) -> dict:
    env = policy_env(policy)
    with tempfile.TemporaryDirectory(prefix="threads-bench-") as tmp:
        a, b = sweep_cmd(f"{tmp}/a", epochs, workload, steps), sweep_cmd(f"{tmp}/b", epochs, workload, steps)
        if scenario == "solo":
            cmds = [a]
        elif scenario == "pair":
            cmds = [a, b]
        elif scenario == "pytest":
            cmds = [a, [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(REPO / "tests" / pytest_file)]]
        else:
            raise ValueError(scenario)
        load_before = os.getloadavg()[0]
        times = run_together(cmds, env, timeout)
    return {"policy": policy, "scenario": scenario, "workload": workload, "epochs": epochs, "steps": steps,
            "seconds": times, "loadavg1_before": round(load_before, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", nargs="+", default=["spin:300000", "yolo_attn", "passive", "threads1"])
    ap.add_argument("--scenarios", nargs="+", default=["solo", "pair", "pytest"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--pytest-file", default="test_shapes.py")
    ap.add_argument("--workload", choices=("sweep", "steps"), default="sweep",
                    help="sweep: the tiny compare above; steps: only its training kernels (for a busy machine)")
    ap.add_argument("--steps", type=int, default=40, help="timed training steps of the steps workload")
    ap.add_argument("--out", help="append JSON lines here")
    a = ap.parse_args()
    for _ in range(a.repeat):
        for scenario in a.scenarios:
            for policy in a.policies:  # policies interleaved, so a change in the machine's load hits them alike
                row = measure(policy, scenario, a.epochs, a.timeout, a.pytest_file, a.workload, a.steps)
                print(json.dumps(row), flush=True)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
