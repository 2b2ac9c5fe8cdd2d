"""``yolo-attn check-data DATA.yaml|DIR [--task T]``: report every dataset problem with its file; exit 1 on fatal ones."""

from __future__ import annotations

HELP = ("check a dataset YAML or a classification folder (missing/empty labels, boxes outside images, unknown "
        "classes, unreadable images, polygons, keypoints, rotated boxes, class folders)")


def add_arguments(parser) -> None:
    from ..datasets.tasks import TASK_NAMES

    parser.add_argument("data", help="Ultralytics dataset YAML, or a classification dataset folder "
                                     "(DIR/train/<class>/, DIR/val/<class>/)")
    parser.add_argument("--task", choices=TASK_NAMES,
                        help="read the labels as this Ultralytics task (default: pose when the YAML has kpt_shape, "
                             "classify for a folder, else detect; name segment or obb to check polygons or "
                             "rotated boxes as such)")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="splits to check")
    parser.add_argument("--no-images", action="store_true", help="do not open the images (faster)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    import json

    from ..datasets import check_data

    rep = check_data(args.data, splits=tuple(args.splits), check_images=not args.no_images, task=args.task)
    print(json.dumps(rep.as_dict(), indent=2) if args.json else rep.summary())
    return 0 if rep.ok else 1
