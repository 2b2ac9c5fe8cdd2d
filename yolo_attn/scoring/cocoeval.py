"""COCO-JSON export of ground truth and predictions, pycocotools' COCOeval, and per-image evaluation data.

The sweep computes mAP twice on the *same* predictions: Ultralytics' validator reports its figure,
and the predictions it scored (kept in memory during that one pass, in original-image pixels:
:class:`yolo_attn._ultralytics.PredictionLog`) are converted here to COCO JSON and scored by pycocotools.

For the confidence intervals the per-image matching results of COCOeval are kept
(:class:`EvalArrays`): which detection matched a ground-truth box at each IoU threshold, its score,
its image, and the number of ground-truth boxes per image and class. From those,
:func:`weighted_map` recomputes COCO's mAP for any *multiset* of images (images weighted by how
often a bootstrap sample drew them) without running COCOeval again. With all weights 1 it returns
exactly what ``COCOeval.accumulate`` + ``summarize`` report (tested).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._io import atomic_save, atomic_write, read_arrays

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_EPS = np.spacing(1)  # the same guard COCOeval uses against 0/0 precision


# --------------------------------------------------------------------------------------------
# COCO JSON
# --------------------------------------------------------------------------------------------
@dataclass
class GtImage:
    """Ground truth of one image: its key (a unique file name), size, and YOLO rows (cls, xc, yc, w, h normalised)."""

    key: str
    width: int
    height: int
    labels: np.ndarray  # (n, 5) float
    segments: list | None = None  # per row: its polygon, x y ... in pixels (instance segmentation), else None


def coco_gt(images: Sequence[GtImage], names: dict[int, str] | Sequence[str]) -> dict:
    """COCO ground-truth dict: image ids 1..N in the given order, category id = class + 1."""
    names = dict(enumerate(names)) if not isinstance(names, dict) else names
    out = {
        "info": {"description": "yolo_attn compare ground truth"},
        "images": [],
        "annotations": [],
        "categories": [{"id": int(k) + 1, "name": str(v)} for k, v in sorted(names.items())],
    }
    ann_id = 0
    for i, im in enumerate(images, 1):
        out["images"].append({"id": i, "file_name": im.key, "width": int(im.width), "height": int(im.height)})
        for c, xc, yc, w, h in np.asarray(im.labels, dtype=float).reshape(-1, 5):
            bw, bh = w * im.width, h * im.height
            ann_id += 1
            out["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": i,
                    "category_id": int(c) + 1,
                    "bbox": [(xc - w / 2) * im.width, (yc - h / 2) * im.height, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    return out


def coco_dets(gt: dict, predictions: dict[str, np.ndarray]) -> list[dict]:
    """COCO result list from ``{image key: rows (cls, xc, yc, w, h, conf) normalised}`` (YOLO label layout)."""
    dets = []
    for im in gt["images"]:
        W, H = im["width"], im["height"]
        for c, xc, yc, w, h, s in predictions.get(im["file_name"], np.zeros((0, 6))):
            dets.append({"image_id": im["id"], "category_id": int(c) + 1,
                         "bbox": [(xc - w / 2) * W, (yc - h / 2) * H, w * W, h * H], "score": float(s)})
    return dets


def coco_dets_pixels(gt: dict, predictions: dict[str, np.ndarray]) -> list[dict]:
    """COCO result list from ``{image key: rows (x1, y1, x2, y2, conf, cls) in pixels}`` (a validator's boxes)."""
    dets = []
    for im in gt["images"]:
        rows = np.asarray(predictions.get(im["file_name"], np.zeros((0, 6))), dtype=np.float64).tolist()
        for x1, y1, x2, y2, s, c in rows:  # Python floats: the same values as numpy's, converted once per array
            dets.append({"image_id": im["id"], "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    return dets


def write_json(obj, path: Path) -> Path:
    """Compact JSON (no indent: the predictions hash is over these bytes), written atomically."""
    return atomic_write(path, json.dumps(obj))


# --------------------------------------------------------------------------------------------
# COCOeval and the per-image data kept for the bootstrap
# --------------------------------------------------------------------------------------------
@dataclass
class EvalArrays:
    """Per-detection matching results of COCOeval (area range 'all'), enough to recompute mAP on image multisets.

    Detections are grouped by category and, within a category, listed image by image in image order
    (as COCOeval concatenates them). ``n_gt[k, i]`` counts non-ignored ground truth of category k in image i.
    """

    n_images: int
    cat: np.ndarray  # (D,) category index 0..K-1
    img: np.ndarray  # (D,) image index 0..N-1
    score: np.ndarray  # (D,)
    tp: np.ndarray  # (T, D) bool: matched a ground-truth box at IoU threshold t
    ignore: np.ndarray  # (T, D) bool: detection ignored by COCOeval (matched a crowd/ignored box)
    n_gt: np.ndarray  # (K, N) int

    def save(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: numpy would append ".npz" to a temporary name
                np.savez_compressed(f, n_images=self.n_images, cat=self.cat, img=self.img, score=self.score,
                                    tp=self.tp, ignore=self.ignore, n_gt=self.n_gt)

        atomic_save(path, write)

    @classmethod
    def load(cls, path: Path) -> "EvalArrays":
        z = read_arrays(path)
        return cls(int(z["n_images"]), z["cat"], z["img"], z["score"], z["tp"], z["ignore"], z["n_gt"])


@dataclass
class CocoResult:
    map50: float
    map: float
    arrays: EvalArrays


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


COCOEVAL_IOU_TYPES = ("bbox", "segm", "keypoints")  # what pycocotools compares; any other is matched here


def evaluate(gt: dict, dets: list[dict], max_det: int = 300, dets_reused: bool = True,
             iou_type: str = "bbox") -> CocoResult:
    """Score ``dets`` against ``gt`` with pycocotools' COCOeval (``iou_type`` bbox, segm or keypoints,
    maxDets=[1, 10, max_det]); another ``iou_type`` (rotated boxes' ``probiou``) is the IoU of the scorer that names
    it, and the evaluation COCO's, done here (:func:`evaluate_matched`).

    ``max_det`` defaults to Ultralytics' validator limit (300) rather than COCO's 100, so both
    figures are computed from the same set of detections. pycocotools adds keys to the detection records
    it is given: they are copied first unless ``dets_reused`` is False (the caller is done with them).
    Keypoints are compared with the OKS sigmas the ground truth states (``gt["info"]["kpt_oks_sigmas"]``, one per
    keypoint; COCO's 17 when it states none).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in COCOEVAL_IOU_TYPES:
        from ..scoring import iou_of

        return evaluate_matched(gt, dets, iou_of(iou_type), max_det)
    cat_ids = [c["id"] for c in gt["categories"]]
    img_ids = [im["id"] for im in gt["images"]]
    n_gt = np.zeros((len(cat_ids), len(img_ids)), dtype=np.int64)
    if not dets:  # COCO.loadRes cannot take an empty list; nothing detected scores 0
        cpos = {c: k for k, c in enumerate(cat_ids)}
        for a in gt["annotations"]:  # as COCOeval counts: no crowd, no keypoint object without a labelled keypoint
            if not a.get("iscrowd", 0) and (iou_type != "keypoints" or a.get("num_keypoints", 0) > 0):
                n_gt[cpos[a["category_id"]], a["image_id"] - 1] += 1
        empty = EvalArrays(len(img_ids), np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros((10, 0), bool),
                           np.zeros((10, 0), bool), n_gt)
        return CocoResult(0.0, 0.0, empty)
    with _quiet():
        coco = COCO()
        coco.dataset = {k: _records_copy(v) for k, v in gt.items()}  # COCO mutates its dataset; keep the caller's
        coco.createIndex()
        res = coco.loadRes(_records_copy(dets) if dets_reused else dets)
        ev = COCOeval(coco, res, iouType=iou_type)
        ev.params.imgIds = img_ids
        ev.params.catIds = cat_ids
        ev.params.maxDets = [1, 10, int(max_det)]
        ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]  # 'all' only
        use_stated_sigmas(ev, gt)
        ev.evaluate()
        ev.accumulate()
    arrays = _arrays_from(ev, cat_ids, img_ids)
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at area 'all' and maxDets[-1]
    valid = prec[0, 0] > -1  # categories with ground truth
    if not valid.any():
        return CocoResult(0.0, 0.0, arrays)
    return CocoResult(float(prec[0][:, valid].mean()), float(prec[:, :, valid].mean()), arrays)


def use_stated_sigmas(ev, gt: dict) -> None:
    """A keypoint COCOeval ``ev`` compares with the OKS sigmas the ground truth states (``gt["info"]
    ["kpt_oks_sigmas"]``, one per keypoint); without them, COCO's 17."""
    sigmas = (gt.get("info") or {}).get("kpt_oks_sigmas")
    if ev.params.iouType == "keypoints" and sigmas is not None:
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)


def _records_copy(value):
    """A copy of a COCO list of records (dicts of numbers, strings and lists of numbers) that pycocotools may
    change in place; other values as they are."""
    if not isinstance(value, list):
        return value
    return [{k: list(v) if isinstance(v, list) else v for k, v in r.items()} if isinstance(r, dict) else r for r in value]


def _arrays_from(ev, cat_ids: list[int], img_ids: list[int]) -> EvalArrays:
    n_img, n_area = len(img_ids), len(ev.params.areaRng)
    cats, imgs, scores, tps, igns = [], [], [], [], []
    n_gt = np.zeros((len(cat_ids), n_img), dtype=np.int64)
    max_det = ev.params.maxDets[-1]
    for k in range(len(cat_ids)):
        for i in range(n_img):
            e = ev.evalImgs[k * n_area * n_img + i]  # area range 0 = 'all'
            if e is None:
                continue
            n_gt[k, i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            d = len(e["dtScores"][:max_det])
            if not d:
                continue
            cats.append(np.full(d, k))
            imgs.append(np.full(d, i))
            scores.append(np.asarray(e["dtScores"][:max_det], dtype=float))
            tps.append(np.asarray(e["dtMatches"])[:, :d] > 0)
            igns.append(np.asarray(e["dtIgnore"])[:, :d].astype(bool))
    T = len(ev.params.iouThrs)
    cat = np.concatenate(cats) if cats else np.zeros(0, int)
    return EvalArrays(
        n_img,
        cat.astype(np.int32),
        (np.concatenate(imgs) if imgs else np.zeros(0, int)).astype(np.int32),
        np.concatenate(scores) if scores else np.zeros(0),
        np.concatenate(tps, axis=1) if tps else np.zeros((T, 0), bool),
        np.concatenate(igns, axis=1) if igns else np.zeros((T, 0), bool),
        n_gt,
    )


# --------------------------------------------------------------------------------------------
# COCO's evaluation with an IoU pycocotools does not have (rotated boxes)
# --------------------------------------------------------------------------------------------
def match_by_score(iou: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """``(T, D)``: which detections (the rows of ``iou``, highest score first) are true positives at each of the
    thresholds ``IOU_THRESHOLDS``, COCO's way.

    Taking the detections in order, each claims, among the ground-truth objects no earlier detection claimed at
    that threshold, the one it overlaps most (the last of equal overlaps, as COCOeval's scan keeps it), provided
    the overlap is at least the threshold; otherwise it is a false positive there. ``active`` ``(T, D)``: where a
    detection takes part (elsewhere it claims nothing); all of them if None.
    """
    n_det, n_gt = iou.shape
    n_thr = len(IOU_THRESHOLDS)
    tp = np.zeros((n_thr, n_det), dtype=bool)
    if not n_gt:
        return tp
    claimed = np.zeros((n_thr, n_gt), dtype=bool)
    rows = np.arange(n_thr)
    reach = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    for d in np.flatnonzero(iou.max(1) >= reach[0]):  # a detection below the lowest threshold matches nothing
        free = np.where(claimed, -1.0, iou[d][None, :])  # (T, G)
        best = n_gt - 1 - np.argmax(free[:, ::-1], axis=1)  # the last maximum of each row
        hit = free[rows, best] >= reach
        if active is not None:
            hit &= active[:, d]
        tp[:, d] = hit
        claimed[rows[hit], best[hit]] = True
    return tp


def _by_cell(records: list[dict], cpos: dict, ipos: dict) -> dict[tuple[int, int], list[dict]]:
    cells: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        cells.setdefault((cpos[r["category_id"]], ipos[r["image_id"]]), []).append(r)
    return cells


def _area(record: dict) -> float:
    """An object's area as COCO's area ranges read it: its ``area``, else its rotated box's, else its box's."""
    if "area" in record:
        return float(record["area"])
    w, h = (record["rbox"][2:4] if "rbox" in record else record["bbox"][2:4])
    return float(w) * float(h)


def _match_in_range(overlap: np.ndarray, found: list[dict], objs: list[dict], area_rng) -> tuple[np.ndarray, ...]:
    """``(tp, ignore)`` ``(T, D)`` of one image and category, COCO's way with an area range: objects outside it are
    ignored; a detection first claims among the others, then (failing) among the ignored ones and is ignored if it
    does; an unmatched detection outside the range is ignored. ``area_rng`` None: nothing ignored."""
    if area_rng is None:
        tp = match_by_score(overlap)
        return tp, np.zeros_like(tp)
    lo, hi = area_rng
    ignored = np.array([not lo <= _area(a) <= hi for a in objs], dtype=bool)
    tp = match_by_score(overlap[:, ~ignored])
    on_ignored = match_by_score(overlap[:, ignored], active=~tp)
    outside = np.array([not lo <= _area(d) <= hi for d in found], dtype=bool)
    return tp | on_ignored, on_ignored | (~tp & ~on_ignored & outside[None, :])


def evaluate_matched(gt: dict, dets: list[dict], iou, max_det: int = 300, area_rng=None) -> CocoResult:
    """COCO's mAP50 and mAP50-95 of ``dets`` against ``gt`` with the overlap ``iou(detections, annotations)`` ->
    ``(D, G)``, and the per-image matching (:class:`EvalArrays`) as :func:`evaluate` keeps it.

    COCO's definition for area range 'all' (``area_rng`` None) or ``area_rng`` ``(lo, hi)`` (both ends inclusive,
    :func:`_match_in_range`): per image and category, the ``max_det`` highest-scoring detections (stable order on
    ties) are matched by :func:`match_by_score`; the precision-recall curve and its 101-point average are then
    :func:`weighted_map`'s with every image once. Crowd annotations are not supported (yolo_attn's ground truth has
    none).
    """
    if any(a.get("iscrowd", 0) for a in gt["annotations"]):
        raise ValueError("crowd annotations are not supported by this evaluation")
    cpos = {c["id"]: k for k, c in enumerate(gt["categories"])}
    ipos = {im["id"]: i for i, im in enumerate(gt["images"])}
    gts, dts = _by_cell(gt["annotations"], cpos, ipos), _by_cell(dets, cpos, ipos)
    n_gt = np.zeros((len(cpos), len(ipos)), dtype=np.int64)
    for (k, i), objs in gts.items():
        n_gt[k, i] = len(objs) if area_rng is None else sum(area_rng[0] <= _area(a) <= area_rng[1] for a in objs)
    cats, imgs, scores, tps, igns = [], [], [], [], []
    for k, i in sorted(dts):  # category by category, image by image (COCOeval's order)
        found = dts[(k, i)]
        found = [found[j] for j in np.argsort([-d["score"] for d in found], kind="mergesort")[:max_det]]
        objs = gts.get((k, i), [])
        overlap = np.asarray(iou(found, objs) if objs else (), dtype=np.float64).reshape(len(found), len(objs))
        tp, ignore = _match_in_range(overlap, found, objs, area_rng)
        tps.append(tp)
        igns.append(ignore)
        cats.append(np.full(len(found), k))
        imgs.append(np.full(len(found), i))
        scores.append(np.array([d["score"] for d in found], dtype=np.float64))
    tp = np.concatenate(tps, axis=1) if tps else np.zeros((len(IOU_THRESHOLDS), 0), dtype=bool)
    arrays = EvalArrays(len(ipos), np.concatenate(cats).astype(np.int32) if cats else np.zeros(0, np.int32),
                        np.concatenate(imgs).astype(np.int32) if imgs else np.zeros(0, np.int32),
                        np.concatenate(scores) if scores else np.zeros(0), tp,
                        np.concatenate(igns, axis=1) if igns else np.zeros_like(tp), n_gt)
    if not n_gt.any():
        return CocoResult(0.0, 0.0, arrays)
    map50, mapall = weighted_map(arrays, np.ones((1, len(ipos))))
    return CocoResult(float(map50[0]), float(mapall[0]), arrays)


# --------------------------------------------------------------------------------------------
# mAP of weighted image multisets (the bootstrap)
# --------------------------------------------------------------------------------------------
def weighted_map(arrays: EvalArrays, weights: np.ndarray, chunk_elems: int = 8_000_000) -> tuple[np.ndarray, np.ndarray]:
    """COCO mAP50 and mAP50-95 for each row of ``weights`` (B x N: how often each image is in the sample).

    Follows COCO's definition: per category, detections sorted by score (stable, image order for
    ties), cumulative true/false positives, precision made monotone from the right, sampled at the
    101 recall thresholds; categories without ground truth in a sample are left out of the mean.
    A detection of an image drawn w times counts w times. Returns two arrays of shape (B,).

    Only true-positive positions are visited per IoU threshold: precision rises only at a true
    positive, so the right-hand maximum of precision at recall >= r is a maximum over true positives,
    and a false positive enters only through the cumulative count of detections before it.
    """
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    B = W.shape[0]
    K, T = arrays.n_gt.shape[0], arrays.tp.shape[0]
    ap = np.full((B, K, T), np.nan)
    npos_all = W @ arrays.n_gt.T  # (B, K)
    for k in range(K):
        sel = np.flatnonzero(arrays.cat == k)
        npos = npos_all[:, k]
        valid = npos > 0
        if not sel.size:
            ap[valid, k, :] = 0.0
            continue
        order = sel[np.argsort(-arrays.score[sel], kind="mergesort")]
        keep = ~arrays.ignore[:, order]  # (T, D)
        tp = arrays.tp[:, order] & keep
        img = arrays.img[order]
        D = order.size
        same_keep = bool((keep == keep[0]).all())
        step = max(1, chunk_elems // max(1, D))
        for b0 in range(0, B, step):
            w = W[b0 : b0 + step, img]  # (b, D)
            n = npos[b0 : b0 + step]
            b = w.shape[0]
            allcum = np.cumsum(w * keep[0], axis=1) if same_keep else None
            out = np.zeros((b, T))
            for t in range(T):
                pos = np.flatnonzero(tp[t])
                if not pos.size:
                    continue
                tot = (allcum if same_keep else np.cumsum(w * keep[t], axis=1))[:, pos]  # detections up to each TP
                tps = np.cumsum(w[:, pos], axis=1)
                rc = tps / np.where(n > 0, n, 1.0)[:, None]
                pr = tps / (tot + _EPS)
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                P = pos.size
                off = 2.0 * np.arange(b)[:, None]  # row-wise searchsorted in one call
                idx = np.searchsorted((rc + off).ravel(), (RECALL_THRESHOLDS[None, :] + off).ravel(), side="left")
                idx = idx.reshape(b, -1) - np.arange(b)[:, None] * P
                q = np.where(idx < P, np.take_along_axis(pr, np.minimum(idx, P - 1), axis=1), 0.0)
                out[:, t] = q.mean(axis=1)
            ap[b0 : b0 + step, k, :] = np.where(n[:, None] > 0, out, np.nan)
    valid = ~np.isnan(ap[:, :, 0])  # (B, K): categories with ground truth in the sample
    n_valid = np.maximum(valid.sum(1), 1)
    map50 = np.where(valid, ap[:, :, 0], 0.0).sum(1) / n_valid
    mapall = np.where(valid, np.nan_to_num(ap).mean(2), 0.0).sum(1) / n_valid
    return map50, mapall


# --------------------------------------------------------------------------------------------
# Ultralytics' figure on COCO JSON (for cross-checks on known answers)
# --------------------------------------------------------------------------------------------
def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax1, ay1, ax2, ay2 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(ax1[:, None], bx1[None]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(ay1[:, None], by1[None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-12)


def ultralytics_map(gt: dict, dets: list[dict]) -> tuple[float, float]:
    """mAP50 and mAP50-95 from COCO JSON with Ultralytics' AP function (``ultralytics.utils.metrics.ap_per_class``).

    Matching (per image, same class, highest-confidence detection first, each ground-truth box used
    once per IoU threshold) is done here; the AP integration is Ultralytics' own. Used to check
    the COCOeval figure against Ultralytics' on cases with a known answer.
    """
    from ultralytics.utils.metrics import ap_per_class

    by_img_gt: dict[int, list] = {}
    for a in gt["annotations"]:
        by_img_gt.setdefault(a["image_id"], []).append(a)
    by_img_dt: dict[int, list] = {}
    for d in dets:
        by_img_dt.setdefault(d["image_id"], []).append(d)
    tps, confs, pcls, tcls = [], [], [], []
    for im in gt["images"]:
        g = by_img_gt.get(im["id"], [])
        d = sorted(by_img_dt.get(im["id"], []), key=lambda x: -x["score"])
        tcls += [a["category_id"] for a in g]
        if not d:
            continue
        correct = np.zeros((len(d), len(IOU_THRESHOLDS)), bool)
        if g:
            iou = _iou_xywh(np.array([x["bbox"] for x in d], float), np.array([a["bbox"] for a in g], float))
            same = np.array([x["category_id"] for x in d])[:, None] == np.array([a["category_id"] for a in g])[None]
            iou = iou * same
            used = np.zeros((len(g), len(IOU_THRESHOLDS)), bool)
            for j in range(len(d)):
                for t, thr in enumerate(IOU_THRESHOLDS):
                    cand = np.where(used[:, t], 0.0, iou[j])
                    m = int(cand.argmax())
                    if cand[m] >= thr:
                        correct[j, t] = True
                        used[m, t] = True
        tps.append(correct)
        confs += [x["score"] for x in d]
        pcls += [x["category_id"] for x in d]
    if not tcls:
        return 0.0, 0.0
    tp = np.concatenate(tps) if tps else np.zeros((0, len(IOU_THRESHOLDS)), bool)
    out = ap_per_class(tp, np.array(confs, float), np.array(pcls, float), np.array(tcls, float))
    ap = out[5]  # (nc, 10)
    if not len(ap):
        return 0.0, 0.0
    return float(ap[:, 0].mean()), float(ap.mean())
