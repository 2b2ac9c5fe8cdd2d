"""``yolo-attn make-stock [-o FILE] [--check]``: train the project's own stock checkpoint (yolo_attn/stock.py)."""

from __future__ import annotations

HELP = "train the stock YOLOv5n the main job fine-tunes from (data/weights/yolov5n-shapes.pt), or --check it"


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--out", help="checkpoint to write (default data/weights/yolov5n-shapes.pt)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 30, what is shipped)")
    parser.add_argument("--check", action="store_true",
                        help="train again into a temporary file and compare every tensor with --out (equal with the "
                             "same thread count on the same machine; another machine's floating point may differ)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from ..stock import STOCK_EPOCHS, same_weights, stock_path, train_stock

    out = Path(args.out) if args.out else stock_path()
    epochs = args.epochs or STOCK_EPOCHS
    if epochs < 1:
        raise ValueError(f"--epochs must be 1 or more, got {epochs}")
    if args.check:
        with tempfile.TemporaryDirectory(prefix="yolo-attn-stock-check-") as tmp:
            fresh = train_stock(Path(tmp) / out.name, epochs)
            differ = same_weights(out, fresh)
        print(f"{out}: {'identical weights to a fresh training' if not differ else f'{len(differ)} tensors differ'}")
        return 0 if not differ else 1
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; --force to overwrite it")
    train_stock(out, epochs)
    print(f"stock checkpoint: {out}")
    return 0
