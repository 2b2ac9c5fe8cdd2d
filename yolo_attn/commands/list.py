"""``yolo-attn list``: every registered layer with its family, paper and year."""

from __future__ import annotations

import json

HELP = "list registered attention layers (family, paper, year, kind, caveats, measured export support)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--family", help="only layers of this family")


def _export_support() -> dict:
    """layer -> format -> result of the committed export-check matrix (yolo_attn/deploy/support.json)."""
    from ..deploy.matrix import SUPPORT_FILE, per_layer, read_results

    return per_layer(read_results(SUPPORT_FILE)) if SUPPORT_FILE.is_file() else {}


def run(args) -> int:
    from ..deploy.matrix import support_line
    from ..registry import LAYERS

    specs = [s for s in LAYERS if not args.family or s.family == args.family]
    support = _export_support()
    if args.json:
        rows = [{**s.as_dict(), "export": {f: r.status for f, r in support.get(s.name, {}).items()}} for s in specs]
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<18}{'family':<16}{'kind':<10}{'year':<6}{'flags':<22}paper"
    print(header)
    print("-" * len(header))
    for s in specs:
        flags = ",".join(
            f
            for f, on in (
                ("gating", s.gating),
                ("nondeterministic", s.nondeterministic),
                ("no-onnx", not s.onnx),
                (f"overrides:{s.overrides}", bool(s.overrides)),
            )
            if on
        )
        print(f"{s.name:<18}{s.family:<16}{s.kind:<10}{s.year:<6}{flags or '-':<22}{s.paper}")
        if s.note:
            print(f"{'':<18}note: {s.note}")
        if s.name in support:
            print(f"{'':<18}export: {support_line(support[s.name])}")
    if support:
        print("\nexport: measured by `yolo-attn export-check --all-layers` (docs/deploy.md has the versions and reasons).")
    print(f"\n{len(specs)} layers. YAML: [-1, 1, NAME, [args]] for 'preserve' layers, [-1, n, NAME, [c2, ...]] for 'block'.")
    return 0
