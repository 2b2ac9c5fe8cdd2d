"""Every registered layer in fp16 and bf16 holds to its recorded result (``yolo_attn/modules/half_precision.json``,
written by ``benchmarks/half_precision.py``; what is measured: ``yolo_attn/modules/_precision.py``).

A recorded pass (``ok``, finite output and gradients, exact identity start) must still pass; the layers that compute a
part in float32 must be finite at the large scales in both types. A layer recorded as failing may improve (rerun the
benchmark to record it). The float32 path of those layers is covered, value for value, by tests/modules/.
"""

from __future__ import annotations

import pytest
import torch

from yolo_attn.modules import _common
from yolo_attn.modules import _precision as hp

from conftest import SPECS, spec_params

RECORDED = hp.read_results()


def test_every_layer_is_recorded():
    assert RECORDED, f"{hp.RESULT_FILE} is missing: run python benchmarks/half_precision.py"
    assert sorted(RECORDED["layers"]) == sorted(s.name for s in SPECS), "rerun python benchmarks/half_precision.py"
    for name, by_dtype in RECORDED["layers"].items():
        assert sorted(by_dtype) == sorted(hp.DTYPES), name
        for by_scenario in by_dtype.values():
            assert sorted(by_scenario) == sorted(hp.SCENARIOS), name
    assert set(hp.FLOAT32_PARTS) <= set(RECORDED["layers"])


def _held(recorded: dict, now: dict, where: str) -> list[str]:
    """What passed when recorded and fails now."""
    failures = []
    if recorded["status"] == hp.OK and now["status"] != hp.OK:
        failures.append(f"{where}: recorded ok, now {now['status']} (output error {now['out']})")
    for key in ("finite_out", "finite_grad", "identity"):
        if recorded[key] is True and now[key] is not True:
            failures.append(f"{where}: {key} recorded True, now {now[key]}")
    return failures


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_layer_holds_its_recorded_half_precision(spec):
    torch.manual_seed(0)
    now = hp.measure_layer(spec)
    recorded = RECORDED["layers"][spec.name]
    failures = []
    for dtype, by_scenario in recorded.items():
        for scenario, entry in by_scenario.items():
            failures += _held(entry, now[dtype][scenario], f"{spec.name} {dtype} {scenario}")
            large = hp.SCENARIOS[scenario].large and now[dtype][scenario]["status"] != hp.NOT_RUN
            if spec.name in hp.FLOAT32_PARTS and large and now[dtype][scenario]["status"] == hp.OVERFLOW:
                failures.append(f"{spec.name} {dtype} {scenario}: computes in float32 but overflows")
    assert not failures, "\n".join(failures)


def test_fixed_layers_were_finite_and_exact_when_recorded():
    """The recorded file itself: every layer with a float32 part is finite and starts exactly at the large scales."""
    for name in hp.FLOAT32_PARTS:
        for dtype, by_scenario in RECORDED["layers"][name].items():
            for scenario, entry in by_scenario.items():
                if entry["status"] == hp.NOT_RUN:
                    continue
                assert entry["finite_out"] and entry["finite_grad"], f"{name} {dtype} {scenario}: {entry}"
                assert entry["identity"] is not False, f"{name} {dtype} {scenario}: identity start not exact"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_in_float32_runs_in_float32_and_returns_the_input_dtype(dtype):
    seen = []

    def fn(a, b):
        seen.append((a.dtype, b.dtype))
        return (a * b).pow(2).sum((2, 3), keepdim=True)

    x = torch.full((1, 2, 8, 8), 300.0, dtype=dtype)
    y = _common.in_float32(fn, x, x)
    assert seen == [(torch.float32, torch.float32)] and y.dtype == dtype
    if dtype == torch.float16:
        assert torch.isinf(fn(x, x)).all()  # what it avoids: 300^4 * 64 > 65504
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast is off inside: a matmul stays in float32
        z = _common.in_float32(lambda a: a @ a.transpose(-1, -2), torch.ones(2, 3))
    assert z.dtype == torch.float32


def test_mean_over_matches_float32_and_keeps_float32_bits():
    x = torch.rand(2, 3, 80, 80) * 30
    assert torch.equal(_common.mean_over(x, (2, 3)), x.sum((2, 3), keepdim=True) * (1.0 / 6400))
    half = _common.mean_over(x.half(), (2, 3))
    assert half.dtype == torch.float16 and half.isfinite().all()
    torch.testing.assert_close(half.float(), x.half().float().mean((2, 3), keepdim=True), rtol=1e-3, atol=0)
