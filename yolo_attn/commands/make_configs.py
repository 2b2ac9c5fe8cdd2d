"""``yolo-attn make-configs``: (re)generate the shipped model YAMLs, or check them for drift."""

from __future__ import annotations

HELP = "regenerate the shipped configs (models/yaml) from yolo_attn.configs.shipped_configs(), or --check for drift"


def add_arguments(parser) -> None:
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a shipped file differs from the generator")
    parser.add_argument("--out", help="directory to write to (default: the shipped config directory)")
    parser.add_argument("--list", action="store_true", help="only list the configs the generator defines")


def run(args) -> int:
    from ..configs import config_dir, shipped_configs
    from ..placement import generate_configs

    if args.list:
        for name, layer, layer_args, placements in shipped_configs():
            print(f"{name:<48}{layer or '-':<18}{layer_args!s:<20}{' '.join(map(str, placements))}")
        return 0
    out = args.out or config_dir()
    report = generate_configs(out, check=args.check)
    if args.check:
        for name in report.drifted:
            print(f"drift: {name} differs from what the generator produces (run yolo-attn make-configs)")
        for name in report.stale:
            print(f"stale: {name} is generated but no longer defined by shipped_configs()")
        print(f"{out}: {len(report.unchanged)} configs up to date, {len(report.drifted)} drifted, {len(report.stale)} stale")
    else:
        for name in report.removed:
            print(f"removed stale {name}")
        print(f"{out}: wrote {len(report.written)}, unchanged {len(report.unchanged)}, removed {len(report.removed)}")
    for layer, names in sorted(report.skipped.items()):
        print(f"skipped {len(names)} configs: layer {layer} is not registered ({', '.join(names)})")
    return 0 if report.ok else 1
