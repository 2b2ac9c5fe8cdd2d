"""``yolo-attn list``: every registered layer with its family, paper and year."""

from __future__ import annotations

import json

HELP = "list registered attention layers (family, paper, year, kind, caveats, measured export and fp16/bf16 support)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--family", help="only layers of this family")


def _export_support() -> dict:
    """layer -> format -> result of the committed export-check matrix (yolo_attn/deploy/support.json)."""
    from ..deploy.matrix import SUPPORT_FILE, per_layer, read_results

    return per_layer(read_results(SUPPORT_FILE)) if SUPPORT_FILE.is_file() else {}


def _half_precision() -> dict:
    """layer -> {"fp16": summary, "bf16": summary} of the committed half-precision table (modules/half_precision.json)."""
    from ..modules._precision import half_summary, read_results

    return {name: half_summary(layer) for name, layer in read_results().get("layers", {}).items()}


def run(args) -> int:
    from ..deploy.matrix import support_line
    from ..registry import LAYERS

    specs = [s for s in LAYERS if not args.family or s.family == args.family]
    support, half = _export_support(), _half_precision()
    if args.json:
        rows = [{**s.as_dict(), "export": {f: r.status for f, r in support.get(s.name, {}).items()},
                 "half": half.get(s.name, {})} for s in specs]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<18}{'family':<16}{'kind':<10}{'year':<6}{'flags':<22}{'fp16/bf16':<11}paper"
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
        h = half.get(s.name, {})
        short = "/".join(h.get(d, "-").split(" (")[0].replace("inaccurate", "inacc") for d in ("fp16", "bf16"))
        print(f"{s.name:<18}{s.family:<16}{s.kind:<10}{s.year:<6}{flags or '-':<22}{short:<11}{s.paper}")
        if s.note:
            print(f"{'':<18}note: {s.note}")
        if s.name in support:
            print(f"{'':<18}export: {support_line(support[s.name])}")
        if any(v != "ok" for v in h.values()):
            print(f"{'':<18}half: {', '.join(f'{d} {v}' for d, v in h.items() if v != 'ok')}")
    if half:
        print("\nfp16/bf16: measured on CPU by benchmarks/half_precision.py (benchmarks/results/half_precision.md).")
    if support:
        print("\nexport: measured by `yolo-attn export-check --all-layers` (docs/deploy.md has the versions and reasons).")
    print(f"\n{len(specs)} layers. YAML: [-1, 1, NAME, [args]] for 'preserve' layers, [-1, n, NAME, [c2, ...]] for 'block'.")
    return 0
