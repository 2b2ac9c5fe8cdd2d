"""The sweep's data contract: what a trial is given (:class:`TrialSpec`) and what it returns (:class:`TrialRecord`).

Both are plain dataclasses of JSON-serialisable values, so a spec travels to a Ray worker and a record
is one line of ``trials.jsonl``. The sweep builds specs (:mod:`.sweep`), a backend runs them
(:mod:`.backends`), :func:`.trial.run_trial` turns one spec into one record and :class:`.store.Store`
appends it. Readers of ``trials.jsonl`` go through :meth:`TrialRecord.from_dict`, which accepts records
written by older versions: missing fields take their defaults, unknown keys are kept in ``extra``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from .request import ModelSpec


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
    task: str = "detect"  # Ultralytics' task of the sweep's models: how the trial is trained and scored (yolo_attn.scoring)
    trust: bool = False  # unpickle a model checkpoint (model_ref *.pt) fully (RunOptions.trust; not a setting)

    def record(self, **values) -> "TrialRecord":
        """A record of this trial (identity fields and its folder filled in)."""
        folder = os.path.relpath(self.trial_dir, self.store_root) if self.store_root else self.trial_dir
        return TrialRecord(trial_id=self.trial_id, model=self.model, model_ref=self.model_ref, seed=self.seed,
                           settings_hash=self.settings_hash, trial_dir=folder, **values)


@dataclass
class TrialRecord:
    """The outcome of one trial, one line of ``trials.jsonl`` (``status`` ok or failed)."""

    trial_id: str
    model: str
    model_ref: str
    seed: int
    settings_hash: str
    trial_dir: str | None = None  # the trial's folder, relative to the store root (older records: trials/<trial_id>)
    status: str = "failed"
    error: str | None = None
    traceback: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    threads: int | None = None
    environment: dict[str, Any] | None = None  # what bit-reproducibility depends on (see .trial.environment)
    hardware: dict[str, Any] | None = None  # CPU, GPU and driver, torch/CUDA, host or Ray node (.hardware)
    transfer: str | None = None  # one-line summary of the pretrained weight transfer
    head_start: str | None = None  # pretrained: the head's start (transferred | new class outputs | scratch)
    start: dict[str, float] | None = None  # pretrained: validation before any training step (epoch 0): map50, map, ...
    curve: list[dict] | None = None  # per-epoch validation metrics (results.csv)
    ultra: dict[str, float] | None = None  # Ultralytics' validator: map50, map, precision, recall
    coco: dict[str, float] | None = None  # COCOeval on the same predictions: map50, map
    scored_by: str | None = None  # the validation pass of ultra and coco: final epoch | closing validation | again
    params: int | None = None  # written by older versions; the summary reads the model's cost from config.json
    gflops_640: float | None = None  # (the same for every seed: measured once per model, when the sweep starts)
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


# keys of config.json: the settings (compared on a rerun and hashed) and the informative ones ('_' prefix)
_SETTINGS = ("data", "epochs", "imgsz", "train_args", "pretrained", "weights", "eval_split", "model_options", "task")


@dataclass
class SweepConfig:
    """A sweep's ``config.json``: its settings, models and seeds, read and written only by :class:`.store.Store`.

    Every field means one thing wherever it is read: ``data_fingerprint`` is the dataset's fingerprint (image
    counts and hashes per split), ``data_yaml`` the dataset YAML the trials read, ``data`` the dataset as the
    user named it; ``models`` the stored part of each model (name, YAML hash, control flag) and
    ``model_specs`` the full specs (:class:`.request.ModelSpec`: reference, parameters, the YAML's own options);
    ``pretrained_hash`` the stock checkpoint's hash and ``pretrained_path`` the file. Files of older versions lack
    some informative keys: :meth:`from_json` falls back to what they have.

    ``train_args`` are every trial's training arguments as hashed: Ultralytics' own and the start options
    (``attn_init``, ``freeze``, ``attn_lr``). Files written before ``trust`` left the settings (it says how files
    are read, :attr:`.request.RunOptions.trust`) may hold it there; it is kept as read, so that their hash stays
    theirs (:func:`.sweep._init_config` carries it into the settings of a rerun), and never given to a trial.
    """

    settings_hash: str
    data_fingerprint: dict[str, Any]
    epochs: int
    imgsz: int
    models: list[dict[str, Any]]
    seeds: list[int]
    baseline: str | None = None
    train_args: dict[str, Any] = field(default_factory=dict)
    pretrained_hash: str | None = None
    weights: str = "last"
    eval_split: str = "val"
    data_yaml: str | None = None
    data: str | None = None
    model_specs: list[ModelSpec] = field(default_factory=list)
    pretrained_path: str | None = None
    pretrained: str | None = None
    threads: int | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    planned_seeds: list[int] = field(default_factory=list)
    # the decision rule declared before the first trial (.sequential.Rule.to_dict(); None: none declared): compared
    # on a rerun like a setting, not hashed (the trials do not depend on it); its recorded changes (--allow-changes)
    rule: dict[str, Any] | None = None
    rule_changes: list[dict[str, Any]] = field(default_factory=list)
    task: str = "detect"  # Ultralytics' task of every model: how trials train and are scored (yolo_attn.scoring)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as read

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.models]

    @property
    def specs(self) -> list[ModelSpec]:
        """The full model specs (the stored entries of a file that has none)."""
        return self.model_specs or [ModelSpec.from_dict(m) for m in self.models]

    @property
    def model_options(self) -> dict[str, Any]:
        """Model name -> its YAML's own options (:class:`yolo_attn.weights.ModelOptions`), for the models that
        have them: settings of the sweep (hashed)."""
        return {m.name: m.options for m in self.specs if m.options is not None}

    @property
    def trial_args(self) -> dict[str, Any]:
        """The training arguments a trial is given: :attr:`train_args` without a ``trust`` an earlier version
        recorded there."""
        return {k: v for k, v in self.train_args.items() if k != "trust"}

    @property
    def planned(self) -> list[int]:
        """The seeds planned when the folder was created (extending them later is optional stopping)."""
        return self.planned_seeds or self.seeds

    def settings(self) -> dict[str, Any]:
        """What ``settings_hash`` hashes; the eval split and per-model options only where they are not the
        default, so that sweeps without them keep their hash."""
        out = {"data": self.data_fingerprint, "epochs": self.epochs, "imgsz": self.imgsz,
               "train_args": self.train_args, "pretrained": self.pretrained_hash, "weights": self.weights}
        if self.eval_split != "val":
            out["eval_split"] = self.eval_split
        if self.model_options:
            out["model_options"] = {name: o.as_dict() for name, o in self.model_options.items()}
        if self.task != "detect":
            out["task"] = self.task
        return out

    def to_json(self) -> dict[str, Any]:
        """The object written to ``config.json`` (the rule only where one is declared: files without keep reading)."""
        rule = {"rule": self.rule} if self.rule is not None else {}
        changes = {"_rule_changes": self.rule_changes} if self.rule_changes else {}
        return {**self.extra, **self.settings(), "settings_hash": self.settings_hash, "models": self.models,
                "seeds": self.seeds, "baseline": self.baseline, "_data_yaml": self.data_yaml, "_data": self.data,
                "_models": [m.to_dict() for m in self.model_specs], "_pretrained_path": self.pretrained_path, "_pretrained": self.pretrained,
                "_threads": self.threads, "_environment": self.environment, "_planned_seeds": self.planned_seeds,
                **rule, **changes}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "config.json") -> "SweepConfig":
        missing = [k for k in ("settings_hash", "models", "seeds") if k not in d]
        if missing:
            raise ValueError(f"{source}: not a sweep's config.json (no {', '.join(missing)})")
        known = set(_SETTINGS) | {"settings_hash", "models", "seeds", "baseline", "_data_yaml", "_data", "_models",
                                  "_pretrained_path", "_pretrained", "_threads", "_environment", "_planned_seeds",
                                  "rule", "_rule_changes"}
        return cls(
            settings_hash=d["settings_hash"], data_fingerprint=d.get("data") or {}, epochs=int(d.get("epochs") or 0),
            imgsz=int(d.get("imgsz") or 0), models=list(d["models"]), seeds=[int(s) for s in d["seeds"]],
            baseline=d.get("baseline"), train_args=d.get("train_args") or {}, pretrained_hash=d.get("pretrained"),
            weights=d.get("weights") or "last", eval_split=d.get("eval_split") or "val",
            data_yaml=d.get("_data_yaml"), data=d.get("_data") or d.get("_data_yaml"),
            model_specs=_read_specs(d.get("_models") or [], d.get("model_options") or {}),
            pretrained_path=d.get("_pretrained_path"), pretrained=d.get("_pretrained") or d.get("_pretrained_path"),
            threads=d.get("_threads"), environment=d.get("_environment") or {},
            planned_seeds=[int(s) for s in d.get("_planned_seeds") or []],
            rule=d.get("rule"), rule_changes=list(d.get("_rule_changes") or []), task=d.get("task") or "detect",
            extra={k: v for k, v in d.items() if k not in known})


def _read_specs(specs: list[dict[str, Any]], options: dict[str, Any]) -> list[ModelSpec]:
    """``config.json``'s ``_models``, each with the options its ``model_options`` (the hashed setting) gives it."""
    return [ModelSpec.from_dict({**m, "options": options[m["name"]]} if m.get("name") in options else m) for m in specs]
