"""One format of an export check in a process of its own: ``python -m yolo_attn.deploy._isolated JOB.json``.

Converters are native code; one that aborts (PNNX once died with ``malloc assertion failure`` on a model) would
otherwise end the whole check and lose every result. The parent (:func:`yolo_attn.deploy.check.check_format_isolated`)
writes the job, this process runs :func:`~yolo_attn.deploy.check.check_format` on the model's checkpoint and
writes the result; a process that dies is reported by the parent as a failure with its exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(job_file: str) -> int:
    import yolo_attn  # noqa: F401  (registers the layers before the checkpoint is read)
    from ultralytics import YOLO

    from .._io import atomic_write_json
    from .check import CheckSettings, check_format
    from .formats import get_format
    from .models import CheckModel

    job = json.loads(Path(job_file).read_text())
    s = job["settings"]
    settings = CheckSettings(images=[Path(p) for p in s["images"]], imgsz=s["imgsz"], conf=s["conf"], iou=s["iou"],
                             data=s["data"], calib_fraction=s["calib_fraction"])
    ckpt = Path(job["checkpoint"])
    task = job.get("task", "detect")
    cm = CheckModel(job["name"], tuple(job["layers"]), YOLO(str(ckpt), task=task), ckpt, job["synthetic"], task)
    res = check_format(cm, get_format(job["format"]), settings, Path(job["workdir"]))
    atomic_write_json(job["out"], res.as_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
