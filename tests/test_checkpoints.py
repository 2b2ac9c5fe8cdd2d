"""Checkpoints of attention models load again in a fresh process, also under restricted loading, and a
checkpoint naming a yolo_attn module this installation lacks fails clearly instead of pip-installing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import torch
from torch import nn

import yolo_attn
from yolo_attn._ultralytics import MissingLayerModuleError

from conftest import PYTHON, SPECS, default_row, seeded, subprocess_env, write_model_yaml


IMGSZ = 64


def _run(script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=subprocess_env(**env),
        timeout=300,
        cwd="/",  # not the checkout: yolo_attn must come from the installed package / PYTHONPATH only
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """yolov5n with every registered layer before SPPF, saved with ``YOLO.save`` (fp16 weights, as Ultralytics does)."""
    from ultralytics import YOLO

    d = tmp_path_factory.mktemp("ckpt")
    seeded(0)
    yolo = YOLO(str(write_model_yaml(d, "n", [default_row(s) for s in SPECS], tag="all")))
    path = d / "best.pt"
    yolo.save(path)

    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(3))
    ref = yolo.model.half().float().eval()  # exactly the weights in the file
    with torch.no_grad():
        y = ref(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    torch.save({"x": x, "y": y}, d / "io.pt")
    img = (np.random.default_rng(0).random((IMGSZ, IMGSZ, 3)) * 255).astype(np.uint8)
    np.save(d / "img.npy", img)
    return d


LOAD_AND_PREDICT = """
    import json, sys
    import numpy as np, torch
    {pre}
    before = "yolo_attn" in sys.modules
    from ultralytics import YOLO
    m = YOLO(r"{d}/best.pt")
    io = torch.load(r"{d}/io.pt")
    with torch.no_grad():
        y = m.model.eval()(io["x"])
    y = y[0] if isinstance(y, (list, tuple)) else y
    r = m.predict(np.load(r"{d}/img.npy"), imgsz={imgsz}, conf=0.0001, verbose=False)[0]
    types = sorted({{type(l).__module__ + "." + type(l).__qualname__ for l in m.model.model}})
    print("RESULT" + json.dumps({{
        "imported_before_load": before,
        "max_diff": (y - io["y"]).abs().max().item(),
        "shape_ok": tuple(y.shape) == tuple(io["y"].shape),
        "boxes": r.boxes.data.tolist(),
        "types": types,
    }}))
"""


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _in_process_boxes(d) -> list:
    from ultralytics import YOLO

    r = YOLO(str(d / "best.pt")).predict(np.load(d / "img.npy"), imgsz=IMGSZ, conf=0.0001, verbose=False)[0]
    return r.boxes.data.tolist()


def _check(res: dict, d) -> None:
    assert res["shape_ok"]
    assert res["max_diff"] < 1e-4, f"loaded model predicts differently: max |diff| = {res['max_diff']}"
    for spec in SPECS:
        assert f"{spec.cls.__module__}.{spec.cls.__qualname__}" in res["types"], f"{spec.name} not in loaded model"
    boxes = _in_process_boxes(d)
    assert len(res["boxes"]) == len(boxes) and len(boxes) > 0
    np.testing.assert_allclose(np.array(res["boxes"]), np.array(boxes), rtol=1e-4, atol=1e-3)


def test_checkpoint_loads_in_fresh_process_without_importing_yolo_attn(saved):
    res = _result(_run(LOAD_AND_PREDICT.format(pre="", d=saved, imgsz=IMGSZ)))
    assert res["imported_before_load"] is False  # unpickling imported it
    _check(res, saved)


def test_checkpoint_loads_under_ultralytics_safe_load(saved):
    res = _result(
        _run(LOAD_AND_PREDICT.format(pre="import yolo_attn", d=saved, imgsz=IMGSZ), ULTRALYTICS_SAFE_LOAD=1)
    )
    assert res["imported_before_load"] is True
    _check(res, saved)


def test_safe_load_without_import_fails_without_installing(saved):
    """``torch.load(weights_only=True)`` never imports modules, so restricted loading needs ``import yolo_attn``
    first. Without it the load must fail (Ultralytics' format error), and never try to pip-install anything."""
    import ultralytics.nn.tasks as tasks

    if not hasattr(tasks, "_SafeLoad"):
        pytest.skip("this Ultralytics version has no ULTRALYTICS_SAFE_LOAD")

    proc = _run(
        f"""
        import ultralytics.nn.tasks as t, ultralytics.utils.checks as c
        def no_install(*a, **k):
            raise SystemExit("check_requirements called: " + repr(a))
        t.check_requirements = c.check_requirements = no_install
        from ultralytics import YOLO
        YOLO(r"{saved}/best.pt")
        """,
        ULTRALYTICS_SAFE_LOAD=1,
    )
    assert proc.returncode != 0
    assert "check_requirements called" not in proc.stderr
    assert "TypeError" in proc.stderr and "best.pt" in proc.stderr


# ------------------------------------------------------------------------------------------------
# a checkpoint naming a yolo_attn module this installation does not have
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def missing_module_ckpt(tmp_path_factory):
    """A trainer-style checkpoint whose model pickles ``yolo_attn.modules.nosuch.Foo``, which does not exist."""
    name = "yolo_attn.modules.nosuch"
    mod = types.ModuleType(name)

    class Foo(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

    Foo.__module__, Foo.__qualname__ = name, "Foo"
    mod.Foo = Foo
    sys.modules[name] = mod
    try:
        path = tmp_path_factory.mktemp("missing") / "best.pt"
        torch.save({"model": nn.Sequential(Foo()).half(), "train_args": {}, "epoch": -1}, path)
    finally:
        del sys.modules[name]
    return path


@pytest.fixture
def forbid_pip(monkeypatch):
    """Fail the test if Ultralytics' check_requirements (its pip auto-install) is called at all."""
    import ultralytics.nn.tasks as tasks
    import ultralytics.utils.checks as checks

    calls = []

    def fail(*args, **kwargs):
        calls.append(args)
        pytest.fail(f"check_requirements called with {args}: Ultralytics would pip-install it")

    monkeypatch.setattr(tasks, "check_requirements", fail)
    monkeypatch.setattr(checks, "check_requirements", fail)
    return calls


@pytest.mark.parametrize("safe_only", [False, True], ids=["default", "safe_only"])
def test_missing_module_raises_clear_error(missing_module_ckpt, forbid_pip, safe_only):
    from ultralytics.nn.tasks import torch_safe_load

    with pytest.raises(MissingLayerModuleError) as e:
        torch_safe_load(missing_module_ckpt, safe_only=safe_only)
    msg = str(e.value)
    assert "yolo_attn.modules.nosuch" in msg and yolo_attn.__version__ in msg and "best.pt" in msg
    assert isinstance(e.value, ModuleNotFoundError)  # callers catching ModuleNotFoundError still do
    assert not forbid_pip


def test_missing_module_through_yolo(missing_module_ckpt, forbid_pip):
    from ultralytics import YOLO

    with pytest.raises(MissingLayerModuleError, match="nosuch"):
        YOLO(str(missing_module_ckpt))
    assert not forbid_pip


def test_missing_module_in_fresh_process_never_pip_installs(missing_module_ckpt):
    """Fresh process, yolo_attn not imported first: Ultralytics' own torch_safe_load is already running when the
    unpickler imports yolo_attn, so the guard on check_requirements must stop the auto-install."""
    proc = _run(
        f"""
        import sys
        import ultralytics.nn.tasks as t, ultralytics.utils.checks as c
        def no_install(*a, **k):
            print("PIP-INSTALL-ATTEMPT", a, flush=True)
            raise SystemExit(3)
        t.check_requirements = c.check_requirements = no_install
        from ultralytics import YOLO
        try:
            YOLO(r"{missing_module_ckpt}")
        except Exception as e:
            print("RAISED", type(e).__module__ + "." + type(e).__name__, e)
        """
    )
    assert "PIP-INSTALL-ATTEMPT" not in proc.stdout, proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RAISED yolo_attn._ultralytics.safe_load.MissingLayerModuleError" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "yolo_attn.modules.nosuch" in proc.stdout
    # Ultralytics' own handler ran (it warns before calling check_requirements): the guard, not the wrapper, stopped it
    assert "appears to require 'yolo_attn.modules.nosuch'" in proc.stdout + proc.stderr


def test_info_on_a_checkpoint(saved, capsys):
    from yolo_attn.cli import main
    from yolo_attn.models import build_model

    model = build_model(saved / "best.pt")
    assert any(m.type.startswith("yolo_attn.") for m in model.model)
    assert main(["info", str(saved / "best.pt"), "--imgsz", "64"]) == 0


def test_safe_read_keeps_a_class_branch_widened_by_transfer(tmp_path):
    """A transfer between class counts keeps the source's class-branch width; reading the written checkpoint back
    (safe reader, as `train model=X.pt` and `compare --pretrained` do) must rebuild that width, not fail or drop it."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_attn.weights import save_model_checkpoint
    from yolo_attn.weights import read_model_checkpoint
    from yolo_attn.weights import transfer_weights

    stock = DetectionModel("yolov5n.yaml", nc=80, verbose=False)
    target = DetectionModel("yolov5n.yaml", nc=4, verbose=False)
    narrow = tuple(target.model[-1].cv3[0][0].conv.weight.shape)
    report = transfer_weights(stock, target)
    assert report.head_adapted and tuple(target.model[-1].cv3[0][0].conv.weight.shape) != narrow
    path = save_model_checkpoint(target, tmp_path / "t.pt", half=False)
    back = read_model_checkpoint(path)
    want, got = target.state_dict(), back.state_dict()
    assert set(want) == set(got)
    for k in want:
        assert got[k].shape == want[k].shape, k
        assert torch.equal(got[k].to(want[k].dtype), want[k]), k


# ------------------------------------------------------------------------------------------------
# plain Ultralytics on a machine without yolo_attn: what it tries to install, and the settings that stop it
# ------------------------------------------------------------------------------------------------
WITHOUT_YOLO_ATTN = """
    import importlib.abc, json, subprocess, sys
    class NotInstalled(importlib.abc.MetaPathFinder):  # this machine has no yolo_attn
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "yolo_attn":
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, NotInstalled())
    import ultralytics.utils.checks as checks
    version = checks.metadata.version
    def no_metadata(name):  # nor its distribution metadata
        if name.replace("-", "_") == "yolo_attn":
            raise checks.metadata.PackageNotFoundError(name)
        return version(name)
    checks.metadata.version = no_metadata
    if {online}:
        checks.ONLINE = True  # as on a machine with network access
    pip = []
    def no_pip(cmd, *a, **k):  # records the install command instead of running it
        pip.append(cmd)
        raise subprocess.CalledProcessError(1, cmd, output="not run by the test")
    checks.subprocess.check_output = no_pip
    checks.check_uv = lambda: False  # the pip route (uv would run the same install)
    from ultralytics import YOLO
    try:
        YOLO(r"{path}")
    except BaseException as exc:
        err = type(exc).__name__ + ": " + str(exc)
    print("RESULT" + json.dumps({{"pip": pip, "error": err}}))
"""


@pytest.mark.parametrize("env, online, installs", [
    ({"YOLO_OFFLINE": "0"}, True, True),  # the default with network access: pip install yolo_attn
    ({"YOLO_OFFLINE": "1"}, False, False),
    ({"YOLO_OFFLINE": "0", "YOLO_AUTOINSTALL": "False"}, True, False),
    ({"YOLO_OFFLINE": "0", "ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS": "1"}, True, False),
    ({"YOLO_OFFLINE": "0", "ULTRALYTICS_SAFE_LOAD": "1"}, True, False),
], ids=["default", "YOLO_OFFLINE", "YOLO_AUTOINSTALL", "SKIP_REQUIREMENTS_CHECKS", "SAFE_LOAD"])
def test_without_yolo_attn_ultralytics_would_pip_install_it_unless_told_not_to(saved, env, online, installs):
    """What the README's warning says: Ultralytics answers the missing module by ``pip install yolo_attn`` (whatever
    an index serves under that name), and these settings stop it; the load fails either way."""
    proc = _run(WITHOUT_YOLO_ATTN.format(online=online, path=saved / "best.pt"), **env)
    res = _result(proc)
    assert res["error"], "the checkpoint cannot load without yolo_attn"
    if installs:
        assert len(res["pip"]) >= 1 and all(cmd[-1] == "yolo_attn" and "install" in cmd for cmd in res["pip"])
    else:
        assert res["pip"] == [], res
