"""``yolo-attn diagnose``: why did attention help or hurt? Fit regime, AP by object size, effective receptive
field, gates, reliance, importance consistency, smoothness and a verdict per model (docs/diagnostics.md).

    yolo-attn diagnose runs/compare/<folder>                          # a finished compare sweep
    yolo-attn diagnose --models se.pt cbam.pt --baseline stock.pt --data data.yaml --out runs/diagnose
"""

from __future__ import annotations

HELP = "explain a comparison: fit regime, AP by size, receptive field, gates, reliance, smoothness (report + plots)"


def add_arguments(parser) -> None:
    parser.add_argument("sweep", nargs="?", help="a compare results folder (instead of --models/--data)")
    parser.add_argument("--models", nargs="+", metavar="PT", help="trained checkpoints to diagnose")
    parser.add_argument("--baseline", metavar="PT", help="the stock model's checkpoint (default: the first of --models)")
    parser.add_argument("--data", help="dataset YAML the checkpoints were trained on (needs train and val splits)")
    parser.add_argument("--imgsz", type=int, help="image size (default: the sweep's; 640 with --models)")
    parser.add_argument("--out", help="output folder (default: SWEEP/diagnose, or runs/diagnose)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing diagnose.md in the output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of every subset and random projection (default 0)")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates of mAP differences (default 200)")
    parser.add_argument("--trust", action="store_true", help="load checkpoints with full unpickling (runs their code)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _labels(paths) -> list[str]:
    from pathlib import Path

    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else f"{Path(p).parent.name}/{s}" for s, p in zip(stems, paths)]


def _inputs(args):
    """(refs, baseline label, data YAML, imgsz) from a sweep folder or from --models/--baseline/--data."""
    from ..diagnose import DiagnoseError, ModelRef, sweep_inputs

    if args.sweep:
        if args.models or args.data:
            raise DiagnoseError("give either a sweep folder or --models/--data, not both")
        inp = sweep_inputs(args.sweep)
        return inp.refs, inp.baseline, inp.data, args.imgsz or inp.imgsz
    if not args.models or not args.data:
        raise DiagnoseError("give a compare results folder, or --models (and --baseline) with --data")
    paths = ([args.baseline] if args.baseline else []) + list(args.models)
    labels = _labels(paths)
    refs = [ModelRef(lb, p) for lb, p in zip(labels, paths)]
    return refs, labels[0], args.data, args.imgsz or 640


def run(args) -> int:
    import dataclasses
    from pathlib import Path

    from .._io import OverwriteError, refuse_overwrite
    from ..diagnose import DiagnoseError, Settings, diagnose, write

    refs, baseline, data, imgsz = _inputs(args)
    out = Path(args.out) if args.out else (Path(args.sweep) / "diagnose" if args.sweep else Path("runs/diagnose"))
    try:
        refuse_overwrite(out / "diagnose.md", args.force, inputs=[r.path for r in refs], what="diagnosis")
    except OverwriteError as exc:
        raise DiagnoseError(str(exc)) from None
    s = dataclasses.replace(Settings(), imgsz=imgsz, seed=args.seed, n_boot=args.boot, trust=args.trust)
    d = diagnose(refs, baseline, data, s, None if args.quiet else print)
    md = write(d, out)
    print(f"[diagnose] {len(refs)} checkpoints in {d.seconds:.0f} s -> {md}")
    return 0
