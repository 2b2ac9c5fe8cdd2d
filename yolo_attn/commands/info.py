"""``yolo-attn info MODEL.yaml``: build a model and print its layer table, parameters and GFLOPs."""

from __future__ import annotations

HELP = "build a model YAML (attention layers included) and print its layers, parameters and GFLOPs"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="model YAML (scale from the name, e.g. yolov5s-cbam-neck.yaml) or .pt")
    parser.add_argument("--imgsz", type=int, default=640, help="image size for GFLOPs (default 640)")
    parser.add_argument("--nc", type=int, help="override the number of classes")
    parser.add_argument("--trust", action="store_true", help="fully unpickle a .pt (runs code in the file; only for files you trust)")


def run(args) -> int:
    from pathlib import Path

    from ultralytics.utils import LOGGER
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    from ..models import build_model

    if not Path(args.model).suffix:
        raise ValueError(f"{args.model}: give a .yaml or .pt file")
    model = build_model(args.model, nc=args.nc, verbose=True, trust=args.trust)
    params = get_num_params(model)
    gflops = get_flops(model, args.imgsz)
    attn = [(i, m.type) for i, m in enumerate(model.model) if m.type.startswith("yolo_attn.")]
    LOGGER.info(f"\n{Path(args.model).name}: {len(model.model)} layers, {params:,} parameters, {gflops:.1f} GFLOPs at {args.imgsz}")
    LOGGER.info("attention layers: " + (", ".join(f"{i}:{t.rsplit('.', 1)[-1]}" for i, t in attn) or "none"))
    return 0
