"""The README's main job (``yolo-attn compare``) against the same trials run with plain Ultralytics, scheduled by hand.

Both sides train the same trials in the same run: the default models (yolov5n and the three shipped
placements) x ``--seeds`` seeds on the shipped shapes dataset, ``--epochs`` epochs at ``--imgsz``, with
the sweep's training settings (``yolo_attn.compare.trial.DEFAULT_TRAIN_ARGS``):

* ``yolo_attn``: ``python -m yolo_attn.cli compare --seeds S --epochs E --imgsz I --out TMP --quiet``, the
  default job (its own choice of workers and threads); ``--repo PATH`` runs another checkout of yolo_attn
  instead (e.g. an older commit, for a before/after figure);
* ``plain``: the best schedule by hand for plain Ultralytics: one process per usable core, each taking
  the next trial of a shared list until none is left and training it with ``YOLO(yaml).train(...)`` and
  one thread (yolo_attn is imported only to register the attention layers the placements use).

Printed: each side's wall time, their ratio, and the per-trial split (means over trials, seconds): model
build (up to the first epoch), training (the epochs with their validations), evaluation (the closing
validation; yolo_attn with ``--weights last`` scores the final epoch's own validation, and this is then only the
clean-up of the checkpoints), scoring (COCO JSON, COCOeval: yolo_attn only) and, for the whole job, start-up (until the
first trial starts) and report (after the last trial is recorded: latency, tables, plots).

    python benchmarks/main_job.py                          # the README's job: --seeds 3 --epochs 6 --imgsz 128
    python benchmarks/main_job.py --sides plain yolo_attn  # the other order (the sides run one after the other)
    python benchmarks/main_job.py --abba                   # yolo_attn, plain, plain, yolo_attn: mean walls compared
    python benchmarks/main_job.py --seeds 1 --epochs 2     # a loaded machine: fewer trials, same machinery
    python benchmarks/main_job.py --repo /tmp/old-checkout --sides yolo_attn

Goal: yolo_attn within 5% of plain (ratio <= 1.05) on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# One plain-Ultralytics process: takes the next trial of the list in argv[1] (a JSON file) until none is left
# (a counter file under a lock: the processes share the list as they go), prints one JSON line per trial.
PLAIN = r"""
import fcntl, json, sys, time
from pathlib import Path
import yolo_attn  # registers the attention layers (and sets the OpenMP policy before torch loads)
import torch
from ultralytics import YOLO

jobs = json.loads(Path(sys.argv[1]).read_text())
counter = Path(sys.argv[1]).with_suffix(".next")

def next_job():
    with open(counter, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        i = int(f.read() or 0)
        f.seek(0)
        f.truncate()
        f.write(str(i + 1))
    return jobs[i] if i < len(jobs) else None

while (job := next_job()) is not None:
    marks = {"t0": time.perf_counter(), "fit": []}
    def one_thread(_obj=None):
        torch.set_num_threads(1)  # Ultralytics sets cpu_count - 1 in select_device
    model = YOLO(job["model"])
    model.add_callback("on_pretrain_routine_start", one_thread)
    model.add_callback("on_val_start", one_thread)
    model.add_callback("on_train_start", lambda tr: (one_thread(), marks.update(train=time.perf_counter())))
    model.add_callback("on_fit_epoch_end", lambda tr: marks["fit"].append(time.perf_counter()))
    model.add_callback("on_train_end", lambda tr: marks.update(end=time.perf_counter()))
    model.train(**job["args"])
    epochs_end = marks["fit"][job["args"]["epochs"] - 1]
    print(json.dumps({"trial": job["name"], "build": marks["train"] - marks["t0"], "train": epochs_end - marks["train"],
                      "eval": marks["end"] - epochs_end, "score": 0.0,
                      "other": time.perf_counter() - marks["end"]}), flush=True)
"""

STAGES = ("build", "train", "eval", "score", "other")


def _env(threads: int | None = None, repo: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_ATTN_THREADS", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["YOLO_OFFLINE"] = "1"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_yolo_attn(args, out: Path, repo: Path) -> dict:
    cmd = [sys.executable, "-m", "yolo_attn.cli", "compare", "--seeds", str(args.seeds), "--epochs", str(args.epochs),
           "--imgsz", str(args.imgsz), "--out", str(out), "--quiet"]
    t0_wall, t0 = time.time(), time.perf_counter()
    r = subprocess.run(cmd, cwd=out.parent, env=_env(repo=repo), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    recs = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines() if line.strip()]
    per = [r.get("stage_s") or {"train": r.get("duration_s", 0.0)} for r in recs]  # older versions: no split
    return {"wall_s": wall, "trials": len(recs), "ok": sum(r["status"] == "ok" for r in recs),
            "stages": {k: sum(p.get(k, 0.0) for p in per) / len(per) for k in STAGES},
            "duration_s": sum(r["duration_s"] for r in recs) / len(recs),
            "startup_s": min(r["started_at"] for r in recs) - t0_wall,
            "report_s": t0_wall + wall - max(r["recorded_at"] for r in recs),
            "threads": recs[0].get("threads"), "map": sum(r["coco"]["map"] for r in recs if r.get("coco")) / len(recs)}


def plain_jobs(args, out: Path) -> list[dict]:
    sys.path.insert(0, str(REPO))
    from yolo_attn.compare.sweep import DEFAULT_MODELS
    from yolo_attn.compare.trial import DEFAULT_TRAIN_ARGS
    from yolo_attn.models import resolve_model
    from yolo_attn.datasets import checked_dataset, shapes_yaml

    ds, _ = checked_dataset(str(shapes_yaml()), out)
    jobs = []
    for m in DEFAULT_MODELS:
        for s in range(args.seeds):
            name = f"{Path(m).stem}__seed{s}"
            jobs.append({"name": name, "model": resolve_model(m), "args": {
                **DEFAULT_TRAIN_ARGS, "data": str(ds.yaml), "epochs": args.epochs, "imgsz": args.imgsz, "seed": s,
                "deterministic": True, "plots": False, "val": True, "project": str(out), "name": name,
                "exist_ok": True, "verbose": False}})
    return jobs


def run_plain(args, out: Path, cores: int) -> dict:
    jobs = plain_jobs(args, out)
    (out / "jobs.json").write_text(json.dumps(jobs))  # taken one by one: a slow trial does not hold up a share
    t0 = time.perf_counter()
    logs = [out / f"plain-{i}.log" for i in range(min(cores, len(jobs)))]
    procs = []
    for log in logs:  # stdout into a file each: a pipe read after another process's would fill and stall its writer
        with open(log, "w") as f:
            procs.append(subprocess.Popen([sys.executable, "-c", PLAIN, str(out / "jobs.json")], cwd=out,
                                          env=_env(threads=1), stdout=f, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        p.wait()
    wall = time.perf_counter() - t0
    outs = [log.read_text() for log in logs]
    if any(p.returncode for p in procs):
        raise RuntimeError("a plain Ultralytics process failed:\n" + "\n".join(o[-2000:] for o in outs))
    per = [json.loads(line) for o in outs for line in o.splitlines() if line.startswith("{")]
    return {"wall_s": wall, "trials": len(per), "ok": len(per), "threads": 1,
            "stages": {k: sum(p[k] for p in per) / len(per) for k in STAGES},
            "duration_s": sum(sum(p[k] for k in STAGES) for p in per) / len(per)}


def markdown(args, runs: list[tuple[str, dict]], cores: int, load: str) -> str:
    flags = " --abba" if args.abba else ""
    lines = [f"`python benchmarks/main_job.py --seeds {args.seeds} --epochs {args.epochs} --imgsz {args.imgsz}{flags}`"
             f" ({cores} usable cores; load before: {load})", "",
             "| side | trials | wall s | trial s (mean) | build | train | eval | score | other | start-up | report |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for side, r in runs:
        st = r["stages"]
        lines.append(f"| {side} | {r['ok']}/{r['trials']} | {r['wall_s']:.1f} | {r['duration_s']:.1f} | "
                     + " | ".join(f"{st[k]:.2f}" for k in STAGES)
                     + f" | {r.get('startup_s', 0):.1f} | {r.get('report_s', 0):.1f} |")
    walls: dict[str, list[float]] = {}
    for side, r in runs:
        walls.setdefault(side, []).append(r["wall_s"])
    if "plain" in walls:
        plain = sum(walls["plain"]) / len(walls["plain"])
        for side, w in walls.items():
            if side != "plain":
                mean = sum(w) / len(w)
                how = f" (mean wall of {len(w)} runs each, in the order {' '.join(s for s, _ in runs)})" if len(w) > 1 else ""
                lines.append(f"\n{side} / plain: **{mean / plain:.3f}x**{how}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds (default 3, the default job's)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--sides", nargs="+", default=["yolo_attn", "plain"], choices=["yolo_attn", "plain"])
    ap.add_argument("--abba", action="store_true",
                    help="run the sides, then again in the reverse order (A B B A), and compare their mean wall times: "
                         "a machine that speeds up or slows down during the run then favours neither side")
    ap.add_argument("--repo", type=Path, action="append", default=[],
                    help="checkout of yolo_attn for the yolo_attn side (repeatable: one row each; default this one)")
    ap.add_argument("--results", type=Path, help="append the Markdown table to this file")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    runs: list[tuple[str, dict]] = []
    order = list(args.sides) + (list(args.sides)[::-1] if args.abba else [])
    with tempfile.TemporaryDirectory(prefix="main-job-") as tmp:
        for n, side in enumerate(order):
            if side == "plain":
                (Path(tmp) / f"plain{n}").mkdir()
                runs.append(("plain", run_plain(args, Path(tmp) / f"plain{n}", cores)))
            else:
                for i, repo in enumerate(args.repo or [REPO]):
                    label = "yolo_attn" if not args.repo else f"yolo_attn ({repo.name})"
                    runs.append((label, run_yolo_attn(args, Path(tmp) / f"ours{n}-{i}", repo.resolve())))
            print(json.dumps(runs[-1], indent=1), file=sys.stderr, flush=True)
    text = markdown(args, runs, cores, load) + f"\n\nload after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
