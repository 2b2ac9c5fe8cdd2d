"""Export a model through Ultralytics' exporter to each deployment format and compare the exported model with
PyTorch on the same real images: the raw head output (boxes in pixels, class scores) and the boxes after NMS.

A format passes when its outputs agree with PyTorch within float tolerance and every confident PyTorch box is
found again (same class, IoU >= :data:`MATCH_IOU`) with no extra confident box. An INT8 format passes when it
converts and runs with finite outputs; its differences are reported, and its accuracy is measured as mAP
(:mod:`yolo_attn.deploy.int8`). A format whose packages are missing is *not
checked*; one that converts but cannot run on this platform (CoreML off macOS) is *converted only*.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .formats import DEPLOY_HINT, Format
from .models import CheckModel

PASSED, FAILED, NOT_CHECKED, CONVERTED = "passed", "failed", "not checked", "converted only"
STATUSES = (PASSED, FAILED, NOT_CHECKED, CONVERTED)
SCORE_TOL = 2e-3  # class scores (probabilities): FP32 formats
BOX_TOL = 1e-3  # boxes: a fraction of the image size or of the largest box coordinate, whichever is larger
INT8_MARGIN = 0.1  # INT8: boxes this far above the threshold count as missed/extra (reported, not held to)
MATCH_IOU = 0.5


@dataclass
class CheckSettings:
    """What every format of a check shares: the images, the image size, the NMS thresholds, the INT8 data."""

    images: list[Path]
    imgsz: int = 64
    conf: float = 0.25
    iou: float = 0.7
    data: str | None = None  # dataset YAML for INT8 calibration (its training images)
    calib_fraction: float = 0.2


@dataclass
class BoxAgreement:
    """Boxes after NMS, summed over the images: PyTorch's, the exported model's, matched, missed and extra
    (missed/extra count only boxes whose confidence clears the threshold by more than the score tolerance)."""

    reference: int = 0
    exported: int = 0
    matched: int = 0
    missed: int = 0
    extra: int = 0

    def add(self, other: "BoxAgreement") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __str__(self) -> str:
        return f"{self.matched}/{self.reference} matched, {self.missed} missed, {self.extra} extra"


@dataclass
class FormatResult:
    """One model in one format."""

    model: str
    layers: list[str]
    format: str
    status: str
    reason: str = ""
    op: str = ""  # the operator named in a converter or runtime message
    sizes: list[list[int]] = field(default_factory=list)  # (batch, height, width) inputs compared
    max_diff_boxes: float | None = None  # pixels
    max_diff_scores: float | None = None
    boxes: BoxAgreement | None = None
    seconds: float | None = None  # export and comparison

    def as_dict(self) -> dict:
        d = asdict(self)
        d["boxes"] = asdict(self.boxes) if self.boxes else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FormatResult":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("boxes"):
            d["boxes"] = BoxAgreement(**d["boxes"])
        if d.get("status") not in STATUSES:
            raise ValueError(f"export-check result {d.get('model')}/{d.get('format')}: unknown status {d.get('status')!r}")
        return cls(**d)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def load_images(paths: list[Path], height: int, width: int) -> torch.Tensor:
    """The images as one float RGB batch in [0, 1], each resized to (height, width)."""
    import cv2

    out = []
    for p in paths:
        im = cv2.imread(str(p))
        if im is None:
            raise FileNotFoundError(f"{p}: not a readable image")
        im = cv2.resize(im, (width, height), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def default_images(n: int = 2) -> list[Path]:
    """The first ``n`` validation images of the shipped shapes dataset (real JPEG files, no download)."""
    import yaml

    from .._ultralytics import ultralytics_image_files
    from ..datasets import shapes_yaml

    y = shapes_yaml()
    d = yaml.safe_load(Path(y).read_text())
    val = Path(d.get("path") or Path(y).parent) / d["val"]
    return [Path(p) for p in sorted(ultralytics_image_files(str(val)))[:n]]


def input_sizes(fmt: Format, imgsz: int, n_images: int) -> list[tuple[int, int, int]]:
    """(batch, height, width) of each comparison: one image at a time at the export size; a dynamic format also
    every image in one batch at a non-square size of twice the width."""
    sizes = [(1, imgsz, imgsz)]
    if fmt.dynamic:
        sizes.append((max(2, n_images), imgsz, 2 * imgsz))
    return sizes


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------
def _first(y) -> torch.Tensor:
    while isinstance(y, (list, tuple)):
        y = y[0]
    return torch.as_tensor(y).detach().float().cpu()


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]).clamp(min=0) * (x[:, 3] - x[:, 1]).clamp(min=0)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-9)


def match_boxes(ref: torch.Tensor, exp: torch.Tensor, conf: float, margin: float) -> BoxAgreement:
    """Agreement of two images' detections ``(n, 6)`` (xyxy, conf, cls): a box is matched when the other set has a
    box of its class with IoU >= :data:`MATCH_IOU`. Not one-to-one, so that NMS keeping a different one of two
    overlapping boxes (scores a rounding error apart) is no disagreement; a model that detects nothing, or
    elsewhere, still misses every box."""
    agree = BoxAgreement(reference=len(ref), exported=len(exp))
    if not len(ref) or not len(exp):
        agree.missed = int((ref[:, 4] > conf + margin).sum()) if len(ref) else 0
        agree.extra = int((exp[:, 4] > conf + margin).sum()) if len(exp) else 0
        return agree
    # a box whose score is saturated (1.0 to within the margin) may carry several classes at that score: a tie
    tie = (ref[:, None, 4] >= 1 - margin) & (exp[None, :, 4] >= 1 - margin)
    hit = (_iou(ref, exp) >= MATCH_IOU) & ((ref[:, None, 5] == exp[None, :, 5]) | tie)
    ref_hit, exp_hit = hit.any(1), hit.any(0)
    agree.matched = int(ref_hit.sum())
    agree.missed = int((~ref_hit & (ref[:, 4] > conf + margin)).sum())
    agree.extra = int((~exp_hit & (exp[:, 4] > conf + margin)).sum())
    return agree


@dataclass
class _Diff:
    boxes: float = 0.0
    scores: float = 0.0
    box_scale: float = 0.0  # the largest box coordinate of PyTorch's output (pixels)
    agreement: BoxAgreement = field(default_factory=BoxAgreement)


def compare_outputs(y_ref: torch.Tensor, y_exp: torch.Tensor, settings: CheckSettings, margin: float, diff: _Diff) -> str:
    """Accumulate the differences of one output pair into ``diff``; return a failure reason or ''."""
    from .._ultralytics import detections

    if tuple(y_ref.shape) != tuple(y_exp.shape):
        return f"output shape {tuple(y_exp.shape)} != PyTorch's {tuple(y_ref.shape)}"
    if not torch.isfinite(y_exp).all():
        return f"{int((~torch.isfinite(y_exp)).sum())} non-finite output values"
    d = (y_exp - y_ref).abs()
    diff.boxes = max(diff.boxes, float(d[:, :4].max()))
    diff.box_scale = max(diff.box_scale, float(y_ref[:, :4].abs().max()))
    diff.scores = max(diff.scores, float(d[:, 4:].max()))
    for r, e in zip(detections(y_ref, settings.conf, settings.iou), detections(y_exp, settings.conf, settings.iou)):
        diff.agreement.add(match_boxes(r, e, settings.conf, margin))
    return ""


# --------------------------------------------------------------------------------------------
# One format
# --------------------------------------------------------------------------------------------
_OP_PATTERNS = (
    re.compile(r"\b(aten::\w+)"),
    re.compile(r"\b(?:operator|op|operation|layer|node)\s+(?:type\s+)?['\"`]?([A-Za-z_][\w:.]*)", re.I),
    re.compile(r"['\"`]([A-Z][A-Za-z0-9]+)['\"`] (?:is )?not supported"),
)


_CONVERTERS = ("coremltools", "openvino", "pnnx", "ncnn", "onnx", "onnxruntime", "litert_torch", "ai_edge_litert", "nncf")


def _converter_frames(exc: BaseException) -> str:
    """The innermost two traceback frames inside a converter package (``ops.py:_int > ops.py:_cast``): where
    the conversion broke when the message itself names no operator."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(f"/{pkg}/" in f.filename.replace("\\", "/") for pkg in _CONVERTERS)]
    return " > ".join(f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.name}" for f in frames[-2:])


def failure_reason(stage: str, exc: BaseException) -> tuple[str, str]:
    """``(reason, operator)`` of an exception: its type and first lines, and the operator its message names (or the
    converter function it broke in)."""
    text = f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    op = ""
    for pat in _OP_PATTERNS:
        m = pat.search(text)
        if m:
            op = m.group(1)
            break
    where = _converter_frames(exc)
    reason = f"{stage}: {' | '.join(lines[:3])[:500]}" + (f" (in {where})" if where else "")
    return reason, op


@contextlib.contextmanager
def _no_installs():
    """Ultralytics' requirement checks off while exporting: the tooling is checked here (:meth:`Format.missing`)
    and nothing may be pip-installed (Ultralytics would otherwise try, or downgrade numpy for CoreML)."""
    old = os.environ.get("ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS")
    os.environ["ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS", None)
        else:
            os.environ["ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS"] = old


def export_args(fmt: Format, settings: CheckSettings) -> dict:
    args = {**fmt.export, "imgsz": settings.imgsz, "batch": 1, "device": "cpu", "verbose": False}
    if fmt.int8:
        if not settings.data:
            raise ValueError(f"{fmt.name}: INT8 calibration needs a dataset YAML (data=)")
        args.update(data=str(settings.data), split="train", fraction=settings.calib_fraction)
    return args


def export(cm: CheckModel, fmt: Format, settings: CheckSettings, workdir: Path) -> Path:
    """Export ``cm`` to ``fmt`` with Ultralytics' exporter; the result is moved to ``workdir/<format>/``."""
    from .._ultralytics import quiet_ultralytics

    with _no_installs(), quiet_ultralytics():
        f = cm.yolo.export(**export_args(fmt, settings))
    if not f or not Path(str(f)).exists():
        raise RuntimeError(f"Ultralytics' exporter returned no file ({f!r})")
    dest_dir = Path(workdir) / fmt.name
    if dest_dir.exists():
        shutil.rmtree(dest_dir)
    dest_dir.mkdir(parents=True)
    dest = dest_dir / Path(str(f)).name
    shutil.move(str(f), dest)
    return dest


def openvino_f32(path: Path):
    """An OpenVINO model folder compiled for the CPU with FP32 inference precision: ``runner(im) -> output``.

    OpenVINO's CPU plugin runs FP32 models in bfloat16 on processors with bf16 instructions (its default
    ``INFERENCE_PRECISION_HINT``; Ultralytics' predictor keeps it), which is a precision choice of the runtime,
    not of the exported model; the check compares the model itself.
    """
    from .formats import import_openvino

    ov = import_openvino()
    xml = next(Path(path).glob("*.xml"))
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})

    def run(im: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(compiled(im.numpy())[0].copy())

    return run


def _compare(cm: CheckModel, fmt: Format, path: Path, settings: CheckSettings, res: FormatResult) -> str:
    from .._ultralytics import exported_model
    from .._ultralytics import quiet_ultralytics

    try:
        with quiet_ultralytics():
            runner = openvino_f32(path) if fmt.export.get("format") == "openvino" else exported_model(path)
    except Exception as exc:
        reason, res.op = failure_reason("load", exc)
        return reason
    model = cm.yolo.model.float().eval()
    margin = INT8_MARGIN if fmt.int8 else SCORE_TOL
    diff = _Diff()
    for batch, h, w in input_sizes(fmt, settings.imgsz, len(settings.images)):
        x = load_images(settings.images, h, w)
        if batch > len(x):  # one image: the batch of the dynamic check adds its mirror image
            x = torch.cat([x, x.flip(-1)])[:batch]
        chunks = list(x.split(1)) if batch == 1 else [x]
        res.sizes.append([batch, h, w])
        for xi in chunks:
            with torch.no_grad():
                y_ref = _first(model(xi))
            try:
                y_exp = _first(runner(xi))
            except Exception as exc:
                reason, res.op = failure_reason(f"inference at {tuple(xi.shape)}", exc)
                return reason
            bad = compare_outputs(y_ref, y_exp, settings, margin, diff)
            if bad:
                return f"at input {tuple(xi.shape)}: {bad}"
    res.max_diff_boxes, res.max_diff_scores, res.boxes = diff.boxes, diff.scores, diff.agreement
    return _verdict(fmt, settings, diff)


def _verdict(fmt: Format, settings: CheckSettings, diff: _Diff) -> str:
    """'' when the outputs agree: FP32 within float tolerance and the same boxes; INT8 only needs to run (its
    accuracy is the mAP table's: a per-anchor tolerance says nothing about an INT8 model's detections)."""
    if fmt.int8:
        return ""
    box_px = BOX_TOL * max(settings.imgsz, diff.box_scale)
    if diff.scores > SCORE_TOL or diff.boxes > box_px:
        return (f"output differs from PyTorch: max |diff| boxes {diff.boxes:.3g} px (tolerance {box_px:.3g}), "
                f"scores {diff.scores:.3g} (tolerance {SCORE_TOL:g})")
    a = diff.agreement
    if a.missed or a.extra:
        return f"boxes after NMS differ from PyTorch's: {a}"
    return ""


def check_format(cm: CheckModel, fmt: Format, settings: CheckSettings, workdir: Path) -> FormatResult:
    """Export ``cm`` to ``fmt`` and compare it with PyTorch; never raises for a failing export."""
    res = FormatResult(cm.name, list(cm.layers), fmt.name, NOT_CHECKED)
    missing = fmt.missing()
    if missing:
        res.reason = f"needs {', '.join(missing)}: {DEPLOY_HINT}"
        return res
    t0 = time.perf_counter()
    try:
        path = export(cm, fmt, settings, workdir)
    except Exception as exc:
        res.status = FAILED
        res.reason, res.op = failure_reason("export", exc)
        res.seconds = time.perf_counter() - t0
        return res
    if not fmt.runs_here:
        res.status, res.reason = CONVERTED, f"converted; {fmt.name} models cannot run on this platform"
    else:
        res.reason = _compare(cm, fmt, path, settings, res)
        res.status = FAILED if res.reason else PASSED
    res.seconds = time.perf_counter() - t0
    return res


ISOLATED_TIMEOUT_S = 900


def _tail(text: str, n: int = 2) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:300]


def check_format_isolated(cm: CheckModel, fmt: Format, settings: CheckSettings, workdir: Path) -> FormatResult:
    """:func:`check_format` in a child process (:mod:`yolo_attn.deploy._isolated`): a converter that kills its
    process (abort, segfault) or hangs is a failure of that format, not the end of the check."""
    import subprocess
    import sys

    from .._io import atomic_write_json

    if fmt.missing():
        return check_format(cm, fmt, settings, workdir)
    jobs = Path(workdir) / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    job, out = jobs / f"{fmt.name}.json", jobs / f"{fmt.name}.result.json"
    out.unlink(missing_ok=True)
    atomic_write_json(job, {
        "checkpoint": str(cm.checkpoint), "name": cm.name, "layers": list(cm.layers), "synthetic": cm.synthetic,
        "format": fmt.name, "workdir": str(workdir), "out": str(out),
        "settings": {**asdict(settings), "images": [str(p) for p in settings.images]}})
    t0 = time.perf_counter()
    try:
        pkg_root = str(Path(__file__).resolve().parents[2])  # the child imports this yolo_attn, not another one
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [pkg_root, os.environ.get("PYTHONPATH")]))}
        p = subprocess.run([sys.executable, "-m", "yolo_attn.deploy._isolated", str(job)], capture_output=True,
                           text=True, timeout=ISOLATED_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return FormatResult(cm.name, list(cm.layers), fmt.name, FAILED, seconds=time.perf_counter() - t0,
                            reason=f"export or inference did not finish in {ISOLATED_TIMEOUT_S} s")
    if p.returncode == 0 and out.is_file():
        import json

        return FormatResult.from_dict(json.loads(out.read_text()))
    how = f"signal {-p.returncode}" if p.returncode < 0 else f"exit status {p.returncode}"
    return FormatResult(cm.name, list(cm.layers), fmt.name, FAILED, seconds=time.perf_counter() - t0,
                        reason=f"the converter ended the process ({how}): {_tail(p.stderr) or _tail(p.stdout)}")


def check_model(cm: CheckModel, formats: list[Format], settings: CheckSettings, workdir: Path, progress=None,
                isolate: bool = False) -> list[FormatResult]:
    """Every format of ``formats`` for one model (exports in ``workdir``); ``isolate``: each in its own process."""
    out = []
    for fmt in formats:
        res = (check_format_isolated if isolate else check_format)(cm, fmt, settings, workdir)
        if progress:
            progress(res)
        out.append(res)
    return out
