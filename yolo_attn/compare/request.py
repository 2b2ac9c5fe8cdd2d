"""What a sweep is asked to do, typed as its results are (:mod:`.contract`): one frozen object per concern.

* :class:`SweepRequest` -- what the results depend on, so what ``config.json`` records and its settings hash covers:
  data, models, seeds, epochs, image size, Ultralytics' own training arguments, how every model starts
  (:class:`Start`), the weights scored and the split they are scored on; with the declared decision rule
  (:class:`.rounds.DecisionOptions`, recorded beside the settings and compared on a rerun, not hashed).
  :meth:`SweepRequest.build` is its one builder: it reads a training-argument mapping as a user writes it and
  moves yolo_attn's own keys (``attn_init``, ``freeze``, ``attn_lr``) into :class:`Start`.
* :class:`RunOptions` -- where and how the sweep runs (results folder, backend, processes, threads, device,
  retries, ``trust``): none of it changes a number, none of it is hashed.
* :class:`ReportOptions` -- how the recorded trials are summarised (bootstrap replicates, agreement tolerance,
  the effect the power analysis aims at).
* :class:`ModelSpec` -- one model of a sweep as the sweep resolved it (``config.json``'s ``_models`` entries;
  :meth:`ModelSpec.from_dict` reads them, :meth:`ModelSpec.to_dict` writes them).

The command line (``yolo-attn compare``, :func:`yolo_attn.commands.compare.read_request`), the studies
(:func:`yolo_attn.studies.runner.sweep_request`) and the search (which runs its rungs through the studies' runner)
each build one request and hand it to :func:`yolo_attn.compare.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .rounds import DecisionOptions

# yolo_attn's own training arguments that say how a model starts (Start's fields); Ultralytics never sees them
START_ARGS = ("attn_init", "freeze", "attn_lr")
# keys of a spec's dict besides its fields (an earlier version's): kept when read, written back unchanged
_SPEC_FIELDS = ("name", "ref", "hash", "params", "gflops_640", "control", "width_multiple", "options")


@dataclass(frozen=True)
class Start:
    """How every model of a sweep starts: the checkpoint transferred into it (``pretrained``: its path) and the
    sweep-level start options (a model YAML's own ``yolo_attn:`` key overrides them for that model, and says how
    its weights load: :attr:`ModelSpec.options`). None: not given (the default applies)."""

    pretrained: str | None = None
    attn_init: str | None = None  # paper | identity (default with pretrained: identity, yolo_attn.compare.trial)
    freeze: str | int | tuple[int, ...] | None = None  # "backbone", a layer count, or base-model layer indices
    attn_lr: float | None = None  # learning-rate multiplier of the attention layers

    @classmethod
    def read(cls, values: dict, pretrained: str | None = None) -> "Start":
        """The start of a mapping of yolo_attn's own training arguments (keys of :data:`START_ARGS`)."""
        unknown = sorted(set(values) - set(START_ARGS))
        if unknown:
            raise ValueError(f"not a start option: {', '.join(unknown)} (known: {', '.join(START_ARGS)})")
        freeze = values.get("freeze")
        return cls(pretrained=pretrained, attn_init=values.get("attn_init"),
                   freeze=tuple(freeze) if isinstance(freeze, list) else freeze, attn_lr=values.get("attn_lr"))

    def train_args(self) -> dict[str, Any]:
        """The options given, as the trials' training arguments carry them (and ``config.json`` records them)."""
        values = {"attn_init": self.attn_init, "freeze": list(self.freeze) if isinstance(self.freeze, tuple)
                  else self.freeze, "attn_lr": self.attn_lr}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class SweepRequest:
    """What a sweep computes: every field changes its numbers (or, for ``decision``, what it declares), and a rerun
    into the same folder with another value is refused unless asked for (:attr:`RunOptions.allow_changes`).

    ``models``: references (YAML files, shipped or Ultralytics names, checkpoints); empty: the default models.
    ``seeds``: a count (0..N-1) or the seeds themselves. ``train_args``: Ultralytics' own training arguments only.
    ``eval_split``: None scores on val (with a note when the data has a test split)."""

    data: str | None = None
    models: tuple[str, ...] = ()
    seeds: int | tuple[int, ...] = 2
    epochs: int = 3
    imgsz: int = 128
    train_args: dict[str, Any] = field(default_factory=dict)
    start: Start = Start()
    weights: str = "last"
    eval_split: str | None = None
    baseline: str | None = None
    control_width: bool = False
    decision: DecisionOptions = DecisionOptions()

    @classmethod
    def build(cls, train_args: dict | None = None, pretrained: str | None = None, seeds=2, models=None,
              **fields: Any) -> "SweepRequest":
        """The request of a sweep as a user words it: ``train_args`` may hold yolo_attn's start options beside
        Ultralytics' arguments (``--train-arg attn_init=identity``); they go to :class:`Start` with ``pretrained``.
        ``trust`` is refused here: it says how files are read, not what is computed (:attr:`RunOptions.trust`)."""
        args = dict(train_args or {})
        if "trust" in args:
            raise ValueError("trust is not a training setting of the sweep: give it as RunOptions(trust=True) "
                             "(yolo-attn compare --trust)")
        start = Start.read({k: args.pop(k) for k in START_ARGS if k in args}, pretrained)
        return cls(models=tuple(models or ()), seeds=seeds if isinstance(seeds, int) else tuple(seeds),
                   train_args=args, start=start, **fields)

    def sweep_args(self) -> dict[str, Any]:
        """The user's training arguments of every trial: Ultralytics' own, then the start options."""
        return {**self.train_args, **self.start.train_args()}


@dataclass(frozen=True)
class RunOptions:
    """Where and how a sweep runs; nothing here changes a result, nothing is hashed.

    ``out``: results folder (None: ``runs/compare/<date-time>``); rerun it to resume. ``threads``: CPU threads of
    every trial (kept in config.json for resumes). ``workers``: the local backend's trials at once, each in its
    own process (0: one after the other in this process). ``trust``: unpickle model checkpoints (``--models
    X.pt``) fully when training. ``max_trials``: train at most this many now. ``pair_hardware``: Ray runs the arms
    of each seed on one node."""

    out: str | None = None
    backend: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    threads: int | None = None
    cpus_per_trial: int | None = None
    device: str | None = None
    trust: bool = False
    allow_changes: bool = False
    retry_failed: bool = False
    max_trials: int | None = None
    pair_hardware: bool = False
    progress: bool = True
    verbose: bool = False

    def __post_init__(self):
        if self.backend not in ("local", "ray"):
            raise ValueError(f"unknown backend {self.backend!r} (local or ray)")


def _report_defaults():
    from .report import AGREEMENT_TOL, DEFAULT_EFFECT

    return AGREEMENT_TOL, DEFAULT_EFFECT


@dataclass(frozen=True)
class ReportOptions:
    """How the recorded trials are summarised: ``n_boot`` bootstrap replicates of the scored images, ``tolerance``
    of the Ultralytics/COCOeval mAP disagreement, ``effect`` the mAP50-95 difference the power analysis aims at
    (None: :data:`.report.AGREEMENT_TOL`, :data:`.report.DEFAULT_EFFECT`)."""

    n_boot: int = 1000
    tolerance: float | None = None
    effect: float | None = None

    def __post_init__(self):
        tol, effect = _report_defaults()
        object.__setattr__(self, "tolerance", tol if self.tolerance is None else self.tolerance)
        object.__setattr__(self, "effect", effect if self.effect is None else self.effect)
        if not self.effect > 0:
            raise ValueError(f"--effect must be positive, got {self.effect}")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a sweep as resolved: ``name`` (its label), ``ref`` (the file the trials build, copied into the
    results folder), ``hash`` (of its YAML text), cost (``params``, ``gflops_640``), ``control`` (the
    width-scaled baseline of ``--control-width``, with its ``width_multiple``) and ``options`` (the YAML's own
    ``yolo_attn:`` key, :class:`yolo_attn.weights.ModelOptions`; None: it has none)."""

    name: str
    ref: str | None = None
    hash: str | None = None
    params: int | None = None
    gflops_640: float | None = None
    control: bool = False
    width_multiple: float | None = None
    options: Any = None
    extra: tuple = ()  # (key, value) pairs of other versions, kept as read

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        """A spec of ``config.json`` (``_models``, or the stored ``models`` entries of a file that has none)."""
        from ..weights import parse_model_options

        if "name" not in d:
            raise ValueError(f"not a model spec (no name): {d!r}")
        options = parse_model_options(d["options"], d["name"]) if d.get("options") else None
        return cls(d["name"], d.get("ref"), d.get("hash"), d.get("params"), d.get("gflops_640"),
                   bool(d.get("control", False)), d.get("width_multiple"), options,
                   tuple((k, v) for k, v in d.items() if k not in _SPEC_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``config.json`` keeps it (unset values and a false ``control`` left out, as before)."""
        d = {"name": self.name, "ref": self.ref, "hash": self.hash, "control": self.control or None,
             "width_multiple": self.width_multiple, "options": self.options.as_dict() if self.options else None,
             "params": self.params, "gflops_640": self.gflops_640}
        return {**dict(self.extra), **{k: v for k, v in d.items() if v is not None}}

    def stored(self) -> dict[str, Any]:
        """The entry of ``config.json``'s ``models`` (compared on a rerun): name, YAML hash, control flag."""
        return {k: v for k, v in self.to_dict().items() if k in ("name", "hash", "control")}

    @property
    def load_mode(self) -> str:
        """How pretrained weights arrive in this model: structure (default) or names (its YAML's ``load:``)."""
        return self.options.load_mode if self.options else "structure"


__all__ = ["ModelSpec", "ReportOptions", "RunOptions", "START_ARGS", "Start", "SweepRequest"]
