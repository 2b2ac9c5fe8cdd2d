"""Train and compare attention placements: resumable sweeps, honest statistics, optional Ray scale-out.

Entry point: :func:`compare` (``yolo-attn compare``); the datasets it reads are checked and imported by
:mod:`yolo_attn.datasets` (``yolo-attn check-data``, ``yolo-attn import-data``).

Method, in short (details in the module docstrings):

* every model x seed is trained with identical settings (``deterministic=True``, ``seed=s``, explicit
  short-run hyper-parameters, same data) and scored by one validation pass of Ultralytics' validator whose
  per-image predictions are held in memory (with ``--weights last``, the default, the final epoch's own);
* the same predictions and the dataset's labels are exported to COCO JSON and scored by pycocotools'
  COCOeval; both mAPs are in the table and a disagreement above a tolerance is a warning;
* the difference to the baseline gets a 95% interval paired over seeds (t over the per-seed
  differences) plus the validation-image variance shared by every seed (image bootstrap, one shared
  sample for every model and seed, mAP recomputed from COCOeval's per-image matches); Holm's
  adjustment over the models, power and a verdict per model -- :mod:`yolo_attn.compare.stats`;
* ``trials.jsonl`` gets one fsync'd line per finished or failed trial; a rerun skips recorded trials
  -- :mod:`yolo_attn.compare.store`.
"""

from .store import ConfigMismatch, Store
from .sweep import DataCheckFailed, compare, fmt_summary

__all__ = ["compare", "fmt_summary", "Store", "ConfigMismatch", "DataCheckFailed"]
