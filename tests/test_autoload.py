"""The activation without an import (_yolo_attn_autoload.py, started by yolo_attn-autoload.pth): a process that
imports Ultralytics and never yolo_attn sees the layers and the shipped configs; a process that never imports
Ultralytics loads nothing; ``YOLO_ATTN_AUTOLOAD=0`` switches it off; Ultralytics' own models are unchanged.

Every check runs fresh interpreters of a throw-away virtual environment that has the activation exactly as the
wheel installs it (the ``.pth`` file and the module in its site-packages) and reaches this interpreter's packages
through a path line. ``.ci/build-check`` runs the stock ``yolo`` command against the installed wheel.
"""

from __future__ import annotations

import json
import pickle
import runpy
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, subprocess_env

PTH, MODULE = "yolo_attn-autoload.pth", "_yolo_attn_autoload.py"


@pytest.fixture(scope="module")
def activated_python(tmp_path_factory) -> Path:
    """``bin/python`` of a venv whose site-packages holds the activation as a wheel installs it."""
    folder = tmp_path_factory.mktemp("activated-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "zz-tests-base.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch, ultralytics...
    for name in (PTH, MODULE):
        shutil.copy(REPO / name, purelib / name)
    return python


def run_python(python: Path, code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=subprocess_env(**{"YOLO_ATTN_AUTOLOAD": "1", **env}),
                          capture_output=True, text=True, timeout=600)


def last_json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


STATE = """
import json, sys
def state(**extra):
    print(json.dumps({"finders": [type(f).__name__ for f in sys.meta_path], "yolo_attn": "yolo_attn" in sys.modules,
                      "module": "_yolo_attn_autoload" in sys.modules, "ultralytics": "ultralytics" in sys.modules,
                      **extra}))
"""


def test_the_pth_file_is_one_import_line():
    finder = runpy.run_path(str(REPO / MODULE))["FINDER"]  # the module by its path: the checkout need not be installed
    lines = (REPO / PTH).read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("import ")  # site.py runs only lines that start with "import"
    assert f'"{MODULE.removesuffix(".py")}"' in lines[0] and f'"{finder}"' in lines[0]


def test_a_process_without_ultralytics_loads_nothing(activated_python, tmp_path):
    got = last_json(run_python(activated_python, STATE + "import json, csv, email.message\nstate()", tmp_path))
    assert "YoloAttnAutoload" in got["finders"]  # twice where site.py reads a venv's .pth files twice (3.11.7)
    assert not (got["yolo_attn"] or got["module"] or got["ultralytics"])


# without the import; with it first (its own hook too); after a library asked whether Ultralytics is installed
@pytest.mark.parametrize("first", ["", "import yolo_attn", "import importlib.util; importlib.util.find_spec('ultralytics')"])
def test_ultralytics_without_import_yolo_attn_builds_a_shipped_config(activated_python, tmp_path, first):
    code = STATE + first + """
from ultralytics import YOLO
model = YOLO("yolov5n-cbam-neck.yaml")
import ultralytics
loader = ultralytics.__spec__.loader
state(cbam=sum(type(m).__name__ == "CBAM" for m in model.model.modules()), loader=type(loader).__name__,
      plain=ultralytics.__loader__ is loader and "exec_module" not in vars(loader))
"""
    got = last_json(run_python(activated_python, code, tmp_path))
    assert got["yolo_attn"] and got["cbam"] > 0
    assert not {"YoloAttnAutoload", "_AfterImport"} & set(got["finders"])  # both gone once Ultralytics is imported
    assert got["loader"] == "SourceFileLoader" and got["plain"]  # Ultralytics keeps its own loader, unchanged


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_switched_off(activated_python, tmp_path, value):
    code = STATE + """
from ultralytics import YOLO
try:
    YOLO("yolov5n-cbam-neck.yaml")
    error = None
except FileNotFoundError as exc:
    error = str(exc)
state(error=error)
"""
    got = last_json(run_python(activated_python, code, tmp_path, YOLO_ATTN_AUTOLOAD=value))
    assert not got["yolo_attn"] and "does not exist" in got["error"]


def test_a_failing_registration_warns_and_ultralytics_still_imports(activated_python, tmp_path):
    broken = tmp_path / "broken" / "yolo_attn"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('broken on purpose')\n")
    proc = run_python(activated_python, STATE + "import ultralytics\nstate()", tmp_path,
                      PYTHONPATH=str(broken.parent))
    got = last_json(proc)
    assert got["ultralytics"] and not got["yolo_attn"]
    assert "RuntimeWarning: yolo_attn: its layers are not registered" in proc.stderr
    assert "broken on purpose" in proc.stderr and "YOLO_ATTN_AUTOLOAD=0" in proc.stderr


STOCK_CONFIGS = ("yolov3-tinyu.yaml", "yolov5n.yaml", "yolov8n.yaml", "yolov8n-seg.yaml", "yolov8n-pose.yaml",
                 "yolov8n-obb.yaml", "yolov8n-cls.yaml", "yolo11n.yaml", "yolo12n.yaml")
DIGESTS = STATE + """
import hashlib, torch
from ultralytics import YOLO
def feed(h, value):
    if isinstance(value, torch.Tensor):
        h.update(value.detach().contiguous().numpy().tobytes())
    elif isinstance(value, (list, tuple)):
        for v in value:
            feed(h, v)
    elif isinstance(value, dict):
        for k in sorted(value):
            feed(h, value[k])
digests = {}
for name in sys.argv[1:]:
    torch.manual_seed(0)
    net = YOLO(name).model.eval()
    h = hashlib.sha256()
    for key, tensor in net.state_dict().items():
        h.update(key.encode())
        feed(h, tensor)
    torch.manual_seed(1)
    with torch.no_grad():
        feed(h, net(torch.rand(1, 3, 64, 64)))
    digests[name] = h.hexdigest()
from ultralytics.nn import tasks
state(digests=digests, wrapped=hasattr(tasks.parse_model, "__wrapped__"))
"""


def test_ultralytics_own_models_are_unchanged(activated_python, tmp_path):
    """Ultralytics' configs build the same weights and outputs (same seed) with the activation on and off."""
    def digests(value: str) -> dict:
        proc = subprocess.run([str(activated_python), "-c", DIGESTS, *STOCK_CONFIGS], cwd=tmp_path, timeout=900,
                              env=subprocess_env(YOLO_ATTN_AUTOLOAD=value), capture_output=True, text=True)
        return last_json(proc)

    on, off = digests("1"), digests("0")
    assert on["yolo_attn"] and on["wrapped"] and not (off["yolo_attn"] or off["wrapped"])  # a real comparison
    assert on["digests"] == off["digests"]
    assert set(on["digests"]) == set(STOCK_CONFIGS)


@pytest.mark.slow
def test_ultralytics_ddp_worker_script_trains_the_attention_model(activated_python, tmp_path, monkeypatch):
    """The worker script Ultralytics writes for multi-GPU training (generate_ddp_file), run in a fresh interpreter
    of the activated environment (on CPU, as the one process of the run), builds and trains the attention model."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils import checks, dist

    from yolo_attn.datasets import shapes_yaml

    monkeypatch.setattr(checks, "check_requirements", lambda *a, **k: True)  # no pip install of cloudpickle here
    monkeypatch.setitem(sys.modules, "cloudpickle", sys.modules.get("cloudpickle", pickle))
    trainer = DetectionTrainer(overrides=dict(model="yolov5n-cbam-neck.yaml", data=str(shapes_yaml()), epochs=1,
                                              imgsz=32, batch=16, workers=0, device="cpu", project=str(tmp_path),
                                              name="ddp", plots=False, val=False, exist_ok=True))
    trainer.model = trainer.get_model(cfg=trainer.args.model, verbose=False)
    # plain pickle stands in for cloudpickle (not installed here): the callbacks it cannot store by name stay out
    trainer.callbacks = {k: [f for f in v if "<" not in getattr(f, "__qualname__", "<")] for k, v in
                         trainer.callbacks.items()}
    ddp_dir = Path(dist.USER_CONFIG_DIR) / "DDP"
    before = set(ddp_dir.glob("*")) if ddp_dir.is_dir() else set()
    try:
        script = Path(dist.generate_ddp_file(trainer))
        proc = subprocess.run([str(activated_python), str(script)], cwd=tmp_path,
                              env=subprocess_env(YOLO_ATTN_AUTOLOAD="1"),
                              capture_output=True, text=True, timeout=900)
    finally:
        for path in set(ddp_dir.glob("*")) - before:
            path.unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "YOLOv5n-cbam-neck summary" in proc.stdout + proc.stderr  # the closing validation of its best.pt
    from yolo_attn.weights import load_checkpoint

    layers = load_checkpoint(tmp_path / "ddp" / "weights" / "last.pt").layers
    assert any(layer.type.endswith("CBAM") for layer in layers)
