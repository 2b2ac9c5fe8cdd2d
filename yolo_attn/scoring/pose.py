"""Pose: keypoints, scored by COCOeval ``keypoints`` (object keypoint similarity, OKS) against the label rows.

The metric is Ultralytics' ``PoseMetrics.pose``, the keypoint mAP50-95 over OKS thresholds. Its definition is
reproduced from the dataset, not taken from Ultralytics' objects: the OKS sigmas are the dataset's
``kpt_oks_sigmas``, else COCO's 17 (pycocotools' own) for ``kpt_shape [17, 3]``, else ``1 / K`` for each of the K
keypoints, as Ultralytics' ``PoseValidator`` takes them; an object's area is its labelled box's times 0.53, as
Ultralytics' OKS takes it (the COCO keypoint area of an object known only by its box). A labelled keypoint is visible
unless its visibility is 0 (2-D keypoints: unless a coordinate is negative), as Ultralytics reads the labels.

The label rows say how many values each object has, not how they are laid out (12 values are 4 keypoints of 3 or 6
of 2): the layout is the dataset's ``kpt_shape``, which comes with the logged keypoints (:func:`log_keypoints`), so
the ground truth's keypoints are laid out when the detections are written (:func:`_detections`).

One difference from Ultralytics' figure: COCOeval ignores an object none of whose keypoints is labelled, which
Ultralytics counts as an object no prediction can match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Scorer, coco_gt_with_rows

BOX_TO_KEYPOINT_AREA = 0.53  # COCO keypoint area of an object from its box area (xtcocotools; Ultralytics' OKS)


def pose_metrics(validator) -> dict[str, float]:
    """Ultralytics' keypoint figures of a validation pass."""
    pose = validator.metrics.pose
    return {"map50": float(pose.map50), "map": float(pose.map), "precision": float(pose.mp), "recall": float(pose.mr)}


def oks_sigmas(kpt_shape, given=None) -> np.ndarray:
    """The OKS sigma of each keypoint: ``given`` (the dataset's ``kpt_oks_sigmas``), else COCO's for its 17 keypoints
    with visibility, else ``1 / K`` each."""
    n = int(kpt_shape[0])
    if given is not None:
        sigmas = np.asarray(given, dtype=np.float64).reshape(-1)
        if len(sigmas) != n or not (sigmas > 0).all():
            raise ValueError(f"kpt_oks_sigmas must be {n} positive values, got {given}")
        return sigmas
    if [int(k) for k in kpt_shape] == [17, 3]:
        from pycocotools.cocoeval import Params

        return np.asarray(Params(iouType="keypoints").kpt_oks_sigmas, dtype=np.float64)
    return np.ones(n) / n


def read_keypoint_rows(label_file, width: int, height: int) -> tuple[np.ndarray, list[list[float]]]:
    """``cls xc yc w h`` rows and, per row, its keypoint values as written (normalised); exact duplicate rows dropped
    as Ultralytics drops them."""
    rows: list[tuple[float, ...]] = []
    path = Path(label_file)
    for line in (path.read_text().splitlines() if path.is_file() else []):
        v = tuple(float(x) for x in line.split())
        if len(v) > 5 and v not in rows:
            rows.append(v)
    labels = np.array([v[:5] for v in rows], dtype=float).reshape(-1, 5)
    return labels, [list(v[5:]) for v in rows]


def _ground_truth(images, names) -> dict:
    gt, values = coco_gt_with_rows(images, names, "keypoint rows")
    for ann, raw in zip(gt["annotations"], values):
        ann.update(yolo_keypoints=list(raw), area=ann["area"] * BOX_TO_KEYPOINT_AREA)
    return gt


def lay_out_ground_truth(gt: dict, kpt_shape, given_sigmas=None) -> None:
    """Write the ground truth's keypoints as COCO's ``x y v`` triples in pixels (``v`` 2 visible, 0 not labelled),
    their count and the OKS sigmas (``gt["info"]["kpt_oks_sigmas"]``, read by the evaluation), in place."""
    n, dims = (int(k) for k in kpt_shape)
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    for ann in gt["annotations"]:
        raw = ann.pop("yolo_keypoints", None)
        if raw is None:
            continue
        if len(raw) != n * dims:
            raise ValueError(f"a label row has {len(raw)} keypoint values; kpt_shape {list(kpt_shape)} needs "
                             f"{n * dims}")
        pts = np.asarray(raw, dtype=np.float64).reshape(n, dims)
        visible = pts[:, 2] != 0 if dims == 3 else (pts[:, 0] >= 0) & (pts[:, 1] >= 0)
        width, height = sizes[ann["image_id"]]
        triples = np.stack([pts[:, 0] * width, pts[:, 1] * height, np.where(visible, 2.0, 0.0)], 1)
        ann.update(keypoints=triples.reshape(-1).tolist(), num_keypoints=int(visible.sum()))
    gt.setdefault("info", {}).update(kpt_shape=[n, dims], kpt_oks_sigmas=oks_sigmas(kpt_shape, given_sigmas).tolist())


def _detections(gt: dict, boxes: dict, extras: dict | None = None) -> list[dict]:
    from . import cocoeval

    logged = [(extras or {}).get(im["file_name"]) or {} for im in gt["images"]]
    layouts = {(tuple(e["kpt_shape"]), repr(e.get("kpt_oks_sigmas"))) for e in logged if "kpt_shape" in e}
    if len(layouts) != 1:
        raise ValueError(f"the validation pass logged {len(layouts)} keypoint layouts, one expected")
    layout = next(e for e in logged if "kpt_shape" in e)
    lay_out_ground_truth(gt, layout["kpt_shape"], layout.get("kpt_oks_sigmas"))
    dets = cocoeval.coco_dets_pixels(gt, boxes)  # image by image, rows in order
    points = [k for e in logged for k in e.get("keypoints", [])]
    if len(points) != len(dets):
        raise ValueError(f"the validation pass logged {len(dets)} boxes but {len(points)} keypoint sets")
    for det, k in zip(dets, points):
        k = np.asarray(k, dtype=np.float64)
        v = k[:, 2] if k.shape[1] == 3 else np.ones(len(k))  # COCO reads no visibility of a prediction
        det["keypoints"] = np.stack([k[:, 0], k[:, 1], v], 1).reshape(-1).tolist()
    return dets


def log_keypoints(outputs: dict, data: dict) -> dict:
    """What the prediction log keeps of an image's keypoints: ``(n, K, 2 or 3)`` in original-image pixels, and the
    dataset's keypoint layout and sigmas they are scored with."""
    shape = [int(k) for k in data["kpt_shape"]]
    points = np.asarray(outputs.get("keypoints", np.zeros((0, *shape))), dtype=np.float64).reshape(-1, *shape)
    sigmas = data.get("kpt_oks_sigmas")
    return {"keypoints": points, "kpt_shape": shape,
            "kpt_oks_sigmas": None if sigmas is None else np.asarray(sigmas, dtype=float).reshape(-1).tolist()}


SCORER = Scorer(task="pose", output="keypoint", iou_type="keypoints", ultra=pose_metrics,
                read_ground_truth=read_keypoint_rows, ground_truth=_ground_truth, detections=_detections,
                log_extras=log_keypoints)
