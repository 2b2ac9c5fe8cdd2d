"""``yolo-attn transfer SOURCE TARGET.yaml|TARGET.pt -o OUT.pt``: stock weights into an attention model.

Reads SOURCE without running code from it (unless ``--trust``), matches its layers to the target's by
structure (see :mod:`yolo_attn.transfer`), prints the per-layer report and writes an Ultralytics
checkpoint that ``YOLO(OUT.pt)`` loads, predicts with and trains from.
"""

from __future__ import annotations

from pathlib import Path

from ..registry import INITS

HELP = "transfer pretrained weights into an attention model by structure (not by index) and write OUT.pt"


def add_arguments(parser) -> None:
    parser.add_argument("source", help="source checkpoint: Ultralytics .pt, state dict .pt/.pth/.safetensors, or original YOLOv5 .pt")
    parser.add_argument("target", help="target model: a model YAML (attention layers included) or a .pt checkpoint")
    parser.add_argument("-o", "--output", required=True, help="output checkpoint (.pt)")
    parser.add_argument("--trust", action="store_true", help="fully unpickle SOURCE/TARGET (runs code in the files; only for files you trust)")
    parser.add_argument("--allow-foreign", action="store_true", help="write the result even if the source matches little of the target")
    parser.add_argument("--map", dest="index_map", help="index map JSON {'map': {base index: target index}} from make-yaml")
    parser.add_argument("--nc", type=int, help="number of classes of a YAML target (default: the YAML's nc)")
    parser.add_argument(
        "--init",
        choices=INITS,
        help="initialisation of the attention layers of a YAML target; identity: the result predicts exactly "
        "what the source predicts until it is trained (default: as the YAML says)",
    )
    dtype = parser.add_mutually_exclusive_group()
    dtype.add_argument("--half", action="store_true", help="save float16 weights (default: as the source stores them)")
    dtype.add_argument("--float", action="store_true", help="save float32 weights")
    parser.add_argument("--keys", action="store_true", help="list new/skipped tensors of every layer in the report")
    parser.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUT.pt / --json file (never an input)")


def build_target(target: str | Path, nc: int | None = None, trust: bool = False, init: str | None = None):
    """The target ``DetectionModel``: built from a YAML, or read from a ``.pt`` (weights-only unless ``trust``)."""
    from ..models import build_model

    if Path(target).suffix not in (".yaml", ".yml", ".pt"):
        raise ValueError(f"{target}: the target must be a .yaml/.yml model config or a .pt checkpoint")
    return build_model(str(target), nc=nc, init=init, trust=trust)  # a YAML may be a config name (yolov5s-se-sppf.yaml)


def save_checkpoint(model, path: str | Path, report=None, half: bool = True, train_args: dict | None = None) -> Path:
    """Write ``model`` as an Ultralytics checkpoint that ``YOLO(path)`` loads (atomically), with the transfer report."""
    from ..weights import save_model_checkpoint

    transfer = {"transfer": report.as_dict() if report is not None else None}
    return save_model_checkpoint(model, path, half=half, train_args=train_args, yolo_attn=transfer)


def check_outputs(paths: dict, force: bool, inputs) -> None:
    """Refuse (as a ValueError, a one-line CLI error) to overwrite an existing output or any input, unless ``force``."""
    from .._io import OverwriteError, refuse_overwrite

    seen = list(inputs)
    for what, path in paths.items():
        if path is None:
            continue
        try:
            refuse_overwrite(path, force=force, inputs=seen, what=what)
        except OverwriteError as exc:
            raise ValueError(str(exc)) from None
        seen.append(path)  # two outputs may not be one file either


def run(args) -> int:
    from .._io import atomic_write_json
    from ..weights import load_checkpoint
    from ..weights import transfer_weights

    out = Path(args.output)
    if out.suffix != ".pt":
        raise ValueError(f"{out}: the output must be a .pt file")
    inputs = [p for p in (args.source, args.target, args.index_map) if p and Path(p).exists()]
    check_outputs({"output": out, "--json": args.json_out}, args.force, inputs)
    ckpt = load_checkpoint(args.source, trust=args.trust)
    if args.init and Path(args.target).suffix not in (".yaml", ".yml"):
        raise ValueError(f"{args.target}: --init applies to a model YAML target")
    model = build_target(args.target, nc=args.nc, trust=args.trust, init=args.init)
    report = transfer_weights(ckpt, model, index_map=args.index_map, allow_foreign=args.allow_foreign)
    print(report.table(keys=args.keys))
    half = args.half or (not args.float and ckpt.half)
    save_checkpoint(model, out, report, half=half)
    if args.json_out:
        atomic_write_json(args.json_out, report.as_dict())
    print(f"wrote {out} ({'float16' if half else 'float32'})")
    return 0
