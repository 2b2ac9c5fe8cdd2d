"""Table of the shipped model configs at one scale: layers, parameters, GFLOPs, CPU latency vs stock YOLOv5.

    python benchmarks/configs_table.py                      # scale s, 640, writes docs/configs.md
    python benchmarks/configs_table.py --repeats 9 --warmup 2 --group 8
    python benchmarks/configs_table.py --only cbam --no-latency --out -   # print, don't write

Every config is built by its scaled name (``yolov5s-cbam-neck.yaml``), exactly as a user would. Latency is
the median of ``--repeats`` batch-1 inference passes at ``--imgsz`` on the CPU, reported as a ratio to the stock
``yolov5s.yaml`` measured in the same run: configs are timed in groups of ``--group`` models that are kept in
memory together with the stock model, and in every round each model of the group (stock included) is timed
once, in a fresh random order, so slow drifts of a shared machine hit all of them alike. Each config's ratio
is its median over the stock model's median in its own group. Torch threads are set to ``os.cpu_count()``
before every timing (Ultralytics lowers them for CPU training).

GFLOPs come from Ultralytics' ``get_flops`` (thop): it counts convolution, linear and normalisation layers
only, so parameter-free or matmul-based attention (SimAM, MHSA, TripletAttention's pooling) is under-counted;
latency has no such blind spot.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STOCK = "yolov5.yaml"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", default="s", choices=list("nsmlx"))
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--repeats", type=int, default=7, help="timed passes per model (median is reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes per model before its group's rounds")
    p.add_argument("--group", type=int, default=10, help="configs timed together with the stock model")
    p.add_argument("--only", help="only configs whose file name contains this text")
    p.add_argument("--no-latency", action="store_true", help="layers, parameters and GFLOPs only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "docs" / "configs.md"), help="Markdown file, or - for stdout")
    return p.parse_args(argv)


def restore_threads():
    import torch

    n = os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def build(name: str):
    from yolo_attn.models import build_model

    model = build_model(name).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def time_once(model, x) -> float:
    import torch

    restore_threads()
    with torch.inference_mode():
        t = time.perf_counter()
        model(x)
        return time.perf_counter() - t


def measure_group(models: dict, x, repeats: int, warmup: int, rng: random.Random) -> dict[str, list[float]]:
    """Latencies of each model over the rounds; every round times each model once in a shuffled order."""
    for _ in range(warmup):
        for m in models.values():
            time_once(m, x)
    times = {k: [] for k in models}
    for _ in range(repeats):
        order = list(models)
        rng.shuffle(order)
        for k in order:
            times[k].append(time_once(models[k], x))
    return times


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    import yolo_attn
    from yolo_attn.placement import shipped_configs

    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    configs = [c for c in shipped_configs() if not args.only or args.only in c.filename]
    configs = [c for c in configs if c.layer is None or c.layer in yolo_attn.LAYERS]
    scaled = lambda f: f.replace("yolov5", f"yolov5{args.scale}", 1)
    x = torch.zeros(1, 3, args.imgsz, args.imgsz)

    stock = build(scaled(STOCK))
    rows = {STOCK: dict(layer="-", placement="-", layers=len(stock.model), params=get_num_params(stock), gflops=get_flops(stock, args.imgsz))}
    latency, spread = {}, []
    t0 = time.time()
    for g in range(0, len(configs), max(1, args.group)):
        group = configs[g : g + args.group]
        models = {}
        for c in group:
            m = build(scaled(c.filename))
            models[c.filename] = m
            rows[c.filename] = dict(
                layer=c.layer or "(C3FMM)",
                placement=" ".join(map(str, c.placements)) + (" fuse=add" if "-add-" in c.filename else ""),
                layers=len(m.model),
                params=get_num_params(m),
                gflops=get_flops(m, args.imgsz),
            )
        if not args.no_latency:
            times = measure_group({STOCK: stock, **models}, x, args.repeats, args.warmup, rng)
            med = {k: statistics.median(v) for k, v in times.items()}
            latency.setdefault(STOCK, []).append(med[STOCK])
            spread.append((max(times[STOCK]) - min(times[STOCK])) / med[STOCK])
            for k in models:
                latency[k] = med[k] / med[STOCK]
        print(f"[{g + len(group)}/{len(configs)}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        del models

    base = rows[STOCK]
    lines = [
        "# Shipped configs",
        "",
        f"Generated by `python benchmarks/configs_table.py{' ' + ' '.join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`"
        f" ({time.strftime('%Y-%m-%d')}, ultralytics {__import__('ultralytics').__version__}, torch {torch.__version__},"
        f" {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads).",
        "",
        f"Scale **{args.scale}** (build by name, e.g. `yolov5{args.scale}-cbam-neck.yaml`), input {args.imgsz}x{args.imgsz}, batch 1.",
        "The configs live in `models/yaml/` (installed as `yolo_attn/cfg/`) and are written by `yolo-attn make-configs`.",
        "GFLOPs: Ultralytics' `get_flops` (thop), which counts conv/linear/norm layers only, so parameter-free or",
        "matmul-based attention (SimAM, MHSA, TripletAttention's pooling) is under-counted.",
    ]
    if not args.no_latency:
        stock_ms = statistics.median(latency[STOCK]) * 1e3
        lines += [
            f"Latency: CPU inference, median of {args.repeats} passes, as a ratio to stock `yolov5{args.scale}.yaml` timed in the",
            f"same rounds (groups of {args.group}, shuffled order each round); stock median {stock_ms:.0f} ms.",
            f"Noise gauge: the stock model's own timings varied by up to {max(spread) * 100:.0f}% between rounds"
            " ((max - min) / median, worst group); ratios closer to 1 than that say nothing. Rerun on a quiet machine.",
        ]
    lines += [
        "",
        "Placements (details and the `yolo-attn make-yaml` generator: `yolo_attn/placement.py`):",
        "`backbone-end` one layer after the last backbone C3 (before SPPF); `backbone` after every backbone C3;",
        "`sppf` after SPPF; `neck` after every head C3; `head-in` one layer on each Detect input, seen by Detect only;",
        "`c3`/`c3-backbone`/`c3-neck`/`c3-backbone-end` C3 -> C3Attn (attention in every bottleneck's residual branch);",
        "`fmm*` C3 -> C3FMM (feature-map multiplication). MHSA is shipped at P5 only (backbone-end, sppf, last backbone C3):",
        "self-attention cost grows with the square of the token count. `fuse=add` rows are the multiplication-vs-addition",
        "ablation (gate added instead of multiplied).",
    ]
    lines += ["", "| config | layer | placement | layers | params | Δparams | GFLOPs | latency |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        dp = (r["params"] - base["params"]) / base["params"] * 100
        lat = "1.00" if name == STOCK else (f"{latency[name]:.2f}" if name in latency else "-")
        label = f"`yolov5{args.scale}.yaml` (stock)" if name == STOCK else f"`{name}`"
        lines.append(
            f"| {label} | {r['layer']} | {r['placement']} | {r['layers']} | {r['params']:,} | {dp:+.1f}% | {r['gflops']:.1f} | {lat} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
