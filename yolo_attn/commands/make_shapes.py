"""``yolo-attn make-shapes --out DIR --seed 0 [--task segment|pose|obb|classify]``: generate the synthetic shapes
dataset of a task (detection by default)."""

from __future__ import annotations

from dataclasses import fields

HELP = "generate the synthetic shapes dataset of a task (YOLO format, deterministic by seed)"

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

    from ..datasets.tasks import TASK_NAMES, task_data

    parser.add_argument("--task", choices=TASK_NAMES, default="detect",
                        help="the labels: detect (boxes), segment (polygon masks), pose (4 keypoints with "
                             "visibility: the shape's top, right, bottom and left points), obb (rotated boxes), "
                             "classify (one shape per image in train/<class>/, val/<class>/; no YAML) "
                             "(default detect)")
    parser.add_argument("-o", "--out", help="output folder (default data/shapes, data/shapes-seg, "
                                            "data/shapes-pose, data/shapes-obb or data/shapes-cls by --task)")
    parser.add_argument("--yaml", help="dataset YAML to write (default: <out>.yaml beside the folder; "
                                       "classify writes none)")
    parser.add_argument("--check", action="store_true", help="do not write: regenerate and compare with --out")
    defaults, cls_defaults = ShapesConfig(), task_data("classify").shapes_defaults
    for f in fields(ShapesConfig):
        flag = "--" + f.name.replace("_", "-")
        also = f"; classify {cls_defaults[f.name]}" if f.name in cls_defaults else ""
        parser.add_argument(flag, dest=f.name, type=type(getattr(defaults, f.name)), default=None,
                            help=f"{_HELP.get(f.name, f.name)} (default {getattr(defaults, f.name)}{also})")


def run(args) -> int:
    import time
    from pathlib import Path

    from ..datasets.shapes import ShapesConfig, verify, write_dataset
    from ..datasets.tasks import task_data

    task = task_data(args.task)
    if args.out is None:
        args.out = "data/shapes" + (f"-{task.suffix}" if task.suffix else "")
    if args.check:
        problems = verify(args.out, args.yaml)
        errors = [p for p in problems if not p.startswith("note:")]
        for p in problems:
            print(p)
        print(f"{args.out}: {'differs from a fresh generation' if errors else 'identical to a fresh generation'}")
        return 1 if errors else 0
    cfg = task.default_config(**{f.name: getattr(args, f.name) for f in fields(ShapesConfig)
                                 if getattr(args, f.name) is not None})
    t0 = time.perf_counter()
    yaml_path = write_dataset(args.out, cfg, args.yaml, task=task)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file() and p.suffix in (".jpg", ".txt", ".json"))
    what = "" if task.folder_layout else f" and {yaml_path}"
    kind = "" if task.name == "detect" else f" ({task.name})"
    print(
        f"wrote {cfg.n_train} train + {cfg.n_val} val images{kind} ({size / 1e6:.2f} MB) to {args.out}"
        f"{what} in {time.perf_counter() - t0:.1f}s"
    )
    return 0
