"""``yolo-attn list``: every registered layer with its family, paper and year."""

from __future__ import annotations

import json

HELP = "list registered attention layers (family, paper, year, kind, caveats)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--family", help="only layers of this family")


def run(args) -> int:
    from ..registry import LAYERS

    specs = [s for s in LAYERS if not args.family or s.family == args.family]
    if args.json:
        print(json.dumps([s.as_dict() for s in specs], indent=2))
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
    print(f"\n{len(specs)} layers. YAML: [-1, 1, NAME, [args]] for 'preserve' layers, [-1, n, NAME, [c2, ...]] for 'block'.")
    return 0
