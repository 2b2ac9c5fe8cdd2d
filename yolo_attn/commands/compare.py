"""``yolo-attn compare``: train every model x seed under identical settings and compare them to a baseline.

With no arguments: a small sweep on the shipped shapes dataset (stock yolov5n + shipped placements,
3 seeds, CPU) -- the README's main job. ``--plan``: the same sweep as a pilot, then the seeds x epochs
needed to detect ``--effect`` (:mod:`yolo_attn.compare.plan`).
"""

from __future__ import annotations

HELP = "train models x seeds under identical settings; table (mAP both ways, CIs vs baseline), verdicts and plots"
DEFAULT_SEEDS = 3  # 2 seeds give a t interval with 1 degree of freedom: about 5x wider at the family-wise level
DEFAULT_MARGIN = 0.01  # yolo_attn.compare.sequential.DEFAULT_MARGIN (a test checks), here without importing scipy
DEFAULT_MAX_SEEDS = 10  # yolo_attn.compare.rounds.DEFAULT_MAX_SEEDS (the last of the default looks)


def _train_args(tokens: list[str]) -> dict:
    """``--train-arg key=value`` tokens, typed and checked as ``yolo-attn train`` reads them (Ultralytics' rules)."""
    from ..train import parse_args

    for text in tokens:
        if "=" not in text:
            raise ValueError(f"--train-arg expects key=value, got {text!r}")
    try:
        return parse_args(list(tokens))
    except ValueError as exc:
        raise ValueError(f"--train-arg: {exc}") from None


def _freeze(text: str | None):
    """``--freeze``: 'backbone', a layer count, or a comma list of base-model layer indices."""
    if text is None or text == "backbone":
        return text
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--freeze {text!r}: expected 'backbone', a layer count or a comma list of layer indices") from None
    return values[0] if len(values) == 1 and "," not in text else values


def _default_batch() -> int:
    """The trials' batch size (yolo_attn.compare.trial.DEFAULT_TRAIN_ARGS takes it from SHORT_RUN), read
    without importing torch: ``yolo-attn compare --help`` stays fast."""
    from .._short_run import SHORT_RUN

    return SHORT_RUN["batch"]


def add_arguments(parser) -> None:
    parser.add_argument("--data", help="dataset YAML (default: the shipped shapes dataset)")
    parser.add_argument("--models", nargs="+", metavar="MODEL", help="model YAMLs; the first is the baseline "
                        "(default: yolov5n + shipped SE/CBAM/ECA placements)")
    parser.add_argument("--seeds", type=int, default=None, help=f"number of seeds 0..N-1 (default {DEFAULT_SEEDS})")
    parser.add_argument("--seed-list", type=int, nargs="+", help="explicit seeds instead of --seeds")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 6 on the shipped dataset; 5 with --data)")
    parser.add_argument("--imgsz", type=int, default=None, help="image size (default 128)")
    parser.add_argument("--batch", type=int, default=None, help=f"batch size (default {_default_batch()})")
    _start_arguments(parser)
    parser.add_argument("--trust", action="store_true", help="unpickle model checkpoints (--models X.pt) fully when "
                        "training (runs code in the files; only for files you made). Default: read without running code")
    parser.add_argument("--out", help="results folder (default runs/compare/<timestamp>); rerun it to resume")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    parser.add_argument("--cpus-per-trial", type=int, help="Ray: CPUs per trial (default 1)")
    parser.add_argument("--pair-hardware", action="store_true", help="Ray: run the arms of each seed (the baseline "
                        "and every model) on one node, so no paired difference carries a hardware difference (the "
                        "local backend's arms always share this machine); docs/cluster.md")
    parser.add_argument("--control-width", action="store_true",
                        help="add the baseline width-scaled to the parameter count of the largest model")
    parser.add_argument("--baseline", help="baseline model (default: the first)")
    parser.add_argument("--weights", choices=("last", "best"), default="last",
                        help="weights evaluated (default last: no selection on the evaluation images)")
    parser.add_argument("--eval-split", choices=("val", "test"), default=None,
                        help="split of the final scoring (Ultralytics mAP, COCOeval, bootstrap); training validates "
                             "on val each epoch. Default val; a note suggests test when the data has one")
    parser.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Ultralytics training argument, the same for every trial (repeatable)")
    parser.add_argument("--device", help="Ultralytics device (default: automatic)")
    parser.add_argument("--boot", type=int, default=1000,
                        help="bootstrap replicates of the validation images (default 1000; too few to estimate "
                        "their variance are refused)")
    parser.add_argument("--tolerance", type=float, default=None, help="Ultralytics/COCOeval mAP disagreement tolerance")
    parser.add_argument("--allow-changes", action="store_true", help="continue a results folder with different settings")
    parser.add_argument("--retry-failed", action="store_true", help="train failed trials again")
    parser.add_argument("--max-trials", type=int, help="train at most this many trials now (rerun to continue); "
                        "trials run seed by seed, baseline first, so models x k trials are k complete seeds")
    parser.add_argument("--threads", type=int, help="CPU threads of every trial (default 1 on CPU, where trials run side "
                        "by side instead; with GPUs the cores shared between them); kept on resume, so results do "
                        "not depend on --workers")
    parser.add_argument("--workers", type=int, help="local backend: trials run at once, each in its own process "
                        "(default: usable cores / --threads, bounded by memory and the number of trials; one per "
                        "GPU on a GPU machine; 0: one after the other in this process)")
    parser.add_argument("--effect", type=float, default=None,
                        help="difference in mAP50-95 the power analysis and --plan aim at (default 0.005)")
    _decision_arguments(parser)
    parser.add_argument("--plan", action="store_true",
                        help="run the sweep as a pilot (or read the finished one in --out) and print the seeds x "
                             "epochs needed to detect --effect, with the estimated wall time; with --until-decided also what "
                             "that rule (--looks, --max-seeds, --margin) would likely decide and after how many seeds")
    parser.add_argument("--diagnose", action="store_true",
                        help="after the sweep, run yolo-attn diagnose on its checkpoints (OUT/diagnose; summary.md links it)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--verbose", action="store_true", help="show Ultralytics' own output")


def _start_arguments(parser) -> None:
    """How every model starts (yolo_attn.compare.request.Start)."""
    parser.add_argument("--pretrained", help="stock checkpoint transferred into every model before training (the "
                        "trials then use yolo_attn's fine-tuning settings, docs/pretrained.md; --train-arg overrides them)")
    parser.add_argument("--attn-init", choices=("identity", "paper"), help="initialisation of every attention layer "
                        "(default with --pretrained: identity, so each model starts predicting exactly as the "
                        "checkpoint; without: as each YAML writes it). A model YAML's own yolo_attn: {attn_init: ...} "
                        "key overrides it for that model (docs/pretrained.md)")
    parser.add_argument("--freeze", help="with --pretrained: freeze these layers of the base model during training "
                        "('backbone', a count N for layers 0..N-1, or a comma list of base indices); attention "
                        "layers stay trainable; a model YAML's yolo_attn: {freeze: ...} overrides it for that model")
    parser.add_argument("--attn-lr", type=float, help="learning-rate multiplier for the attention layers only "
                        "(their own optimizer parameter groups; default 1)")


def _decision_arguments(parser) -> None:
    """The declared decision rule's flags (yolo_attn.compare.rounds.DecisionOptions)."""
    parser.add_argument("--until-decided", action="store_true",
                        help="run the seeds in rounds up to each of --looks and stop training each attention model once "
                             "the declared rule decides it (better, worse, or equivalent within --margin); the baseline "
                             "runs while any model runs. The rule is written into config.json before the first trial "
                             "(docs/decisions.md)")
    parser.add_argument("--looks", help="with --until-decided: the seed counts at which the rule decides, e.g. "
                        "2,4,6,8,10 (default 3,5,7 below --max-seeds - 1, then --max-seeds)")
    parser.add_argument("--max-seeds", type=int, help="with --until-decided: the most seeds per model (default: the "
                        f"last of --looks, else --seeds, else {DEFAULT_MAX_SEEDS})")
    parser.add_argument("--margin", type=float, default=None,
                        help=f"the margin δ of a difference worth having, in mAP50-95 (default {DEFAULT_MARGIN:g}: "
                             "about what the same ~10%% extra latency buys by widening the model instead, and 3x the "
                             "validation-image SE of small validation sets, so that 'equivalent' can be shown at all; "
                             "docs/decisions.md). A model whose interval lies within ±δ is 'equivalent'; without "
                             "--until-decided it declares a one-look rule at the sweep's seeds")


def run(args) -> int:
    """The sweep; a one-line message instead of a traceback for Ctrl-C and for a results folder that cannot be written
    (read-only, full disk); exit status 1 when a trial failed or nothing was compared."""
    import sys

    from ..compare.sweep import default_out

    args.out = args.out or (_pilot_out() if args.plan else str(default_out()))
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"yolo-attn compare: interrupted (Ctrl-C); the trials finished so far are recorded in {args.out}: rerun "
              f"the same command with --out {args.out} to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise  # a missing input file: the command line's own message
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"yolo-attn compare: error: {exc.strerror or exc}{where}; the trials finished so far are recorded in "
              f"{args.out}: rerun the same command to resume", file=sys.stderr)
        return 1


def stock_weights_path(name):
    """``--pretrained``: a checkpoint file or one of Ultralytics' weight names (``yolo11n.pt``), as its path."""
    from .._ultralytics import stock_weights

    return str(stock_weights(name)) if name else None


def _pilot_out() -> str:
    import datetime as _dt

    return f"runs/compare/pilot-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _run(args) -> int:
    from ..compare import compare, fmt_summary
    from ..compare.plan import finished_pilot, format_plan, make_plan
    from ..compare.store import Store

    request, run_opts, report_opts = read_request(args)
    rule = _plan_rule(args)
    if args.plan:
        found = finished_pilot(args.out, report_opts.effect, args.boot)
        if found:  # a finished sweep folder: plan from it, train nothing
            print(format_plan(make_plan(found[0], found[1], report_opts.effect, rule=rule), args.out))
            return 0
    summary = compare(request, run_opts, report_opts)
    print(fmt_summary(summary))
    if args.plan:
        if not summary.complete:
            print("plan: the pilot is incomplete; rerun the same command to finish it first")
            return 1
        store = Store(summary.out)
        records = list(store.latest(store.read_config().settings_hash).values())
        print(format_plan(make_plan(summary, records, report_opts.effect, rule=rule), summary.out))
    if args.diagnose and summary.n_ok:
        _diagnose(summary, args.quiet)
    return _exit_status(summary)


def read_request(args):
    """The command line's sweep: (:class:`~yolo_attn.compare.request.SweepRequest`, :class:`RunOptions`,
    :class:`ReportOptions`). ``--trust`` (also ``--train-arg trust=True``) is a run option: it says how checkpoint
    files are read, not what is computed, so it stays out of the settings hash."""
    from ..compare.request import ReportOptions, RunOptions, SweepRequest

    train_args = _train_args(args.train_arg)
    trust = bool(train_args.pop("trust", False)) or args.trust
    if args.batch is not None:
        train_args["batch"] = args.batch
    for key, value in (("attn_init", args.attn_init), ("freeze", _freeze(args.freeze)), ("attn_lr", args.attn_lr)):
        if value is not None:
            train_args[key] = value
    report_opts = ReportOptions(n_boot=args.boot, tolerance=args.tolerance, effect=args.effect)
    decision, seeds = _decision(args)
    request = SweepRequest.build(
        train_args, stock_weights_path(args.pretrained), seeds, args.models, data=args.data,
        epochs=args.epochs if args.epochs is not None else (5 if args.data else 6),
        imgsz=args.imgsz if args.imgsz is not None else 128, weights=args.weights, eval_split=args.eval_split,
        baseline=args.baseline, control_width=args.control_width, decision=decision)
    run_opts = RunOptions(
        out=args.out, backend=args.backend, ray_address=args.ray_address, workers=args.workers, threads=args.threads,
        cpus_per_trial=args.cpus_per_trial, device=args.device, trust=trust, allow_changes=args.allow_changes,
        retry_failed=args.retry_failed, max_trials=args.max_trials, pair_hardware=args.pair_hardware,
        progress=not args.quiet, verbose=args.verbose)
    return request, run_opts, report_opts


def _decision(args):
    """The decision options and the sweep's seeds: with --until-decided the most seeds the rule may run (--max-seeds,
    else the last of --looks, else --seeds, else the default), each given value checked against the others."""
    from ..compare.rounds import DecisionOptions, parse_looks

    looks = parse_looks(args.looks) if args.looks else None
    if args.plan and args.until_decided:  # the pilot runs its fixed seeds; the rule is only forecast (_plan_rule)
        return DecisionOptions(), args.seed_list or (args.seeds if args.seeds is not None else DEFAULT_SEEDS)
    if not args.until_decided:
        if args.max_seeds is not None:
            raise ValueError("--max-seeds: the most seeds of --until-decided (add it, or give --seeds)")
        seeds = args.seed_list if args.seed_list else (args.seeds if args.seeds is not None else DEFAULT_SEEDS)
        return DecisionOptions(False, args.margin, looks), seeds
    given = {"--max-seeds": args.max_seeds, "--looks (its last look)": looks[-1] if looks else None,
             "--seeds": args.seeds, "--seed-list (its length)": len(args.seed_list) if args.seed_list else None}
    counts = {k: v for k, v in given.items() if v is not None}
    if len(set(counts.values())) > 1:
        raise ValueError("--until-decided: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " name different "
                         "maximum seed counts; give one")
    n = next(iter(counts.values()), DEFAULT_MAX_SEEDS)
    return DecisionOptions(True, args.margin, looks), (args.seed_list or n)


def _plan_rule(args):
    """``--plan --until-decided``: the rule whose decisions the plan forecasts (--looks, --max-seeds, --margin), not
    declared in the pilot's folder: the pilot is a fixed sweep, and the planned one runs into a new folder."""
    if not (args.plan and args.until_decided):
        return None
    from ..compare.rounds import DecisionOptions, parse_looks

    looks = parse_looks(args.looks) if args.looks else None
    if looks and args.max_seeds is not None and looks[-1] != args.max_seeds:
        raise ValueError(f"--until-decided: --max-seeds {args.max_seeds} and --looks (its last look) {looks[-1]} "
                         "name different maximum seed counts; give one")
    return DecisionOptions(True, args.margin, looks).rule(looks[-1] if looks else args.max_seeds or DEFAULT_MAX_SEEDS)


def _exit_status(summary) -> int:
    """0 when no trial failed and the baseline was compared (or nothing was to run yet); else 1, saying why."""
    import sys

    failed = sum(r.n_failed for r in summary.models)
    base = summary.row(summary.baseline)
    problems = [f"{failed} trial(s) failed (see the warnings; --retry-failed trains them again)"] if failed else []
    if base is not None and not base.n_ok and (failed or summary.n_ok):
        problems.append(f"the baseline {summary.baseline} has no finished trial: no model was compared with it")
    for text in problems:
        print(f"yolo-attn compare: error: {text}", file=sys.stderr)
    return 1 if problems or not summary.n_ok else 0


def _diagnose(summary, quiet: bool) -> None:
    """``yolo-attn diagnose`` on the sweep's folder, then summary.md again with a link to the diagnosis."""
    from pathlib import Path

    from .._io import atomic_write
    from ..compare.report import markdown
    from ..diagnose import diagnose_sweep

    root = Path(summary.out)
    md = diagnose_sweep(root, root / "diagnose", progress=None if quiet else print)
    summary.diagnosis = str(md.relative_to(root))
    atomic_write(root / "summary.md", markdown(summary))
    print(f"[compare] diagnosis: {md}")
