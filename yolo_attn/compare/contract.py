"""The sweep's data contract: what a trial is given (:class:`TrialSpec`) and what it returns (:class:`TrialRecord`).

Both are plain dataclasses of JSON-serialisable values, so a spec travels to a Ray worker and a record
is one line of ``trials.jsonl``. The sweep builds specs (:mod:`.sweep`), a backend runs them
(:mod:`.backends`), :func:`.trial.run_trial` turns one spec into one record and :class:`.store.Store`
appends it. Readers of ``trials.jsonl`` go through :meth:`TrialRecord.from_dict`, which accepts records
written by older versions: missing fields take their defaults, unknown keys are kept in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class TrialSpec:
    """One trial of a sweep: train ``model_ref`` with ``seed`` under the sweep's settings."""

    trial_id: str
    model: str  # label in the tables
    model_ref: str  # model YAML (or checkpoint) path
    seed: int
    settings_hash: str
    trial_dir: str
    data: str  # dataset YAML (absolute paths)
    epochs: int
    imgsz: int
    store_root: str | None = None
    train_args: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # stock checkpoint transferred into the model before training
    nc: int | None = None
    names: list[str] | dict | None = None
    weights: str = "last"  # last | best
    eval_split: str = "val"  # the split of the final scoring (Ultralytics mAP, COCOeval, bootstrap arrays): val | test
    device: str | int | None = None
    threads: int | None = None  # CPU threads of this trial
    verbose: bool = False

    def record(self, **values) -> "TrialRecord":
        """A record of this trial (identity fields filled in)."""
        return TrialRecord(trial_id=self.trial_id, model=self.model, model_ref=self.model_ref, seed=self.seed,
                           settings_hash=self.settings_hash, **values)



@dataclass
class TrialRecord:
    """The outcome of one trial, one line of ``trials.jsonl`` (``status`` ok or failed)."""

    trial_id: str
    model: str
    model_ref: str
    seed: int
    settings_hash: str
    status: str = "failed"
    error: str | None = None
    traceback: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    threads: int | None = None
    environment: dict[str, Any] | None = None  # what bit-reproducibility depends on (see .trial.environment)
    transfer: str | None = None  # one-line summary of the pretrained weight transfer
    head_start: str | None = None  # pretrained: the head's start (transferred | new class outputs | scratch)
    start: dict[str, float] | None = None  # pretrained: validation before any training step (epoch 0): map50, map, ...
    curve: list[dict] | None = None  # per-epoch validation metrics (results.csv)
    ultra: dict[str, float] | None = None  # Ultralytics' validator: map50, map, precision, recall
    coco: dict[str, float] | None = None  # COCOeval on the same predictions: map50, map
    params: int | None = None
    gflops_640: float | None = None
    predictions_sha256: str | None = None
    n_detections: int | None = None
    n_val_images: int | None = None  # images of the final scoring (of the eval split, despite the name)
    train_loss: Any = None
    eval: str | None = None  # evaluation arrays (.npz), relative to the store root
    train_time_s: float | None = None
    stage_s: dict[str, float] | None = None  # wall time by stage: build, train, eval, score, other (.trial.run_trial)
    train_images: int | None = None
    train_images_per_s: float | None = None
    epochs_done: int | None = None
    optimizer: dict[str, Any] | None = None  # the optimizer the trial trained with: name, lr, momentum (MuSGD: muon, sgd)
    run_dir: str | None = None
    recorded_at: float | None = None  # set by the store
    pid: int | None = None
    host: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as read

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def fail(self, error: str, traceback: str | None = None) -> "TrialRecord":
        self.status, self.error, self.traceback = "failed", error, traceback
        return self

    def as_dict(self) -> dict[str, Any]:
        """The JSON line's object: unset (None) fields are left out, ``extra`` keys are merged back."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialRecord":
        names = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in ("trial_id", "model", "model_ref", "seed", "settings_hash") if k not in d]
        if missing:
            raise ValueError(f"not a trial record (no {', '.join(missing)})")
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        return cls(**known, extra=extra)
