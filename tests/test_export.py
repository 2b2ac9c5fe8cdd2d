"""Every layer whose spec says ``onnx=True`` exports through Ultralytics' ONNX export inside a yolov5n model,
and ONNX Runtime's output matches PyTorch's. Layers with ``onnx=False`` are skipped, with that reason.

``simplify=False`` keeps the export to the ``onnx`` requirement alone (no onnxslim, no auto-install).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SPECS, default_row, seeded, spec_params

pytestmark = pytest.mark.slow  # slow-ish (seconds per layer) but part of the default run

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

IMGSZ = 64


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_onnx_export_matches_pytorch(spec, make_yaml, tmp_path, monkeypatch):
    if not spec.onnx:
        pytest.skip(f"{spec.name}: onnx=False in its spec ({spec.note or 'no note'})")
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)  # Ultralytics writes the export of a YAML-built model into the cwd

    seeded(0)
    model = YOLO(str(make_yaml("n", default_row(spec), tag=spec.name.lower())))
    f = model.export(format="onnx", imgsz=IMGSZ, simplify=False, dynamic=False, half=False, verbose=False)
    assert f and str(f).endswith(".onnx") and Path(f).resolve().parent == tmp_path.resolve(), f

    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(11))
    sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
    y_onnx = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        y = model.model.eval()(x)
    y = (y[0] if isinstance(y, (list, tuple)) else y).numpy()
    assert y_onnx.shape == y.shape
    np.testing.assert_allclose(y_onnx, y, rtol=1e-3, atol=1e-3, err_msg=f"{spec.name}: ONNX Runtime != PyTorch")


def test_layers_without_onnx_are_listed_as_such(capsys):
    from yolo_attn.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in SPECS:
        line = next(l for l in out.splitlines() if l.startswith(spec.name + " "))
        assert ("no-onnx" in line) == (not spec.onnx)
        if not spec.onnx:
            assert spec.note, f"{spec.name}: onnx=False needs a note saying why"
