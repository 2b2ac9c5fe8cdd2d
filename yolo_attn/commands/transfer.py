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


def build_target(target: str | Path, nc: int | None = None, trust: bool = False, init: str | None = None):
    """The target ``DetectionModel``: built from a YAML, or read from a ``.pt`` (weights-only unless ``trust``)."""
    from ..models import build_model

    if Path(target).suffix not in (".yaml", ".yml", ".pt"):
        raise ValueError(f"{target}: the target must be a .yaml/.yml model config or a .pt checkpoint")
    return build_model(str(target), nc=nc, init=init, trust=trust)  # a YAML may be a config name (yolov5s-se-sppf.yaml)


def checkpoint_dict(model, report=None, half: bool = True, train_args: dict | None = None) -> dict:
    """An Ultralytics-format checkpoint dict for ``model`` (as ``Model.save`` writes one)."""
    from copy import deepcopy
    from datetime import datetime

    import torch
    from ultralytics import __version__ as ul_version

    from .. import __version__

    m = deepcopy(model).float()
    m = (m.half() if half else m).to(memory_format=torch.contiguous_format)
    for p in m.parameters():
        p.requires_grad_(False)
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file", "")
    return {
        "date": datetime.now().astimezone().isoformat(),
        "version": ul_version,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "model": m,
        "ema": None,
        "train_args": {"model": str(yaml_file), "task": "detect", **(train_args or {})},
        "yolo_attn": {
            "version": __version__,
            "transfer": report.as_dict() if report is not None else None,
        },
    }


def save_checkpoint(model, path: str | Path, report=None, half: bool = True, train_args: dict | None = None) -> Path:
    """Write ``model`` as an Ultralytics checkpoint that ``YOLO(path)`` loads."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_dict(model, report, half=half, train_args=train_args), path)
    return path


def run(args) -> int:
    import json

    from ..checkpoint import load_checkpoint
    from ..transfer import transfer_weights

    out = Path(args.output)
    if out.suffix != ".pt":
        raise ValueError(f"{out}: the output must be a .pt file")
    ckpt = load_checkpoint(args.source, trust=args.trust)
    if args.init and Path(args.target).suffix not in (".yaml", ".yml"):
        raise ValueError(f"{args.target}: --init applies to a model YAML target")
    model = build_target(args.target, nc=args.nc, trust=args.trust, init=args.init)
    report = transfer_weights(ckpt, model, index_map=args.index_map, allow_foreign=args.allow_foreign)
    print(report.table(keys=args.keys))
    half = args.half or (not args.float and ckpt.half)
    save_checkpoint(model, out, report, half=half)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.as_dict(), indent=2))
    print(f"wrote {out} ({'float16' if half else 'float32'})")
    return 0
