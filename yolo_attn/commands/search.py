"""``yolo-attn search``: budgeted placement search (successive halving or Ray Tune ASHA) + confirmation on new seeds."""

from __future__ import annotations

HELP = "search layer x placement candidates (successive halving / ASHA), confirm the survivors on new seeds"


def add_arguments(parser) -> None:
    parser.add_argument("--data", help="dataset YAML (default: the shipped shapes dataset)")
    parser.add_argument("--layers", nargs="+", default=["SE", "CBAM", "ECA"], help="attention layers (default SE CBAM ECA)")
    parser.add_argument("--placements", nargs="+", default=["backbone-end", "neck", "c3-backbone"],
                        help="placements (default backbone-end neck c3-backbone)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--budget", type=float, metavar="HOURS", help="wall-clock budget of training (checked before each rung)")
    g.add_argument("--max-trials", type=int, help="at most this many trials in all (rungs + confirmation)")
    parser.add_argument("--min-epochs", type=int, default=2, help="epochs of the first rung (default 2)")
    parser.add_argument("--max-epochs", type=int, default=8, help="epochs of the last rung and the confirmation (default 8)")
    parser.add_argument("--eta", type=int, default=2, help="keep the best 1/eta at each rung (default 2)")
    parser.add_argument("--keep", type=int, default=2, help="candidates confirmed at the end (default 2)")
    parser.add_argument("--selection-seeds", type=int, default=1, help="seeds per candidate during selection (default 1)")
    parser.add_argument("--confirm-seeds", type=int, default=3, help="new seeds of the confirmation sweep (default 3)")
    parser.add_argument("--imgsz", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--scale", default="n", help="YOLOv5 scale (default n)")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--out", help="search folder (default runs/search/<timestamp>); rerun it to resume")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local: successive halving in-process; ray: Ray Tune's ASHA scheduler")
    parser.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    parser.add_argument("--threads", type=int, help="CPU threads per trial")
    parser.add_argument("--cpus-per-trial", type=int, help="Ray: CPUs per trial (default 1)")
    parser.add_argument("--margin", type=float, help="the confirmation declares its decision rule before its first "
                        "trial with this margin of a difference worth having (mAP50-95; compare --margin, "
                        "docs/decisions.md): each survivor is better, worse, equivalent within ±margin or undecided")
    parser.add_argument("--until-decided", action="store_true", help="the confirmation's seeds run in rounds "
                        "(compare --until-decided: looks at 3, 5, 7 below --confirm-seeds, then --confirm-seeds) and a "
                        "survivor stops training once decided")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from ..studies.search import Search, SearchOptions

    opts = SearchOptions(layers=args.layers, placements=args.placements, data=args.data, budget_hours=args.budget,
                         max_trials=args.max_trials, min_epochs=args.min_epochs, max_epochs=args.max_epochs, eta=args.eta,
                         keep=args.keep, selection_seeds=args.selection_seeds, confirm_seeds=args.confirm_seeds,
                         imgsz=args.imgsz, scale=args.scale, batch=args.batch, out=args.out, backend=args.backend,
                         ray_address=args.ray_address, threads=args.threads, cpus_per_trial=args.cpus_per_trial,
                         progress=not args.quiet, margin=args.margin, until_decided=args.until_decided)
    res = Search(opts).run()
    print(f"report: {res['out']}/search.md (also search.json, pareto.png)")
    return 0 if res["complete"] else 1
