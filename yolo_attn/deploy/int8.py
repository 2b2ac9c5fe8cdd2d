"""INT8 accuracy per placement: the trained models of a ``yolo-attn compare`` sweep, validated as PyTorch, OpenVINO
FP32 and OpenVINO INT8 (NNCF post-training quantisation calibrated on the sweep's training images), and whether
each attention model's difference to the baseline survives the quantisation.

Every number is Ultralytics' validator (``YOLO(exported).val``) on the sweep's validation split with the
sweep's mAP settings, so the three columns differ only in the backend. The figures are the sweep's task's own, read
by its scorer (:mod:`yolo_attn.scoring`): box mAP for detect and obb, mask mAP for segment, keypoint mAP for pose,
top-1 (and top-5 in the ``*_map50`` fields) for classify; the calibration images are the sweep's training images. OpenVINO runs at its default CPU
precision, as Ultralytics' predictor does (bfloat16 on processors with bf16 instructions).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from ..compare.contract import SweepConfig
from .check import CheckSettings, export
from .formats import get_format, require
from .models import model_from_file

MAX_CALIBRATION_IMAGES = 300  # NNCF's default subset size


@dataclass
class Int8Row:
    """One trained model (one trial): the task's two figures (``map``: mAP50-95 of its output, or top-1 for
    classify; ``map50``: mAP50, or top-5) as PyTorch, OpenVINO FP32 and OpenVINO INT8."""

    model: str
    seed: int
    trial_id: str
    pytorch_map: float
    pytorch_map50: float
    fp32_map: float
    fp32_map50: float
    int8_map: float
    int8_map50: float


def _weights(rec, config: SweepConfig) -> Path:
    if not rec.run_dir:
        raise ValueError(f"trial {rec.trial_id}: its record names no run folder (no checkpoint to quantise)")
    w = Path(rec.run_dir) / "weights" / ("best.pt" if config.weights == "best" else "last.pt")
    if not w.is_file():
        raise FileNotFoundError(f"trial {rec.trial_id}: checkpoint {w} not found (the sweep keeps it in its trial folder)")
    return w


def _val(yolo_or_path, data: str, imgsz: int, out: Path, name: str, task: str = "detect") -> tuple[float, float]:
    """``(map, map50)`` of the task (its scorer's reading of Ultralytics' metrics) on the validation split."""
    from types import SimpleNamespace

    from ultralytics import YOLO

    from .._ultralytics import quiet_ultralytics
    from ..scoring import VAL_ARGS, scorer

    model = YOLO(str(yolo_or_path), task=task) if isinstance(yolo_or_path, (str, Path)) else yolo_or_path
    with quiet_ultralytics():
        m = model.val(data=data, imgsz=imgsz, batch=1, split="val", plots=False, project=str(Path(out).resolve()), name=name,
                      exist_ok=True, verbose=False, device="cpu", **VAL_ARGS)
    figures = scorer(task, where="export-check --int8").ultra(SimpleNamespace(metrics=m))
    return figures["map"], figures["map50"]


def _train_images(data_yaml: str) -> int:
    import yaml

    from .._ultralytics import ultralytics_image_files

    if Path(data_yaml).is_dir():  # a classification dataset: a folder of split folders of class folders
        return len(ultralytics_image_files(str(Path(data_yaml) / "train")))
    d = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(d.get("path") or Path(data_yaml).parent)
    train = d["train"] if isinstance(d["train"], list) else [d["train"]]
    return sum(len(ultralytics_image_files(str(root / t))) for t in train)


def quantise_trial(rec, config: SweepConfig, out: Path) -> Int8Row:
    """Export one trial's checkpoint to OpenVINO FP32 and INT8 and validate all three."""
    data, imgsz = str(config.data_yaml), config.imgsz
    n_train = _train_images(data)
    settings = CheckSettings(images=[], imgsz=imgsz, data=data,
                             calib_fraction=min(1.0, MAX_CALIBRATION_IMAGES / max(1, n_train)))
    work = out / rec.trial_id
    work.mkdir(parents=True, exist_ok=True)
    cm = model_from_file(str(_weights(rec, config)), work, images=None, name=rec.model)
    task = cm.task
    pt = _val(cm.yolo, data, imgsz, work, "val-pytorch", task)
    fp32 = _val(export(cm, get_format("openvino"), settings, work), data, imgsz, work, "val-openvino", task)
    int8 = _val(export(cm, get_format("openvino-int8"), settings, work), data, imgsz, work, "val-openvino-int8", task)
    return Int8Row(rec.model, rec.seed, rec.trial_id, *pt, *fp32, *int8)


def sweep_int8(sweep_dir: str | Path, out: str | Path, progress=print) -> tuple[list[Int8Row], str]:
    """Every ok trial of the sweep in ``sweep_dir``; returns the rows and the Markdown report."""
    from ..compare.store import Store

    require("openvino-int8")
    root = Path(sweep_dir)
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"{root}: no config.json (not a yolo-attn compare results folder)")
    store = Store(root)
    config = store.read_config()
    recs = [r for r in store.trial_records(config.settings_hash) if r.ok]
    if not recs:
        raise ValueError(f"{root}: no completed trial to quantise")
    rows = []
    for rec in sorted(recs, key=lambda r: (r.model, r.seed)):
        rows.append(quantise_trial(rec, config, Path(out)))
        r = rows[-1]
        progress(f"[export-check] {rec.trial_id}: {_metric(config)} PyTorch {r.pytorch_map:.4f}, OpenVINO FP32 "
                 f"{r.fp32_map:.4f}, INT8 {r.int8_map:.4f}")
    return rows, int8_markdown(rows, str(config.baseline), config)


def _paired(rows: list[Int8Row], model: str, base: str, key: str) -> list[float]:
    by_seed = {r.seed: getattr(r, key) for r in rows if r.model == base}
    return [getattr(r, key) - by_seed[r.seed] for r in rows if r.model == model and r.seed in by_seed]


def _mean(v: list[float]) -> float | None:
    return statistics.fmean(v) if v else None


def _f(v: float | None, signed: bool = False) -> str:
    return "" if v is None else (f"{v:+.4f}" if signed else f"{v:.4f}")


def _survives(d_fp32: list[float], d_int8: list[float]) -> str:
    if not d_fp32:
        return ""
    same = sum((a > 0) == (b > 0) for a, b in zip(d_fp32, d_int8))
    return f"same sign in {same}/{len(d_fp32)} seeds"


def _with_interval(d: list[float]) -> str:
    """Mean paired difference with its 95% seed-level interval (paired t over seeds; none with one seed)."""
    from ..compare.stats import paired_diff_ci

    if not d:
        return ""
    ci = paired_diff_ci(d, [0.0] * len(d))
    return f"{ci.delta:+.4f} (1 seed)" if ci.n_seeds < 2 else f"{ci.delta:+.4f} [{ci.lo:+.4f}, {ci.hi:+.4f}]"


def int8_markdown(rows: list[Int8Row], baseline: str, config: SweepConfig) -> str:
    """Per model: mAP50-95 by backend (mean over seeds), INT8 - FP32, and the Δ to the baseline before and after
    quantisation, and how quantisation changed it, each with its 95% interval over the paired seeds."""
    models = list(dict.fromkeys(r.model for r in rows))
    lines = [
        f"Sweep: epochs {config.epochs}, imgsz {config.imgsz}, seeds {config.seeds}, "
        f"baseline {baseline}. {_metric(config)} (Ultralytics' validator), mean over seeds; Δ: paired by seed, with its 95% "
        "interval over seeds (paired t; the validation-image uncertainty is not included).",
        "",
        "| model | seeds | PyTorch | OpenVINO FP32 | OpenVINO INT8 | INT8 - FP32 | Δ to baseline FP32 | Δ to baseline INT8 "
        "| INT8 change of Δ | Δ kept? |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        mine = [r for r in rows if r.model == m]
        d32, d8 = _paired(rows, m, baseline, "fp32_map"), _paired(rows, m, baseline, "int8_map")
        base = m == baseline
        change = [b - a for a, b in zip(d32, d8)]
        lines.append(
            f"| {m} | {len(mine)} | {_f(_mean([r.pytorch_map for r in mine]))} | {_f(_mean([r.fp32_map for r in mine]))} "
            f"| {_f(_mean([r.int8_map for r in mine]))} | {_f(_mean([r.int8_map - r.fp32_map for r in mine]), True)} "
            f"| {'baseline' if base else _with_interval(d32)} | {'baseline' if base else _with_interval(d8)} "
            f"| {'' if base else _with_interval(change)} | {'' if base else _survives(d32, d8)} |")
    return "\n".join(lines) + "\n"


def _metric(config: SweepConfig) -> str:
    from ..scoring import scorer

    return scorer(getattr(config, "task", "detect") or "detect", where="export-check --int8").metric


def rows_json(rows: list[Int8Row]) -> list[dict]:
    return [asdict(r) for r in rows]
