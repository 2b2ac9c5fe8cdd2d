"""``yolo-attn import-data coco|voc ...``: convert a COCO-JSON or Pascal-VOC dataset to Ultralytics' layout."""

from __future__ import annotations

HELP = "import a COCO-JSON or Pascal-VOC dataset into Ultralytics' layout with a dataset YAML"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    c = sub.add_parser("coco", help="COCO instances JSON + image folder")
    c.add_argument("instances", help="instances_*.json")
    c.add_argument("images", help="folder holding the images named in the JSON")
    c.add_argument("out", help="output dataset folder")
    c.add_argument("--split", choices=("auto", "train", "val"), default="auto",
                   help="split these images go to (auto: a deterministic --val-fraction is val)")
    v = sub.add_parser("voc", help="Pascal VOC folder (Annotations/, JPEGImages/, ImageSets/Main/)")
    v.add_argument("voc", help="VOC folder, e.g. VOCdevkit/VOC2012")
    v.add_argument("out", help="output dataset folder")
    v.add_argument("--classes", nargs="+", help="class names in order (default: every name found, sorted)")
    v.add_argument("--include-difficult", action="store_true", help="keep objects marked difficult")
    for p in (c, v):
        p.add_argument("--val-fraction", type=float, default=0.2, help="val share for automatic splits (default 0.2)")
        p.add_argument("--link", action="store_true", help="symlink images instead of copying")
        p.add_argument("--no-check", action="store_true", help="skip the dataset check after importing")


def run(args) -> int:
    from ..compare.datasets import check_data, import_coco, import_voc

    if args.format == "coco":
        rep = import_coco(args.instances, args.images, args.out, split=args.split, val_fraction=args.val_fraction,
                          link=args.link)
    else:
        rep = import_voc(args.voc, args.out, classes=args.classes, val_fraction=args.val_fraction,
                         include_difficult=args.include_difficult, link=args.link)
    print(rep.summary())
    if not args.no_check:
        chk = check_data(rep.yaml)
        print(chk.summary())
        return 0 if chk.ok else 1
    return 0
