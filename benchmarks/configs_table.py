"""Table of the shipped model configs at one scale: layers, parameters, GFLOPs, CPU latency vs the stock base.

    python benchmarks/configs_table.py                      # scale s, 640, every base, writes docs/configs.md
    python benchmarks/configs_table.py --repeats 9 --warmup 2 --group 8
    python benchmarks/configs_table.py --only cbam --no-latency --out -   # print, don't write
    python benchmarks/configs_table.py --bases yolov8.yaml yolo11.yaml --no-latency   # update those sections only
    python benchmarks/configs_table.py --bases yolo11-seg.yaml yolo11-cls.yaml   # task models: only when named

``docs/configs.md`` holds one section per base (YOLOv5, YOLOv8, YOLO11, YOLO26, YOLO12, then the task models'
``-seg``/``-pose``/``-obb``/``-cls`` bases) between ``<!-- section BASE -->`` and ``<!-- end BASE -->`` marks; a run
replaces the sections of the bases it measured and keeps the others. A run without ``--bases`` measures the five
detection bases.

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
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASES = ("yolov5.yaml", "yolov8.yaml", "yolo11.yaml", "yolo26.yaml", "yolo12.yaml")
TASK_BASES = tuple(f"{b[: -len('.yaml')]}-{t}.yaml" for b in BASES[1:] for t in ("seg", "pose", "obb", "cls"))
INTRO = """# Shipped configs

The configs live in `models/yaml/` (installed as `yolo_attn/cfg/`) and are written by `yolo-attn make-configs`;
build a scale by name (`yolov5s-cbam-neck.yaml`, `yolov8s-cbam-neck.yaml`, `yolo11n-se-backbone-end.yaml`,
`yolo26n-se-backbone-end.yaml`, `yolo12s-eca-a2c2f.yaml`).
Placements (details and the `yolo-attn make-yaml` generator: `yolo_attn/placement.py`) mean the same on every base:
`backbone-end` one layer after the last backbone block before SPPF (YOLO12, which has no SPPF: at the end of the
backbone); `backbone` after every backbone block (C3, C2f, C3k2, A2C2f; the C2PSA of YOLO11 and YOLO26 too); `sppf`
after SPPF (before C2PSA); `neck` after every head block; `head-in` one layer on each Detect input, seen by Detect
only; `psa` after C2PSA. Block replacements are named by the base's block: `c3*` C3 -> C3Attn (YOLOv5), `c2f*` C2f ->
AttnC2f (YOLOv8), `c3k2*` C3k2 -> AttnC3k2 (YOLO11, YOLO26, YOLO12's C3k2 rows), attention in every bottleneck's
residual branch (`-backbone`, `-neck`, `-backbone-end` scopes); `fmm*` replaces the base's block by its feature-map
multiplication variant (C3FMM, FMMC2f, FMMC3k2). `no-psa` removes the C2PSA of YOLO11 and YOLO26 (Ultralytics' own
attention): `yolo11-no-psa.yaml` alone, `yolo11-<gate>-no-psa.yaml` with the gate in its place; on YOLO12 `a2c2f`
replaces the area attention inside every A2C2f that has it (the backbone's P4 and P5 blocks) by the gate
(A2C2f -> AttnA2C2f, `yolo12-<gate>-a2c2f.yaml`): both compare Ultralytics' attention with ours. YOLO26's configs keep
its end-to-end (NMS-free) head with both branches. MHSA is shipped at P5 only (backbone-end, sppf, last backbone C3): self-attention
cost grows with the square of the token count. `fuse=add` rows are the multiplication-vs-addition ablation (gate
added instead of multiplied).

Task models (segment, pose, obb, classify): the six light gates (SE, ECA, CBAM, CoordAtt, SimAM, EMA) on the `-seg`,
`-pose`, `-obb` and `-cls` YAMLs of YOLOv8, YOLO11, YOLO26 and YOLO12, named as Ultralytics names its files, the
scale after the version (`yolo11n-seg-cbam-neck.yaml`, `yolo26s-pose-se-backbone-end.yaml`,
`yolov8m-obb-eca-neck.yaml`, `yolo11n-cls-se-backbone.yaml`): `backbone-end` and `neck` for segment, pose and obb;
`backbone-end` (after the last backbone row, which Classify reads) and `backbone` for classify, which has no neck.
The task's head (Segment, Pose, OBB, Classify, YOLO26's Segment26/Pose26/OBB26) stays the last row. Any other
placement of the list above is made with `yolo-attn make-yaml --base yolo11-seg.yaml ...` (on a classifier `neck`,
`head-in` and the `-neck` scopes are refused: there is no neck). Their tables are made on request
(`python benchmarks/configs_table.py --bases yolo11-seg.yaml yolo11-cls.yaml`); none is measured here yet.
"""


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
    p.add_argument("--bases", nargs="*", default=list(BASES), choices=[*BASES, *TASK_BASES],
                   help="bases whose sections are (re)made (default: the five detection bases)")
    p.add_argument("--out", default=str(REPO / "docs" / "configs.md"), help="Markdown file, or - for stdout")
    return p.parse_args(argv)


def scaled_name(name: str, scale: str) -> str:
    """The name at ``scale``, the letter after the version digits: ``yolo11-seg-se-neck.yaml`` -> ``yolo11s-seg-se-neck.yaml``."""
    return re.sub(r"^(yolo(?:v)?\d+)", rf"\g<1>{scale}", name, count=1)


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


def measure(args, configs: list, stock_name: str) -> tuple[dict, dict, list]:
    """(rows, latency ratios, stock spreads) of ``configs`` and their stock model (scaled names)."""
    import torch
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    stem = Path(stock_name).stem
    scaled = lambda f: scaled_name(f, args.scale)
    x = torch.zeros(1, 3, args.imgsz, args.imgsz)
    rng = random.Random(args.seed)
    stock = build(scaled(stock_name))
    rows = {stock_name: {"layer": "-", "placement": "-", "layers": len(stock.model), "params": get_num_params(stock),
                         "gflops": get_flops(stock, args.imgsz)}}
    latency, spread = {}, []
    t0 = time.time()
    for g in range(0, len(configs), max(1, args.group)):
        group = configs[g : g + args.group]
        models = {}
        for c in group:
            m = build(scaled(c.filename))
            models[c.filename] = m
            rows[c.filename] = {
                "layer": c.layer or "(no layer)",
                "placement": " ".join(map(str, c.placements)) + (" fuse=add" if "-add-" in c.filename else ""),
                "layers": len(m.model),
                "params": get_num_params(m),
                "gflops": get_flops(m, args.imgsz),
            }
        if not args.no_latency:
            times = measure_group({stock_name: stock, **models}, x, args.repeats, args.warmup, rng)
            med = {k: statistics.median(v) for k, v in times.items()}
            latency.setdefault(stock_name, []).append(med[stock_name])
            spread.append((max(times[stock_name]) - min(times[stock_name])) / med[stock_name])
            for k in models:
                latency[k] = med[k] / med[stock_name]
        print(f"[{stem} {g + len(group)}/{len(configs)}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        del models
    return rows, latency, spread


def section(args, argv, stock_name: str, rows: dict, latency: dict, spread: list) -> str:
    """The Markdown section of one base (between its marks)."""
    import torch

    stem = Path(stock_name).stem
    example = "-cbam-backbone-end.yaml" if "-" in stem else "-cbam-neck.yaml"  # a classifier has no neck
    lines = [
        f"<!-- section {stock_name} -->",
        f"## {stem} (`{stock_name}`)",
        "",
        (
            f"Generated by `python benchmarks/configs_table.py{' ' + ' '.join(argv) if argv else ''}`"
            f" ({time.strftime('%Y-%m-%d')}, ultralytics {__import__('ultralytics').__version__}, torch {torch.__version__},"
            f" {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads)."
        ),
        "",
        f"Scale **{args.scale}** (e.g. `{scaled_name(stem + example, args.scale)}`), input {args.imgsz}x{args.imgsz}, batch 1.",
        "GFLOPs: Ultralytics' `get_flops` (thop), which counts conv/linear/norm layers only, so parameter-free or",
        "matmul-based attention (SimAM, MHSA, TripletAttention's pooling) is under-counted.",
    ]
    if latency:
        stock_ms = statistics.median(latency[stock_name]) * 1e3
        lines += [
            f"Latency: CPU inference, median of {args.repeats} passes, as a ratio to stock `{scaled_name(stock_name, args.scale)}` timed in the",
            f"same rounds (groups of {args.group}, shuffled order each round); stock median {stock_ms:.0f} ms.",
            (
                f"Noise gauge: the stock model's own timings varied by up to {max(spread) * 100:.0f}% between rounds"
                " ((max - min) / median, worst group); ratios closer to 1 than that say nothing. Rerun on a quiet machine."
            ),
        ]
    else:
        lines.append("Latency: not measured in this run (`--no-latency`).")
    lines += ["", "| config | layer | placement | layers | params | Δparams | GFLOPs | latency |", "|---|---|---|---:|---:|---:|---:|---:|"]
    base = rows[stock_name]
    for name, r in rows.items():
        dp = (r["params"] - base["params"]) / base["params"] * 100
        lat = ("1.00" if latency else "-") if name == stock_name else (f"{latency[name]:.2f}" if name in latency else "-")
        label = f"`{scaled_name(stock_name, args.scale)}` (stock)" if name == stock_name else f"`{name}`"
        lines.append(
            f"| {label} | {r['layer']} | {r['placement']} | {r['layers']} | {r['params']:,} | {dp:+.1f}% | {r['gflops']:.1f} | {lat} |"
        )
    return "\n".join(lines + [f"<!-- end {stock_name} -->"])


def merge(old: str, sections: dict[str, str]) -> str:
    """``old`` document with the given sections replaced (or added in base order), under the common intro."""
    kept = {}
    for base in (*BASES, *TASK_BASES):
        start, end = f"<!-- section {base} -->", f"<!-- end {base} -->"
        if start in old and end in old:
            kept[base] = old[old.index(start) : old.index(end) + len(end)]
    kept.update(sections)
    return INTRO + "".join(f"\n{kept[b]}\n" for b in (*BASES, *TASK_BASES) if b in kept)


def main(argv=None) -> int:
    args = parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    sys.path.insert(0, str(REPO))
    import torch

    import yolo_attn
    from yolo_attn.configs import shipped_configs

    torch.manual_seed(args.seed)
    sections = {}
    for stock_name in args.bases:
        configs = [c for c in shipped_configs() if c.base == stock_name and (not args.only or args.only in c.filename)]
        configs = [c for c in configs if c.layer is None or c.layer in yolo_attn.LAYERS]
        rows, latency, spread = measure(args, configs, stock_name)
        sections[stock_name] = section(args, argv, stock_name, rows, latency, spread)
    if args.out == "-":
        print("\n\n".join(sections.values()))
        return 0
    out = Path(args.out)
    out.write_text(merge(out.read_text() if out.is_file() else "", sections))
    print(f"wrote {args.out} ({', '.join(sections)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
