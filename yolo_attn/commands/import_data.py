"""``yolo-attn import-data coco|voc|yolo ...``: convert a labelled dataset to Ultralytics' layout with a YAML."""

from __future__ import annotations

HELP = "import a COCO-JSON, Pascal-VOC/LabelImg or YOLO-format dataset into Ultralytics' layout with a dataset YAML"


def _fraction(text: str) -> float:
    import argparse

    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < f < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return f


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    c = sub.add_parser("coco", help="COCO instances JSON + image folder")
    c.add_argument("instances", help="instances_*.json")
    c.add_argument("images", help="folder holding the images named in the JSON")
    c.add_argument("out", help="output dataset folder")
    c.add_argument("--split", choices=("auto", "train", "val"), default="auto",
                   help="split these images go to (auto: exactly round(N x --val-fraction) validation images)")
    v = sub.add_parser("voc", help="Pascal VOC (Annotations/, JPEGImages/, ImageSets/Main/) or LabelImg XML folder")
    v.add_argument("voc", help="VOC folder (e.g. VOCdevkit/VOC2012) or a folder of LabelImg XML files")
    v.add_argument("out", help="output dataset folder")
    v.add_argument("--images", help="folder of the images (default: an images/ or JPEGImages/ folder beside the XML, "
                                    "or the XML folder itself)")
    v.add_argument("--classes", nargs="+", help="class names in order (default: every name found, sorted)")
    v.add_argument("--include-difficult", action="store_true", help="keep objects marked difficult")
    y = sub.add_parser("yolo", help="YOLO-format folder without a YAML (images + .txt labels + classes.txt)")
    y.add_argument("src", help="folder with the images and their label .txt files")
    y.add_argument("out", help="output dataset folder")
    y.add_argument("--names", nargs="+", help="class names in order (default: read from classes.txt or obj.names)")
    for p in (c, v, y):
        p.add_argument("--val-fraction", type=_fraction, default=0.2,
                       help="validation share for automatic splits, in (0, 1) (default 0.2)")
        p.add_argument("--link", action="store_true", help="symlink images instead of copying")
        p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
        p.add_argument("--no-check", action="store_true", help="skip the dataset check after importing")


def _import(args):
    from ..datasets import import_coco, import_voc, import_yolo

    common = {"val_fraction": args.val_fraction, "link": args.link, "force": args.force}
    if args.format == "coco":
        return import_coco(args.instances, args.images, args.out, split=args.split, **common)
    if args.format == "voc":
        return import_voc(args.voc, args.out, classes=args.classes, include_difficult=args.include_difficult,
                          images=args.images, **common)
    return import_yolo(args.src, args.out, names=args.names, **common)


def run(args) -> int:
    import sys

    from .._io import OverwriteError
    from ..datasets import check_data

    try:
        rep = _import(args)
    except OverwriteError as exc:  # a FileExistsError: not among the errors cli.main reports by itself
        print(f"yolo-attn import-data: error: {exc}", file=sys.stderr)
        return 1
    print(rep.summary())
    if not args.no_check:
        chk = check_data(rep.yaml)
        print(chk.summary())
        return 0 if chk.ok else 1
    return 0
