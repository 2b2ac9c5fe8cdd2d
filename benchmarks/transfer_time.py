"""Transfer time for yolov5x: stock checkpoint -> yolov5x with SE before SPPF (target: under 2 s on CPU).

Builds the stock yolov5x from Ultralytics' yolov5.yaml, fills it with random values, saves it as an
Ultralytics checkpoint (float16, as the trainer saves), then times, over several repeats:

* ``read``: :func:`yolo_attn.weights.load_checkpoint` (the safe, placeholder-based reader; its per-process memory
  of files read is emptied before each repeat);
* ``match+copy``: :func:`yolo_attn.weights.transfer_weights` from the already-read checkpoint;
* ``total``: ``transfer_weights(path, model)`` (read + match + copy), the number to compare with 2 s;
* for reference, Ultralytics' ``torch_safe_load`` + ``model.load`` on the same file (full unpickling).

Model construction is not timed (it is the same with or without a transfer).

    python benchmarks/transfer_time.py [--scale x] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="x")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch
    import yaml

    import ultralytics
    import yolo_attn  # noqa: F401
    from ultralytics.nn.tasks import DetectionModel, torch_safe_load
    from yolo_attn.weights import load_checkpoint, transfer_weights
    from yolo_attn.weights.read import forget_reads

    if args.threads:
        torch.set_num_threads(args.threads)
    base = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/v5/yolov5.yaml").read_text())
    stock = DetectionModel({**copy.deepcopy(base), "scale": args.scale}, verbose=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for v in stock.state_dict().values():
            if v.is_floating_point():
                v.copy_(torch.randn(v.shape, generator=g))
    tgt = copy.deepcopy(base)
    tgt["backbone"].insert(9, [-1, 1, "SE", [16, {"init": "identity"}]])
    for row in tgt["head"]:
        if isinstance(row[0], list):
            row[0] = [x + 1 if x >= 9 else x for x in row[0]]
    tgt["scale"] = args.scale
    target = DetectionModel(tgt, verbose=False)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"yolov5{args.scale}u.pt"
        torch.save({"model": copy.deepcopy(stock).half(), "ema": None, "train_args": {}}, path)
        size = path.stat().st_size / 2**20
        times = {"read": [], "match+copy": [], "total": [], "ultralytics load": []}
        report = None
        for _ in range(args.repeats):
            forget_reads()  # every repeat reads the file (load_checkpoint keeps what it read in this process)
            t = time.perf_counter()
            ck = load_checkpoint(path)
            times["read"].append(time.perf_counter() - t)
            t = time.perf_counter()
            transfer_weights(ck, target)
            times["match+copy"].append(time.perf_counter() - t)
            forget_reads()
            t = time.perf_counter()
            report = transfer_weights(path, target)
            times["total"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ckpt, _ = torch_safe_load(str(path))
            target.load(ckpt, verbose=False)
            times["ultralytics load"].append(time.perf_counter() - t)

    print(f"yolov5{args.scale}: checkpoint {size:.0f} MiB, {report.source_tensors} tensors, "
          f"{report.source_params:,} parameters; torch threads {torch.get_num_threads()}")  # fmt: skip
    print(report.summary())
    print(f"{'step':<20}{'median s':>10}{'min s':>10}")
    for k, v in times.items():
        print(f"{k:<20}{statistics.median(v):>10.3f}{min(v):>10.3f}")
    verdict = "meets" if statistics.median(times["total"]) < 2.0 else "MISSES"
    print(f"total transfer {statistics.median(times['total']):.2f} s: {verdict} the < 2 s target")


if __name__ == "__main__":
    main()
