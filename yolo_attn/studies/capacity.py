"""Study ``capacity``: does the attention effect depend on the model's width?

For each width multiple (default 0.125, 0.25 = yolov5n, 0.5) one sweep trains the stock model and the
same model with the attention layer at the same placement, every seed paired. Per width the effect
(attention - stock) gets the sweep's interval. The interaction -- does the effect shrink as width
grows? -- is a least-squares regression of the per-seed paired differences ``d_{w,s}`` on
``log2(width)`` (``scipy.stats.linregress``): the slope is the change of the effect per doubling of
width; its 95% CI is ``slope ± t_{n-2} * SE`` and its two-sided p-value the t-test of ``slope = 0``
(n = number of paired differences). The slope detectable with 80% power is, in the usual
normal-theory approximation for a t-test, ``(t_{n-2, 0.975} + t_{n-2, 0.80}) * SE``.

Assumption of the slope test: the paired differences are independent given the width. The seeds of
one width share the validation images, so image-level noise common to a width is not separated from
the seed noise; the report says so. The detection analogue of the CIFAR-10 wide-ResNet/CBAM
experiment users quote (CBAM helps most at the narrowest width).

Train/val gap per width: the final epoch's validation loss minus training loss (box + cls + dfl, from
Ultralytics' ``results.csv`` of every trial), mean over seeds. The training loss is measured under
augmentation and averaged over the epoch; mAP on the training images is not measured.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from . import _verdicts as V
from .models import model_dict, width_tag, write_model
from .runner import Analysis, StudyOptions, SweepPlan, apply_defaults, seed_list, trial_records

if TYPE_CHECKING:
    from ..compare.summary import SweepSummary

NAME = "capacity"
HELP = "attention effect vs model width (interaction test, train/val loss gap per width)"
DEFAULT_WIDTHS = [0.125, 0.25, 0.5]
STOCK, ATTN = "stock", "attention"


def with_defaults(opts: StudyOptions) -> StudyOptions:
    return apply_defaults(opts, layer="SE", placement="backbone-end", seeds=3, epochs=6, imgsz=128,
                          widths=list(DEFAULT_WIDTHS))


def plan(opts: StudyOptions, models_dir: Path) -> list[SweepPlan]:
    widths = sorted({float(w) for w in opts.widths})
    if len(widths) < 2 or any(w <= 0 for w in widths):
        raise ValueError(f"capacity needs at least two positive widths, got {opts.widths}")
    plans = []
    for w in widths:
        tag = width_tag(w)
        stock = write_model(model_dict(scale=opts.scale, width=w), models_dir, f"stock-{tag}", f"stock yolov5, width {w:g}")
        attn = write_model(model_dict(opts.layer, [], [opts.placement], opts.scale, w), models_dir,
                           f"{opts.layer}-{opts.placement}-{tag}", f"{opts.layer} at {opts.placement}, width {w:g}")
        plans.append(SweepPlan(tag, [stock, attn], Path(stock).stem, seed_list(opts), opts.epochs,
                               {Path(stock).stem: STOCK, Path(attn).stem: ATTN}, {"width": w}))
    return plans


def interaction(widths, diffs, level: float = 0.95, power: float = 0.80) -> dict:
    """Regression of paired differences on log2(width): slope, its CI, p-value, detectable slope (module docs)."""
    from scipy import stats as st

    x = [math.log2(float(w)) for w in widths]
    n = len(x)
    if n < 3 or len(set(x)) < 2:
        return {"n": n, "slope": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan, "se": math.nan,
                "intercept": math.nan, "detectable_slope": math.nan,
                "note": "needs at least 3 paired differences at 2 or more widths"}
    fit = st.linregress(x, [float(d) for d in diffs])
    t = float(st.t.ppf(0.5 + level / 2, n - 2))
    se = float(fit.stderr)
    return {"n": n, "slope": float(fit.slope), "intercept": float(fit.intercept), "se": se,
            "lo": float(fit.slope) - t * se, "hi": float(fit.slope) + t * se, "p": float(fit.pvalue),
            "detectable_slope": (t + float(st.t.ppf(power, n - 2))) * se, "level": level, "note": None}


def interaction_sentence(fit: dict) -> str:
    if not math.isfinite(fit["slope"]):
        return f"The interaction cannot be tested: {fit['note']}."
    ci = (f"{fit['slope']:+.4f} per doubling of width (95% CI [{fit['lo']:+.4f}, {fit['hi']:+.4f}], "
          f"p = {fit['p']:.3g}, n = {fit['n']})")
    if fit["hi"] < 0:
        return f"The effect shrinks as width grows: slope {ci}."
    if fit["lo"] > 0:
        return f"The effect grows with width: slope {ci}."
    return (f"No detectable change of the effect with width: slope {ci}; a slope of about "
            f"±{fit['detectable_slope']:.4f} per doubling would have been detected with 80% power.")


def _final_losses(run_dir: str | None) -> tuple[float, float]:
    """(train, val) total loss of the last epoch in ``results.csv`` (NaN when not available)."""
    path = Path(run_dir or "") / "results.csv"
    if not run_dir or not path.is_file():
        return math.nan, math.nan
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    if not rows:
        return math.nan, math.nan
    last = {k.strip(): v for k, v in rows[-1].items() if k}

    def total(prefix):
        vals = [float(v) for k, v in last.items() if k.startswith(prefix) and k.endswith("_loss")]
        return sum(vals) if vals else math.nan

    return total("train/"), total("val/")


def loss_gap(sweep_dir: Path) -> dict[str, dict]:
    """label -> mean train loss, val loss and gap (val - train) over the sweep's ok trials."""
    by_model: dict[str, list[tuple[float, float]]] = {}
    for r in trial_records(sweep_dir):
        by_model.setdefault(r.model, []).append(_final_losses(r.run_dir))
    out = {}
    for m, vals in by_model.items():
        ok = [(t, v) for t, v in vals if math.isfinite(t) and math.isfinite(v)]
        if ok:
            tr, va = sum(t for t, _ in ok) / len(ok), sum(v for _, v in ok) / len(ok)
            out[m] = {"train_loss": tr, "val_loss": va, "gap": va - tr, "n": len(ok)}
    return out


def analyse(opts: StudyOptions, plans: list[SweepPlan], summaries: dict[str, SweepSummary], out: Path) -> Analysis:
    rows, xs, ys = [], [], []
    for p in plans:
        res = V.model_results(summaries[p.name])
        attn = next(lbl for lbl, role in p.roles.items() if role == ATTN)
        stock = p.baseline
        e = res[attn].effect if attn in res else None
        width = float(p.meta["width"])
        gaps = loss_gap(out / p.name)
        rows.append({"width": width, "effect": e, "stock_map": res[stock].map_mean if stock in res else math.nan,
                     "attn_map": res[attn].map_mean if attn in res else math.nan,
                     "params_ratio": res[attn].params_ratio if attn in res else None,
                     "gap_stock": gaps.get(stock, {}).get("gap"), "gap_attn": gaps.get(attn, {}).get("gap")})
        if e is not None:
            xs += [width] * len(e.per_seed)
            ys += e.per_seed
    fit = interaction(xs, ys)
    widths = ", ".join(f"{r['width']:g}" for r in rows)
    question = (f"Does {opts.layer} at `{opts.placement}` help more in narrow models than in wide ones? The same "
                f"placement is trained with and without attention at width multiples {widths} "
                "(depth of scale " + opts.scale + "), seeds paired; the effect per width and its trend with width are estimated.")
    answer = " ".join([*(V.sentence(r["effect"], f"At width {r['width']:g}, {opts.layer}") for r in rows),
                       interaction_sentence(fit)])
    table = ["| width | stock mAP50-95 | attention mAP50-95 | Δ [95% CI] | verdict | params × "
             "| val−train loss, stock | val−train loss, attention |",
             "|---|---|---|---|---|---|---|---|"]
    f3 = lambda v: "-" if v is None or not math.isfinite(v) else f"{v:.3f}"  # noqa: E731
    for r in rows:
        e = r["effect"]
        table.append(f"| {r['width']:g} | {f3(r['stock_map'])} | {f3(r['attn_map'])} | {V.fmt_effect(e)} | "
                     f"{e.verdict if e else '-'} | {f3(r['params_ratio'])} | {f3(r['gap_stock'])} | {f3(r['gap_attn'])} |")
    notes = ["Slope test: per-seed paired differences regressed on log2(width) (scipy.stats.linregress, t-test on the "
             "slope). It treats every paired difference as independent; seeds of one width share the validation "
             "images, so image-level noise common to a width is not separated from seed noise.",
             "Train/val gap: last-epoch validation loss minus training loss (box+cls+dfl, Ultralytics results.csv); "
             "the training loss is under augmentation and averaged over the epoch. mAP on the training images is not measured."]
    data = {"widths": [{**{k: v for k, v in r.items() if k != "effect"}, "effect": r["effect"].brief() if r["effect"] else None}
                       for r in rows], "interaction": fit}
    points = [{"width": r["width"], "delta": r["effect"].delta, "lo": r["effect"].lo, "hi": r["effect"].hi,
               "per_seed": r["effect"].per_seed} for r in rows if r["effect"]]

    def plot(path):
        from .plots import capacity_plot

        capacity_plot(points, fit, path, f"{opts.layer} at {opts.placement}: effect vs width")

    return Analysis(question, answer, ["\n".join(table)], data, plot if points else None, notes)
