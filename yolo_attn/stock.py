"""The project's own stock checkpoint: YOLOv5n trained on another draw of the synthetic shapes data.

The README's main job fine-tunes from it, as users fine-tune from Ultralytics' stock weights: every placement starts
from the same trained network (transferred with the identity start), so the comparison measures what the attention
adds to a trained model, with the small seed noise of fine-tuning instead of the large one of training from scratch.
It is trained on the draw ``STOCK_DRAW`` of the shapes generator (other images than ``data/shapes``, which the main
job fine-tunes and validates on) and shipped as ``data/weights/yolov5n-shapes.pt``. ``yolo-attn make-stock`` trains
it again; with the same thread count on the same machine every tensor comes out equal (``--check``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

STOCK_MODEL = "yolov5n.yaml"
STOCK_DRAW = 1  # the shapes generator's seed of the stock model's data (data/shapes is draw 0)
STOCK_EPOCHS = 30
STOCK_THREADS = 2  # fixed: the thread count changes floating-point reduction order, hence the weights
STOCK_FILE = "yolov5n-shapes.pt"


def stock_path() -> Path:
    """The shipped stock checkpoint (``data/weights/yolov5n-shapes.pt`` of the checkout, or of the installed data)."""
    from .datasets import SHAPES_DIR

    return Path(SHAPES_DIR).parent / "weights" / STOCK_FILE


def train_stock(out: str | Path, epochs: int = STOCK_EPOCHS, threads: int = STOCK_THREADS) -> Path:
    """Train the stock model from scratch on draw ``STOCK_DRAW`` and write its weights (half precision) to ``out``."""
    from .weights import save_model_checkpoint
    from .datasets.shapes import ShapesConfig, write_dataset
    from .train import SHORT_RUN, train

    with tempfile.TemporaryDirectory(prefix="yolo-attn-stock-") as tmp:
        data = Path(tmp) / "shapes-draw.yaml"
        write_dataset(Path(tmp) / "shapes-draw", ShapesConfig(seed=STOCK_DRAW), data)
        result = train(model=STOCK_MODEL, data=str(data), epochs=epochs, imgsz=128, seed=0, deterministic=True,
                       workers=0, plots=False, val=True, project=tmp, name="stock", threads=threads,
                       final_weights="last", **SHORT_RUN)
        model = result.trainer.ema.ema if result.trainer.ema is not None else result.trainer.model
        save_model_checkpoint(model, out, half=True, train_args={"data": f"shapes draw {STOCK_DRAW}",
                                                                 "epochs": epochs, "imgsz": 128})
    return Path(out)


def same_weights(a: str | Path, b: str | Path) -> list[str]:
    """The tensors that differ between two checkpoints (read safely); empty when every tensor is equal."""
    import torch

    from .weights import load_checkpoint

    sa, sb = load_checkpoint(Path(a)).state_dict, load_checkpoint(Path(b)).state_dict
    keys = sorted(set(sa) | set(sb))
    return [k for k in keys if k not in sa or k not in sb or not torch.equal(sa[k], sb[k])]
