"""Writing a diagnosis: diagnose.md (tables, one sentence per section on how to read it, the verdicts),
diagnose.json (every number) and PNG plots, each file written atomically after everything is computed."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write, atomic_write_json
from .compare import Diagnosis
from .sizes import size_histogram
from .verdict import verdict

HOW_TO_READ = {
    "fit": "A large train-val gap means overfitting (attention's extra capacity can hurt); low train mAP means "
           "underfitting (extra capacity can help).",
    "sizes": "Where attention helps or hurts by object size; COCO's classes may not fit a custom dataset, so the "
             "dataset's own area tertiles T1-T3 are given too.",
    "erf": "If r90 already covers the objects assigned to a level, global-context attention has little to add there.",
    "gates": "Gates saturated near 1 or with entropy near 1 select nothing; distance from identity shows how far an "
             "identity-started layer moved.",
    "reliance": "A drop on knock-out but none with the gates at their mean: the model uses the attention's average "
                "scaling, not its selection.",
    "consistency": "Tau near the shuffled baseline: gate values do not rank channels by importance (Ye et al. 2021).",
    "smoothness": "A smaller Jacobian norm and flatter paths mean a smoother function near real images, the "
                  "regularisation Ye et al. attribute to feature-map multiplication.",
}


def _f(v, d=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def _name(r) -> str:
    return r.ref.label + ("" if r.ref.seed is None else f" s{r.ref.seed}")


def _view(d: Diagnosis):
    from .tasks import task_view

    return task_view(getattr(d, "task", "detect"))


def _head(d: Diagnosis) -> list[str]:
    base = next((s for s in d.summaries if s.label == d.baseline), None)
    view = _view(d)
    L = ["# Diagnosis: why attention helped or hurt", "",
         f"Data `{d.data}`, {len(d.models)} checkpoints, baseline `{d.baseline}`; took {d.seconds:.0f} s. "
         f"Intervals are 95%: over validation images (bootstrap) for {view.metric} differences, over seeds (t) for "
         "gaps.", ""]
    if view.task != "detect":
        left = "; ".join(f"{k} ({why})" for k, why in view.skipped.items()) or "none"
        L += [f"Task **{view.task}**"
              + (f": the sections that score predictions use {view.metric}" if view.evaluate else "")
              + ("; the gradient sections differentiate the class probabilities" if view.probabilities else
                 "; the gradient sections differentiate the boxes and class scores of the head's detection branch")
              + f". Sections left out: {left}.", ""]
    L += ["## Verdict", ""]
    for s in d.summaries:
        if base is not None and s.label != d.baseline:
            kinds = ", ".join(sorted({k for _n, k in s.layers})) or "no attention layer"
            L += [f"**{s.label}** ({kinds}): {verdict(s, base, view)}", ""]
    return L


def _left_out(d: Diagnosis, section: str) -> list[str]:
    view = _view(d)
    return [f"Not measured for {view.task} models: {view.skipped[section]}.", ""]


def _fit_and_sizes(d: Diagnosis) -> list[str]:
    view = _view(d)
    L = ["## Fit regime", "", HOW_TO_READ["fit"], ""]
    if not view.applies("fit"):
        L += _left_out(d, "fit")
    else:
        L += _fit_table(d, view.metric)
    L += ["", "## By object size", "", HOW_TO_READ["sizes"], ""]
    return L + (_sizes_tables(d) if view.applies("sizes") else _left_out(d, "sizes"))


def _fit_table(d: Diagnosis, metric: str) -> list[str]:
    L = _table(["model", "seeds", f"train {metric}", f"val {metric}", "gap", "gap vs baseline", "train loss", "val loss"],
                [[s.label, len(s.seeds), s.train_map.fmt(), s.val_map.fmt(), s.gap.fmt(),
                  s.gap_vs_baseline.fmt() if s.gap_vs_baseline else "—", _f(s.train_loss), _f(s.val_loss)]
                 for s in d.summaries])
    return L + ["", "Loss: Ultralytics' own training loss (box + cls + dfl) in batches of 32, eval mode, no augmentation"
                + ("." if _view(d).task == "detect" else " (detection models only)."), ""]


def _sizes_tables(d: Diagnosis) -> list[str]:
    ranges = list(d.ranges)
    L = _table(["checkpoint"] + [f"AP {k}" for k in ranges] + [f"AR {k}" for k in ranges[:3]],
                [[_name(r)] + [_f(x.ap) for x in r.sizes] + [_f(x.ar) for x in r.sizes[:3]] for r in d.models])
    L += ["", "Difference to the baseline (AP50-95, seeds paired):", ""]
    L += _table(["model"] + ranges, [[s.label] + [s.size_vs_baseline[k].fmt() if k in s.size_vs_baseline else "—" for k in ranges]
                                      for s in d.summaries if s.size_vs_baseline])
    view = _view(d)
    hist = size_histogram(d.dataset.val, areas=view.object_areas(d.dataset.val, d.dataset.names)
                          if view.object_areas else None)
    L += ["", f"Objects per range: {', '.join(f'{x.range} {x.n_gt}' for x in d.models[0].sizes)}; "
          f"tertile bounds (area, px²): {', '.join(f'{k} {v[0]:.0f}-{v[1]:.0f}' for k, v in d.ranges.items() if k.startswith('T'))}; "
          f"sqrt(area) histogram edges {[round(e) for e in hist['sqrt_area_edges']]} counts {hist['counts']}.", ""]
    return L


def _erf_and_gates(d: Diagnosis, plots: dict[str, str]) -> list[str]:
    L = ["## Effective receptive field", "", HOW_TO_READ["erf"], ""]
    L += _table(["checkpoint", "level", "stride", "r50 px", "r90 px", "objects", "covered"],
                [[_name(r), e.level, _f(e.stride, 0), _f(e.r50, 1), _f(e.r90, 1), e.n_objects, _f(e.covered, 2)]
                 for r in d.models for e in r.erf])
    err = max((s.erf_error for s in d.summaries), default=0.0)
    L += ["", f"Sampling error: going from {max(1, d.settings.n_erf // 2)} to {d.settings.n_erf} images changes a radius "
          f"by at most {100 * err:.1f}%.", f"![ERF maps]({plots['erf']})" if "erf" in plots else "", ""]
    L += ["## Gates", "", HOW_TO_READ["gates"], ""]
    rows = [[_name(r), g.layer, g.gate, g.form, "x".join(map(str, g.shape)), _f(g.mean), _f(g.std), _f(g.sat_low, 2),
             _f(g.sat_high, 2), _f(g.entropy, 2), _f(g.identity_distance)] for r in d.models for g in r.gates]
    L += _table(["checkpoint", "layer", "gate", "form", "shape", "mean", "std", "sat<0.05", "sat>0.95", "entropy",
                 "from identity"], rows) if rows else ["No gating layer in these models (MHSA, CoAtNetAttn, NonLocal and "
                                                        "SK have no gate; this section does not apply)."]
    return L + _gateless(d)


def _reliance_and_consistency(d: Diagnosis) -> list[str]:
    view = _view(d)
    L = ["", "## Reliance", "", HOW_TO_READ["reliance"], ""]
    rows = [[_name(r), x.layer, x.kind, x.knockout.fmt(), x.mean_gate.fmt() if x.mean_gate else "no gate"]
            for r in d.models for x in r.reliance]
    metric = "mAP" if view.metric == "mAP50-95" else view.metric
    if not view.applies("reliance"):
        L += _left_out(d, "reliance")
    else:
        L += _table(["checkpoint", "layer", "class", f"Δ {metric} knocked out", f"Δ {metric} gates at mean"], rows) \
            if rows else ["No attention layer in these models: nothing to knock out."]
    L += ["", "## Importance consistency", "", HOW_TO_READ["consistency"], ""]
    rows = [[_name(r), c.layer, c.gate, c.channels, c.images, _f(c.tau_median), _f(c.tau_mean),
             f"[{c.tau_q[0]:+.2f}, {c.tau_q[1]:+.2f}]", _f(c.cos_mean), _f(c.tau_perm_mean),
             f"[{c.tau_perm_q[0]:+.2f}, {c.tau_perm_q[1]:+.2f}]"] for r in d.models for c in r.consistency]
    L += _table(["checkpoint", "layer", "gate", "C", "images", "tau median", "tau mean", "tau 10-90%", "cosine",
                 "shuffled tau", "shuffled 10-90%"], rows) if rows else \
        ["No channel gate (one value per channel) in these models: this section does not apply."]
    return L


def _smoothness(d: Diagnosis, plots: dict[str, str]) -> list[str]:
    L = ["", "## Smoothness", "", HOW_TO_READ["smoothness"], ""]
    scales = list(d.models[0].smooth.noise)
    L += _table(["checkpoint", "Jacobian ‖J‖F", "± s.e."] + [f"noise {k}" for k in scales] + ["roughness same", "roughness cross"],
                [[_name(r), _f(r.smooth.jac_mean, 4), _f(r.smooth.jac_se, 4)] + [_f(r.smooth.noise[k], 4) for k in scales]
                 + [_f(r.smooth.roughness("same"), 4), _f(r.smooth.roughness("cross"), 4)] for r in d.models])
    L += ["", f"![Paths between validation images]({plots['paths']})" if "paths" in plots else "", ""]
    return L + ["## Settings", "", "```", *(f"{k}: {v}" for k, v in dataclasses.asdict(d.settings).items()), "```", ""]


def markdown(d: Diagnosis, plots: dict[str, str]) -> str:
    return "\n".join(_head(d) + _fit_and_sizes(d) + _erf_and_gates(d, plots) + _reliance_and_consistency(d)
                     + _smoothness(d, plots))


def _gateless(d: Diagnosis) -> list[str]:
    """A line per model whose attention layers include some without a gate (they have no gate sections)."""
    out = []
    for s in d.summaries:
        r = next(m for m in d.models if m.ref.label == s.label)
        gated = {g.layer for g in r.gates}
        without = [f"{kind} at {name}" for name, kind in s.layers if name not in gated]
        if without:
            out.append(f"- {s.label}: {', '.join(without)} has no gate: the gate, gates-at-mean and importance "
                       "consistency sections do not apply to it (knock-out, ERF and smoothness do).")
    return ["", *out] if out else []


def jsonable(obj):
    """Dataclasses to dicts, skipping fields declared with ``repr=False`` (arrays, modules, tensors)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr}
        for name in ("gap", "rel_change"):
            if isinstance(getattr(type(obj), name, None), property):
                out[name] = jsonable(getattr(obj, name))
        return out
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def write(d: Diagnosis, out: str | Path) -> Path:
    """Plots first, then diagnose.json, then diagnose.md (the file that links the rest); each atomically."""
    from .plots import erf_plot, path_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = {"erf": erf_plot(d, out / "erf.png").name, "paths": path_plot(d, out / "paths.png").name}
    atomic_write_json(out / "diagnose.json", {"data": d.data, "baseline": d.baseline, "seconds": d.seconds,
                                              "settings": jsonable(d.settings), "ranges": jsonable(d.ranges),
                                              "summaries": jsonable(d.summaries), "models": jsonable(d.models)})
    return atomic_write(out / "diagnose.md", markdown(d, plots))


__all__ = ["write", "markdown", "jsonable"]
