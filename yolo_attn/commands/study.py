"""``yolo-attn study NAME``: one question, answered by one or more compare sweeps, with a report and a plot.

Studies: ``capacity`` (effect vs width), ``fuse`` (multiplied vs added gate), ``fmm`` (C3 vs C3FMM vs
C3Attn), ``placement`` (every shipped placement of one layer, ranked), ``pretrained`` (fine-tuning from
one stock checkpoint, ``--pretrained``: Ultralytics' name load vs structure transfer, paper vs identity
start, frozen backbone). Defaults are CPU-sized (about 15 minutes on 2 cores on the shipped shapes
dataset); rerun the same command to resume, or to print the report of a finished study at once.
"""

from __future__ import annotations

HELP = "run a study (capacity, fuse, fmm, placement, pretrained): compare sweeps + a report that answers its question"


def add_arguments(parser) -> None:
    from ..studies import STUDIES

    parser.add_argument("name", choices=STUDIES, help="which study")
    parser.add_argument("--data", help="dataset YAML (default: the shipped shapes dataset)")
    parser.add_argument("--layer", help="attention layer (default SE)")
    parser.add_argument("--placement", help="placement (capacity: default backbone-end; fuse: backbone; fmm: C3 rows "
                        "backbone|neck|backbone-end|all; placement: one placement instead of all shipped ones; "
                        "pretrained: default backbone-end)")
    parser.add_argument("--pretrained", metavar="STOCK.pt", help="pretrained study (required there): the stock checkpoint "
                        "the fine-tuned arms start from (read without running code from the file)")
    parser.add_argument("--placements", nargs="+", help="placement study: these placements instead of the shipped ones")
    parser.add_argument("--widths", type=float, nargs="+", help="capacity study: width multiples (default 0.125 0.25 0.5)")
    parser.add_argument("--scale", default="n", help="depth (and default width) of this YOLOv5 scale (default n)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per model (default: the study's)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default 6; pretrained: 4)")
    parser.add_argument("--imgsz", type=int, help="image size (default 128; pretrained: 192)")
    parser.add_argument("--batch", type=int, help="batch size (default: compare's)")
    parser.add_argument("--out", help="study folder (default runs/study/NAME); rerun it to resume")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="where trials run (compare's backends)")
    parser.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    parser.add_argument("--threads", type=int, help="CPU threads per trial")
    parser.add_argument("--cpus-per-trial", type=int, help="Ray: CPUs per trial (default 1)")
    parser.add_argument("--max-trials", type=int, help="train at most this many trials now (rerun to continue)")
    parser.add_argument("--diagnose", action="store_true",
                        help="after the sweeps, run yolo-attn diagnose on each sweep's checkpoints (linked from study.md; "
                             "a finished study rerun with --diagnose is diagnosed without training again)")
    parser.add_argument("--margin", type=float, help="every sweep of the study declares its decision rule before its "
                        "first trial with this margin (mAP50-95; compare --margin, docs/decisions.md); each sweep's "
                        "decisions are listed under 'What was run'")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from ..studies import StudyOptions, get, run_study
    from .compare import stock_weights_path

    opts = StudyOptions(data=args.data, layer=args.layer, placement=args.placement, seeds=args.seeds, epochs=args.epochs,
                        imgsz=args.imgsz, scale=args.scale, widths=args.widths, placements=args.placements, out=args.out,
                        batch=args.batch, backend=args.backend, ray_address=args.ray_address, threads=args.threads,
                        cpus_per_trial=args.cpus_per_trial, max_trials=args.max_trials, progress=not args.quiet,
                        diagnose=args.diagnose, pretrained=stock_weights_path(args.pretrained), margin=args.margin)
    res = run_study(get(args.name), opts)
    return 0 if res["complete"] or args.max_trials is not None else 1
