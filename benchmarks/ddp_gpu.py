"""DDP inside a trial on a machine with two CUDA GPUs: ``compare --device 0,1`` trains each trial with Ultralytics'
DDP on both GPUs and scores it in one process afterwards. Needs 2 CUDA GPUs (exits 2 without them).

    python benchmarks/ddp_gpu.py [--epochs 3] [--imgsz 128] [--batch 16] [--out benchmarks/results]

Not run where this was written: that machine has no GPU (its CPU form is ``tests/test_ddp.py``: two gloo
processes through the same path). What it does, in a temporary folder:

1. a 2-model x 1-seed sweep (``yolov5n.yaml`` and ``yolov5n-se-backbone-end.yaml`` on the shipped shapes data)
   with ``--device 0,1 --workers 1``: every trial must be ok, scored in one process after training
   (``scored_by`` ``again``), with every epoch in its ``results.csv`` and both GPUs in its hardware record;
2. the same sweep on one GPU (``--device 0``), for the figures beside it: wall time per trial and mAP50-95 (not
   expected equal: DDP trains each GPU on half of every batch, with its own BatchNorm statistics);
3. the refusal of ``--device 0,1 --workers 2`` before anything is written.

Prints a table and writes ``ddp_gpu.json`` into ``--out``. A short script: a few minutes on two GPUs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ["yolov5n.yaml", "yolov5n-se-backbone-end.yaml"]


def sweep(out: Path, device: str, args, *extra: str) -> tuple[int, str, float]:
    """``yolo-attn compare`` in a process of its own: exit status, its output's tail, wall seconds."""
    cmd = [sys.executable, "-c", "from yolo_attn.cli import main; raise SystemExit(main())", "compare",
           "--models", *MODELS, "--seeds", "1", "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
           "--batch", str(args.batch), "--device", device, "--workers", "1", "--boot", "100", "--out", str(out), *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    return p.returncode, (p.stdout + p.stderr)[-3000:], time.perf_counter() - t0


def trials(out: Path) -> dict[str, dict]:
    from yolo_attn.compare.store import Store

    return {r.trial_id: {"status": r.status, "error": r.error, "scored_by": r.scored_by, "epochs_done": r.epochs_done,
                         "map": (r.coco or {}).get("map"), "ultra_map": (r.ultra or {}).get("map"),
                         "duration_s": r.duration_s, "gpu": (r.hardware or {}).get("gpu"),
                         "sha256": (r.predictions_sha256 or "")[:16]} for r in Store(out).trial_records()}


def check_ddp_trials(found: dict[str, dict], epochs: int) -> list[str]:
    """What must hold of every trial of the DDP sweep; the problems found (empty: all held)."""
    problems = [] if len(found) == len(MODELS) else [f"{len(found)} trials recorded, expected {len(MODELS)}"]
    for tid, t in found.items():
        if t["status"] != "ok":
            problems.append(f"{tid}: {t['status']} ({t['error']})")
        elif t["scored_by"] != "again" or t["epochs_done"] != epochs:
            problems.append(f"{tid}: scored_by {t['scored_by']}, epochs_done {t['epochs_done']} (expected again, {epochs})")
        elif not t["gpu"] or "," not in t["gpu"]:
            problems.append(f"{tid}: hardware names GPUs {t['gpu']!r}, expected two")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16, help="the whole batch (each GPU trains on half)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder for ddp_gpu.json")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        print(f"ddp_gpu.py: needs 2 CUDA GPUs, this machine has {torch.cuda.device_count()}; the CPU form of this "
              "check is tests/test_ddp.py (pytest -m slow -k ddp)", file=sys.stderr)
        return 2
    from yolo_attn._io import atomic_write_json
    from yolo_attn._versions import installed_versions

    work = Path(tempfile.mkdtemp(prefix="ddp-gpu-"))
    result = {"gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
              "versions": installed_versions(["torch", "ultralytics"]), "settings": vars(args) | {"out": str(args.out)}}
    for name, device in (("ddp", "0,1"), ("one_gpu", "0")):
        rc, tail, wall = sweep(work / name, device, args)
        result[name] = {"exit_status": rc, "wall_s": round(wall, 1), "trials": trials(work / name)}
        if rc != 0:  # 1: a trial failed or the sweep was refused (its output says which)
            result[name]["output_tail"] = tail
        print(f"{name} (--device {device}): exit {rc}, {wall:.0f} s", flush=True)
    result["problems"] = check_ddp_trials(result["ddp"]["trials"], args.epochs)
    result["problems"] += [f"the {n} sweep exited with {result[n]['exit_status']}" for n in ("ddp", "one_gpu")
                           if result[n]["exit_status"] != 0]
    refused = subprocess.run([sys.executable, "-c", "from yolo_attn.cli import main; raise SystemExit(main())",
                              "compare", "--device", "0,1", "--workers", "2", "--out", str(work / "w2")],
                             capture_output=True, text=True)
    result["refusal"] = {"exit_status": refused.returncode, "message": refused.stderr.strip().splitlines()[-1:]}
    if refused.returncode != 1 or (work / "w2").exists():
        result["problems"].append(f"--device 0,1 --workers 2 was not refused before writing: {result['refusal']}")
    print(f"{'trial':32} {'sweep':8} {'status':7} {'scored_by':10} {'mAP50-95':>9} {'seconds':>8}  GPUs")
    for name in ("ddp", "one_gpu"):
        for tid, t in sorted(result[name]["trials"].items()):
            m = "-" if t["map"] is None else f"{t['map']:.4f}"
            print(f"{tid:32} {name:8} {t['status']:7} {str(t['scored_by']):10} {m:>9} {t['duration_s'] or 0:8.1f}  {t['gpu']}")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "ddp_gpu.json", result)
    print(("PROBLEMS:\n  " + "\n  ".join(result["problems"])) if result["problems"] else "every check held")
    print(f"written: {args.out / 'ddp_gpu.json'} (sweep folders in {work})")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
