"""CPU speed of every registered attention layer, beside public implementations, and its cost inside yolov5s.

Part 1 times forward (eval, no grad, batch 1) and forward+backward (train mode, batch 2) of each layer at the
P3/P4/P5 feature maps of yolov5s at 640 (128x80x80, 256x40x40, 512x20x20), and, side by side in the
same interleaved loop, the same module from timm (reference implementations, used only here and in
tests) and Ultralytics' own CBAM. It reports yolo_attn's time as a ratio to the fastest public one.

Part 2 times yolov5s inference at 640 with one layer inserted before SPPF, as a ratio to stock yolov5s
measured in the same interleaved loop; ``--bases yolov8.yaml yolo11.yaml yolo26.yaml yolo12.yaml`` does the same
for yolov8s/yolo11s/yolo26s/yolo12s (YOLO12 has no SPPF: ``backbone-end`` is the end of its backbone)
(the target: one light gate before SPPF costs at most 2% of stock inference).

Usage:  python benchmarks/bench_modules.py [--repeats 30] [--layers SE ECA ...] [--out benchmarks/results]
        python benchmarks/bench_modules.py --skip-modules --bases yolov8.yaml yolo11.yaml --layers SE ECA CBAM \
            CoordAtt SimAM EMA --json bases.json
Times are medians; variants are interleaved (A B C A B C ...) so machine noise hits all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import yolo_attn
from yolo_attn import LAYERS

FEATURES = {"P3": (128, 80), "P4": (256, 40), "P5": (512, 20)}  # yolov5s at 640: channels, size


def public_references(name: str, c: int, size: int) -> dict[str, torch.nn.Module]:
    """Public implementations of the same module (timm, Ultralytics), keyed by a label."""
    refs = {}
    try:
        import timm.layers as tl
    except ImportError:  # timm is a dev extra
        tl = None
    if tl is not None:
        table = {
            "SE": lambda: tl.SEModule(c, rd_ratio=1 / 16),
            "ECA": lambda: tl.EcaModule(c),
            "CBAM": lambda: tl.get_attn("cbam")(c),
            "CoordAtt": lambda: tl.get_attn("coord")(c),
            "GC": lambda: tl.GlobalContext(c, rd_ratio=1 / 16),  # our default reduction
            "GatherExcite": lambda: tl.GatherExcite(c, use_mlp=False),  # the parameter-free global variant, our default
            "SK": lambda: tl.SelectiveKernel(c, c),
            "NonLocal": lambda: tl.NonLocalAttn(c, rd_ratio=1 / 2),  # the paper's C/2, our default
            "MHSA": lambda: tl.get_attn("bottleneck")(c, feat_size=(size, size), num_heads=4),
        }
        if name in table:
            refs["timm"] = table[name]()
    if name == "CBAM":
        from ultralytics.nn.modules.conv import CBAM as UltralyticsCBAM

        refs["ultralytics"] = UltralyticsCBAM(c)
    return refs


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved_times(variants: dict[str, callable], repeats: int, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each variant in every round, run round-robin."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for k, fn in variants.items():
            times[k].append(_timed(fn))
    return times


def interleaved(variants: dict[str, callable], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each variant, run round-robin."""
    return {k: statistics.median(v) for k, v in interleaved_times(variants, repeats, warmup).items()}


def module_rows(names: list[str], repeats: int) -> list[dict]:
    rows = []
    for name in names:
        spec = LAYERS.get(name)
        if spec.kind != "preserve":
            continue
        for level, (c, s) in FEATURES.items():
            torch.manual_seed(0)
            try:
                mods = {"yolo_attn": spec.cls(c)}
            except ValueError as exc:  # e.g. MHSA's relative-position table is smaller than an 80x80 map
                print(f"  {name} {level}: not built at {c}x{s}x{s} ({exc})")
                continue
            try:
                mods.update(public_references(name, c, s))
            except Exception as exc:  # a reference that cannot be built at this size is reported, not fatal
                print(f"  {name} {level}: reference skipped ({exc})")
            x = torch.randn(1, c, s, s)
            xb = torch.randn(2, c, s, s, requires_grad=True)  # training: batch 2 (batch-statistics layers)

            def fwd(m):
                m.eval()

                def run():
                    with torch.no_grad():
                        m(x)

                return run

            def fwd_bwd(m):
                m.train()

                def run():
                    m(xb).sum().backward()

                return run

            try:
                f = interleaved({k: fwd(m) for k, m in mods.items()}, repeats)
                fb = interleaved({k: fwd_bwd(m) for k, m in mods.items()}, max(repeats // 2, 5))
            except ValueError as exc:  # a layer that refuses this map size (relative-position tables)
                print(f"  {name} {level}: skipped ({exc})")
                continue
            public_f = min((v for k, v in f.items() if k != "yolo_attn"), default=None)
            public_fb = min((v for k, v in fb.items() if k != "yolo_attn"), default=None)
            row = {
                "layer": name,
                "level": level,
                "shape": [1, c, s, s],
                "fwd_ms": {k: v * 1e3 for k, v in f.items()},
                "fwd_bwd_ms": {k: v * 1e3 for k, v in fb.items()},
                "fwd_ratio_to_fastest_public": f["yolo_attn"] / public_f if public_f else None,
                "fwd_bwd_ratio_to_fastest_public": fb["yolo_attn"] / public_fb if public_fb else None,
            }
            rows.append(row)
            print(_module_line(row), flush=True)
    return rows


def _fmt_ratio(r) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _module_line(r: dict) -> str:
    refs = ", ".join(f"{k} {v:.2f}" for k, v in r["fwd_ms"].items() if k != "yolo_attn")
    return (
        f"| {r['layer']} | {r['level']} | {r['fwd_ms']['yolo_attn']:.2f} | {r['fwd_bwd_ms']['yolo_attn']:.2f} "
        f"| {refs or '-'} | {_fmt_ratio(r['fwd_ratio_to_fastest_public'])} "
        f"| {_fmt_ratio(r['fwd_bwd_ratio_to_fastest_public'])} |"
    )


def _tensors(out) -> list[torch.Tensor]:
    """Every tensor in a (nested) model output: Detect returns tensors, lists or dicts depending on mode."""
    if isinstance(out, torch.Tensor):
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [t for o in items for t in _tensors(o)]


def model_rows(
    names: list[str], repeats: int, placement: str = "backbone-end", imgsz: int = 640, train_step=(), base: str = "yolov5.yaml",
    threads: int | None = None,
) -> list[dict]:
    """``base`` at scale s (yolov5s, yolov8s, yolo11s): latency with ``names`` placed at ``placement``, as a ratio
    to the stock model in the same loop.

    For layers in ``train_step`` also a training step (forward + backward, batch 2, train mode) is timed.
    """
    from ultralytics.nn.tasks import DetectionModel

    from yolo_attn.placement import make_yaml

    threads = threads or os.cpu_count()  # Ultralytics lowers torch's thread count when it builds a model
    x = torch.zeros(1, 3, imgsz, imgsz)
    xt = torch.rand(2, 3, imgsz, imgsz)
    stock = DetectionModel(f"{Path(base).stem}s.yaml", verbose=False)  # yolov5s.yaml, yolov8s.yaml, yolo11s.yaml
    rows = []
    for name in names:
        if LAYERS.get(name).kind != "preserve":
            continue
        cfg, _ = make_yaml(base, name, [], [placement])
        cfg["scale"] = "s"
        attn = DetectionModel(cfg, verbose=False)
        torch.set_num_threads(threads)

        def infer(m):
            def go():
                m.eval()
                with torch.no_grad():
                    m(x)

            return go

        def step(m):
            def go():
                m.train()
                sum(t.float().mean() for t in _tensors(m(xt))).backward()

            return go

        try:
            raw = interleaved_times({"stock": infer(stock), name: infer(attn)}, repeats)
        except ValueError as exc:  # e.g. relative-position tables smaller than a P2 map at 640
            print(f"  {name} at {placement}: skipped ({exc})")
            continue
        t = {k: statistics.median(v) for k, v in raw.items()}
        row = {"base": base, "layer": name, "placement": placement, "stock_ms": t["stock"] * 1e3, "attn_ms": t[name] * 1e3}
        row["ratio"] = t[name] / t["stock"]
        # median of the per-round ratios (the two passes of a round are adjacent): robust to a shared machine's drifts
        row["paired_ratio"] = statistics.median(a / b for a, b in zip(raw[name], raw["stock"]))
        line = (f"| {base} | {name} | {placement} | {row['stock_ms']:.1f} | {row['attn_ms']:.1f} | {row['ratio']:.3f} "
                f"| {row['paired_ratio']:.3f} |")  # fmt: skip
        if name in train_step:
            ts = interleaved({"stock": step(stock), name: step(attn)}, max(repeats // 3, 3), warmup=1)
            row["train_step_ratio"] = ts[name] / ts["stock"]
            line += f" {row['train_step_ratio']:.3f} |"
        else:
            line += " - |"
        rows.append(row)
        print(line, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed rounds per variant (median reported)")
    ap.add_argument("--model-repeats", type=int, default=15, help="timed rounds for yolov5s latency")
    ap.add_argument("--layers", nargs="*", help="subset of layer names (default: all preserve layers)")
    ap.add_argument("--skip-model", action="store_true", help="skip the yolov5s latency part")
    ap.add_argument("--skip-modules", action="store_true", help="skip the per-module part")
    ap.add_argument("--placements", nargs="*", default=["backbone-end"], help="placements for the yolov5s part")
    ap.add_argument("--train-step", nargs="*", default=["SE", "CBAM"], help="layers whose training step is timed too")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every CPU)")
    ap.add_argument("--bases", nargs="*", default=["yolov5.yaml"], help="base models of the model part, at scale s")
    ap.add_argument("--out", default="benchmarks/results", help="folder for the JSON results")
    ap.add_argument("--json", default="modules.json", help="JSON file name inside --out")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    names = args.layers or LAYERS.names("preserve")
    print(f"yolo_attn {yolo_attn.__version__}, torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    if not args.skip_modules:
        print("| layer | level | fwd ms | fwd+bwd ms | public fwd ms | fwd ratio | fwd+bwd ratio |")
        print("|---|---|---|---|---|---|---|")
    modules = [] if args.skip_modules else module_rows(names, args.repeats)
    models = []
    if not args.skip_model:
        print("\n| base | layer | placement | stock s ms | with layer ms | inference ratio | paired ratio | train-step ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for base in args.bases:
            for placement in args.placements:
                models += model_rows(names, args.model_repeats, placement, train_step=args.train_step, base=base, threads=args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_base = {f"{Path(b).stem}s": [r for r in models if r["base"] == b] for b in args.bases}
    (out / args.json).write_text(json.dumps({"threads": torch.get_num_threads(), "modules": modules, **by_base}, indent=1))
    print(f"\nresults written to {out / args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
