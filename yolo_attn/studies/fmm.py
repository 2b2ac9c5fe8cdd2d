"""Study ``fmm``: stock C3 vs ``C3FMM`` (feature-map multiplication) vs ``C3Attn`` with an attention layer.

All three at the same C3 rows (``--placement``: ``backbone`` (default), ``neck``, ``backbone-end`` or
``all``): stock C3, C3FMM (bottlenecks that multiply two feature maps, no attention layer) and C3Attn
whose bottlenecks carry the layer (default SE). The question is whether the attention layer adds
anything beyond a multiplicative interaction in the same block: the paired contrast ``C3Attn - C3FMM``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import _single
from . import _verdicts as V
from .models import model_dict, write_model
from .runner import Analysis, StudyOptions, SweepPlan, apply_defaults, seed_list

if TYPE_CHECKING:
    from ..compare.summary import SweepSummary

NAME = "fmm"
HELP = "stock C3 vs C3FMM vs C3Attn (attention layer inside the C3 bottlenecks) at the same rows"
SCOPES = {"all": "", "backbone": "-backbone", "neck": "-neck", "backbone-end": "-backbone-end"}


def with_defaults(opts: StudyOptions) -> StudyOptions:
    return apply_defaults(opts, layer="SE", placement="backbone", seeds=4, epochs=6, imgsz=128)


def plan(opts: StudyOptions, models_dir: Path) -> list[SweepPlan]:
    if opts.placement not in SCOPES:
        raise ValueError(f"fmm study: --placement must be one of {', '.join(SCOPES)} (the C3 rows replaced), "
                         f"got {opts.placement!r}")
    suffix, sc = SCOPES[opts.placement], opts.scale
    stock = write_model(model_dict(scale=sc), models_dir, "stock", "stock C3")
    fmm = write_model(model_dict(None, [], [f"fmm{suffix}"], sc), models_dir, f"c3fmm-{opts.placement}",
                      f"C3FMM at {opts.placement} C3 rows")
    attn = write_model(model_dict(opts.layer, [], [f"c3{suffix}"], sc), models_dir, f"c3attn-{opts.layer}-{opts.placement}",
                       f"C3Attn with {opts.layer} at {opts.placement} C3 rows")
    roles = {Path(stock).stem: "stock C3", Path(fmm).stem: "C3FMM", Path(attn).stem: f"C3Attn ({opts.layer})"}
    return [SweepPlan("sweep", [stock, fmm, attn], Path(stock).stem, seed_list(opts), opts.epochs, roles)]


def analyse(opts: StudyOptions, plans: list[SweepPlan], summaries: dict[str, SweepSummary], out: Path) -> Analysis:
    p = plans[0]
    res = V.model_results(summaries[p.name])
    by_role = {role: res.get(lbl) for lbl, role in p.roles.items()}
    fmm, attn = by_role.get("C3FMM"), by_role.get(f"C3Attn ({opts.layer})")
    c = V.contrast(attn.effect, fmm.effect) if attn and fmm and attn.effect and fmm.effect else None
    question = (f"At the {opts.placement} C3 rows, does an attention layer ({opts.layer}) inside the bottlenecks do more "
                "than a plain feature-map multiplication (C3FMM)? Stock C3 vs C3FMM vs C3Attn, seeds paired.")
    answer = " ".join([V.sentence(fmm.effect if fmm else None, "C3FMM"),
                       V.sentence(attn.effect if attn else None, f"C3Attn with {opts.layer}"),
                       V.sentence(c, f"C3Attn ({opts.layer}) compared with C3FMM")])
    order = list(p.roles)
    rows = _single.forest_rows(res, p.roles, order)
    if c is not None:
        rows.append({"label": "C3Attn − C3FMM (paired)", "delta": c.delta, "lo": c.lo, "hi": c.hi, "per_seed": c.per_seed})
    data = {"models": {k: v.as_dict() for k, v in res.items()}, "contrast_attn_minus_fmm": c.brief() if c else None}
    return Analysis(question, answer, [_single.effects_table(res, p.roles, order),
                                       _single.contrast_table({"C3Attn − C3FMM": c})], data,
                    _single.forest_plot(rows, f"C3 vs C3FMM vs C3Attn ({opts.layer}) at {opts.placement}"),
                    [_single.CONTRAST_NOTE])
