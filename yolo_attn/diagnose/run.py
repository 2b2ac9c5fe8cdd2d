"""The diagnosis of a set of checkpoints: every section per checkpoint, then the comparison to the baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .consistency import ConsistencyRow, importance_consistency
from .data import DiagData, DiagnoseError, load_data
from .erf import ErfLevel, effective_receptive_field
from .fit import FitResult, fit_regime
from .gates import GateRecorder, GateStats
from .layers import ModelRef, load
from .reliance import RelianceRow, reliance
from .sizes import SizeScore, by_size, size_ranges
from .smoothness import Smoothness, smoothness
from .tasks import forward_only, task_view


@dataclass
class Settings:
    """Subset sizes and seeds; the defaults keep a default ``compare`` sweep's diagnosis within a third of
    its training time (see benchmarks/diagnose_time.py)."""

    imgsz: int = 128
    n_val: int | None = None  # all validation images
    n_train: int = 80  # training images scored for the fit regime
    n_erf: int = 64  # ERF images (the radii are also computed on the first half: their sampling error)
    n_consistency: int = 16
    n_jac: int = 16  # Jacobian images; the report gives the standard error of the mean norm
    jac_projections: int = 8
    n_pairs: int = 2
    path_steps: int = 11
    n_boot: int = 200
    seed: int = 0
    per_layer_reliance: bool = True  # each layer knocked out alone, on a model's first seed (all together: every seed)
    trust: bool = False


@dataclass
class ModelDiagnosis:
    ref: ModelRef
    layers: list[tuple[str, str]]  # (name, class) of the attention layers
    fit: FitResult | None  # None where the task has no evaluator (.tasks)
    sizes: list[SizeScore]
    erf: list[ErfLevel]
    gates: list[GateStats]
    reliance: list[RelianceRow]
    consistency: list[ConsistencyRow]
    smooth: Smoothness
    seconds: float
    arrays: dict = field(repr=False, default_factory=dict)  # size range -> EvalArrays (for comparisons)


def diagnose_model(ref: ModelRef, data: DiagData, s: Settings, ranges: dict, per_layer: bool = True,
                   task: str = "detect") -> ModelDiagnosis:
    """Every section of ``task`` for one checkpoint (``per_layer``: reliance of each layer, not only of all together);
    those that do not apply to the task are left out (:mod:`.tasks`)."""
    t0 = time.perf_counter()
    lm = load(ref, trust=s.trust)
    if lm.task != task:
        raise DiagnoseError(f"{ref.path}: a {lm.task} model, but the diagnosis is of {task} models")
    model, layers, view = lm.model, lm.layers, task_view(task)
    with GateRecorder(layers) as rec:  # gate values from the same pass as the validation metric
        val = view.evaluate(model, data.val, data.names, ranges) if view.evaluate else \
            forward_only(model, data.val.images)
    gates = rec.stats()
    fit = fit_regime(model, data, val, view.evaluate, loss=view.loss) if view.applies("fit") else None
    rel = reliance(model, layers, gates, data, val, s.n_boot, s.seed, per_layer, view.evaluate) \
        if layers and view.applies("reliance") else []
    cons = importance_consistency(model, layers, data.val.images[: s.n_consistency], s.seed, view.class_scores) \
        if layers else []
    erf = effective_receptive_field(model, lm.head_inputs, lm.strides, data.val, s.n_erf)
    smooth = smoothness(model, data.val, s.n_jac, s.jac_projections, s.n_pairs, s.path_steps, s.seed, view)
    sizes = by_size(val) if view.applies("sizes") else []
    return ModelDiagnosis(ref, [(la.name, la.kind) for la in layers], fit, sizes, erf, gates, rel, cons, smooth,
                          time.perf_counter() - t0,
                          {k: a.arrays for k, a in val.areas.items()} if val is not None else {})


def diagnose(refs: list[ModelRef], baseline: str | None, data_yaml: str | Path, settings: Settings | None = None,
             progress: Callable[[str], None] | None = None):
    """Diagnose every checkpoint in ``refs`` (labels group seeds; ``baseline`` is one of the labels)."""
    from .compare import Diagnosis, compare_to_baseline

    s = settings or Settings()
    if not refs:
        raise DiagnoseError("no checkpoints to diagnose")
    labels = list(dict.fromkeys(r.label for r in refs))
    if baseline is not None and baseline not in labels:
        raise DiagnoseError(f"baseline {baseline!r} is not among the models {labels}")
    t0 = time.perf_counter()
    task = refs_task(refs, s.trust)
    data = load_data(data_yaml, s.imgsz, s.n_val, s.n_train, s.seed, task=task)
    view = task_view(task)
    ranges = size_ranges(data.val, view.object_areas(data.val, data.names) if view.object_areas else None)
    results = []
    for i, ref in enumerate(refs, 1):
        if progress:
            progress(f"[diagnose] {i}/{len(refs)} {ref.label}" + (f" seed {ref.seed}" if ref.seed is not None else "")
                     + f" ({ref.path})")
        first_seed = all(r.ref.label != ref.label for r in results)
        results.append(diagnose_model(ref, data, s, ranges, s.per_layer_reliance and first_seed, task))
    comparison = compare_to_baseline(results, baseline, s, view.metric)
    return Diagnosis(str(data_yaml), s, labels, baseline, results, comparison, ranges, data, time.perf_counter() - t0,
                     task)


def refs_task(refs: list[ModelRef], trust: bool = False) -> str:
    """The one Ultralytics task of the checkpoints (read from each without building it; one that cannot be read is
    left to :func:`.layers.load`, which names its problem); DiagnoseError when they differ."""
    from ..models import model_task_of

    tasks = {}
    for r in refs:
        try:
            tasks[r.path] = model_task_of(r.path, trust=trust)
        except Exception:  # noqa: BLE001 - reported by load() with the file's own error
            continue
    if len(set(tasks.values())) > 1:
        raise DiagnoseError("the checkpoints of a diagnosis must share one task: "
                            + ", ".join(f"{Path(p).name} ({t})" for p, t in tasks.items()))
    return next(iter(tasks.values()), "detect")
