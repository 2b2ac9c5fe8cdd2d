"""Study ``fuse``: is it the multiplication? Stock vs attention with ``fuse: mul`` vs ``fuse: add``.

The multiplication ablation of Ye et al. 2021 ("Sample-wise" re-examination of attention: their
CIFAR-10 numbers are CNN 79.57, SE 80.40, SE with addition instead of multiplication 79.66): a gating
layer's gate either multiplies the features (``x * g``, the paper form) or is added to them
(``x + g``, same parameters, no multiplicative interaction). For SE a fourth model drops the ReLU of
the excitation (``relu: false``). One sweep, stock as baseline; the key number is the paired contrast
``mul - add``.
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

NAME = "fuse"
HELP = "multiplication ablation: stock vs attention with fuse: mul vs fuse: add (and SE relu: false)"


def with_defaults(opts: StudyOptions) -> StudyOptions:
    return apply_defaults(opts, layer="SE", placement="backbone", seeds=4, epochs=6, imgsz=128)


def plan(opts: StudyOptions, models_dir: Path) -> list[SweepPlan]:
    from ..registry import LAYERS

    if not LAYERS.get(opts.layer).gating:
        gating = sorted(s.name for s in LAYERS if s.gating)
        raise ValueError(f"the fuse study needs a gating layer (one with fuse: mul|add); {opts.layer} is not "
                         f"(gating layers: {', '.join(gating)})")
    lay, pl, sc = opts.layer, opts.placement, opts.scale
    variants = [("stock", None, "stock"), ("mul", [], f"{lay} fuse: mul (paper)"),
                ("add", [{"fuse": "add"}], f"{lay} fuse: add")]
    if lay == "SE":
        variants.append(("norelu", [{"relu": False}], "SE relu: false"))
    paths, roles = [], {}
    for key, args, role in variants:
        d = model_dict(scale=sc) if args is None else model_dict(lay, args, [pl], sc)
        name = "stock" if args is None else f"{lay}-{pl}-{key}"
        paths.append(write_model(d, models_dir, name, role))
        roles[Path(paths[-1]).stem] = role
    return [SweepPlan("sweep", paths, Path(paths[0]).stem, seed_list(opts), opts.epochs, roles)]


def analyse(opts: StudyOptions, plans: list[SweepPlan], summaries: dict[str, SweepSummary], out: Path) -> Analysis:
    p = plans[0]
    res = V.model_results(summaries[p.name])
    by_role = {role: res.get(lbl) for lbl, role in p.roles.items()}
    mul, add = by_role.get(f"{opts.layer} fuse: mul (paper)"), by_role.get(f"{opts.layer} fuse: add")
    c = V.contrast(mul.effect, add.effect) if mul and add and mul.effect and add.effect else None
    question = (f"Does {opts.layer} at `{opts.placement}` owe its effect to multiplying the features by the gate? "
                "Stock vs the layer with its gate multiplied (paper) vs added (same parameters).")
    parts = [V.sentence(mul.effect if mul else None, f"{opts.layer} (multiplied gate)"),
             V.sentence(add.effect if add else None, f"{opts.layer} (added gate)"),
             V.sentence(c, "Multiplying instead of adding the gate")]
    if "SE relu: false" in by_role:
        parts.append(V.sentence(by_role["SE relu: false"].effect if by_role["SE relu: false"] else None,
                                "SE without the ReLU in its excitation"))
    order = list(p.roles)
    tables = [_single.effects_table(res, p.roles, order), _single.contrast_table({"mul − add": c})]
    data = {"models": {k: v.as_dict() for k, v in res.items()}, "contrast_mul_minus_add": c.brief() if c else None}
    rows = _single.forest_rows(res, p.roles, order)
    if c is not None:
        rows.append({"label": "mul − add (paired)", "delta": c.delta, "lo": c.lo, "hi": c.hi, "per_seed": c.per_seed})
    return Analysis(question, " ".join(parts), tables, data,
                    _single.forest_plot(rows, f"{opts.layer} at {opts.placement}: multiplied vs added gate"),
                    [_single.CONTRAST_NOTE])
