"""One trial of a sweep: train one model with one seed, validate, export COCO JSON, score both ways.

:func:`run_trial` takes a JSON-serialisable spec (so a Ray worker can run it) and returns the trial
record; it never raises for a failed trial: the exception (or a non-finite loss) is recorded with
``status: failed``. Only Ultralytics' public API is used: ``YOLO(...).train/val``, callbacks, the
validator's ``save_txt``/``save_conf`` output, ``ultralytics.utils.torch_utils.get_num_params/get_flops``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
import re
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from . import cocoeval

# Identical for every trial; the short-run defaults avoid Ultralytics' optimizer=auto (AdamW at
# lr ~1e-4 on short runs) and its 100-iteration minimum warm-up, which would dominate a few epochs.
DEFAULT_TRAIN_ARGS = {
    "batch": 16,
    "optimizer": "SGD",
    "lr0": 0.01,
    "lrf": 0.01,
    "momentum": 0.937,
    "weight_decay": 5e-4,
    "warmup_epochs": 0,
    "cos_lr": False,
    "close_mosaic": 0,
    "workers": 0,
    "cache": False,
    "patience": 1000,
}
try:  # the project's short-run CPU settings, when yolo_attn.train provides them
    from ..train import SHORT_RUN as _SHORT_RUN

    # warm-up off: Ultralytics warms up for at least 100 iterations, the whole of a short sweep's trial
    DEFAULT_TRAIN_ARGS = {**DEFAULT_TRAIN_ARGS, **_SHORT_RUN, "warmup_epochs": 0, "patience": 1000}
except ImportError:  # pragma: no cover
    pass
VAL_ARGS = {"conf": 0.001, "iou": 0.7, "max_det": 300}  # Ultralytics' mAP settings, stated explicitly
_SCALE_RE = re.compile(r"(\d+)([nslmx])(.+)?$")


class NonFiniteLoss(FloatingPointError):
    pass


def _model_dirs() -> list[Path]:
    from ..placement import config_dir

    return [config_dir()]


def resolve_model(ref: str) -> str:
    """A model reference Ultralytics can build: an existing file (absolute), a shipped config, or an Ultralytics name.

    Shipped configs follow Ultralytics' naming: ``yolov5n-se-backbone-end.yaml`` is built at scale n
    from ``yolov5-se-backbone-end.yaml``; the returned path keeps the scale letter (Ultralytics reads
    the scale from the name and the file without it).
    """
    p = Path(str(ref)).expanduser()
    if p.is_file():
        return str(p.resolve())
    if p.suffix == ".pt":
        raise FileNotFoundError(f"model checkpoint not found: {ref}")
    name = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    unified = _SCALE_RE.sub(r"\1\3", Path(name).stem) + Path(name).suffix
    for d in _model_dirs():
        if (d / name).is_file() or (d / unified).is_file():
            return str(d / name)
    try:
        from ultralytics.utils.checks import check_yaml

        if check_yaml(unified, hard=False) or check_yaml(name, hard=False):
            return name  # an Ultralytics config such as yolov5n.yaml
    except Exception:
        pass
    raise FileNotFoundError(f"model {ref!r} not found (not a file, not in {', '.join(map(str, _model_dirs()))}, "
                            "not an Ultralytics config)")


def materialize(ref: str, out_dir: Path) -> str:
    """Copy model YAML ``ref`` (a file, shipped config or Ultralytics config) into ``out_dir``, keeping its name.

    The copy holds the unscaled YAML text (with its ``scales``) under the scaled name, so Ultralytics
    builds the same scale from it; the sweep then depends only on files in its results folder, and
    their content is what the stored configuration fingerprints. Checkpoints are returned unchanged.
    """
    if str(ref).endswith(".pt"):
        return str(Path(ref).resolve())
    p = Path(str(ref))
    text = None
    if p.is_file():
        text = p.read_text()
    else:
        unified = _SCALE_RE.sub(r"\1\3", p.stem) + p.suffix
        cands = [d / unified for d in _model_dirs()] + [p.with_name(unified)]
        try:
            from ultralytics.utils.checks import check_yaml

            found = check_yaml(unified, hard=False) or check_yaml(p.name, hard=False)
            if found:
                cands.append(Path(found))
        except Exception:
            pass
        for c in cands:
            if c.is_file():
                text = c.read_text()
                break
    if text is None:
        raise FileNotFoundError(f"model {ref!r}: YAML not found")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / p.name
    if not dst.is_file() or dst.read_text() != text:
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(dst)
    return str(dst.resolve())


def model_label(ref: str) -> str:
    return Path(str(ref)).stem


def build(ref: str, nc: int | None = None):
    from ..models import build_model

    if str(ref).endswith(".pt"):
        return build_model(ref)
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(str(ref), nc=nc, verbose=False)


def model_cost(ref: str, nc: int | None, imgsz: int = 640) -> tuple[int, float]:
    """Parameters and GFLOPs (at ``imgsz``) of a model reference."""
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    with quiet_ultralytics():
        m = build(ref, nc)
        return int(get_num_params(m)), float(get_flops(m, imgsz))


@contextmanager
def quiet_ultralytics(enabled: bool = True):
    """Raise Ultralytics' logger to WARNING (which also disables its progress bars) while inside."""
    from ultralytics.utils import LOGGER

    old = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(old)


def _set_threads(n: int | None) -> None:
    import torch

    if n and torch.get_num_threads() != n:
        torch.set_num_threads(int(n))


def _make_pretrained(ref: str, source: str, nc: int, out: Path) -> tuple[str, str]:
    """Checkpoint of model ``ref`` carrying ``source``'s weights; returns (path, transfer summary).

    ``source`` is read by yolo_attn's safe reader (no code in the file runs).
    """
    from ..transfer import transfer_weights

    model = build(ref, nc)
    report = transfer_weights(source, model)
    summary = str(getattr(report, "summary", report))
    summary = summary() if callable(summary) else summary
    from ..checkpoint import save_model_checkpoint

    path = save_model_checkpoint(model, out / "pretrained_init.pt", half=False)
    return str(path), str(summary).splitlines()[-1] if summary else ""


def _results_curve(csv_path: Path) -> list[dict]:
    if not csv_path.is_file():
        return []
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    out = []
    for r in rows:
        r = {k.strip(): v for k, v in r.items() if k}

        def f(key):
            try:
                return float(r[key])
            except (KeyError, TypeError, ValueError):
                return math.nan

        out.append({"epoch": int(float(r.get("epoch", len(out) + 1))), "map50": f("metrics/mAP50(B)"),
                    "map": f("metrics/mAP50-95(B)"), "precision": f("metrics/precision(B)"),
                    "recall": f("metrics/recall(B)")})
    return out


def _ground_truth(im_files) -> list[cocoeval.GtImage]:
    """GtImages (sorted by key) of the validator's images, read from their label files.

    The key is the image path relative to the images' common folder with '/' replaced by '_',
    which is also how Ultralytics' validator names the ``save_txt`` file of each image.
    """
    from ..datasets import image_size, label_path, read_yolo_labels

    files = [str(f) for f in im_files]
    root = os.path.commonpath([os.path.dirname(f) for f in files])
    images = []
    for f in files:
        key = "_".join(Path(f).relative_to(root).with_suffix("").parts)
        w, h = image_size(Path(f))
        images.append(cocoeval.GtImage(key, w, h, read_yolo_labels(label_path(Path(f)))))
    images.sort(key=lambda g: g.key)
    return images


def run_trial(spec: dict, progress: Callable[[dict], None] | None = None) -> dict:
    """Train, validate and score one (model, seed); return the trial record (``status`` ok or failed)."""
    import torch

    threads = spec.get("threads") or torch.get_num_threads()
    tdir = Path(spec["trial_dir"])
    tdir.mkdir(parents=True, exist_ok=True)
    rec = {k: spec[k] for k in ("trial_id", "model", "model_ref", "seed", "settings_hash")}
    rec["started_at"] = time.time()
    t_start = time.perf_counter()
    timing = {"train_s": 0.0, "images": 0, "epochs": 0, "t0": None}

    def cb_threads(_obj):
        _set_threads(threads)

    def cb_epoch_start(tr):
        timing["t0"] = time.perf_counter()

    def cb_epoch_end(tr):
        loss = getattr(tr, "tloss", None)
        if isinstance(loss, dict):
            timing["loss"] = {k: float(torch.as_tensor(v).float().mean()) for k, v in loss.items()}
        elif loss is not None:
            timing["loss"] = [float(x) for x in torch.as_tensor(loss).float().reshape(-1)]
        if timing["t0"] is not None:
            timing["train_s"] += time.perf_counter() - timing["t0"]
            timing["images"] += len(tr.train_loader.dataset)
            timing["epochs"] += 1
            timing["t0"] = None

    def cb_batch_end(tr):
        loss = getattr(tr, "tloss", None)
        parts = list(loss.values()) if isinstance(loss, dict) else [] if loss is None else [loss]
        for v in parts:
            if not bool(torch.isfinite(torch.as_tensor(v, dtype=torch.float32)).all()):
                raise NonFiniteLoss(f"non-finite training loss {loss} at epoch {tr.epoch + 1}")

    def cb_fit_epoch_end(tr):
        if progress and tr.epoch + 1 <= tr.epochs:
            progress({"event": "epoch", "trial_id": spec["trial_id"], "epoch": tr.epoch + 1, "epochs": tr.epochs,
                      "metrics": {k: float(v) for k, v in (tr.metrics or {}).items() if isinstance(v, (int, float))}})

    old_env = os.environ.get("YOLO_ATTN_THREADS")
    os.environ["YOLO_ATTN_THREADS"] = str(threads)  # yolo_attn's trainer restores this count, not a load-based one
    rec["threads"] = threads
    try:
        from ultralytics import YOLO

        from .. import _ultralytics  # noqa: F401  (registers the attention layers in this process)

        _set_threads(threads)
        model_ref = spec["model_ref"]
        if spec.get("pretrained"):
            model_ref, rec["transfer"] = _make_pretrained(model_ref, spec["pretrained"], spec["nc"], tdir)
        with quiet_ultralytics(not spec.get("verbose")):
            cbs = {"on_pretrain_routine_start": cb_threads, "on_train_start": cb_threads,
                   "on_train_epoch_start": cb_epoch_start, "on_train_epoch_end": cb_epoch_end,
                   "on_train_batch_end": cb_batch_end, "on_fit_epoch_end": cb_fit_epoch_end, "on_val_start": cb_threads}
            args = {**DEFAULT_TRAIN_ARGS, **spec.get("train_args", {})}
            args.update(data=spec["data"], epochs=spec["epochs"], imgsz=spec["imgsz"], seed=spec["seed"],
                        deterministic=True, plots=False, val=True, project=str(tdir), name="train", exist_ok=True,
                        verbose=bool(spec.get("verbose")), device=spec.get("device"))
            if args.get("device") is None:
                args.pop("device")
            try:  # yolo_attn's trainer (DDP-safe, CPU threads, offline fonts) when present
                from ..train import train as attn_train
            except ImportError:
                attn_train = None
            if attn_train is not None and Path(model_ref).is_file():
                attn_train(callbacks=cbs, model=model_ref, **args)
            else:  # an Ultralytics config name (a YAML: trust= does not apply)
                args.pop("trust", None)
                model = YOLO(model_ref, task="detect")
                for ev, fn in cbs.items():
                    model.add_callback(ev, fn)
                model.train(**args)
            _set_threads(threads)
            run_dir = tdir / "train"
            weights = run_dir / "weights" / ("best.pt" if spec.get("weights") == "best" else "last.pt")
            rec["curve"] = _results_curve(run_dir / "results.csv")

            # Validation with the predictions written per image (the same predictions feed COCOeval).
            captured = {}
            vmodel = YOLO(str(weights), task="detect")
            vmodel.add_callback("on_val_start", cb_threads)
            vmodel.add_callback("on_val_end", lambda v: captured.update(
                im_files=list(v.dataloader.dataset.im_files), save_dir=v.save_dir, names=dict(v.names)))
            vargs = dict(data=spec["data"], imgsz=spec["imgsz"], batch=args.get("batch", 16), split="val",
                         save_txt=True, save_conf=True, plots=False, project=str(tdir), name="val", exist_ok=True,
                         verbose=False, **VAL_ARGS)
            if spec.get("device") is not None:
                vargs["device"] = spec["device"]
            metrics = vmodel.val(**vargs)
            _set_threads(threads)
        box = metrics.box
        rec["ultra"] = {"map50": float(box.map50), "map": float(box.map), "precision": float(box.mp),
                        "recall": float(box.mr)}
        rec["params"], rec["gflops_640"] = model_cost(str(weights), None, 640)

        gt_images = _ground_truth(captured["im_files"])
        gt = cocoeval.coco_gt(gt_images, captured["names"])
        lbl_dir = Path(captured["save_dir"]) / "labels"
        preds = {g.key: cocoeval.read_prediction_txt(lbl_dir / f"{g.key}.txt") for g in gt_images}
        dets = cocoeval.coco_dets(gt, preds)
        cocoeval.write_json(gt, tdir / "gt_coco.json")
        pred_file = cocoeval.write_json(dets, tdir / "predictions_coco.json")
        rec["predictions_sha256"] = hashlib.sha256(pred_file.read_bytes()).hexdigest()
        rec["n_detections"] = len(dets)
        rec["train_loss"] = timing.get("loss")
        res = cocoeval.evaluate(gt, dets, max_det=VAL_ARGS["max_det"])
        res.arrays.save(tdir / "eval.npz")
        rec["coco"] = {"map50": res.map50, "map": res.map}
        rec["n_val_images"] = len(gt_images)
        rec["eval"] = str((tdir / "eval.npz").relative_to(Path(spec["store_root"]))) if spec.get("store_root") else str(tdir / "eval.npz")
        rec["train_time_s"] = timing["train_s"]
        rec["train_images"] = timing["images"]
        rec["train_images_per_s"] = timing["images"] / timing["train_s"] if timing["train_s"] > 0 else None
        rec["epochs_done"] = timing["epochs"]
        rec["run_dir"] = str(run_dir)
        rec["status"] = "ok"
        if any(not math.isfinite(v) for v in (*rec["ultra"].values(), *rec["coco"].values())):
            rec["status"], rec["error"] = "failed", "non-finite metric"
    except Exception as exc:  # a failed trial is recorded, the sweep goes on
        rec["status"] = "failed"
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()[-4000:]
    finally:
        _set_threads(threads)
        if old_env is None:
            os.environ.pop("YOLO_ATTN_THREADS", None)
        else:
            os.environ["YOLO_ATTN_THREADS"] = old_env
    rec["finished_at"] = time.time()
    rec["duration_s"] = time.perf_counter() - t_start
    return rec
