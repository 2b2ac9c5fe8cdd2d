"""``yolo-attn import-data yolo|coco|voc|labelme|cvat ...``: convert a labelled dataset to Ultralytics' layout with a YAML."""

from __future__ import annotations

HELP = ("import a YOLO, COCO-JSON, Pascal-VOC/LabelImg, LabelMe or CVAT export into Ultralytics' layout with a "
        "dataset YAML")


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
    y = sub.add_parser("yolo", help="YOLO-format export: images + .txt labels, names from data.yaml, classes.txt or "
                                    "obj.names; train/valid/test folders keep their splits")
    y.add_argument("src", help="export folder (e.g. Roboflow 'YOLOv5 PyTorch': data.yaml, train/, valid/, test/)")
    y.add_argument("out", help="output dataset folder")
    y.add_argument("--names", nargs="+", help="class names in order (default: the export's data.yaml names, else "
                                              "classes.txt or obj.names)")
    c = sub.add_parser("coco", help="COCO instances JSON + image folder, or a COCO export folder "
                                    "(one _annotations.coco.json per split folder)")
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="INSTANCES.json IMAGES OUT (one instances file and its image folder), or EXPORT OUT "
                        "(a folder with train/ valid/ test/, each holding _annotations.coco.json and its images)")
    c.add_argument("--split", choices=("auto", "train", "val"), default="auto",
                   help="one instances file: split these images go to (auto: exactly round(N x --val-fraction) "
                        "validation images)")
    v = sub.add_parser("voc", help="Pascal VOC (Annotations/, JPEGImages/, ImageSets/Main/) or LabelImg XML folder")
    v.add_argument("voc", help="VOC folder (e.g. VOCdevkit/VOC2012) or a folder of LabelImg XML files")
    v.add_argument("out", help="output dataset folder")
    v.add_argument("--images", help="folder of the images (default: an images/ or JPEGImages/ folder beside the XML, "
                                    "or the XML folder itself)")
    v.add_argument("--include-difficult", action="store_true", help="keep objects marked difficult")
    m = sub.add_parser("labelme", help="folder of LabelMe JSON files (rectangles imported, or polygons with --task "
                                       "segment, 4-point polygons with --task obb, rectangles and their grouped points "
                                       "with --task pose; other shapes skipped)")
    m.add_argument("src", help="folder of LabelMe .json files (searched recursively)")
    m.add_argument("out", help="output dataset folder")
    m.add_argument("--images", help="another folder to look for the images in (default: where imagePath points, "
                                    "beside the JSON)")
    t = sub.add_parser("cvat", help="CVAT for images 1.1 XML export (boxes imported, or polygons with --task segment, "
                                    "rotated boxes and 4-point polygons with --task obb, skeletons with --task pose; "
                                    "other shapes skipped)")
    t.add_argument("src", help="annotations.xml, or the folder the export was unzipped into")
    t.add_argument("out", help="output dataset folder")
    t.add_argument("--images", help="folder of the images (default: the XML's folder and its images/)")
    c.add_argument("--task", choices=("detect", "segment", "pose"), default="detect",
                   help="detect: the bbox of each annotation; segment: its segmentation polygons (run-length masks "
                        "skipped with the reason); pose: its bbox and keypoints (kpt_shape from the categories' "
                        "keypoints, flip_idx from their left/right names) (default detect)")
    _task_options(m, t)
    for p in (v, m, t):
        p.add_argument("--classes", nargs="+", help="class names in order (default: the export's labels; "
                                                    "VOC, LabelMe: every name found, sorted)")
    for p in (y, c, v, m, t):
        p.add_argument("--val-fraction", type=_fraction, default=0.2,
                       help="validation share for automatic splits, in (0, 1) (default 0.2)")
        p.add_argument("--test-fraction", type=_fraction, default=None,
                       help="also carve a test split: exactly round(N x this) images, stratified by class (of the "
                            "export's training images when it fixes train and val)")
        p.add_argument("--link", action="store_true", help="symlink images instead of copying")
        p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
        p.add_argument("--no-check", action="store_true", help="skip the dataset check after importing")


def _task_options(*parsers) -> None:
    """LabelMe's and CVAT's --task and --keypoints."""
    for p in parsers:
        p.add_argument("--task", choices=("detect", "segment", "obb", "pose"), default="detect",
                       help="detect: rectangles/boxes; segment: polygons (and boxes as their four corners); obb: "
                            "4-point polygons and (rotated) boxes as 8-value rows; pose: objects with their keypoints "
                            "(LabelMe: a rectangle and the point shapes of its group_id; CVAT: skeletons) "
                            "(default detect)")
        p.add_argument("--keypoints", nargs="+", metavar="NAME",
                       help="--task pose: the keypoint names in the model's order (LabelMe: needed, the point "
                            "shapes' labels; CVAT: default the skeleton's points in the XML); flip_idx is written "
                            "when every left/right name has its mirror")


def _coco(args, common: dict):
    from pathlib import Path

    from ..datasets import import_coco, import_coco_export

    first = Path(args.inputs[0])
    if first.is_dir():
        if len(args.inputs) != 2:
            raise ValueError(f"import-data coco {first}: a COCO export folder takes EXPORT OUT "
                             f"({len(args.inputs)} paths given)")
        if args.split != "auto":
            raise ValueError("--split applies to one instances file; an export folder keeps its own splits")
        return import_coco_export(first, args.inputs[1], task=args.task, **common)
    if len(args.inputs) != 3:
        raise ValueError(f"import-data coco {first}: one instances file takes INSTANCES.json IMAGES OUT "
                         f"({len(args.inputs)} paths given)" + ("" if first.exists() else f"; {first} does not exist"))
    return import_coco(args.inputs[0], args.inputs[1], args.inputs[2], split=args.split, task=args.task, **common)


def _import(args):
    from ..datasets import import_cvat, import_labelme, import_voc, import_yolo

    common = {"val_fraction": args.val_fraction, "test_fraction": args.test_fraction, "link": args.link,
              "force": args.force}
    if args.format == "coco":
        return _coco(args, common)
    if args.format == "voc":
        return import_voc(args.voc, args.out, classes=args.classes, include_difficult=args.include_difficult,
                          images=args.images, **common)
    if args.format == "labelme":
        return import_labelme(args.src, args.out, classes=args.classes, images=args.images, task=args.task,
                              keypoints=args.keypoints, **common)
    if args.format == "cvat":
        return import_cvat(args.src, args.out, classes=args.classes, images=args.images, task=args.task,
                           keypoints=args.keypoints, **common)
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
        chk = check_data(rep.yaml, task=getattr(args, "task", None))
        print(chk.summary())
        return 0 if chk.ok else 1
    return 0
