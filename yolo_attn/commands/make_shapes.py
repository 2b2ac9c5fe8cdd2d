"""``yolo-attn make-shapes --out DIR --seed 0``: generate the synthetic shapes detection dataset."""

from __future__ import annotations

from dataclasses import fields

HELP = "generate the synthetic shapes detection dataset (YOLO format, deterministic by seed)"

_HELP = {
    "seed": "random seed (same seed and options: bit-identical output)",
    "n_train": "training images",
    "n_val": "validation images",
    "imgsz": "image side in pixels",
    "min_objects": "fewest shapes per image",
    "max_objects": "most shapes per image",
    "min_size": "smallest shape scale in pixels",
    "max_size": "largest shape scale in pixels",
    "clutter": "most unlabelled thin lines per image",
    "noise": "per-pixel noise amplitude",
    "max_iou": "largest overlap (IoU) between two shapes",
    "quality": "JPEG quality",
}


def add_arguments(parser) -> None:
    from ..datasets.shapes import ShapesConfig

    parser.add_argument("--out", default="data/shapes", help="output folder (default data/shapes)")
    parser.add_argument("--yaml", help="dataset YAML to write (default: <out>.yaml beside the folder)")
    parser.add_argument("--check", action="store_true", help="do not write: regenerate and compare with --out")
    defaults = ShapesConfig()
    for f in fields(ShapesConfig):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name),
                            help=f"{_HELP.get(f.name, f.name)} (default {getattr(defaults, f.name)})")


def run(args) -> int:
    import time
    from pathlib import Path

    from ..datasets.shapes import ShapesConfig, verify, write_dataset

    if args.check:
        problems = verify(args.out, args.yaml)
        errors = [p for p in problems if not p.startswith("note:")]
        for p in problems:
            print(p)
        print(f"{args.out}: {'differs from a fresh generation' if errors else 'identical to a fresh generation'}")
        return 1 if errors else 0
    cfg = ShapesConfig(**{f.name: getattr(args, f.name) for f in fields(ShapesConfig)})
    t0 = time.perf_counter()
    yaml_path = write_dataset(args.out, cfg, args.yaml)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file() and p.suffix in (".jpg", ".txt", ".json"))
    print(
        f"wrote {cfg.n_train} train + {cfg.n_val} val images ({size / 1e6:.2f} MB) to {args.out} "
        f"and {yaml_path} in {time.perf_counter() - t0:.1f}s"
    )
    return 0
