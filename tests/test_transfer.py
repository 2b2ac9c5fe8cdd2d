"""Weight transfer: safe checkpoint reading, structural matching, report, command, freezing.

Stock checkpoints are made here: the stock YOLOv5 model is built from Ultralytics' yolov5.yaml, every
tensor is filled with seeded random values (so each tensor is unique and can be found by value), and
the model is saved as an Ultralytics checkpoint, a plain state dict (.pt, .pth), a .safetensors file
and an original-YOLOv5-repository pickle (classes from a ``models`` package created for the test and
removed before loading).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

import yolo_attn  # noqa: F401  (registers the layers)
from yolo_attn import LAYERS
from yolo_attn.weights import (CheckpointError, ForeignCheckpointError, freeze_prefixes, load_checkpoint, transfer_weights,
                               translate_freeze)

import ultralytics
from ultralytics.nn.tasks import DetectionModel

STOCK_YAML = Path(ultralytics.__file__).parent / "cfg/models/v5/yolov5.yaml"
BASE = yaml.safe_load(STOCK_YAML.read_text())
N_BACKBONE = len(BASE["backbone"])


# --------------------------------------------------------------------------------------------
# Helpers: stock models, YAML edits with an independent index map, value lookup
# --------------------------------------------------------------------------------------------
def model_dict(d: dict, scale: str, nc: int | None = None) -> dict:
    d = copy.deepcopy(d)
    d["scale"] = scale
    if nc is not None:
        d["nc"] = nc
    return d


def build(d: dict, scale: str = "n", nc: int | None = None) -> DetectionModel:
    return DetectionModel(model_dict(d, scale, nc), verbose=False)


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fill every tensor with seeded random values that keep the network numerically sane."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if not v.is_floating_point():
                v.copy_(torch.randint(1, 1000, v.shape, generator=g))
            elif k.endswith("running_var"):
                v.copy_(1 + 0.2 * torch.rand(v.shape, generator=g))
            elif k.endswith(("bn.weight",)) or (v.ndim == 1 and k.endswith("weight")):
                v.copy_(1 + 0.1 * torch.randn(v.shape, generator=g))
            elif v.ndim >= 2:
                fan_in = v[0].numel()
                v.copy_(torch.randn(v.shape, generator=g) / fan_in**0.5)
            else:
                v.copy_(0.1 * torch.randn(v.shape, generator=g))
    return model


def insert_rows(base: dict, rows_after: dict[int, list], replace: dict[int, list] | None = None):
    """Insert rows after base layers and/or replace base rows; renumber every ``from``.

    Returns (model dict, {base index: target index}). Absolute ``from`` indices that named a layer with
    a row inserted after it now name the inserted layer (its output replaces the layer's output).
    Written independently of yolo_attn.placement so it can check the transfer's own alignment.
    """
    rows = list(base["backbone"]) + list(base["head"])
    replace = replace or {}
    out, mapping, last = [], {}, {}
    nb = 0
    for i, r in enumerate(rows):
        mapping[i] = len(out)
        out.append(copy.deepcopy(replace.get(i, r)))
        for extra in rows_after.get(i, []):
            out.append(copy.deepcopy(extra))
        last[i] = len(out) - 1
        if i == N_BACKBONE - 1:
            nb = len(out)

    def fix(x):
        return x if x < 0 else last[x]

    for r in out:
        r[0] = [fix(x) for x in r[0]] if isinstance(r[0], list) else fix(r[0])
    d = {k: v for k, v in base.items() if k not in ("backbone", "head")}
    d["backbone"], d["head"] = out[:nb], out[nb:]
    return d, mapping


def attn_row(name: str, args: list | None = None) -> list:
    return [-1, 1, name, [*(args or []), {"init": "identity"}]]


def value_index(sd: dict) -> dict:
    """{(dtype, shape, bytes) of a floating tensor: key}."""
    return {_sig(v): k for k, v in sd.items() if v.is_floating_point()}


def _sig(v: torch.Tensor):
    v = v.detach().float().contiguous()
    return (tuple(v.shape), v.numpy().tobytes())


def arrivals(stock_sd: dict, target_sd: dict, mapping: dict[int, int], layers: set[int] | None = None):
    """(arrived at the mapped position, landed elsewhere) counts of stock floating-point tensors."""
    where: dict = {}
    for k, v in target_sd.items():
        if v.is_floating_point():
            where.setdefault(_sig(v), []).append(k)
    ok, wrong = [], []
    for k, v in stock_sd.items():
        if not v.is_floating_point():
            continue
        _, i, rest = k.split(".", 2)
        i = int(i)
        if layers is not None and i not in layers:
            continue
        expected = f"model.{mapping[i]}.{rest}" if i in mapping else None
        found = where.get(_sig(v), [])
        if expected in found:
            ok.append(k)
        wrong.extend(f for f in found if f != expected)
    return ok, wrong


# --------------------------------------------------------------------------------------------
# Fixtures: stock checkpoints in every format
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stock_n():
    return randomise(build(BASE, "n"), 0).eval()


@pytest.fixture(scope="module")
def stock_s():
    return randomise(build(BASE, "s"), 1).eval()


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("stock")


@pytest.fixture(scope="module")
def files_n(stock_n, ckpt_dir):
    """The randomised stock yolov5n in each supported format."""
    from safetensors.torch import save_file

    files = {}
    files["ultralytics"] = ckpt_dir / "yolov5nu.pt"
    torch.save({"model": copy.deepcopy(stock_n), "ema": None, "train_args": {"imgsz": 640}, "date": "today"}, files["ultralytics"])
    files["ultralytics_half"] = ckpt_dir / "yolov5nu_half.pt"
    torch.save({"model": copy.deepcopy(stock_n).half(), "ema": None}, files["ultralytics_half"])
    files["state_dict"] = ckpt_dir / "yolov5n_sd.pt"
    torch.save(stock_n.state_dict(), files["state_dict"])
    files["pth"] = ckpt_dir / "yolov5n_seq.pth"
    torch.save({"state_dict": stock_n.model.state_dict()}, files["pth"])  # keys 0.conv.weight ...
    files["safetensors"] = ckpt_dir / "yolov5n.safetensors"
    save_file({k: v.contiguous().clone() for k, v in stock_n.state_dict().items()}, str(files["safetensors"]))
    files["yolov5"] = ckpt_dir / "yolov5n_repo.pt"
    save_original_yolov5(stock_n, files["yolov5"], ckpt_dir / "yolov5_repo")
    return files


# --- original YOLOv5 repository format -------------------------------------------------------
_COMMON_PY = '''
"""Stand-in for yolov5/models/common.py (class names and attributes as in that repository)."""
import torch
from torch import nn


class Conv(nn.Module):
    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, x):
        return torch.cat(x, self.d)
'''

_YOLO_PY = '''
"""Stand-in for yolov5/models/yolo.py: anchor-based Detect and the Model wrapper."""
import torch
from torch import nn


class Detect(nn.Module):
    stride = None

    def __init__(self, nc, anchors, ch):
        super().__init__()
        self.nc, self.no, self.nl, self.na = nc, nc + 5, len(anchors), len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.inplace = True


class Model(nn.Module):
    pass
'''


def save_original_yolov5(stock: DetectionModel, path: Path, pkg_root: Path) -> None:
    """Pickle ``stock``'s backbone/neck as classes of a ``models`` package, then make that package vanish."""
    pkg = pkg_root / "models"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "common.py").write_text(textwrap.dedent(_COMMON_PY))
    (pkg / "yolo.py").write_text(textwrap.dedent(_YOLO_PY))
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "models" or k.startswith("models.")}
    sys.path.insert(0, str(pkg_root))
    try:
        import models.common as common
        import models.yolo as yolo

        def convert(m: torch.nn.Module) -> torch.nn.Module:
            name = type(m).__name__
            cls = getattr(common, name, None) if type(m).__module__.startswith("ultralytics") else None
            if cls is None:
                new = copy.deepcopy(m) if not list(m.children()) else copy.copy(m)
                if list(m.children()):
                    new._modules = {k: convert(c) for k, c in m._modules.items()}
                return new
            new = cls.__new__(cls)
            torch.nn.Module.__init__(new)
            for k, v in vars(m).items():
                if not k.startswith("_") and k != "training":
                    setattr(new, k, copy.deepcopy(v))
            new._parameters = copy.deepcopy(m._parameters)
            new._buffers = copy.deepcopy(m._buffers)
            new._modules = {k: convert(c) for k, c in m._modules.items()}
            if hasattr(m, "type"):
                new.type = f"models.common.{name}"
            return new

        layers = []
        for i, m in enumerate(stock.model):
            if i == len(stock.model) - 1:  # anchor-based head of the YOLOv5 repository
                ch = [stock.model[j].cv3.conv.out_channels for j in m.f]
                anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
                det = yolo.Detect(80, anchors, ch)
                det.i, det.f, det.type, det.np = m.i, m.f, "models.yolo.Detect", 0
                det.stride = torch.tensor([8.0, 16.0, 32.0])
                layers.append(det)
            else:
                layers.append(convert(m))
        model = yolo.Model()
        model.model = torch.nn.Sequential(*layers)
        model.yaml = copy.deepcopy(BASE)
        model.names = [f"class{i}" for i in range(80)]
        model.stride = torch.tensor([8.0, 16.0, 32.0])
        model.save = [4, 6, 10, 14, 17, 20, 23]
        ckpt = {"epoch": -1, "best_fitness": None, "model": copy.deepcopy(model).half(), "ema": None, "updates": None,
                "optimizer": None, "opt": {"weights": "yolov5n.pt", "epochs": 300}, "git": None, "date": "2023-01-01"}  # fmt: skip
        torch.save(ckpt, path)
    finally:
        sys.path.remove(str(pkg_root))
        for k in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    import importlib

    importlib.invalidate_caches()


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
SE_BEFORE_SPPF = insert_rows(BASE, {N_BACKBONE - 2: [attn_row("SE", [16])]})


def test_original_yolov5_package_is_gone(files_n):
    with pytest.raises(ModuleNotFoundError):
        __import__("models.common")
    with pytest.raises(ModuleNotFoundError):
        torch.load(files_n["yolov5"], weights_only=False)  # the real loader would need the repository's code


# --------------------------------------------------------------------------------------------
# Safe reading
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["ultralytics", "ultralytics_half", "state_dict", "pth", "safetensors", "yolov5"])
def test_load_every_format(files_n, stock_n, fmt):
    ck = load_checkpoint(files_n[fmt])
    sd = stock_n.state_dict()
    expected = {k for k in sd if not (fmt == "yolov5" and k.startswith("model.24."))}
    assert expected <= set(ck.state_dict)
    for k in expected:
        a, b = ck.state_dict[k], sd[k]
        if fmt in ("ultralytics_half", "yolov5") and b.is_floating_point():
            b = b.half()
        assert torch.equal(a, b), k
    assert not ck.trusted
    if fmt.startswith("ultralytics") or fmt == "yolov5":
        assert ck.layers and len(ck.layers) == 25 and ck.layers[24].f == [17, 20, 23]
    if fmt == "yolov5":
        assert ck.format == "yolov5" and ck.layers[24].type == "models.yolo.Detect"
        assert "models.common.C3" in ck.placeholders and "model.24.anchors" in ck.state_dict
        assert ck.names[0] == "class0" and ck.meta["opt"]["epochs"] == 300


def _evil_checkpoint(path: Path, stock: DetectionModel, markers: list[Path]) -> None:
    class Evil:
        def __init__(self, marker, how):
            self.marker, self.how = str(marker), how

        def __reduce__(self):
            if self.how == "system":
                return (os.system, (f"touch {self.marker}",))
            return (open, (self.marker, "w"))

    torch.save({"model": copy.deepcopy(stock), "ema": None, "x": Evil(markers[0], "system"), "y": [Evil(markers[1], "open")]}, path)


def test_safe_default_never_runs_code(tmp_path, stock_n):
    markers = [tmp_path / "pwned_system", tmp_path / "pwned_open"]
    path = tmp_path / "evil.pt"
    _evil_checkpoint(path, stock_n, markers)
    ck = load_checkpoint(path)
    assert not any(m.exists() for m in markers)
    assert "posix.system" in ck.placeholders or "os.system" in ck.placeholders
    assert torch.equal(ck.state_dict["model.0.conv.weight"], stock_n.state_dict()["model.0.conv.weight"])
    target = build(*[SE_BEFORE_SPPF[0]])
    transfer_weights(path, target)  # the transfer path reads safely too
    assert not any(m.exists() for m in markers)
    # the payload is real: a full unpickle (what --trust does) runs it
    load_checkpoint(path, trust=True)
    assert all(m.exists() for m in markers)


def test_corrupt_and_non_checkpoints(tmp_path, files_n):
    good = files_n["ultralytics"].read_bytes()
    cases = {
        "truncated.pt": good[: len(good) // 2],
        "truncated_tail.pt": good[:-100],
        "empty.pt": b"",
        "random.pt": os.urandom(4096),
        "text.pth": b"this is not a checkpoint\n" * 10,
        "broken.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}garbage",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(p)
        assert str(p) in str(e.value), name
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_checkpoint(p)
    p = tmp_path / "notorch.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(CheckpointError, match="data.pkl"):
        load_checkpoint(p)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_cli_reports_bad_file(tmp_path, capsys):
    from yolo_attn.cli import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04broken")
    assert main(["transfer", str(bad), "yolov5n.yaml", "-o", str(tmp_path / "o.pt")]) == 1
    assert str(bad) in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Matching by value
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["ultralytics", "state_dict", "pth", "safetensors", "yolov5"])
def test_by_value_se_before_sppf(files_n, stock_n, fmt):
    d, mapping = SE_BEFORE_SPPF
    target = build(d)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(files_n[fmt], target)
    assert report.mapping == mapping
    sd = stock_n.state_dict()
    if fmt == "yolov5":  # half-precision file; anchor head not transferable
        sd = {k: (v.half().float() if v.is_floating_point() else v) for k, v in sd.items() if not k.startswith("model.24.")}
    ok, wrong = arrivals(sd, target.state_dict(), mapping)
    n_float = sum(v.is_floating_point() for v in sd.values())
    assert len(ok) == n_float and not wrong
    se = mapping[N_BACKBONE - 2] + 1
    for k, v in target.state_dict().items():  # inserted layer keeps its init
        if k.startswith(f"model.{se}."):
            assert torch.equal(v, init[k])
    row = next(r for r in report.layers if r.target == se)
    assert row.status == "new" and row.source is None
    if fmt == "yolov5":
        head = next(r for r in report.layers if r.target == mapping[24])
        assert head.status == "skipped" and "not transferable" in head.note
        assert report.tensors == len(sd)
    else:
        assert report.tensors == report.source_tensors == len(sd)
    assert report.summary().startswith(f"Transferred {report.tensors}/{report.source_tensors} source tensors")


def _ultralytics_load_figures(stock, target_dict, mapping):
    """Ultralytics' own name/shape matching: (reported 'Transferred X/Y', by-value arrivals, misplaced)."""
    target = build(target_dict)
    records = []
    handler = logging.Handler()
    handler.emit = lambda rec: records.append(rec.getMessage())
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        target.load(copy.deepcopy(stock), verbose=True)
    finally:
        logger.removeHandler(handler)
    line = next(m for m in records if m.startswith("Transferred"))
    ok, wrong = arrivals(stock.state_dict(), target.state_dict(), mapping)
    return line.split()[1], len(ok), len(wrong)


@pytest.mark.parametrize("layer", ["SE", "CBAM"])
def test_figures_vs_ultralytics_load(stock_n, files_n, layer, capsys):
    d, mapping = insert_rows(BASE, {N_BACKBONE - 2: [attn_row(layer)]})
    items, ok_u, wrong_u = _ultralytics_load_figures(stock_n, d, mapping)
    target = build(d)
    report = transfer_weights(files_n["ultralytics"], target)
    ok, wrong = arrivals(stock_n.state_dict(), target.state_dict(), mapping)
    n_float = sum(v.is_floating_point() for v in stock_n.state_dict().values())
    with capsys.disabled():
        print(f"\n[{layer} before SPPF, yolov5n] Ultralytics load: Transferred {items} items, by value {ok_u}/{n_float} "
              f"float tensors at the right place, {wrong_u} in a wrong place | yolo_attn: {report.tensors}/"
              f"{report.source_tensors} tensors, by value {len(ok)}/{n_float}, {len(wrong)} misplaced")  # fmt: skip
    assert len(ok) == n_float and not wrong
    assert ok_u < n_float


def _shipped_cases():
    from yolo_attn.configs import shipped_configs

    cases, seen = [], set()
    for cfg in shipped_configs():
        if cfg.base != "yolov5.yaml":  # YOLOv8/YOLO11 configs: tests/test_transfer_bases.py
            continue
        kind = cfg.placements[0]
        for scale in ("n", "s"):
            quick = kind not in seen and (scale == "n" or kind in ("c3", "head-in"))
            marks = () if quick else (pytest.mark.slow,)
            cases.append(pytest.param(cfg, scale, id=f"{scale}-{cfg.filename}", marks=marks))
        seen.add(kind)
    return cases


@pytest.fixture(scope="module")
def file_s(stock_s, ckpt_dir):
    path = ckpt_dir / "yolov5su.pt"
    torch.save({"model": copy.deepcopy(stock_s), "ema": None}, path)
    return path


@pytest.mark.parametrize("cfg,scale", _shipped_cases())
def test_shipped_configs_by_value(request, cfg, scale):
    """Every shipped config (one per placement kind by default, all of them with -m slow) at n and s.

    The expected position of each stock layer comes from the generator's own index map, not from the
    transfer's alignment; every stock tensor must arrive there and nowhere else, new attention keeps its init.
    """
    from yolo_attn.configs import config_dir
    from yolo_attn.placement import make_yaml

    filename, layer, args, placements = cfg
    path = config_dir() / filename
    assert path.is_file(), f"{filename} is defined by shipped_configs() but not generated (yolo-attn make-configs)"
    stock = request.getfixturevalue("stock_n" if scale == "n" else "stock_s")
    source = request.getfixturevalue("files_n")["ultralytics"] if scale == "n" else request.getfixturevalue("file_s")
    _, imap = make_yaml(None, layer, args, placements)
    target = build(yaml.safe_load(path.read_text()), scale)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(source, target)
    assert report.mapping == imap.map
    ok, wrong = arrivals(stock.state_dict(), target.state_dict(), imap.map)
    assert len(ok) == sum(v.is_floating_point() for v in stock.state_dict().values()) and not wrong
    for k in report.new_keys:
        assert torch.equal(target.state_dict()[k], init[k]), k


def test_by_value_scale_s(stock_s, tmp_path):
    path = tmp_path / "yolov5su.pt"
    torch.save({"model": stock_s, "ema": None}, path)
    d, mapping = insert_rows(BASE, {4: [attn_row("SE")], 8: [attn_row("SE")], 23: [attn_row("SE")]})
    target = build(d, "s")
    report = transfer_weights(path, target)
    assert report.mapping == mapping
    ok, wrong = arrivals(stock_s.state_dict(), target.state_dict(), mapping)
    assert len(ok) == sum(v.is_floating_point() for v in stock_s.state_dict().values()) and not wrong


def test_c3_replaced_by_attention_variant(files_n, stock_n):
    c3 = [i for i, r in enumerate(BASE["backbone"] + BASE["head"]) if r[2] == "C3"]
    replace = {}
    for i in c3:
        f, n, _, args = (BASE["backbone"] + BASE["head"])[i]
        shortcut = args[1:] if len(args) > 1 else []
        replace[i] = [f, n, "C3Attn", [args[0], "SE", [16, {"init": "identity"}], *shortcut]]
    replace[c3[0]][2:] = ["C3FMM", [(BASE["backbone"] + BASE["head"])[c3[0]][3][0]]]
    d, mapping = insert_rows(BASE, {}, replace)
    target = build(d)
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(files_n["ultralytics"], target)
    ok, wrong = arrivals(stock_n.state_dict(), target.state_dict(), mapping)
    assert len(ok) == sum(v.is_floating_point() for v in stock_n.state_dict().values()) and not wrong
    attn = [k for k in target.state_dict() if ".attn." in k]
    assert attn and all(torch.equal(target.state_dict()[k], init[k]) for k in attn)
    assert set(report.new_keys) == set(attn)
    row = next(r for r in report.layers if r.target == c3[1])
    assert row.status == "partial" and "attention" in row.note


def test_explicit_index_map_and_wrong_map(files_n, stock_n, tmp_path):
    d, mapping = SE_BEFORE_SPPF
    target = build(d)
    mp = tmp_path / "map.json"
    import json

    mp.write_text(json.dumps({"base": "yolov5.yaml", "map": {str(k): v for k, v in mapping.items()}, "inserted": [9], "replaced": []}))
    report = transfer_weights(files_n["ultralytics"], target, index_map=mp)
    ok, wrong = arrivals(stock_n.state_dict(), target.state_dict(), mapping)
    assert len(ok) == 358 and not wrong and report.mapping == mapping
    # an identity map (wrong after the insertion) must not put anything in the wrong layer
    target = build(d)
    report = transfer_weights(files_n["ultralytics"], target, index_map={i: i for i in range(25)}, allow_foreign=True)
    ok, wrong = arrivals(stock_n.state_dict(), target.state_dict(), {i: i for i in range(9)})
    assert not wrong
    assert any("index map pairs" in w or "inputs differ" in w or "shape" in r.note for w in report.warnings for r in report.layers)


def test_class_count_change(files_n, stock_n):
    target = build(BASE, "n", nc=3)
    report = transfer_weights(files_n["ultralytics"], target)
    cls_out = {f"model.24.cv3.{j}.2.{p}" for j in range(3) for p in ("weight", "bias")}
    assert set(report.class_dependent) == cls_out and report.head_adapted
    sd = stock_n.state_dict()
    moved = {k for k in sd if k not in cls_out}
    ok, wrong = arrivals({k: sd[k] for k in moved}, target.state_dict(), {i: i for i in range(25)})
    assert len(ok) == sum(sd[k].is_floating_point() for k in moved) and not wrong
    assert report.tensors == len(sd) - 6
    assert target.model[-1].cv3[0][2].out_channels == 3
    assert target.eval()(torch.zeros(1, 3, 64, 64))[0].shape[1] == 4 + 3
    assert "class-dependent" in str(report)


def test_foreign_architecture_refused(stock_s, tmp_path):
    path = tmp_path / "s.pt"
    torch.save({"model": stock_s, "ema": None}, path)
    with pytest.raises(ForeignCheckpointError, match="allow_foreign"):
        transfer_weights(path, build(BASE, "n"))  # another scale
    v8 = DetectionModel("yolov8n.yaml", verbose=False)
    p8 = tmp_path / "v8.pt"
    torch.save(v8.state_dict(), p8)
    with pytest.raises(ForeignCheckpointError):
        transfer_weights(p8, build(BASE, "n"))
    report = transfer_weights(path, build(BASE, "n"), allow_foreign=True)
    assert report.warnings and report.fraction < 0.5


# --------------------------------------------------------------------------------------------
# Identity preservation
# --------------------------------------------------------------------------------------------
def _preserve_layers():
    return sorted(s.name for s in LAYERS if s.kind == "preserve")


def test_identity_preserved_every_preserve_layer(files_n, stock_n):
    """Every registered channel-preserving layer (init=identity), chained before SPPF: stock predictions.

    One model carries them all (one build instead of one per layer); a hook checks each layer's output
    against its input so a failure names the layer.
    """
    layers = _preserve_layers()
    d, mapping = insert_rows(BASE, {N_BACKBONE - 2: [attn_row(n) for n in layers]})
    target = build(d).eval()
    report = transfer_weights(files_n["ultralytics"], target)
    assert report.mapping == mapping
    first = mapping[N_BACKBONE - 2] + 1
    changed = {}

    def hook(idx):
        def fn(module, inputs, output):
            err = (output - inputs[0]).abs().max().item()
            if not err <= 1e-6 * max(1.0, inputs[0].abs().max().item()):
                changed[layers[idx]] = err

        return fn

    handles = [target.model[first + i].register_forward_hook(hook(i)) for i in range(len(layers))]
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    try:
        with torch.no_grad():
            want, got = stock_n(x)[0], target(x)[0]
    finally:
        for h in handles:
            h.remove()
    assert not changed, f"layers not the identity after transfer: {changed}"
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


SHIPPED_IDENTITY = [("SE", "backbone"), ("CBAM", "neck"), ("ECA", "head-in"), ("CoordAtt", "c3"), ("SimAM", "sppf"),
                    ("GC", "c3-neck"), ("EMA", "backbone-end"), ("MHSA", "sppf")]  # fmt: skip


@pytest.mark.parametrize("layer,placement", SHIPPED_IDENTITY)
def test_identity_preserved_generated_configs(files_n, stock_n, layer, placement):
    """Shipped placements, generated with init=identity: the transferred model predicts what the stock one does."""
    from yolo_attn.placement import make_yaml

    d, imap = make_yaml(None, layer, [{"init": "identity"}], [placement])
    target = build(d).eval()
    report = transfer_weights(files_n["ultralytics"], target)
    assert report.mapping == imap.map
    x = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(target(x)[0], stock_n(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attn", ["SE", "CBAM"])
def test_identity_preserved_c3attn_and_neck(files_n, stock_n, attn):
    rows = BASE["backbone"] + BASE["head"]
    replace = {i: [r[0], r[1], "C3Attn", [r[3][0], attn, [{"init": "identity"}], *r[3][1:]]]
               for i, r in enumerate(rows) if r[2] == "C3" and i < N_BACKBONE}  # fmt: skip
    neck = {i: [attn_row(attn)] for i in (17, 20, 23)}
    d, mapping = insert_rows(BASE, neck, replace)
    target = build(d).eval()
    report = transfer_weights(files_n["yolov5"] if attn == "SE" else files_n["ultralytics"], target)
    assert report.mapping == {k: v for k, v in mapping.items()}
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    if attn == "SE":
        # From the original-YOLOv5 file (stored in float16) the anchor-based head is not transferable and stays
        # random: the neck's three outputs, the Detect head's inputs, must equal the stock model's with its
        # weights rounded to float16 as that file stores them.
        reference = copy.deepcopy(stock_n)
        with torch.no_grad():
            for t in reference.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
        got, want = _detect_inputs(target, x), _detect_inputs(reference, x)
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
        return
    with torch.no_grad():
        torch.testing.assert_close(target(x)[0], stock_n(x)[0], rtol=1e-5, atol=1e-5)


def _detect_inputs(model, x) -> list[torch.Tensor]:
    """The feature maps a detection model's head receives for ``x`` (the neck's outputs)."""
    seen = []
    handle = model.model[-1].register_forward_pre_hook(lambda module, inputs: seen.extend(t.clone() for t in inputs[0]))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen


# --------------------------------------------------------------------------------------------
# Command and Ultralytics-format output
# --------------------------------------------------------------------------------------------
def test_command_writes_loadable_checkpoint(files_n, stock_n, tmp_path, capsys):
    from ultralytics import YOLO

    from yolo_attn.cli import main

    d, _ = SE_BEFORE_SPPF
    d = model_dict(d, "n")
    d.pop("scale")
    d.update(depth_multiple=0.33, width_multiple=0.25)
    d.pop("scales", None)
    cfg = tmp_path / "yolov5n-se-sppf.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    out = tmp_path / "out.pt"
    rc = main(["transfer", str(files_n["ultralytics"]), str(cfg), "-o", str(out), "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 0 and "Transferred 427/427 source tensors" in text and out.is_file()
    model = YOLO(str(out))
    assert model.task == "detect" and type(model.model).__name__ == "DetectionModel"
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(model.model.float()(x)[0], stock_n(x)[0], rtol=1e-5, atol=1e-5)
    import numpy as np

    res = model.predict(np.full((64, 64, 3), 128, np.uint8), imgsz=64, verbose=False)
    assert len(res) == 1
    ck = torch.load(out, weights_only=False)
    assert {"model", "ema", "train_args", "date", "version"} <= set(ck) and ck["yolo_attn"]["transfer"]["tensors"] == 427
    # also from the original YOLOv5 format, half precision output
    out2 = tmp_path / "out2.pt"
    assert main(["transfer", str(files_n["yolov5"]), str(cfg), "-o", str(out2)]) == 0
    assert "not transferable" in capsys.readouterr().out
    assert next(YOLO(str(out2)).model.parameters()).dtype == torch.float32  # load_checkpoint returns float


# --------------------------------------------------------------------------------------------
# Freezing in base indices
# --------------------------------------------------------------------------------------------
def test_freeze_in_base_indices(files_n):
    d, mapping = SE_BEFORE_SPPF
    target = build(d)
    report = transfer_weights(files_n["ultralytics"], target)
    assert translate_freeze(10, report.mapping) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert translate_freeze("backbone", report.mapping, backbone_len=N_BACKBONE) == translate_freeze(10, report.mapping)
    assert translate_freeze([9, 24], report.mapping) == [10, 25]
    prefixes = tuple(freeze_prefixes(target, "backbone", report.mapping, backbone_len=N_BACKBONE))
    assert prefixes == tuple(f"model.{i}." for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 10))
    frozen = {n for n, _ in target.named_parameters() if n.startswith(prefixes)}
    assert "model.10.cv1.conv.weight" in frozen and "model.9.fc1.weight" not in frozen
    assert "model.11.conv.weight" not in frozen
    # inside a replaced block, the attention stays trainable
    rows = BASE["backbone"] + BASE["head"]
    d2, m2 = insert_rows(BASE, {}, {2: [-1, 3, "C3Attn", [128, "SE", [{"init": "identity"}]]]})
    t2 = build(d2)
    prefixes = freeze_prefixes(t2, 3, m2)
    names = [n for n, _ in t2.named_parameters() if n.startswith(tuple(prefixes))]
    assert "model.2.m.0.cv1.conv.weight" in names and not any(".attn." in n for n in names)
    assert prefixes[:2] == ["model.0.", "model.1."] and "model.2.cv1." in prefixes and "model.2.m.0.cv2." in prefixes
    assert not any("attn" in p for p in prefixes)
    with pytest.raises(ValueError):
        translate_freeze("neck", m2)


# --------------------------------------------------------------------------------------------
# A source with NaN / inf weights is refused by every transfer path, before anything is written
# --------------------------------------------------------------------------------------------
def test_non_finite_source_is_refused_everywhere(stock_n, tmp_path, capsys):
    from yolo_attn.weights import save_model_checkpoint
    from yolo_attn.cli import main
    from yolo_attn.compare.sweep import check_sweep_settings
    from yolo_attn.weights import NonFiniteWeightsError

    broken = copy.deepcopy(stock_n)
    with torch.no_grad():
        broken.model[0].conv.weight[0, 0, 0, 0] = float("nan")
        broken.model[4].cv1.bn.running_var[3] = float("inf")
    path = save_model_checkpoint(broken, tmp_path / "diverged.pt", half=False)
    message = r"diverged.pt: 2 of \d+ tensors hold NaN or infinite values \(model.0.conv.weight, model.4.cv1.bn.running_var\)"

    target = build(BASE, "n")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(NonFiniteWeightsError, match=message):
        transfer_weights(path, target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # the target is untouched

    out = tmp_path / "out.pt"
    assert main(["transfer", str(path), "yolov5n.yaml", "-o", str(out)]) == 1
    assert "yolo-attn transfer: error:" in capsys.readouterr().err and not out.exists()

    from yolo_attn.compare.request import ModelSpec

    spec = ModelSpec("yolov5n", "yolov5n.yaml")
    with pytest.raises(ValueError, match="--pretrained .*diverged.pt does not transfer into yolov5n: .*2 of"):
        check_sweep_settings(None, str(path), [spec], 80)


def test_train_refuses_a_non_finite_pretrained_source(stock_n, tmp_path):
    from yolo_attn.weights import save_model_checkpoint
    from yolo_attn.train import train
    from yolo_attn.weights import NonFiniteWeightsError

    broken = copy.deepcopy(stock_n)
    with torch.no_grad():
        broken.model[0].conv.weight.fill_(float("nan"))
    path = save_model_checkpoint(broken, tmp_path / "nan.pt", half=False)
    with pytest.raises(NonFiniteWeightsError, match=r"nan.pt: 1 of \d+ tensors .*model.0.conv.weight"):
        train(model="yolov5n.yaml", pretrained=str(path), epochs=1, imgsz=64, project=str(tmp_path), name="r",
              plots=False, workers=0)
