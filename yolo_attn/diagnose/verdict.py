"""A short paragraph per model built only from the measured numbers, never stronger than their intervals."""

from __future__ import annotations

from .compare import LabelSummary

UNDERFIT_TRAIN = 0.5  # train mAP50-95 below this: the model has not fit its own training images
GENERALISE_POORLY = 0.5  # a train-val gap above this share of the train figure: validation is under half of train


def _fit(m: LabelSummary, b: LabelSummary, metric: str = "mAP50-95") -> str:
    s = (f"Train-val {metric} gap {m.gap.est:.3f} vs {b.gap.est:.3f} for the baseline (difference "
         f"{m.gap_vs_baseline.fmt()} over seeds")
    if m.val_loss is not None and b.val_loss is not None:
        s += f"; val-train loss {m.val_loss - m.train_loss:+.3f} vs {b.val_loss - b.train_loss:+.3f}"
    s += ")"
    if m.train_map.est < UNDERFIT_TRAIN and b.train_map.est < UNDERFIT_TRAIN:
        s += f"; both models underfit (train {metric} {m.train_map.est:.3f} and {b.train_map.est:.3f})"
        if all(x.gap.est > GENERALISE_POORLY * x.train_map.est for x in (m, b)):
            s += (f", and their validation {metric} is under half of it ({m.val_map.est:.3f} and {b.val_map.est:.3f}):"
                  " they generalise poorly too, so this fit does not tell whether more or less capacity would help")
        else:
            s += ", so extra capacity could help and overfitting is not what limits them"
    elif m.gap_vs_baseline.excludes_zero():
        s += "; the attention model overfits more" if m.gap_vs_baseline.est > 0 else "; the attention model overfits less"
    else:
        s += "; no difference in fit regime can be told from these seeds"
    return s + "."


def _sizes(m: LabelSummary) -> str:
    parts = [f"{k} {iv.fmt()}" for k, iv in m.size_vs_baseline.items() if k != "all" and iv.est == iv.est]
    clear = [k for k, iv in m.size_vs_baseline.items() if k != "all" and iv.excludes_zero()]
    s = "AP50-95 against the baseline by object size: " + ", ".join(parts) + "; "
    s += ("the intervals exclude zero for " + ", ".join(clear)) if clear else "no size class differs beyond image-sampling noise"
    return s + f" (intervals from resampling the validation images, {m.n_pairs} seed pair(s) pooled; seed-to-seed " \
               "variation is in compare's own interval)."


def _erf(m: LabelSummary, b: LabelSummary) -> str:
    bits = []
    for lvl, v in m.erf.items():
        bv = b.erf.get(lvl, {})
        cov = "" if v["covered"] is None else f", covering {100 * v['covered']:.0f}% of the objects assigned there"
        bits.append(f"{lvl} r90 {v['r90']:.0f} px (baseline {bv.get('r90', float('nan')):.0f}){cov}")
    return "Effective receptive field: " + "; ".join(bits) + "."


def _reliance(m: LabelSummary, metric: str = "mAP50-95") -> str:
    if m.knockout_all is None:
        return "No attention layer: reliance and gate sections do not apply."
    s = f"Knocking all attention out changes {metric} by {m.knockout_all.fmt()}"
    if m.mean_gate_all is not None:
        s += f"; fixing the gates at their mean by {m.mean_gate_all.fmt()}"
    if not m.knockout_all.excludes_zero():
        s += ": the model does not measurably rely on its attention"
    elif m.mean_gate_all is not None and not m.mean_gate_all.excludes_zero():
        s += ": it relies on the attention's average scaling, not on its input-dependent selection"
    elif m.mean_gate_all is not None:
        s += ": it relies on the input-dependent gate values"
    else:
        s += ": it relies on the attention layers"
    return s + "."


def _consistency(m: LabelSummary) -> str:
    if m.tau_mean is None:
        return ""
    return (f" Channel gates vs channel importance: mean Kendall tau {m.tau_mean:+.3f} "
            f"(shuffled-gate baseline {m.tau_perm_mean:+.3f})"
            + ("; weakly consistent at best, as Ye et al. report." if abs(m.tau_mean) < 0.2 else "."))


def _smooth(m: LabelSummary, b: LabelSummary) -> str:
    if m.jac is None or b.jac is None:
        return ""
    ratio = m.jac / b.jac if b.jac else float("nan")
    s = f" Input-Jacobian norm {m.jac:.3g} vs {b.jac:.3g} for the baseline (ratio {ratio:.2f}"
    if m.jac_se is not None and b.jac_se is not None and abs(m.jac - b.jac) > 2 * (m.jac_se**2 + b.jac_se**2) ** 0.5:
        return s + "): " + ("smoother" if m.jac < b.jac else "rougher") + " near validation images than the baseline."
    return s + "): no smoothness difference beyond the estimate's error."


def _health(m: LabelSummary, b: LabelSummary) -> str:
    """Seeds that collapsed and gates that are shut: they dominate every pooled figure, so they come first."""
    s = ""
    if m.collapsed:
        s += (f"Seed(s) {', '.join(m.collapsed)} collapsed against the baseline's {b.val_map.est:.3f}: the pooled "
              "figures below mix a working and a failed model. ")
    if m.dead_gates:
        s += f"Dead gates (almost all values near 0, their path shut): {', '.join(m.dead_gates)}. "
    return s


def verdict(m: LabelSummary, b: LabelSummary, view=None) -> str:
    """``view`` (:class:`.tasks.TaskView`, default detect): the task's metric, and its sections left out (named,
    with the reason, in place of their sentence)."""
    from .tasks import task_view

    view = view or task_view("detect")
    parts = [_fit(m, b, view.metric) if view.applies("fit") else _left_out("fit", view),
             _sizes(m) if view.applies("sizes") else _left_out("sizes", view), _erf(m, b),
             _reliance(m, view.metric) if view.applies("reliance") else _left_out("reliance", view)]
    return _health(m, b) + " ".join(parts) + _consistency(m) + _smooth(m, b)


def _left_out(section: str, view) -> str:
    return f"No {SECTION_NAMES[section]} section for {view.task} models: {view.skipped[section]}."


SECTION_NAMES = {"fit": "fit-regime", "sizes": "object-size", "reliance": "reliance"}
