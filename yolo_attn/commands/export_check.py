"""``yolo-attn export-check MODEL|--all-layers [--formats ...]``: export through Ultralytics' exporter to each
deployment format and compare with PyTorch on real images; ``--sweep DIR --int8``: INT8 mAP per placement."""

from __future__ import annotations

from pathlib import Path

HELP = "export a model (or every registered layer) to each deployment format and compare it with PyTorch"
N_IMAGES = 2


def add_arguments(parser) -> None:
    from ..deploy.formats import FORMAT_NAMES

    parser.add_argument("model", nargs="?", help="model YAML (untrained, seeded) or trained .pt checkpoint")
    parser.add_argument("--all-layers", action="store_true",
                        help="one small model per registered layer (YOLOv5n, the layer at backbone-end)")
    parser.add_argument("--layers", nargs="+", help="with --all-layers: only these layers")
    parser.add_argument("--formats", nargs="+", choices=FORMAT_NAMES, metavar="FORMAT",
                        help=f"formats to check (default all: {', '.join(FORMAT_NAMES)})")
    parser.add_argument("--imgsz", type=int, default=64, help="export and comparison image size (default 64)")
    parser.add_argument("--images", nargs="+", help="images to compare on (default: two shapes validation images)")
    parser.add_argument("--data", help="dataset YAML whose training images calibrate INT8 (default: the shapes dataset)")
    parser.add_argument("--out", default="runs/export-check", help="folder for the exported models (default runs/export-check)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--force", action="store_true", help="overwrite --json / the INT8 report")
    parser.add_argument("--trust", action="store_true", help="fully unpickle a .pt (runs code in the file; only for files you trust)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the converters in this process (faster; a converter crash then ends the check)")
    parser.add_argument("--sweep", help="a yolo-attn compare results folder: quantise its trained models (with --int8)")
    parser.add_argument("--int8", action="store_true", help="with --sweep: mAP of OpenVINO INT8 against FP32 per model")


def _images(args) -> list[Path]:
    from ..deploy.check import default_images

    if not args.images:
        return default_images(N_IMAGES)
    paths = [Path(p) for p in args.images]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    return paths


def _models(args, out: Path, images):
    from ..deploy.models import model_for_layer, model_from_file
    from ..registry import LAYERS

    if args.all_layers:
        specs = [LAYERS.get(n) for n in args.layers] if args.layers else list(LAYERS)
        for spec in specs:
            work = out / spec.name
            work.mkdir(parents=True, exist_ok=True)
            yield lambda spec=spec, work=work: model_for_layer(spec, work, images)
    else:
        work = out / Path(args.model).stem
        work.mkdir(parents=True, exist_ok=True)
        yield lambda: model_from_file(args.model, work, images, trust=args.trust)


def _check_args(args) -> None:
    if args.sweep:
        if not args.int8:
            raise ValueError("--sweep needs --int8 (the INT8 accuracy of the sweep's trained models)")
        if args.model or args.all_layers:
            raise ValueError("--sweep quantises the sweep's own checkpoints: give no MODEL and no --all-layers")
        return
    if bool(args.model) == bool(args.all_layers):
        raise ValueError("give a MODEL (.yaml or .pt) or --all-layers (one of the two)")
    if args.layers and not args.all_layers:
        raise ValueError("--layers selects among --all-layers")
    if args.int8:
        raise ValueError("--int8 goes with --sweep; for one model, use --formats openvino-int8")
    if args.imgsz < 32 or args.imgsz % 32:
        raise ValueError(f"--imgsz {args.imgsz}: must be a positive multiple of 32 (the models' largest stride)")
    if args.imgsz < 64 and (args.all_layers or not str(args.model).endswith(".pt")):
        raise ValueError(f"--imgsz {args.imgsz}: an untrained model (a YAML) is checked at 64 or more: at 32 its "
                         "last level is one pixel, whose BatchNorm statistics from the check images blow its "
                         "features up, and the comparison would say nothing")


def run_int8(args) -> int:
    from .._io import atomic_write, atomic_write_json, refuse_overwrite
    from ..deploy.int8 import rows_json, sweep_int8

    out = Path(args.out)
    report = out / "int8.md"
    refuse_overwrite(report, args.force, what="INT8 report")
    rows, md = sweep_int8(args.sweep, out)
    atomic_write(report, md)
    atomic_write_json(out / "int8.json", rows_json(rows))
    print(md)
    print(f"written: {report} and {out / 'int8.json'}")
    return 0


def run(args) -> int:
    from .._io import refuse_overwrite
    from ..datasets import shapes_yaml
    from ..deploy.check import FAILED, CheckSettings, calibration_images, check_model
    from ..deploy.formats import FORMAT_NAMES, get_format, versions
    from ..deploy.matrix import Results, result_table, write_results

    _check_args(args)
    if args.sweep:
        return run_int8(args)
    if args.json:
        refuse_overwrite(args.json, args.force, what="results file")
    images = _images(args)
    settings = CheckSettings(images=images, imgsz=args.imgsz, data=str(args.data or shapes_yaml()))
    formats = [get_format(f) for f in (args.formats or FORMAT_NAMES)]
    out = Path(args.out)
    batch = calibration_images(images, args.imgsz)
    results = []
    meta = {"imgsz": args.imgsz, "images": [p.name for p in images], "base": "yolov5n" if args.all_layers else args.model}
    for make in _models(args, out, batch):
        cm = make()
        results += check_model(cm, formats, settings, cm.checkpoint.parent, isolate=not args.in_process,
                               progress=lambda r: print(f"[export-check] {r.model} {r.format}: {r.status}", flush=True))
        if args.json:  # after every model: an interrupted --all-layers run keeps what it measured
            write_results(args.json, Results(results, versions(), meta))
    print(result_table(results))
    if args.json:
        print(f"written: {args.json}")
    return 1 if any(r.status == FAILED for r in results) else 0
