"""``yolo-attn check-data DATA.yaml``: report every dataset problem with its file; exit 1 on fatal ones."""

from __future__ import annotations

HELP = "check a dataset YAML (missing/empty labels, boxes outside images, unknown classes, unreadable images)"


def add_arguments(parser) -> None:
    parser.add_argument("data", help="Ultralytics dataset YAML")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="splits to check")
    parser.add_argument("--no-images", action="store_true", help="do not open the images (faster)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    import json

    from ..datasets import check_data

    rep = check_data(args.data, splits=tuple(args.splits), check_images=not args.no_images)
    print(json.dumps(rep.as_dict(), indent=2) if args.json else rep.summary())
    return 0 if rep.ok else 1
