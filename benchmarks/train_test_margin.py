"""How far above the untrained model does tests/test_train.py's short training run land, across seeds and threads?

The test asserts a trained metric; its threshold must hold on any CPU kind. This runs the test's exact
setting (SHORT_RUN, 6 epochs, imgsz 128, the shipped shapes dataset, shipped SE model) for several seeds
and thread counts and prints, per run: untrained mAP50, trained mAP50, first/last epoch training loss.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/train_test_margin.py --seeds 0 1 2 3 4 --threads 1 2

Each run takes a few minutes of CPU; results are appended as JSON lines to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _loss(tloss) -> float:
    """Sum of the loss parts of the epoch (Ultralytics keeps them as a dict or a tensor)."""
    parts = tloss.values() if isinstance(tloss, dict) else [tloss]
    return float(sum(float(v.sum()) if hasattr(v, "sum") else float(v) for v in parts))


def one(seed: int, threads: int, epochs: int) -> dict:
    os.environ["YOLO_ATTN_THREADS"] = str(threads)
    import yolo_attn  # noqa: F401  (first: its OpenMP policy must be set before torch loads)
    import torch

    from yolo_attn.datasets import shapes_yaml
    from yolo_attn.train import SHORT_RUN, train, validate

    model = "yolov5n-se-backbone-end.yaml"
    data = shapes_yaml()
    tmp = tempfile.mkdtemp(prefix="margin-")
    val_args = dict(data=data, imgsz=128, batch=16, project=tmp, name="val", exist_ok=True)
    torch.manual_seed(seed)
    before = validate(model, **val_args)["metrics/mAP50(B)"]
    losses = []
    t0 = time.perf_counter()
    res = train(callbacks={"on_train_epoch_end": lambda tr: losses.append(_loss(tr.tloss))},
                **SHORT_RUN, model=model, data=str(data), epochs=epochs, imgsz=128, seed=seed, deterministic=True,
                plots=False, project=tmp, name="train", exist_ok=True, verbose=False)
    return {"seed": seed, "threads": threads, "epochs": epochs, "untrained_map50": before, "map50": res.map50,
            "map": res.map, "loss_first": losses[0], "loss_last": losses[-1], "seconds": time.perf_counter() - t0,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default="train_margin.jsonl")
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # seed threads, in a fresh process
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], a.one[1], a.epochs)))
        return
    import subprocess

    for t in a.threads:
        for s in a.seeds:  # a fresh process per run: torch's thread pool is sized once per process
            r = subprocess.run([sys.executable, __file__, "--one", str(s), str(t), "--epochs", str(a.epochs)],
                               capture_output=True, text=True)
            line = (r.stdout.strip().splitlines() or [""])[-1]
            if r.returncode or not line.startswith("{"):
                line = json.dumps({"seed": s, "threads": t, "error": r.stderr[-2000:]})
            print(line, flush=True)
            with open(a.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
