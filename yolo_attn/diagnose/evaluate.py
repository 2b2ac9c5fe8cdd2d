"""One detection evaluator for every section: batched inference, NMS, COCOeval by area range.

Inference follows a validator's usual settings (confidence 0.001, IoU 0.7, at most 100 detections per
image (COCO's limit), one box per class above the threshold) with torchvision's NMS; boxes are mapped back to the
original image pixels and scored by pycocotools' COCOeval with every area range at once, so that AP for
small / medium / large objects (and for any custom ranges) come from pycocotools itself.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field

import torch

from ..scoring import cocoeval
from .data import Split

CONF, IOU, MAX_DET = 0.001, 0.7, 100  # COCO's own limit of 100 detections per image
COCO_AREAS = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


def head_output(model, x: torch.Tensor) -> torch.Tensor:
    """The head's first output in eval mode: ``(B, 4 + nc + k, anchors)`` for a detection-type head (its task's own
    ``k`` rows last: mask coefficients, keypoints, angle), ``(B, nc)`` class probabilities for a classifier."""
    out = model(x)
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def detect_output(model, x: torch.Tensor) -> torch.Tensor:
    """The decoded detection output (B, 4 + nc, anchors): xywh in input pixels, then class scores (of a segment,
    pose or obb head: its detection branch, the task's own rows left out)."""
    y = head_output(model, x)
    layers = getattr(model, "model", None)
    nc = getattr(layers[-1], "nc", None) if isinstance(layers, torch.nn.Sequential) and len(layers) else None
    return y if nc is None else y[:, : 4 + int(nc)]


@torch.no_grad()
def predict(model, images: torch.Tensor, batch: int = 32) -> list[torch.Tensor]:
    """Per image, rows (x1, y1, x2, y2, score, class) in letterboxed pixels after NMS."""
    outs = []
    for i in range(0, len(images), batch):
        outs += nms(detect_output(model, images[i : i + batch]))
    return outs


def nms(pred: torch.Tensor, conf: float = CONF, iou: float = IOU, max_det: int = MAX_DET) -> list[torch.Tensor]:
    """Class-wise NMS over every (anchor, class) pair scoring above ``conf``."""
    from torchvision.ops import batched_nms

    out = []
    for p in pred.float():  # (4 + nc, A)
        boxes, scores = p[:4].T, p[4:].T  # (A, 4), (A, nc)
        a, c = (scores > conf).nonzero(as_tuple=True)
        s = scores[a, c]
        if s.numel() > 30000:
            top = s.topk(30000).indices
            a, c, s = a[top], c[top], s[top]
        xy, wh = boxes[a, :2], boxes[a, 2:]
        xyxy = torch.cat((xy - wh / 2, xy + wh / 2), 1)
        keep = batched_nms(xyxy, s, c, iou)[:max_det]
        out.append(torch.cat((xyxy[keep], s[keep, None], c[keep, None].float()), 1))
    return out


def coco_dets(split: Split, preds: list[torch.Tensor]) -> list[dict]:
    """COCO result list in original pixels (image ids 1..N in split order, category = class + 1)."""
    dets = []
    for i, p in enumerate(preds):
        if not len(p):
            continue
        p = p.cpu().numpy().astype(float)
        r, (left, top) = split.scale[i], split.pad[i]
        x1, y1 = (p[:, 0] - left) / r, (p[:, 1] - top) / r
        w, h = (p[:, 2] - p[:, 0]) / r, (p[:, 3] - p[:, 1]) / r
        for k in range(len(p)):
            dets.append({"image_id": i + 1, "category_id": int(p[k, 5]) + 1,
                         "bbox": [x1[k], y1[k], w[k], h[k]], "score": float(p[k, 4])})
    return dets


@dataclass
class AreaScore:
    """COCO figures of one area range: AP50-95, AP50, AR@max_det, and the arrays for the image bootstrap."""

    ap: float
    ap50: float
    ar: float
    n_gt: int
    arrays: cocoeval.EvalArrays = field(repr=False)


def coco_by_area(gt: dict, dets: list[dict], areas: dict[str, tuple[float, float]],
                 iou_type: str = "bbox", max_det: int = MAX_DET) -> dict[str, AreaScore]:
    """pycocotools' COCOeval of ``iou_type`` (``bbox``, ``segm``, ``keypoints``: the latter with the OKS sigmas
    ``gt["info"]["kpt_oks_sigmas"]`` when it states them) with ``areas`` as its area ranges (one run); one
    :class:`AreaScore` per range, of at most ``max_det`` detections per image."""
    from types import SimpleNamespace

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat_ids = [c["id"] for c in gt["categories"]]
    img_ids = [im["id"] for im in gt["images"]]
    names = list(areas)
    if not dets:  # COCO.loadRes cannot take an empty list; nothing detected scores 0
        empty = cocoeval.evaluate(gt, [], iou_type=iou_type).arrays
        return {k: AreaScore(0.0, 0.0, 0.0, _count(gt, areas[k], iou_type), empty) for k in names}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(dets))), iouType=iou_type)
        cocoeval.use_stated_sigmas(ev, gt)
        ev.params.imgIds, ev.params.catIds = img_ids, cat_ids
        ev.params.maxDets = [1, 10, int(max_det)]
        ev.params.areaRng, ev.params.areaRngLbl = [list(areas[k]) for k in names], names
        ev.evaluate()
        ev.accumulate()
    n_img, n_area = len(img_ids), len(names)
    out = {}
    for a, name in enumerate(names):
        prec, rec = ev.eval["precision"][:, :, :, a, -1], ev.eval["recall"][:, :, a, -1]
        valid = prec[0, 0] > -1  # categories with ground truth in this range
        mean = (lambda v: float(v[..., valid].mean())) if valid.any() else (lambda v: float("nan"))
        # the evaluated images of area range a, laid out as cocoeval's single-range reader expects
        one = SimpleNamespace(params=SimpleNamespace(areaRng=[areas[name]], maxDets=ev.params.maxDets,
                                                     iouThrs=ev.params.iouThrs),
                              evalImgs=[ev.evalImgs[k * n_area * n_img + a * n_img + i]
                                        for k in range(len(cat_ids)) for i in range(n_img)])
        out[name] = AreaScore(mean(prec), mean(prec[0]), mean(rec), _count(gt, areas[name], iou_type),
                              cocoeval._arrays_from(one, cat_ids, img_ids))
    return out


def _count(gt: dict, rng: tuple[float, float], iou_type: str = "bbox") -> int:
    """Ground-truth objects in an area range (COCOeval's rule: both ends inclusive; for keypoints, only objects with
    a labelled keypoint)."""
    return sum(1 for a in gt["annotations"] if rng[0] <= a["area"] <= rng[1] and not a.get("iscrowd", 0)
               and (iou_type != "keypoints" or a.get("num_keypoints", 0) > 0))


@dataclass
class Evaluation:
    """A model on a split: mAP50-95 / mAP50 (area 'all') and every requested area range."""

    map: float
    map50: float
    areas: dict[str, AreaScore]


def evaluate(model, split: Split, names: dict[int, str], areas: dict[str, tuple[float, float]] | None = None) -> Evaluation:
    gt = cocoeval.coco_gt(split.gt, names)
    dets = coco_dets(split, predict(model, split.images))
    scores = coco_by_area(gt, dets, {"all": COCO_AREAS["all"], **(areas or {})})
    return Evaluation(scores["all"].ap, scores["all"].ap50, scores)
