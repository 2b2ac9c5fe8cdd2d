"""Latency on the deployment backend: the shipped light-gate configs against stock, OpenVINO CPU beside PyTorch.

    python benchmarks/deploy_latency.py                         # yolov5n and yolov5s, imgsz 320, 15 rounds
    python benchmarks/deploy_latency.py --scales n --rounds 5 --out -   # print only

Every model (stock and SE, ECA, CBAM, CoordAtt, SimAM, EMA at backbone-end) is built by its shipped name,
exported by Ultralytics' exporter to OpenVINO FP32 and compiled for the CPU at its default precision (what
Ultralytics' predictor runs). Timing is batch-1 on a fixed input, all models of one scale and both backends
interleaved: each round times every (model, backend) once, ``--iters`` calls each, in a fresh random order.
The reported ratio is a model's median over the stock model's median of the same backend and scale.
Writes ``benchmarks/results/deploy_latency.md`` with the machine's load (``uptime``) at start and end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAYERS = ("se", "eca", "cbam", "coordatt", "simam", "ema")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime not available"


def _models(scale: str) -> dict[str, str]:
    return {"stock": f"yolov5{scale}.yaml", **{l: f"yolov5{scale}-{l}-backbone-end.yaml" for l in LAYERS}}


def _runners(name: str, cfg: str, imgsz: int, work: Path, threads: int):
    """(PyTorch callable, OpenVINO callable) for one config."""
    import openvino as ov
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    y = YOLO(cfg)
    y.model.pt_path = str(work / f"{Path(cfg).stem}.pt")  # the export lands in the work folder
    f = y.export(format="openvino", imgsz=imgsz, batch=1, device="cpu", verbose=False)
    pt = y.model.eval().fuse()
    compiled = ov.Core().compile_model(str(next(Path(f).glob("*.xml"))), "CPU",
                                       {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    x = torch.zeros(1, 3, imgsz, imgsz)
    xn = x.numpy()

    def run_pt():
        with torch.inference_mode():
            pt(x)

    return run_pt, lambda: compiled(xn)


def measure(scale: str, imgsz: int, rounds: int, iters: int, threads: int, work: Path) -> dict[tuple[str, str], float]:
    import torch

    from yolo_attn._ultralytics import quiet_ultralytics

    torch.set_num_threads(threads)
    fns = {}
    with quiet_ultralytics():
        for name, cfg in _models(scale).items():
            fns[(name, "pytorch")], fns[(name, "openvino")] = _runners(name, cfg, imgsz, work, threads)
    for fn in fns.values():  # warm-up
        fn(), fn()
    times = {k: [] for k in fns}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for k in order:
            t = time.perf_counter()
            for _ in range(iters):
                fns[k]()
            times[k].append((time.perf_counter() - t) / iters * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def table(scale: str, med: dict) -> list[str]:
    lines = [f"### yolov5{scale}", "", "| model | PyTorch ms | PyTorch × stock | OpenVINO ms | OpenVINO × stock |",
             "|---|---|---|---|---|"]
    for name in ("stock", *LAYERS):
        p, o = med[(name, "pytorch")], med[(name, "openvino")]
        lines.append(f"| {name} | {p:.2f} | {p / med[('stock', 'pytorch')]:.3f} | {o:.2f} | "
                     f"{o / med[('stock', 'openvino')]:.3f} |")
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["n", "s"])
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "deploy_latency.md"), help="'-': print only")
    args = ap.parse_args()
    import yolo_attn  # noqa: F401  (registers the layers)
    from yolo_attn.deploy.formats import versions

    start = _uptime()
    lines = ["# Latency on the deployment backend (OpenVINO CPU) beside PyTorch", "",
             f"Command: `python benchmarks/deploy_latency.py {' '.join(sys.argv[1:])}`".rstrip() + "; batch 1, "
             f"imgsz {args.imgsz}, {args.threads} threads, {args.rounds} interleaved rounds x {args.iters} calls, "
             "median; OpenVINO FP32 IR at the CPU plugin's default precision.", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs "
             "(the load below); ratios are more trustworthy than milliseconds.", "", f"- load at start: `{start}`"]
    body = []
    with tempfile.TemporaryDirectory(prefix="deploy-latency-") as tmp:
        for scale in args.scales:
            body += table(scale, measure(scale, args.imgsz, args.rounds, args.iters, args.threads, Path(tmp)))
    lines += [f"- load at end: `{_uptime()}`", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions().items())), "", *body]
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(text + f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
