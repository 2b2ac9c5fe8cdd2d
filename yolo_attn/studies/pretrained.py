"""Study ``pretrained``: how an attention model should start from one stock checkpoint.

From one stock checkpoint (``--pretrained STOCK.pt``, required) and one layer (``--layer``, default SE) at
one placement (``--placement``, default backbone-end), two sweeps, seeds paired:

``finetune`` -- five models, each fine-tuned from the checkpoint (compare's ``--pretrained``, its
fine-tuning preset), baseline (a):

* (a) stock: the checkpoint's own architecture (the structure transfer is then a plain load);
* (b) the attention model loaded as Ultralytics loads it (``YOLO(yaml).load(pt)``: a tensor is copied where
  its name and shape agree, so after the inserted layer most of the network keeps its initialisation),
  attention layers as the paper initialises them;
* (c) the structure-aware transfer (``yolo_attn.transfer_weights``), paper initialisation;
* (d) the structure-aware transfer, identity start (each attention layer starts as the identity: the model
  predicts exactly as the checkpoint before training);
* (e) (d) with the backbone frozen (in the base model's indices; attention layers train).

The arms differ only in how they start, which each model YAML says under its ``yolo_attn:`` key
(:mod:`yolo_attn.model_options`), so all five run in one sweep with one set of training arguments.

``scratch`` -- stock vs the attention model without pretrained weights (same seeds, from-scratch preset),
for the seed SD of the difference from scratch beside the fine-tuned one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from . import _single
from . import _verdicts as V
from .models import model_dict, write_model
from .runner import Analysis, StudyOptions, SweepPlan, apply_defaults, seed_list, trial_records

if TYPE_CHECKING:
    from ..compare.contract import TrialRecord
    from ..compare.summary import MetricDiff, SweepSummary

NAME = "pretrained"
HELP = ("fine-tuning from one stock checkpoint (--pretrained): Ultralytics' name load vs structure transfer, "
        "paper vs identity start, frozen backbone; seed SD fine-tuned vs from scratch")
TAKES_PRETRAINED = True  # --pretrained (required here; the other studies refuse it)
ARMS = ("a", "b", "c", "d", "e")
# the yolo_attn: key of each arm's model YAML (a: the stock YAML, nothing to say)
ARM_OPTIONS = {
    "a": None,
    "b": {"attn_init": "paper", "load": "names"},
    "c": {"attn_init": "paper", "load": "structure"},
    "d": {"attn_init": "identity", "load": "structure"},
    "e": {"attn_init": "identity", "load": "structure", "freeze": "backbone"},
}
ARM_FILES = {"b": "names-paper", "c": "structure-paper", "d": "structure-identity", "e": "structure-identity-frozen"}
ARM_ROLES = {
    "a": "(a) stock, fine-tuned",
    "b": "(b) Ultralytics' load (name and shape), paper init",
    "c": "(c) structure transfer, paper init",
    "d": "(d) structure transfer, identity start",
    "e": "(e) = (d), backbone frozen",
}
CONTRASTS = (("c", "b", "Structure transfer instead of Ultralytics' name load ((c) − (b), both paper init)"),
             ("d", "c", "The identity start instead of the paper init ((d) − (c), both structure transfer)"),
             ("e", "d", "Freezing the backbone ((e) − (d), identity start)"))
SD_ARM = "d"  # the fine-tuned attention model whose Δ to stock gives the seed SD beside the from-scratch one


def with_defaults(opts: StudyOptions) -> StudyOptions:
    return apply_defaults(opts, layer="SE", placement="backbone-end", seeds=2, epochs=4, imgsz=192)


def plan(opts: StudyOptions, models_dir: Path) -> list[SweepPlan]:
    if not opts.pretrained:
        raise ValueError("pretrained study: --pretrained STOCK.pt is required (the stock checkpoint every fine-tuned "
                         "arm starts from)")
    if not Path(opts.pretrained).is_file():
        raise FileNotFoundError(f"pretrained study: --pretrained {opts.pretrained}: no such file")
    if opts.placements:
        raise ValueError("pretrained study: one placement (--placement), not --placements")
    sc, tag = opts.scale, f"{opts.layer}-{opts.placement}"
    stock = write_model(model_dict(scale=sc), models_dir, "stock", "stock YOLOv5 (arm a; from scratch: the baseline)")
    attn = model_dict(opts.layer, [], [opts.placement], sc)
    paths = {"a": stock}
    for arm in ARMS[1:]:
        paths[arm] = write_model({**attn, "yolo_attn": dict(ARM_OPTIONS[arm])}, models_dir, f"{tag}-{ARM_FILES[arm]}",
                                 f"{opts.layer} at {opts.placement}, arm {ARM_ROLES[arm]}")
    scratch_attn = write_model(attn, models_dir, tag, f"{opts.layer} at {opts.placement}, trained from scratch")
    seeds = seed_list(opts)
    label = {arm: Path(p).stem for arm, p in paths.items()}
    finetune = SweepPlan("finetune", [paths[a] for a in ARMS], label["a"], seeds, opts.epochs,
                         {label[a]: ARM_ROLES[a] for a in ARMS}, meta={"arms": {label[a]: a for a in ARMS}},
                         pretrained=str(Path(opts.pretrained).resolve()))
    s_attn = Path(scratch_attn).stem
    scratch = SweepPlan("scratch", [stock, scratch_attn], label["a"], seeds, opts.epochs,
                        {label["a"]: "stock, from scratch", s_attn: f"{opts.layer} at {opts.placement}, from scratch"},
                        meta={"arms": {label["a"]: "stock", s_attn: "attn"}})
    return [finetune, scratch]


# ------------------------------------------------------------------------------------------------ records
def _by_model(sweep_dir: Path) -> dict[str, list[TrialRecord]]:
    out: dict[str, list[TrialRecord]] = {}
    for r in trial_records(sweep_dir):
        out.setdefault(r.model, []).append(r)
    for recs in out.values():
        recs.sort(key=lambda r: r.seed)
    return out


def _mean(values) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else math.nan


def _start_maps(recs: list[TrialRecord]) -> dict[int, float]:
    """seed -> mAP50-95 of the validation before the first training step (the record's ``start``)."""
    return {r.seed: float(r.start["map"]) for r in recs if (r.start or {}).get("map") is not None}


def _curve(recs: list[TrialRecord]) -> tuple[list[int], list[float]]:
    """Epochs (0 = before training, where recorded) and the mean over seeds of the per-epoch mAP50-95."""
    by_epoch: dict[int, list[float]] = {}
    for s, v in _start_maps(recs).items():
        by_epoch.setdefault(0, []).append(v)
    for r in recs:
        for p in r.curve or []:
            if p.get("epoch") is not None:
                by_epoch.setdefault(int(p["epoch"]), []).append(p.get("map", math.nan))
    epochs = sorted(by_epoch)
    return epochs, [_mean(by_epoch[e]) for e in epochs]


def _tensors(recs: list[TrialRecord]) -> str:
    """``copied/source tensors`` of the weight transfer (the run's transfer.json), or '-'."""
    for r in recs:
        path = Path(r.run_dir or "") / "transfer.json"
        if r.run_dir and path.is_file():
            try:
                t = json.loads(path.read_text())
                return f"{t['tensors']}/{t['source_tensors']}"
            except (ValueError, KeyError):
                continue
    return "-"


def _heads(recs: list[TrialRecord]) -> str:
    return ", ".join(sorted({r.head_start for r in recs if r.head_start})) or "-"


def _f(v, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _checkpoint_format(path) -> str | None:
    try:
        from ..weights import load_checkpoint

        return load_checkpoint(path).format
    except Exception:  # the report must not fail on it: the sweeps already read the file
        return None


# ------------------------------------------------------------------------------------------------ analysis
class _Arms:
    """What the study's two sweeps gave, per arm: the fine-tuning sweep's labels, results, records, effects against
    (a), epoch-0 maps and head starts; the from-scratch sweep's results, records, labels and effect."""

    def __init__(self, ft: SweepPlan, sc: SweepPlan, summaries: dict[str, SweepSummary], out: Path):
        self.res, self.recs = V.model_results(summaries[ft.name]), _by_model(out / ft.name)
        self.label = {a: lbl for lbl, a in ft.meta["arms"].items()}
        self.effect = {a: (self.res[self.label[a]].effect if self.label[a] in self.res else None) for a in ARMS}
        self.start = {a: _start_maps(self.recs.get(self.label[a], [])) for a in ARMS}
        self.heads = {a: _heads(self.recs.get(self.label[a], [])) for a in ARMS}
        self.s_res, self.s_recs = V.model_results(summaries[sc.name]), _by_model(out / sc.name)
        self.s_label = {a: lbl for lbl, a in sc.meta["arms"].items()}
        self.scratch = self.s_res[self.s_label["attn"]].effect if self.s_label["attn"] in self.s_res else None
        self.fine = self.effect[SD_ARM]

    def curve(self, a: str) -> dict:
        return dict(zip(("epochs", "map"), _curve(self.recs.get(self.label[a], []))))


def analyse(opts: StudyOptions, plans: list[SweepPlan], summaries: dict[str, SweepSummary], out: Path) -> Analysis:
    ft, sc = plans
    arms = _Arms(ft, sc, summaries, out)
    contrasts = {text: (V.contrast(arms.effect[x], arms.effect[y]) if arms.effect[x] and arms.effect[y] else None)
                 for x, y, text in CONTRASTS}
    fmt, ckpt, where = _checkpoint_format(opts.pretrained), Path(str(opts.pretrained)).name, f"{opts.layer} at {opts.placement}"
    question = (f"Starting an attention model ({where}) from the stock checkpoint {ckpt}: does it matter how the weights "
                "arrive (Ultralytics' name-and-shape load vs yolo_attn's structure transfer), how the attention layers "
                "start (paper init vs identity), and whether the backbone is frozen? Each arm against the fine-tuned "
                "stock model, seeds paired; and how noisy is the difference fine-tuned compared with from scratch?")
    plan_cmd = f"yolo-attn compare --plan --out {out / ft.name} --effect EFFECT"
    data = _study_data(opts, arms, contrasts, fmt, plan_cmd)
    lines = [{"label": ARM_ROLES[a], "epochs": data["arms"][a]["curve"]["epochs"], "values": data["arms"][a]["curve"]["map"]}
             for a in ARMS]
    lines += [{"label": sc.roles[lbl], "style": "--", "epochs": c["epochs"], "values": c["map"]}
              for lbl, c in data["scratch"]["curves"].items()]

    def plot(path):
        from .plots import learning_curves

        learning_curves(lines, path, f"{where}, fine-tuned from {ckpt} (solid) and from scratch (dashed)")

    tables = [_arm_table(arms), _single.contrast_table(contrasts), _sd_table(arms, where)]
    return Analysis(question, _answer(arms, contrasts, where), tables, data,
                    plot if any(ln["epochs"] for ln in lines) else None, _notes(opts, ckpt, fmt, plan_cmd))


def _answer(arms: _Arms, contrasts: dict, where: str) -> str:
    e0 = ", ".join(f"({a}) {_f(_mean(arms.start[a].values()))}" for a in ARMS)
    parts = [f"Epoch 0 (before any training step), mAP50-95: {e0}."]
    same = [a for a in ("d", "e") if arms.start[a] and arms.start[a] == arms.start["a"]]
    if same:
        parts.append(f"With the identity start {' and '.join(f'({a})' for a in same)} begin exactly where (a) does "
                     "(same epoch-0 mAP50-95 in every seed).")
    from_scratch = [a for a in ARMS if "scratch" in arms.heads[a]]
    if from_scratch:
        which = "every arm" if len(from_scratch) == len(ARMS) else ", ".join(f"({a})" for a in from_scratch)
        why = ("the checkpoint's head does not transfer" if set(from_scratch) - {"b"} else
               "the name-and-shape load finds none of the checkpoint's head: after an inserted layer the head sits "
               "at another index")
        parts.append(f"The detection head starts from scratch in {which} ({why}), so epoch 0 is about the untrained "
                     "head there, not about how the attention layers start.")
    parts += [V.sentence(arms.effect[a], f"Against stock fine-tuned, {ARM_ROLES[a]}") for a in ARMS[1:]]
    parts += [V.sentence(c, text) for text, c in contrasts.items()]
    parts.append(V.sentence(arms.scratch, f"From scratch, {where} against stock"))
    parts.append(_sd_sentence(arms.fine, arms.scratch))
    return " ".join(parts)


def _arm_table(arms: _Arms) -> str:
    rows = ["| arm | model | head start | tensors from the checkpoint | mAP50-95 epoch 0 (mean over seeds) | "
            "mAP50-95 final (COCOeval, mean ± sd) | Δ to (a) [95% CI, this model alone] | Δ per seed | "
            "SD of Δ over seeds | verdict (family-wise) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for a in ARMS:
        r, e, mine = arms.res.get(arms.label[a]), arms.effect[a], arms.recs.get(arms.label[a], [])
        per_seed = ", ".join(f"{x:+.3f}" for x in e.per_seed) if e else "-"
        verdict = "baseline" if a == "a" else (e.verdict if e else "-")
        rows.append(f"| {ARM_ROLES[a]} | {arms.label[a]} | {arms.heads[a]} | {_tensors(mine)} | "
                    f"{_f(_mean(arms.start[a].values()))} | {_f(r.map_mean) if r else '-'} ± {_f(r.map_std) if r else '-'} | "
                    f"{'-' if a == 'a' else V.fmt_effect(e)} | {per_seed} | {_f(e.sd_seed if e else None, 4)} | {verdict} |")
    return "\n".join(rows)


def _sd_table(arms: _Arms, where: str) -> str:
    rows = ["| comparison | Δ [95% CI] | Δ per seed | SD of Δ over seeds | seeds |", "|---|---|---|---|---|"]
    for name, e in ((f"fine-tuned: {ARM_ROLES[SD_ARM]} − (a)", arms.fine), (f"from scratch: {where} − stock", arms.scratch)):
        rows.append(f"| {name} | {V.fmt_effect(e)} | {', '.join(f'{x:+.3f}' for x in e.per_seed) if e else '-'} | "
                    f"{_f(e.sd_seed if e else None, 4)} | {e.n_seeds if e else '-'} |")
    return "\n".join(rows)


def _study_data(opts: StudyOptions, arms: _Arms, contrasts: dict, fmt, plan_cmd: str) -> dict:
    """study.json's results: each arm, the contrasts, the from-scratch pair and the seed SDs."""
    res, label, fine, scratch = arms.res, arms.label, arms.fine, arms.scratch
    return {
        "checkpoint": {"path": str(opts.pretrained), "format": fmt},
        "arms": {a: {"label": label[a], "role": ARM_ROLES[a], "options": ARM_OPTIONS[a], "head_start": arms.heads[a],
                     "start_map_per_seed": {str(k): v for k, v in arms.start[a].items()},
                     "start_map_mean": _mean(arms.start[a].values()),
                     "map_mean": res[label[a]].map_mean if label[a] in res else None,
                     "map_std": res[label[a]].map_std if label[a] in res else None,
                     "effect": arms.effect[a].brief() if arms.effect[a] else None,
                     "curve": arms.curve(a)} for a in ARMS},
        "contrasts": {text: c.brief() if c else None for text, c in contrasts.items()},
        "scratch": {"models": {k: v.as_dict() for k, v in arms.s_res.items()},
                    "effect": scratch.brief() if scratch else None,
                    "curves": {lbl: dict(zip(("epochs", "map"), _curve(arms.s_recs.get(lbl, []))))
                               for lbl in arms.s_label.values()}},
        "seed_sd": {"finetuned": fine.sd_seed if fine else None, "finetuned_seeds": fine.n_seeds if fine else 0,
                    "finetuned_arm": SD_ARM, "scratch": scratch.sd_seed if scratch else None,
                    "scratch_seeds": scratch.n_seeds if scratch else 0},
        "plan_command": plan_cmd,
    }


def _notes(opts: StudyOptions, ckpt: str, fmt, plan_cmd: str) -> list[str]:
    return [
        "With a checkpoint of the original YOLOv5 repository (anchor-based head, e.g. Ultralytics' v5-era `yolov5n.pt`) "
        "the detection head does not transfer in any arm (records' `head_start`: `scratch`): only backbone and neck "
        "start pretrained, and epoch 0 is near 0 mAP in every arm."
        + (f" This checkpoint is one ({ckpt}: format `{fmt}`)." if fmt == "yolov5" else
           f" This checkpoint: format `{fmt}`; the head start per arm is in the table." if fmt else ""),
        f"(b) is loaded by Ultralytics' own name-and-shape matching (`intersect_dicts`, as `YOLO(yaml).load(pt)`): the "
        f"layer inserted at {opts.placement} shifts every later index, so those layers mostly keep their initialisation "
        "(column 'tensors from the checkpoint'); (c)-(e) use the structure-aware transfer. The arms differ only in the "
        "`yolo_attn:` key of their model YAMLs (models/), which overrides the sweep-level attn_init/freeze.",
        "The fine-tuned arms train with compare's fine-tuning preset (`FINE_TUNE_ARGS`); the from-scratch sweep with the "
        "short-run preset (see the training arguments below).",
        "With few seeds an SD over seeds is itself very uncertain (2 seeds: one degree of freedom). To plan the seeds of a "
        f"fine-tuning comparison from this study's sweep, read it as a pilot (nothing trains): `{plan_cmd}`.",
        _single.CONTRAST_NOTE,
    ]


def _sd_sentence(fine: MetricDiff | None, scratch: MetricDiff | None) -> str:
    def one(e):
        if e is None or e.sd_seed is None:
            return f"not estimable ({e.n_seeds if e else 0} seed{'s' if not e or e.n_seeds != 1 else ''})"
        return f"{e.sd_seed:.4f} ({e.n_seeds} seeds)"

    known = [e for e in (fine, scratch) if e is not None and e.sd_seed is not None]
    few = bool(known) and min(e.n_seeds for e in known) < 6
    return (f"Seed SD of Δ: {one(fine)} fine-tuned ({ARM_ROLES[SD_ARM]} − (a)) against {one(scratch)} from scratch"
            + ("; an SD from so few seeds is a rough guide, not a measurement of their ratio." if few else "."))
