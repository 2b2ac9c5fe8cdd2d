"""AMP on a GPU: what ``benchmarks/half_precision.py`` cannot measure on CPU. Needs CUDA (exits 2 without it).

    python benchmarks/amp_gpu.py [--steps 5] [--out benchmarks/results]

1. Forward of every registered layer on CUDA in fp16 (``module.half()``, as Ultralytics' half validation) and under
   ``torch.autocast("cuda", torch.float16)`` (as its AMP training), on the large activations of
   ``yolo_attn/modules/_precision.py`` (``large`` and ``large-map`` scenarios): finite output, relative error
   against float32 on the same GPU, and the backward's finiteness under autocast.
2. AMP training of a tiny attention model (``Conv -> layer -> Conv``, every preserve layer in turn) for a few steps
   with ``torch.autocast`` and ``torch.amp.GradScaler``: every loss finite, the scaler's final scale.

Writes ``amp_gpu.json`` and ``amp_gpu.md`` into ``--out``. A short script: about a minute on one GPU.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def forward_checks(spec, scenario) -> dict:
    """fp16 and autocast forward of one layer on CUDA against float32; the autocast backward's finiteness."""
    import torch

    from yolo_attn.modules import _precision as hp

    if scenario.shape[2] > 16 and spec.name in hp.QUADRATIC:
        return {"status": hp.NOT_RUN}
    torch.manual_seed(0)
    m = hp._trained_like(hp.build(spec, scenario.shape[1]), 0).cuda()
    x = hp.activations(scenario).cuda()
    with torch.no_grad():
        ref = m(x)
        half = copy.deepcopy(m).half()(x.half())
    xg = x.clone().requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.float16):
        amp = m(xg)
    amp.float().mul(torch.randn_like(ref)).sum().backward()
    grads = [xg.grad] + [p.grad for p in m.parameters() if p.grad is not None]
    return {
        "half_finite": bool(half.isfinite().all()),
        "half_rel": hp._relative(half, ref) if half.isfinite().all() else None,
        "amp_finite": bool(amp.isfinite().all()),
        "amp_rel": hp._relative(amp, ref) if amp.isfinite().all() else None,
        "amp_grad_finite": all(bool(g.isfinite().all()) for g in grads),
    }


def train_tiny(spec, steps: int) -> dict:
    """A few AMP training steps of ``Conv(3, 32) -> layer -> Conv(32, 8)`` on random data; finite losses, scale."""
    import torch
    from torch import nn

    from yolo_attn.modules import _precision as hp

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.SiLU(), hp.build(spec, 32), nn.Conv2d(32, 8, 1)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    losses = []
    for step in range(steps):
        x = torch.randn(8, 3, 64, 64, device="cuda") * (1 + 10 * step)  # the scale grows: large activations
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    finite = all(torch.isfinite(torch.tensor(losses)).tolist())
    return {"losses_finite": finite, "losses": [float(f"{v:.4g}") for v in losses], "final_scale": scaler.get_scale()}


def markdown(results: dict) -> str:
    lines = ["| layer | scenario | fp16 finite | fp16 rel | autocast finite | autocast rel | autocast grads finite |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, by_scenario in results["forward"].items():
        for scenario, r in by_scenario.items():
            if "half_finite" not in r:
                continue
            cells = [r["half_finite"], r["half_rel"], r["amp_finite"], r["amp_rel"], r["amp_grad_finite"]]
            lines.append(f"| {name} | {scenario} | " + " | ".join("-" if c is None else f"{c:.2e}" if isinstance(c, float)
                                                                 else str(c) for c in cells) + " |")  # fmt: skip
    lines += ["", "| layer | AMP losses finite | final loss scale |", "|---|---|---|"]
    lines += [f"| {n} | {r['losses_finite']} | {r['final_scale']:g} |" for n, r in results["training"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="AMP training steps per layer")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder for amp_gpu.json/.md")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("amp_gpu.py: CUDA is not available here; run this script on a machine with an NVIDIA GPU "
              "(the CPU half-precision table is benchmarks/half_precision.py).", file=sys.stderr)  # fmt: skip
        return 2
    from yolo_attn._io import atomic_write, atomic_write_json
    from yolo_attn._versions import installed_versions
    from yolo_attn.modules import _precision as hp
    from yolo_attn.registry import LAYERS

    results = {"device": torch.cuda.get_device_name(), "versions": installed_versions(["torch", "ultralytics"]),
               "forward": {}, "training": {}}  # fmt: skip
    for spec in LAYERS:
        results["forward"][spec.name] = {n: forward_checks(spec, hp.SCENARIOS[n]) for n in ("large", "large-map")}
        if spec.kind == "preserve":
            results["training"][spec.name] = train_tiny(spec, args.steps)
        print(spec.name, results["forward"][spec.name], results["training"].get(spec.name), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "amp_gpu.json", results)
    atomic_write(args.out / "amp_gpu.md", f"# AMP on {results['device']}\n\n" + markdown(results))
    print(f"written: {args.out / 'amp_gpu.json'}, {args.out / 'amp_gpu.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
