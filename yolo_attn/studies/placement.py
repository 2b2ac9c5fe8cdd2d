"""Study ``placement``: one attention layer at every shipped placement against stock, ranked.

One sweep: stock and the layer (default SE) at each placement the shipped configs use for it
(``--placements`` to choose), seeds paired. The ranking is by the difference to stock; each row
carries the cost of the placement beside its effect (parameters and batch-1 CPU latency, as ratios
to stock). With many placements compared to one baseline, the verdicts are the compare report's
(family-wise adjusted where the statistics provide it); a top rank alone is not evidence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from . import _single
from . import _verdicts as V
from .models import model_dict, write_model
from .runner import Analysis, StudyOptions, SweepPlan, apply_defaults, seed_list

if TYPE_CHECKING:
    from ..compare.summary import MetricDiff, SweepSummary

NAME = "placement"
HELP = "one layer at every shipped placement vs stock, ranked, with latency/parameter cost"


def with_defaults(opts: StudyOptions) -> StudyOptions:
    return apply_defaults(opts, layer="SE", seeds=2, epochs=6, imgsz=128)


def shipped_placements(layer: str, base: str | None = None) -> list[str]:
    """Placements of the shipped configs of ``layer`` on ``base`` (default the YOLOv5 base the studies build on;
    the paper-form ones, not the fuse: add ablations)."""
    from ..configs import DEFAULT_BASE, shipped_configs

    base = base or DEFAULT_BASE
    out = []
    for cfg in shipped_configs():
        if cfg.base != base:
            continue
        if cfg.layer == layer and not cfg.args and len(cfg.placements) == 1 and cfg.placements[0] not in out:
            out.append(cfg.placements[0])
    return out


def plan(opts: StudyOptions, models_dir: Path) -> list[SweepPlan]:
    placements = list(opts.placements or ([opts.placement] if opts.placement else shipped_placements(opts.layer)))
    if not placements:
        raise ValueError(f"no shipped placement for layer {opts.layer}; give --placements")
    stock = write_model(model_dict(scale=opts.scale), models_dir, "stock", "stock")
    paths, roles = [stock], {Path(stock).stem: "stock"}
    for pl in placements:
        path = write_model(model_dict(opts.layer, [], [pl], opts.scale), models_dir, f"{opts.layer}-{pl}",
                           f"{opts.layer} at {pl}")
        paths.append(path)
        roles[Path(path).stem] = str(pl)
    return [SweepPlan("sweep", paths, Path(stock).stem, seed_list(opts), opts.epochs, roles)]


def ranking(res: dict[str, V.ModelResult]) -> list[str]:
    """Non-baseline labels by Δ, best first (no result last; ties by name)."""
    def key(lbl):
        e = res[lbl].effect
        return (-(e.delta if e and math.isfinite(e.delta) else -math.inf), lbl)

    return sorted((lbl for lbl, r in res.items() if not r.is_baseline), key=key)


def _own_interval_only(e: MetricDiff | None) -> bool:
    """The model's own interval excludes 0 but the family-wise verdict does not call it better or worse."""
    return bool(e and e.has_interval and (e.lo > 0 or e.hi < 0) and e.verdict not in ("better", "worse"))


def analyse(opts: StudyOptions, plans: list[SweepPlan], summaries: dict[str, SweepSummary], out: Path) -> Analysis:
    p = plans[0]
    res = V.model_results(summaries[p.name])
    order = ranking(res)
    question = (f"Where does {opts.layer} help: which of the placements {', '.join(p.roles[lbl] for lbl in order)} "
                "improves on stock, and at what cost in parameters and latency?")
    better = [lbl for lbl in order if res[lbl].effect and res[lbl].effect.verdict == "better"]
    worse = [lbl for lbl in order if res[lbl].effect and res[lbl].effect.verdict == "worse"]
    unsure = [lbl for lbl in order if not res[lbl].effect or res[lbl].effect.verdict == "too few seeds to say"]
    if better:
        head = f"Placements that improved on stock: {', '.join(p.roles[b] for b in better)}. "
    elif order and len(unsure) == len(order):
        head = "Too few seeds to say whether any placement differs from stock. "
    else:
        head = "No placement improved detectably on stock. "
    if worse:
        head += f"Detectably worse: {', '.join(p.roles[w] for w in worse)}. "
    best = order[0] if order else None
    detail = V.sentence(res[best].effect, f"The top-ranked placement ({p.roles[best]})") if best else ""
    own_only = [lbl for lbl in order[1:] if _own_interval_only(res[lbl].effect)]
    detail += "".join(" " + V.sentence(res[lbl].effect, f"{opts.layer} at {p.roles[lbl]}") for lbl in own_only)
    table = _single.effects_table(res, {**p.roles}, [p.baseline] + order)
    data = {"ranking": [p.roles[lbl] for lbl in order], "models": {k: v.as_dict() for k, v in res.items()}}
    return Analysis(question, head + detail, [table], data,
                    _single.forest_plot(_single.forest_rows(res, p.roles, order), f"{opts.layer}: placements ranked"),
                    ["The ranking orders point estimates; only the verdicts (interval-based) say whether a placement "
                     "differs from stock, and the top rank of several close placements is likely chance."])
