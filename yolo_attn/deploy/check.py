"""Export a model through Ultralytics' exporter to each deployment format and compare the exported model with
PyTorch on the same real images: the raw head output (boxes in pixels, class scores, and the task's own outputs:
mask coefficients and prototypes, keypoints, angles, class probabilities; :mod:`yolo_attn.deploy.tasks`) and the
boxes after NMS (rotated boxes for obb; the top-1 class for classify).

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

from .formats import Format
from .models import CheckModel
from .tasks import BOX_TOL, SCORE_TOL, Agreement, Diffs, Head, head_of, pair_rows, raw_parts, row_parts, top1_agreement  # noqa: F401

PASSED, FAILED, NOT_CHECKED, CONVERTED = "passed", "failed", "not checked", "converted only"
STATUSES = (PASSED, FAILED, NOT_CHECKED, CONVERTED)
INT8_MARGIN = 0.1  # INT8: boxes this far above the threshold count as missed/extra (reported, not held to)
MATCH_IOU = 0.5


@dataclass
class CheckSettings:
    """What every format of a check shares: the images, the image size, the NMS thresholds, the INT8 data."""

    images: list[Path]
    imgsz: int = 64
    conf: float = 0.25
    iou: float = 0.7
    data: str | None = None  # dataset YAML for INT8 calibration (its training images); detect: the shapes by default
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
    task: str = "detect"  # Ultralytics' task of the model's head: which outputs were compared
    op: str = ""  # the operator named in a converter or runtime message
    sizes: list[list[int]] = field(default_factory=list)  # (batch, height, width) inputs compared
    max_diff_boxes: float | None = None  # pixels
    max_diff_scores: float | None = None
    boxes: BoxAgreement | None = None
    seconds: float | None = None  # export and comparison
    max_diff: dict[str, float] = field(default_factory=dict)  # every compared part (tasks.PARTS) -> max |diff|
    top1: dict | None = None  # classify: {"images", "same"} (the top-1 class agreement)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["boxes"] = asdict(self.boxes) if self.boxes else None
        return d

    def diffs_text(self) -> str:
        """The task's own parts' differences (boxes and scores have their columns), for the table."""
        other = {k: v for k, v in self.max_diff.items() if k not in ("boxes", "scores")}
        return ", ".join(f"{k} {v:.2g}" for k, v in other.items())

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
def load_images(paths: list[Path], height: int, width: int, channels: int = 3) -> torch.Tensor:
    """The images as one float batch in [0, 1], each resized to (height, width): RGB, or gray for a model of one
    input channel (trained on a ``channels: 1`` dataset such as coco8-grayscale)."""
    import cv2

    out = []
    for p in paths:
        im = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
        if im is None:
            raise FileNotFoundError(f"{p}: not a readable image")
        im = cv2.resize(im, (width, height), interpolation=cv2.INTER_LINEAR)
        im = im[:, :, None] if channels == 1 else im[:, :, ::-1]
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
        sizes.append((max(2, n_images), *dynamic_size(imgsz)))
    return sizes


def dynamic_size(imgsz: int) -> tuple[int, int]:
    """(height, width) of a dynamic format's second comparison: non-square, twice the export size wide."""
    return imgsz, 2 * imgsz


def calibration_images(paths: list[Path], imgsz: int) -> list[torch.Tensor]:
    """The images at each size a format is compared at (the export size, :func:`dynamic_size`), on which an
    untrained check model is calibrated (:mod:`yolo_attn.deploy.models`): calibrated at the export size only, its
    features at the dynamic size grew out of range and PyTorch's own float32 rounding (against float64) moved its
    scores by 0.0019, failing a faithful dynamic ONNX export."""
    return [load_images(paths, imgsz, imgsz), load_images(paths, *dynamic_size(imgsz))]


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------
def _iou(a: torch.Tensor, b: torch.Tensor, rotated: bool = False) -> torch.Tensor:
    if rotated:  # rows xc yc w h ... angle (the angle last): Ultralytics' probabilistic IoU
        from .._ultralytics.rotated import rotated_iou

        def xywhr(x):
            return torch.cat([x[:, :4], x[:, -1:]], 1).double().numpy()

        return torch.from_numpy(rotated_iou(xywhr(a), xywhr(b))).float()

    def ordered(x):  # an untrained head (YOLO26's, no DFL) may give x2 < x1: the same box either way round
        return torch.cat([torch.minimum(x[:, :2], x[:, 2:4]), torch.maximum(x[:, :2], x[:, 2:4])], 1)

    a, b = ordered(a), ordered(b)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]).clamp(min=0) * (x[:, 3] - x[:, 1]).clamp(min=0)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-9)


def match_boxes(ref: torch.Tensor, exp: torch.Tensor, conf: float, margin: float, rotated: bool = False) -> BoxAgreement:
    """Agreement of two images' detections ``(n, 6 + extra)`` (xyxy, conf, cls; ``rotated``: xywh, conf, cls, ...,
    angle): a box is matched when the other set has a box of its class with IoU >= :data:`MATCH_IOU`. Not one-to-one, so that NMS keeping a different one of two
    overlapping boxes (scores a rounding error apart) is no disagreement; a model that detects nothing, or
    elsewhere, still misses every box."""
    agree = BoxAgreement(reference=len(ref), exported=len(exp))
    if not len(ref) or not len(exp):
        agree.missed = int((ref[:, 4] > conf + margin).sum()) if len(ref) else 0
        agree.extra = int((exp[:, 4] > conf + margin).sum()) if len(exp) else 0
        return agree
    # a box whose score is saturated (1.0 to within the margin) may carry several classes at that score: a tie
    tie = (ref[:, None, 4] >= 1 - margin) & (exp[None, :, 4] >= 1 - margin)
    hit = (_iou(ref, exp, rotated) >= MATCH_IOU) & ((ref[:, None, 5] == exp[None, :, 5]) | tie)
    ref_hit, exp_hit = hit.any(1), hit.any(0)
    agree.matched = int(ref_hit.sum())
    agree.missed = int((~ref_hit & (ref[:, 4] > conf + margin)).sum())
    agree.extra = int((~exp_hit & (exp[:, 4] > conf + margin)).sum())
    return agree


@dataclass
class _Diff:
    parts: Diffs = field(default_factory=Diffs)
    agreement: BoxAgreement = field(default_factory=BoxAgreement)
    top1: Agreement | None = None  # classify

    @property
    def boxes(self) -> float:
        return self.parts.diff.get("boxes", 0.0)

    @property
    def scores(self) -> float:
        return self.parts.diff.get("scores", self.parts.diff.get("probabilities", 0.0))


def _check_shapes(refs: list[torch.Tensor], exps: list[torch.Tensor], head: Head) -> str:
    if len(exps) != len(refs):
        return (f"the exported model returns {len(exps)} output(s) where PyTorch's {head.task} model returns "
                f"{len(refs)}" + (" (detections with mask coefficients, and the mask prototypes)" if head.task == "segment" else ""))
    for i, (r, e) in enumerate(zip(refs, exps)):
        which = f"output {i} " if len(refs) > 1 else "output "
        if tuple(r.shape) != tuple(e.shape):
            return f"{which}shape {tuple(e.shape)} != PyTorch's {tuple(r.shape)}"
        if not torch.isfinite(e).all():
            return f"{int((~torch.isfinite(e)).sum())} non-finite {which}values"
    return ""


def compare_outputs(y_ref, y_exp, settings: CheckSettings, margin: float, diff: _Diff, head: Head = Head()) -> str:
    """Accumulate the differences of one output pair (a tensor, or the list :func:`task_outputs` gives) into ``diff``:
    every part of the ``head``'s outputs, and the detections after NMS (the top-1 class for classify); return a
    failure reason or ''."""
    from .._ultralytics.export import detections

    refs = list(y_ref) if isinstance(y_ref, (list, tuple)) else [y_ref]
    exps = list(y_exp) if isinstance(y_exp, (list, tuple)) else [y_exp]
    bad = _check_shapes(refs, exps, head)
    if bad:
        return bad
    if head.task == "classify":
        diff.parts.add("probabilities", refs[0], exps[0])
        a = top1_agreement(refs[0], exps[0], margin)
        diff.top1 = Agreement(a.images + (diff.top1.images if diff.top1 else 0), a.same + (diff.top1.same if diff.top1 else 0))
        return ""
    if head.task == "segment":
        diff.parts.add("prototypes", refs[1], exps[1])
    nms = {"nc": head.nc, "rotated": head.rotated, "end2end": head.end2end}
    ref_dets = detections(refs[0], settings.conf, settings.iou, **nms)
    exp_dets = detections(exps[0], settings.conf, settings.iou, **nms)
    for r, e in zip(ref_dets, exp_dets):
        if head.end2end:  # rows ranked by score: compared on the pairs of the same detection
            pr, pe = pair_rows(r, e, settings.conf + margin)
            for (name, a), b in zip(row_parts(pr, head).items(), row_parts(pe, head).values()):
                diff.parts.add(name, a, b)
        diff.agreement.add(match_boxes(r, e, settings.conf, margin, rotated=head.rotated))
    if not head.end2end:
        for (name, a), b in zip(raw_parts(refs[0], head).items(), raw_parts(exps[0], head).values()):
            diff.parts.add(name, a, b)
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


def calibration_data(fmt: Format, settings: CheckSettings, task: str = "detect") -> str | None:
    """The dataset an INT8 format calibrates on: the one given, else (a detection model) the shipped shapes
    dataset; None where there is none to use (a model of another task calibrates on data of its own task)."""
    if settings.data or not fmt.int8:
        return str(settings.data) if settings.data else None
    if task != "detect":
        return None
    from ..datasets import shapes_yaml

    return str(shapes_yaml())


def export_args(fmt: Format, settings: CheckSettings, task: str = "detect") -> dict:
    args = {**fmt.export, "imgsz": settings.imgsz, "batch": 1, "device": "cpu", "verbose": False}
    if fmt.int8:
        data = calibration_data(fmt, settings, task)
        if not data:
            raise ValueError(f"{fmt.name}: INT8 calibration of a {task} model needs a {task} dataset YAML (--data)")
        args.update(data=data, split="train", fraction=settings.calib_fraction)
    return args


def export(cm: CheckModel, fmt: Format, settings: CheckSettings, workdir: Path) -> Path:
    """Export ``cm`` to ``fmt`` with Ultralytics' exporter; the result is moved to ``workdir/<format>/``."""
    from .._ultralytics import quiet_ultralytics

    with _no_installs(), quiet_ultralytics():
        f = cm.yolo.export(**export_args(fmt, settings, getattr(cm, "task", "detect")))
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
    """An OpenVINO model folder compiled for the CPU with FP32 inference precision: ``runner(im) -> outputs``
    (one tensor, or the list of a model with several outputs: a segment model's detections and prototypes).

    OpenVINO's CPU plugin runs FP32 models in bfloat16 on processors with bf16 instructions (its default
    ``INFERENCE_PRECISION_HINT``; Ultralytics' predictor keeps it), which is a precision choice of the runtime,
    not of the exported model; the check compares the model itself.
    """
    from .formats import import_openvino

    ov = import_openvino()
    xml = next(Path(path).glob("*.xml"))
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})

    def run(im: torch.Tensor):
        res = compiled(im.numpy())
        outs = [torch.from_numpy(res[o].copy()) for o in compiled.outputs]
        return outs[0] if len(outs) == 1 else outs

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
    from .._ultralytics.export import task_outputs

    model = cm.yolo.model.float().eval()
    head = head_of(model, cm.name)
    margin = INT8_MARGIN if fmt.int8 else SCORE_TOL
    diff = _Diff()
    for batch, h, w in input_sizes(fmt, settings.imgsz, len(settings.images)):
        x = load_images(settings.images, h, w, int(model.yaml.get("channels") or 3))
        if batch > len(x):  # one image: the batch of the dynamic check adds its mirror image
            x = torch.cat([x, x.flip(-1)])[:batch]
        chunks = list(x.split(1)) if batch == 1 else [x]
        res.sizes.append([batch, h, w])
        for xi in chunks:
            with torch.no_grad():
                y_ref = task_outputs(model(xi), head.task)
            try:
                y_exp = task_outputs(runner(xi), head.task)
            except Exception as exc:
                reason, res.op = failure_reason(f"inference at {tuple(xi.shape)}", exc)
                return reason
            bad = compare_outputs(y_ref, y_exp, settings, margin, diff, head)
            if bad:
                return f"at input {tuple(xi.shape)}: {bad}"
    res.max_diff = dict(diff.parts.diff)
    res.max_diff_boxes, res.max_diff_scores = res.max_diff.get("boxes"), diff.scores
    res.boxes = None if head.task == "classify" else diff.agreement
    res.top1 = {"images": diff.top1.images, "same": diff.top1.same} if diff.top1 else None
    return _verdict(fmt, settings, diff)


def _verdict(fmt: Format, settings: CheckSettings, diff: _Diff) -> str:
    """'' when the outputs agree: FP32 within float tolerance and the same boxes; INT8 only needs to run (its
    accuracy is the mAP table's: a per-anchor tolerance says nothing about an INT8 model's detections)."""
    if fmt.int8:
        return ""
    over = diff.parts.over(settings.imgsz)
    if over:
        return f"output differs from PyTorch: max |diff| {', '.join(over)}"
    if diff.top1 is not None:
        return "" if diff.top1.same == diff.top1.images else f"top-1 classes differ from PyTorch's: {diff.top1}"
    a = diff.agreement
    if a.missed or a.extra:
        return f"boxes after NMS differ from PyTorch's: {a}"
    return ""


def check_format(cm: CheckModel, fmt: Format, settings: CheckSettings, workdir: Path) -> FormatResult:
    """Export ``cm`` to ``fmt`` and compare it with PyTorch; never raises for a failing export."""
    task = getattr(cm, "task", "detect")
    res = FormatResult(cm.name, list(cm.layers), fmt.name, NOT_CHECKED, task=task)
    missing = fmt.missing()
    if missing:
        res.reason = f"needs {', '.join(missing)}: {fmt.install_hint(missing)}"
        return res
    from .._ultralytics import ULTRALYTICS_VERSION, export_format_names

    if fmt.export["format"] not in export_format_names():
        res.reason = f"Ultralytics {ULTRALYTICS_VERSION} has no {fmt.export['format']!r} export: upgrade ultralytics"
        return res
    if fmt.int8 and not calibration_data(fmt, settings, task):
        res.reason = (f"INT8 calibration of a {task} model needs its own dataset: give --data {task.upper()}.yaml "
                      "(the default shapes dataset has box labels only)")
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
        "task": getattr(cm, "task", "detect"),
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
