"""Shared fixtures and helpers for the yolo_attn tests.

Everything here runs offline: ``YOLO_OFFLINE=1`` is set before Ultralytics is imported (subprocesses
inherit it) and an autouse fixture makes any attempt to open a network connection fail the test.

The suite leaves nothing behind: Ultralytics' settings file, and the dataset, weights and runs folders it
names, live in a temporary ``YOLO_CONFIG_DIR`` for the session (the user's own settings are never read or
written), and a session check fails when the working tree, or the folder where Ultralytics puts the runs of
an in-process ``train``/``val`` with a relative ``project`` under pytest, gained a file or folder.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported anywhere
os.environ.setdefault("PYTHONHASHSEED", "0")


SESSION_DIR = Path(tempfile.mkdtemp(prefix="yolo-attn-tests-"))  # the session's scratch folder
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
# Ultralytics' settings for the session: every folder it writes inside SESSION_DIR, no usage reports
SESSION_SETTINGS = {**{k: str(SESSION_DIR / k.removesuffix("_dir")) for k in ("datasets_dir", "weights_dir", "runs_dir")},
                    "sync": False}


def _session_settings_file() -> None:
    """Make SESSION_DIR the ``YOLO_CONFIG_DIR`` (inherited by subprocesses), its settings file naming SESSION_SETTINGS.

    Only these keys are written: current Ultralytics completes the file with its defaults on import and keeps
    them (saying so once), older versions reset it, which the update after the import below puts right.
    """
    (SESSION_DIR / "Ultralytics").mkdir()
    (SESSION_DIR / "Ultralytics" / "settings.json").write_text(json.dumps(SESSION_SETTINGS))
    os.environ["YOLO_CONFIG_DIR"] = str(SESSION_DIR)  # not setdefault: the suite never uses the user's own settings


_session_settings_file()  # before ultralytics is imported anywhere

import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import yolo_attn  # noqa: E402
from ultralytics.utils import SETTINGS  # noqa: E402
from yolo_attn import LAYERS  # noqa: E402

SETTINGS.update(SESSION_SETTINGS)  # the file every later process reads, whatever the first import did with it

# One intra-op thread: the tensors here are tiny, and with two OpenMP threads on a busy 2-core machine a yolov5n
# build took 4 s instead of 0.1 s (threads spinning at barriers). YOLO_ATTN_TEST_THREADS overrides.
TEST_THREADS = int(os.environ.get("YOLO_ATTN_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)

REPO = Path(__file__).resolve().parents[1]
SPECS = list(LAYERS)
PRESERVE = [s for s in SPECS if s.kind == "preserve"]
BLOCKS = [s for s in SPECS if s.kind == "block"]
GATING = [s for s in PRESERVE if s.gating]


def spec_params(specs):
    """``pytest.param`` per spec, id = layer name (so ``-k SE`` selects SE's tests)."""
    return [pytest.param(s, id=s.name) for s in specs]


# ------------------------------------------------------------------------------------------------
# Building layers with their default options
# ------------------------------------------------------------------------------------------------
C1 = 64  # input channels of the unit tests


def build_layer(spec, c1: int = C1, **options):
    """A registered layer with default options: ``Cls(c1, **opts)`` (preserve) or ``Cls(c1, c1, 2, **opts)`` (block)."""
    if spec.kind == "block":
        return spec.cls(c1, c1, 2, **options)
    return spec.cls(c1, **options)


def seeded(seed: int = 0) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed: int = 0) -> torch.Tensor:
    """A standard-normal tensor from its own seeded generator (global RNG untouched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def torch_seed():
    """Seed torch's global generator before a test (module tests: ``pytestmark = pytest.mark.usefixtures(...)``)."""
    torch.manual_seed(0)


def sigmoid(a):
    """The logistic function on NumPy values (for expected values computed outside torch)."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(-a))


def spatial_pattern(means: torch.Tensor, h: int = 2, w: int = 2) -> torch.Tensor:
    """A (1, C, h, w) map whose channel c has spatial mean means[c] but is not constant (h, w even)."""
    pattern = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(h // 2, w // 2)
    return means.view(1, -1, 1, 1) + pattern * torch.arange(1, len(means) + 1).view(1, -1, 1, 1)


def randomise_parameters(m: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter a random value (so zero/one defaults cannot hide indexing mistakes); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return m.eval()


# ------------------------------------------------------------------------------------------------
# Model YAMLs: Ultralytics' own yolov5 / yolov5-p6 with one row inserted before SPPF
# ------------------------------------------------------------------------------------------------
def _ultralytics_cfg(name: str) -> dict:
    from ultralytics.utils import ROOT

    return yaml.safe_load((ROOT / "cfg" / "models" / "v5" / name).read_text())


def _shift(f, pos: int, k: int):
    """Renumber a 'from' entry after inserting ``k`` rows at index ``pos`` (negative indices are relative)."""
    if isinstance(f, list):
        return [_shift(x, pos, k) for x in f]
    return f + k if isinstance(f, int) and f >= pos else f


def model_dict(rows, p6: bool = False) -> dict:
    """Ultralytics' YOLOv5 (or YOLOv5-P6) model dict with ``rows`` inserted just before SPPF.

    ``rows`` is one row ``[from, number, module, args]`` or a list of rows. Absolute 'from' indices of the
    layers after the insertion point (head concatenations, Detect inputs) are renumbered.
    """
    single = len(rows) == 4 and not isinstance(rows[2], list)  # [from, number, module, args]
    rows = [rows] if single else list(rows)
    d = _ultralytics_cfg("yolov5-p6.yaml" if p6 else "yolov5.yaml")
    pos = next(i for i, r in enumerate(d["backbone"]) if r[2] == "SPPF")
    k = len(rows)
    d["backbone"] = d["backbone"][:pos] + [list(r) for r in rows] + d["backbone"][pos:]
    all_rows = d["backbone"] + d["head"]
    for i, r in enumerate(all_rows):
        if i >= pos + k:
            r[0] = _shift(r[0], pos, k)
    return d


def write_model_yaml(directory: Path, scale: str, rows, tag: str = "attn", p6: bool = False) -> Path:
    """Write ``yolov5{scale}[-p6]-{tag}.yaml`` (``rows`` before SPPF) into ``directory``; the scale is read from the name."""
    d = model_dict(rows, p6=p6)
    path = Path(directory) / f"yolov5{scale}{'-p6' if p6 else ''}-{tag}.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def sppf_index(p6: bool = False) -> int:
    d = _ultralytics_cfg("yolov5-p6.yaml" if p6 else "yolov5.yaml")
    return next(i for i, r in enumerate(d["backbone"]) if r[2] == "SPPF")


def default_row(spec, **options) -> list:
    """The YAML row that inserts ``spec`` with default options (block layers: 3 repeats, 512 channels before scaling)."""
    args = [512] if spec.kind == "block" else []
    if options:
        args.append(dict(options))
    return [-1, 3 if spec.kind == "block" else 1, spec.name, args]


@pytest.fixture
def make_yaml(tmp_path):
    """``make_yaml(scale, rows, tag='attn', p6=False) -> Path`` writing into the test's tmp dir."""

    def make(scale: str, rows, tag: str = "attn", p6: bool = False) -> Path:
        return write_model_yaml(tmp_path, scale, rows, tag=tag, p6=p6)

    return make


def model_output(model, x: torch.Tensor) -> torch.Tensor:
    """The inference tensor of a DetectionModel in eval mode (Ultralytics returns ``(y, feats)`` or ``y``)."""
    with torch.no_grad():
        y = model(x)
    return y[0] if isinstance(y, (list, tuple)) else y


# ------------------------------------------------------------------------------------------------
# Offline guard
# ------------------------------------------------------------------------------------------------
class NetworkAccess(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that opens an internet connection (Unix sockets stay allowed)."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise NetworkAccess(f"test tried to open a network connection to {address!r}")
        return real_connect(self, address)

    def create_connection(address, *args, **kwargs):
        raise NetworkAccess(f"test tried to open a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)


def subprocess_env(**extra) -> dict:
    """Environment for a fresh Python process: offline, the checkout importable, TEST_THREADS threads, and the
    activation without an import (yolo_attn-autoload.pth) off: these processes show what happens where yolo_attn is
    not imported (tests/test_autoload.py switches it on, with ``YOLO_ATTN_AUTOLOAD=1``)."""
    env = dict(os.environ)
    env.update({"YOLO_OFFLINE": "1", "OMP_NUM_THREADS": str(TEST_THREADS), "PYTHONPATH": str(REPO),
                "YOLO_ATTN_AUTOLOAD": "0"})
    env.pop("ULTRALYTICS_SAFE_LOAD", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


PYTHON = sys.executable


# ------------------------------------------------------------------------------------------------
# Hostile input (test_hostile.py, test_yaml_errors.py): pickles that act when loaded, YAML variants
# ------------------------------------------------------------------------------------------------
class Evil:
    """Unpickling calls ``func(*args)``: each variant would create a marker file."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def yaml_file(tmp_path: Path, d, name: str = "yolov5n-hostile.yaml") -> Path:
    """Write ``d`` (a mapping, or YAML text as it is) to ``tmp_path/name``."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(d, sort_keys=False) if not isinstance(d, str) else d)
    return path


def stock_dict(**changes) -> dict:
    """Ultralytics' yolov5.yaml as a dict, with top-level keys changed."""
    import copy

    d = copy.deepcopy(_ultralytics_cfg("yolov5.yaml"))
    d.update(changes)
    return d


def with_row(i: int, row) -> dict:
    """yolov5.yaml with backbone row ``i`` replaced."""
    d = stock_dict()
    d["backbone"][i] = row
    return d


def cli_output(capsys, *argv) -> tuple[int, str]:
    """``yolo-attn ARGV`` in-process: exit status and stdout + stderr."""
    from yolo_attn.cli import main

    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.fixture
def evil_pt(tmp_path):
    """A checkpoint whose unpickling would create ``tmp_path/pwned``: (path, marker)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil(os.system, f"touch {marker}")}, path)
    return path, marker


@pytest.fixture(scope="session")
def stock_ckpt(tmp_path_factory):
    """A stock yolov5n (80 classes) with every tensor random, saved the way Ultralytics saves checkpoints.

    BatchNorm scales are drawn around 1 (not 0), so features reach the head and a layer that changes them
    changes the predictions."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("stock") / "yolov5n-stock.pt"
    model = YOLO("yolov5n.yaml")
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.05 + (1.0 if name.endswith("bn.weight") else 0.0))
    model.save(path)
    return path


def run_layers(seq, x):
    """Run an Ultralytics layer list built by parse_model (each layer's ``f`` says what it reads)."""
    outputs = []
    for m in seq:
        if m.f != -1:
            x = outputs[m.f] if isinstance(m.f, int) else [x if j == -1 else outputs[j] for j in m.f]
        x = m(x)
        outputs.append(x)
    return x


# ------------------------------------------------------------------------------------------------
# Nothing left behind: the working tree has no new file or folder at the end of the session
# ------------------------------------------------------------------------------------------------
# Python's bytecode caches (written by importing, gitignored) and pytest's own cache are not the tests' doing.
NOT_CHECKED = frozenset({"__pycache__", ".pytest_cache", ".git"})


def tree_entries(root: Path) -> frozenset[str]:
    """Every file and folder under ``root`` (relative paths), the NOT_CHECKED folders skipped; empty if absent."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_CHECKED]
        rel = Path(folder).relative_to(root)
        found.update(str(rel / name) for name in (*dirs, *files))
    return frozenset(found)


def watched_folders() -> list[Path]:
    """The working tree, and the folder where Ultralytics writes runs with a relative ``project`` under pytest."""
    from ultralytics.utils import ROOT

    return [REPO, ROOT.parent / "tests" / "tmp"]


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind():
    """Fail (as an error at the end of the session) when a test left a new file or folder in a watched folder."""
    before = {folder: tree_entries(folder) for folder in watched_folders()}
    yield
    left = [str(folder / p) for folder, seen in before.items() for p in sorted(tree_entries(folder) - seen)]
    if left:
        shown = "\n  ".join(left[:20]) + (f"\n  ... and {len(left) - 20} more" if len(left) > 20 else "")
        pytest.fail(f"the test session left {len(left)} new files or folders behind (write into tmp_path):\n  {shown}",
                    pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _shipped_shapes_data_copied(_nothing_left_behind):
    """Runs on the shipped shapes dataset read a session copy: Ultralytics writes label caches beside the labels.

    ``yolo_attn.datasets.shapes_yaml()`` (the default dataset of train/compare/study) answers with the copy; the
    tests of the committed data itself import ``SHAPES_DIR``/``SHAPES_YAML`` by name and keep the originals.
    """
    import yolo_attn.datasets as datasets

    if not (datasets.SHAPES_DIR / "manifest.json").is_file():  # no data/ (an sdist): shapes_yaml() generates it
        yield
        return
    copy = SESSION_DIR / "data"
    shutil.copytree(datasets.SHAPES_DIR, copy / "shapes", ignore=shutil.ignore_patterns("*.cache"))
    shutil.copy(datasets.SHAPES_YAML, copy / "shapes.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SHAPES_DIR", copy / "shapes")
        mp.setattr(datasets, "SHAPES_YAML", copy / "shapes.yaml")
        yield


def write_image(path: Path, w: int = 64, h: int = 48, colour=(200, 30, 30)) -> Path:
    """A plain ``w`` x ``h`` image of one colour (an importer's test input), folders made as needed."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), colour, np.uint8)).save(path)
    return path


def read_label_rows(path: Path):
    """The rows of a YOLO label file as an (N, 5) array."""
    import numpy as np

    return np.array([[float(v) for v in ln.split()] for ln in path.read_text().splitlines()]).reshape(-1, 5)


def tiny_sweep_data(folder: Path) -> Path:
    """The sweep tests' dataset YAML: 24 training and 8 validation images of the shapes generator at 64 pixels."""
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    y = folder / "tiny.yaml"
    write_dataset(folder / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40), y)
    return y


def record_fake_trials(out, models, seeds, epochs: int, baseline: str, fields, allow_changes: bool = False) -> None:
    """For stand-ins of ``compare``: the sweep's config.json and one ok record per model x seed, written through the
    real store and contract (so readers meet what a sweep writes). ``fields(label, seed)``: the record's values."""
    from yolo_attn.compare.contract import SweepConfig, TrialSpec
    from yolo_attn.compare.store import Store, stable_hash

    store = Store(out)
    labels = [Path(m).stem for m in models]
    config = SweepConfig(settings_hash=stable_hash([labels, list(seeds), epochs]), data_fingerprint={}, epochs=epochs,
                         imgsz=64, models=[{"name": n} for n in labels], seeds=list(seeds), baseline=baseline)
    config = store.init_config(config, allow_changes=allow_changes)
    for m, lbl in zip(models, labels):
        for s in seeds:
            spec = TrialSpec(f"{lbl}__seed{s}", lbl, str(m), s, config.settings_hash, str(Path(out) / lbl), "d.yaml",
                             epochs, 64)
            store.append(spec.record(status="ok", epochs_done=epochs, **fields(lbl, s)))


def fake_summary(out, baseline: str, maps: dict, seeds, epochs: int, row_fields=None):
    """For stand-ins of ``compare``: the summary of a sweep whose models scored ``maps`` (label -> COCOeval mAP50-95
    per seed), built through the real contract (ModelRow, MetricDiff, SweepSummary) and read back from its JSON as
    ``SweepSummary.from_json`` reads summary.json. The differences are the paired intervals of ``stats.paired_diff_ci``
    without the report's family-wise part. ``row_fields(label)``: more values of a row."""
    import json

    import numpy as np

    from yolo_attn.compare import stats
    from yolo_attn.compare.summary import MetricDiff, ModelRow, SummarySettings, SweepSummary

    seeds = list(seeds)
    rows = []
    for lbl, v in maps.items():
        row = ModelRow(lbl, is_baseline=lbl == baseline, n_ok=len(seeds), n_trials=len(seeds),
                       coco_map_mean=float(np.mean(v)), coco_map_std=float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                       **(row_fields(lbl) if row_fields else {}))
        if lbl != baseline:
            row.diff = {"map": MetricDiff(stats.paired_diff_ci(v, maps[baseline]), seeds)}
        rows.append(row)
    n = len(rows) * len(seeds)
    summary = SweepSummary(baseline, SummarySettings(epochs, 64, seeds), rows, data="fake.yaml", n_trials=n, n_ok=n,
                           out=str(out), complete=True)
    return SweepSummary.from_json(json.loads(json.dumps(summary.to_json())))


def run_compare(**kw):
    """``yolo_attn.compare.compare`` called with keywords as the tests write them: each goes to the typed part that
    has a field of its name (:class:`RunOptions`, :class:`ReportOptions`), the rest to :meth:`SweepRequest.build`
    (which moves ``train_args``' start options and ``pretrained`` into the request's ``Start``)."""
    from dataclasses import fields

    from yolo_attn.compare import compare
    from yolo_attn.compare.request import ReportOptions, RunOptions, SweepRequest

    run = {f.name: kw.pop(f.name) for f in fields(RunOptions) if f.name in kw}
    report = {f.name: kw.pop(f.name) for f in fields(ReportOptions) if f.name in kw}
    return compare(SweepRequest.build(**kw), RunOptions(**run), ReportOptions(**report))
