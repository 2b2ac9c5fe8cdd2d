"""Every registered layer in fp16 and bf16 against float32, on CPU: the recorded half-precision table.

    python benchmarks/half_precision.py                  # all layers; writes the two files below
    python benchmarks/half_precision.py --layers SimAM MHSA --out /tmp/hp.json   # a subset, elsewhere
    python benchmarks/half_precision.py --render-only    # re-render the Markdown table from the JSON

What one measurement is (inputs, reference, errors, identity start): ``yolo_attn/modules/_precision.py``. Writes
``yolo_attn/modules/half_precision.json`` (shipped; ``yolo-attn list`` shows it and
``tests/test_half_precision.py`` holds every layer to it) and ``benchmarks/results/half_precision.md``. One
intra-op thread (the numbers do not depend on it; the run takes about a minute on one core). AMP on a GPU:
``benchmarks/amp_gpu.py``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARKDOWN = ROOT / "benchmarks" / "results" / "half_precision.md"


def _rounded(value):
    return float(f"{value:.3g}") if isinstance(value, float) else value


def measure(names=None) -> dict:
    """``{layer: {dtype: {scenario: entry}}}`` for the registered layers (``names``: a subset)."""
    from yolo_attn.modules import _precision as hp
    from yolo_attn.registry import LAYERS

    layers = {}
    for spec in LAYERS:
        if names and spec.name not in names:
            continue
        start = time.perf_counter()
        result = hp.measure_layer(spec)
        layers[spec.name] = {d: {s: {k: _rounded(v) for k, v in e.items()} for s, e in by.items()} for d, by in result.items()}
        print(f"{spec.name:<18}{time.perf_counter() - start:6.1f} s  {hp.half_summary(layers[spec.name])}", flush=True)
    return layers


def settings() -> dict:
    from yolo_attn.modules import _precision as hp

    scenarios = {s.name: {"shape": list(s.shape), "large": s.large} for s in hp.SCENARIOS.values()}
    return {"device": "cpu", "cpu": platform.processor() or platform.machine(), "threads": 1, "scenarios": scenarios,
            "outlier": hp.OUTLIER, "outlier_rate": hp.OUTLIER_RATE, "tolerance": hp.TOLERANCE}  # fmt: skip


def _cell(entry: dict) -> str:
    if entry["out"] is None:
        return entry["status"]
    grad = max(entry["grad_x"], entry["grad_w"])
    return f"{entry['status']} {entry['out']:.1e} / {grad:.1e}"


def _identity(by_scenario: dict) -> str:
    values = {name: e["identity"] for name, e in by_scenario.items() if e["identity"] is not None}
    if not values:
        return "n/a"
    failed = [name for name, exact in values.items() if not exact]
    return "exact" if not failed else f"NOT exact ({', '.join(failed)})"


def markdown(results: dict) -> str:
    """The table of a results file: per layer and type, each scenario's status, output / gradient error, identity."""
    from yolo_attn.modules import _precision as hp

    names = list(hp.SCENARIOS)
    lines = [
        "| layer | type | " + " | ".join(names) + " | identity start |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for layer, by_dtype in results["layers"].items():
        for dtype, by_scenario in by_dtype.items():
            cells = " | ".join(_cell(by_scenario[n]) for n in names)
            lines.append(f"| {layer} | {dtype} | {cells} | {_identity(by_scenario)} |")
    return "\n".join(lines) + "\n"


def render(results: dict, path: Path = MARKDOWN) -> None:
    from yolo_attn.modules import _precision as hp

    shapes = ", ".join(f"{n} {'x'.join(map(str, s['shape']))}" for n, s in results["settings"]["scenarios"].items())
    text = (
        "# Half precision per layer (CPU)\n\n"
        "Written by `python benchmarks/half_precision.py` (what is measured: `yolo_attn/modules/_precision.py`).\n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in results['versions'].items())}; CPU: {results['settings']['cpu']}.\n"
        f"Inputs: {shapes}; training mode, forward and backward. A cell: status, max relative error of the output /\n"
        "of the gradients (input and parameters), against float32 on the same rounded input and parameters. Status\n"
        f"`ok`: finite and output error <= {results['settings']['tolerance']}; `overflow`: a non-finite output or\n"
        "gradient; `inaccurate`: finite, output error above that; `n/a`: an (HW)^2 layer on the 80 x 80 map.\n"
        "Identity start: `init=identity` (every `fuse`) returns its half input bit for bit, training and eval mode.\n\n"
        f"Layers computing a part in float32 under fp16/bf16/autocast: {', '.join(f'{k} ({v})' for k, v in hp.FLOAT32_PARTS.items())}.\n\n"
        + markdown(results)
    )
    path.write_text(text, encoding="utf-8")
    print(f"written: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", nargs="+", help="only these layers")
    parser.add_argument("--out", type=Path, help="results file (default: the shipped yolo_attn/modules/half_precision.json)")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="Markdown table to write")
    parser.add_argument("--render-only", action="store_true", help="only re-render the Markdown from the results file")
    args = parser.parse_args()

    import torch

    from yolo_attn._io import atomic_write_json
    from yolo_attn._versions import installed_versions
    from yolo_attn.modules import _precision as hp

    out = args.out or hp.RESULT_FILE
    if not args.render_only:
        torch.set_num_threads(1)
        results = {"settings": settings(), "versions": installed_versions(["torch", "ultralytics"]),
                   "layers": measure(args.layers)}  # fmt: skip
        atomic_write_json(out, results)
        print(f"written: {out}")
    render(hp.read_results(out), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
