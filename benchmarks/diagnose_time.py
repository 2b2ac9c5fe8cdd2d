"""How long ``yolo-attn diagnose`` takes on a finished ``compare`` sweep, against the sweep's own training time.

Target (issue: diagnose): on the default sweep (data/shapes, yolov5n, 4 models, 2 seeds) the whole diagnosis
takes at most about a third of the sweep's training time on 2 CPU cores.

Usage:  OMP_NUM_THREADS=1 python benchmarks/diagnose_time.py SWEEP_DIR [--out DIR] [--json results.json]

Prints wall-clock and CPU (process) seconds of the diagnosis, per checkpoint and in total, next to the sweep's
summed trial durations and training times (from trials.jsonl). On a shared machine wall-clock times of both
are inflated by the other processes; the CPU seconds of the diagnosis are what it costs on an idle core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def sweep_seconds(root: Path) -> dict:
    from yolo_attn.compare.store import Store

    store = Store(root)
    cfg = store.read_config()
    recs = [r for r in store.latest(cfg.settings_hash if cfg else None).values() if r.get("status") == "ok"]
    return {"trials": len(recs), "train_s": sum(r.get("train_time_s") or 0 for r in recs),
            "trial_s": sum(r.get("duration_s") or 0 for r in recs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep")
    ap.add_argument("--out", help="diagnosis output folder (default: a temporary folder)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    import tempfile

    import torch

    from yolo_attn.diagnose import diagnose_sweep

    torch.set_num_threads(1)
    root = Path(args.sweep)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="diagnose-bench-"))
    w0, c0 = time.perf_counter(), time.process_time()
    md = diagnose_sweep(root, out, progress=lambda m: print(m, file=sys.stderr))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    per = json.loads((md.parent / "diagnose.json").read_text())
    sw = sweep_seconds(root)
    res = {"diagnose_wall_s": wall, "diagnose_cpu_s": cpu, "checkpoints": len(per["models"]),
           "per_checkpoint_wall_s": {f"{m['ref']['label']} s{m['ref']['seed']}": round(m["seconds"], 1) for m in per["models"]},
           "sweep": sw, "ratio_wall_to_train": wall / sw["train_s"] if sw["train_s"] else None,
           "ratio_wall_to_trials": wall / sw["trial_s"] if sw["trial_s"] else None, "threads": torch.get_num_threads()}
    print(json.dumps(res, indent=2))
    if args.json:
        from yolo_attn._io import atomic_write_json

        atomic_write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
