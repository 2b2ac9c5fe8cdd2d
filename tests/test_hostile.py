"""Hostile input never runs code, never exhausts memory, never overwrites without --force.

* Model YAMLs: a row naming a function (``torch_load``) fails in every command before anything runs (the
  row, activation, argument, structure and repeat checks themselves are tested in ``test_yaml_errors.py``,
  which ``.ci/compat`` also runs against the oldest supported Ultralytics).
* Checkpoints: ten malicious pickles (``__reduce__`` that would create a marker file) through every path
  that reads a ``.pt`` -- the safe reader, ``build_model``/``info``, ``transfer``, ``train model=*.pt``,
  ``compare`` (model cost, pretrained start point) -- create no marker; ``trust=True`` does run them
  (so the files are live). Memory bombs (self-referencing module graph, ``bytearray(8 GiB)``, exponential
  sharing, deep nesting) end in a ``CheckpointError`` naming the file.
* ``transfer -o``/``--json`` and ``make-yaml -o`` refuse to overwrite without ``--force``.
"""

from __future__ import annotations

import builtins
import copy
import operator
import os
import pickle
import subprocess
from pathlib import Path

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

import yolo_attn  # noqa: F401  (registers the layers)
from yolo_attn.weights import CheckpointError, load_checkpoint, save_model_checkpoint
from yolo_attn.cli import main
from yolo_attn.models import build_model

from conftest import Evil, cli_output as _cli, with_row as _with_row, yaml_file as _yaml


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stock():
    torch.manual_seed(0)
    return DetectionModel("yolov5n.yaml", nc=2, verbose=False)


# ------------------------------------------------------------------------------------------------
# a model YAML naming a function (the row check itself is tested in test_yaml_errors.py)
# ------------------------------------------------------------------------------------------------
def test_the_yaml_route_through_every_command(tmp_path, evil_pt, stock_pt, capsys):
    evil, marker = evil_pt
    path = _yaml(tmp_path, _with_row(1, [-1, 1, "torch_load", [str(evil)]]))
    for argv in (["info", path], ["transfer", stock_pt, path, "-o", tmp_path / "o.pt"],
                 ["make-yaml", "--base", path, "--layer", "SE", "-p", "backbone-end", "-o", tmp_path / "m.yaml"]):
        rc, out = _cli(capsys, *argv)
        assert rc == 1 and "Traceback" not in out, (argv, out)
    assert not marker.exists()
    assert not (tmp_path / "o.pt").exists() and not (tmp_path / "m.yaml").exists()


# ------------------------------------------------------------------------------------------------
# ten malicious checkpoints
# ------------------------------------------------------------------------------------------------
def _payloads(marker: Path) -> dict:
    m = str(marker)
    return {
        "os_system": Evil(os.system, f"touch {m}"),
        "open": Evil(builtins.open, m, "w"),
        "exec": Evil(builtins.exec, f"open({m!r}, 'w').close()"),
        "eval": Evil(builtins.eval, f"open({m!r}, 'w').close()"),
        "subprocess": Evil(subprocess.call, ["touch", m]),
        "methodcaller": Evil(operator.methodcaller("touch"), Path(m)),
    }


def _make_evil(kind: str, path: Path, marker: Path, stock) -> None:
    """One malicious file of ``kind``; unpickling it fully would create ``marker``."""
    payload = _payloads(marker)
    model = copy.deepcopy(stock)
    if kind == "in_train_args":  # an Ultralytics checkpoint whose train_args hide os.system
        torch.save({"model": model, "ema": None, "train_args": {"x": payload["os_system"]}}, path)
    elif kind == "in_layer":  # inside the module graph: a layer attribute
        model.model[0].evil = payload["exec"]
        torch.save({"model": model, "ema": None}, path)
    elif kind == "as_ema":
        torch.save({"model": model, "ema": payload["eval"]}, path)
    elif kind == "open":
        torch.save({"model": model, "ema": None, "date": payload["open"]}, path)
    elif kind == "subprocess":
        torch.save({"model": model, "ema": None, "y": [payload["subprocess"]]}, path)
    elif kind == "methodcaller":
        torch.save({"model": model, "ema": None, "z": {"k": payload["methodcaller"]}}, path)
    elif kind == "state_dict":  # a plain state dict next to a payload
        torch.save({"state_dict": model.state_dict(), "x": payload["os_system"]}, path)
    elif kind == "legacy_format":
        torch.save({"model": model, "x": payload["os_system"]}, path, _use_new_zipfile_serialization=False)
    elif kind == "plain_pickle":  # not a torch file at all
        path.write_bytes(pickle.dumps({"model": payload["os_system"]}))
    elif kind == "yaml_in_checkpoint":  # the model YAML the file carries would eval code when rebuilt
        model.yaml = {**model.yaml, "activation": f"__import__('os').system('touch {marker}') or nn.SiLU()"}
        torch.save({"model": model, "ema": None}, path)
    else:  # pragma: no cover
        raise ValueError(kind)


EVIL_KINDS = ["in_train_args", "in_layer", "as_ema", "open", "subprocess", "methodcaller", "state_dict",
              "legacy_format", "plain_pickle", "yaml_in_checkpoint"]


@pytest.fixture(scope="module")
def evil_files(tmp_path_factory, stock):
    root = tmp_path_factory.mktemp("evil")
    files = {}
    for kind in EVIL_KINDS:
        marker = root / f"pwned_{kind}"
        path = root / f"{kind}.pt"
        _make_evil(kind, path, marker, stock)
        assert not marker.exists()
        files[kind] = (path, marker)
    return files


@pytest.mark.parametrize("kind", EVIL_KINDS)
def test_malicious_checkpoint_runs_nothing_anywhere(kind, evil_files, tmp_path, capsys, monkeypatch):
    from yolo_attn.compare import trial
    from yolo_attn.models import model_cost

    path, marker = evil_files[kind]
    monkeypatch.chdir(tmp_path)
    attempts = [
        lambda: load_checkpoint(path),
        lambda: build_model(path),  # yolo-attn info, compare's model checkpoints, train model=*.pt
        lambda: model_cost(str(path), None, 64),
        lambda: trial._make_pretrained("yolov5n.yaml", str(path), 2, tmp_path, 0),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (CheckpointError, ValueError):
            pass
        assert not marker.exists(), kind
    for argv in (["info", path], ["transfer", path, "yolov5n.yaml", "-o", tmp_path / "t.pt"],
                 ["transfer", path, path, "-o", tmp_path / "t2.pt", "--allow-foreign"]):
        rc, out = _cli(capsys, *argv)
        assert "Traceback" not in out
        assert not marker.exists(), (kind, argv)


@pytest.mark.parametrize("kind", ["in_train_args", "in_layer", "legacy_format"])
def test_trust_does_unpickle_so_the_payloads_are_live(kind, evil_files):
    path, marker = evil_files[kind]
    try:
        load_checkpoint(path, trust=True)
    except CheckpointError:
        pass
    assert marker.exists()
    marker.unlink()


def _trainer(model, tmp_path, **extra):
    from yolo_attn.datasets import shapes_yaml
    from yolo_attn.train import AttnDetectionTrainer

    args = dict(model=str(model), data=str(shapes_yaml()), epochs=1, imgsz=64, batch=4, workers=0, plots=False,
                project=str(tmp_path), name="run", exist_ok=True, **extra)
    return AttnDetectionTrainer(overrides=args)


@pytest.mark.parametrize("kind", ["in_train_args", "in_layer", "as_ema", "methodcaller", "yaml_in_checkpoint"])
def test_train_model_checkpoint_is_read_safely(kind, evil_files, tmp_path):
    path, marker = evil_files[kind]
    trainer = _trainer(path, tmp_path)
    try:
        trainer.setup_model()
    except (CheckpointError, ValueError):
        assert kind == "yaml_in_checkpoint"
    else:
        ckpt = load_checkpoint(path)
        got = trainer.model.state_dict()
        same = [k for k, v in ckpt.state_dict.items() if torch.equal(got[k].float(), v.float())]
        assert len(same) >= 0.95 * len(got)  # everything but the class-dependent outputs (2 vs shapes' classes)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["in_train_args", "in_layer"])
def test_train_pretrained_checkpoint_is_read_safely(kind, evil_files, tmp_path):
    """pretrained= reaches Ultralytics' own setup_model, which would unpickle it fully: the trainer hides it there."""
    path, marker = evil_files[kind]
    trainer = _trainer("yolov5n.yaml", tmp_path, pretrained=str(path))
    try:
        trainer.setup_model()
    except (CheckpointError, ValueError):
        pass
    assert not marker.exists()
    assert trainer.args.pretrained == str(path)  # the run's value again once the model is built


def test_train_model_checkpoint_with_trust_unpickles(evil_files, tmp_path):
    path, marker = evil_files["in_train_args"]
    trainer = _trainer(path, tmp_path)
    trainer.trust = True
    trainer.setup_model()
    assert marker.exists()
    marker.unlink()


def test_train_end_to_end_from_a_malicious_checkpoint(evil_files, tmp_path):
    from yolo_attn.train import train

    path, marker = evil_files["in_layer"]
    result = train(model=str(path), epochs=1, imgsz=64, batch=8, fraction=0.1, val=False, plots=False, workers=0,
                   project=str(tmp_path), name="run")
    assert result.last.is_file()
    assert not marker.exists()


def test_info_on_a_local_yolov5n_pt_is_not_renamed(stock, tmp_path, capsys, monkeypatch):
    """Ultralytics rewrites yolov5n.pt to yolov5nu.pt and tries a download; the local file is what is read."""
    monkeypatch.chdir(tmp_path)
    save_model_checkpoint(stock, tmp_path / "yolov5n.pt")
    rc, out = _cli(capsys, "info", "yolov5n.pt")
    assert rc == 0, out
    assert "yolov5nu" not in out
    assert not (tmp_path / "yolov5nu.pt").exists()


# ------------------------------------------------------------------------------------------------
# memory bombs and odd graphs in small checkpoints
# ------------------------------------------------------------------------------------------------
class Node:
    """Pickled by reference to this test module: the safe reader turns it into a placeholder."""


def _node(**attrs) -> Node:
    n = Node()
    n.__dict__.update({"_modules": {}, "_parameters": {}, "_buffers": {}, **attrs})
    return n


def _bomb(kind: str, path: Path) -> None:
    if kind == "self_reference":
        n = _node()
        n._modules.update(model=n, a=n)
        torch.save({"model": n}, path)
    elif kind == "bytearray":
        torch.save({"model": {}, "x": Evil(bytearray, 8 << 30)}, path)
    elif kind == "bytearray_legacy":
        torch.save({"x": Evil(bytearray, 8 << 30)}, path, _use_new_zipfile_serialization=False)
    elif kind == "exponential_sharing":  # 60 levels, each referring twice to the next: 2**60 paths
        prev = _node(_parameters={"w": torch.zeros(1)})
        for _ in range(60):
            prev = _node(_modules={"a": prev, "b": prev})
        torch.save({"model": prev}, path)
    elif kind == "deep_modules":
        prev = _node(_parameters={"w": torch.zeros(1)})
        for _ in range(100):  # deeper than MAX_DEPTH (64); torch.save itself recurses per level
            prev = _node(_modules={"a": prev})
        torch.save({"model": prev}, path)
    elif kind == "deep_metadata":
        deep = cur = []
        for _ in range(150):
            cur.append([])
            cur = cur[0]
        torch.save({"model": _node(_parameters={"w": torch.zeros(1)}), "train_args": {"x": deep}}, path)
    elif kind == "huge_view":  # a stride-0 view claiming 2**40 elements of a 1-element storage
        torch.save({"model": _node(_parameters={"w": torch.zeros(1).expand(1 << 40)})}, path)
    elif kind == "non_integer_index":
        seq = _node(_modules={"0": _node(i="zero", f=-1, type="Conv", _parameters={"w": torch.zeros(1)})})
        torch.save({"model": _node(_modules={"model": seq})}, path)
    else:  # pragma: no cover
        raise ValueError(kind)


BOMBS = {
    "self_reference": "nested more than",
    "bytearray": "bytearray",
    "bytearray_legacy": "bytearray",
    "exponential_sharing": "more than",
    "deep_modules": "nested more than",
    "deep_metadata": "nested more than",
    "huge_view": "elements",
    "non_integer_index": "non-integer layer index",
}


@pytest.mark.parametrize("kind", list(BOMBS))
def test_small_hostile_checkpoints_are_refused_with_a_clear_error(kind, tmp_path, capsys):
    import resource
    import time

    path = tmp_path / f"{kind}.pt"
    _bomb(kind, path)
    assert path.stat().st_size < 64 << 10
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=BOMBS[kind]) as e:
        load_checkpoint(path)
    assert str(e.value).startswith(str(path))
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 << 10  # KiB: under 512 MiB more
    rc, out = _cli(capsys, "info", path)
    assert rc == 1 and path.name in out and "Traceback" not in out


def test_compressed_storage_record_cannot_unpack_to_gigabytes(tmp_path):
    """A zip record may declare any uncompressed size; storages are capped relative to the file size."""
    import zipfile

    src = tmp_path / "src.pt"
    torch.save({"w": torch.zeros(16)}, src)
    bomb = tmp_path / "zipbomb.pt"
    numel = 1 << 25  # 128 MiB of float32, deflated to about 130 KB
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            if "/data/" in info.filename:
                record = zipfile.ZipInfo(info.filename)
                record.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(record, "w", force_zip64=True) as fh:  # streamed: never 128 MiB in memory
                    chunk = bytes(1 << 20)
                    for _ in range(numel * 4 >> 20):
                        fh.write(chunk)
                continue
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):  # size (16,) and numel 16 -> 2**25 (BININT)
                data = data.replace(b"K\x10", b"J" + numel.to_bytes(4, "little"))
            zout.writestr(info.filename, data)
    assert bomb.stat().st_size < 8 << 20
    with pytest.raises(CheckpointError, match="unpack|shorter|not a readable"):
        load_checkpoint(bomb)


# ------------------------------------------------------------------------------------------------
# outputs are never overwritten without --force
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stock_pt(tmp_path_factory, stock):
    return save_model_checkpoint(stock, tmp_path_factory.mktemp("stock") / "stock.pt")


def test_transfer_refuses_to_overwrite_its_source(stock_pt, capsys):
    before = stock_pt.read_bytes()
    for extra in ([], ["--force"]):
        rc, out = _cli(capsys, "transfer", stock_pt, "yolov5n.yaml", "-o", stock_pt, *extra)
        assert rc == 1 and "also an input" in out
    assert stock_pt.read_bytes() == before


def test_transfer_refuses_existing_outputs_unless_forced(stock_pt, tmp_path, capsys):
    out, js = tmp_path / "out.pt", tmp_path / "report.json"
    out.write_text("keep me")
    rc, text = _cli(capsys, "transfer", stock_pt, "yolov5n.yaml", "-o", out, "--json", js)
    assert rc == 1 and "--force" in text and out.read_text() == "keep me" and not js.exists()
    out.unlink()
    js.write_text("keep me too")
    rc, text = _cli(capsys, "transfer", stock_pt, "yolov5n.yaml", "-o", out, "--json", js)
    assert rc == 1 and "--json" in text and js.read_text() == "keep me too" and not out.exists()
    rc, text = _cli(capsys, "transfer", stock_pt, "yolov5n.yaml", "-o", out, "--json", js, "--force")
    assert rc == 0, text
    assert load_checkpoint(out).format == "ultralytics" and '"mapping"' in js.read_text()
    rc, text = _cli(capsys, "transfer", stock_pt, "yolov5n.yaml", "-o", out, "--json", out, "--force")
    assert rc == 1 and "also an input" in text


def test_make_yaml_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    out = tmp_path / "yolov5-se-mine.yaml"
    argv = ["make-yaml", "--layer", "SE", "-p", "backbone-end", "-o", out, "--map"]
    assert _cli(capsys, *argv)[0] == 0
    first = out.read_text()
    out.write_text("# my edits\n" + first)
    rc, text = _cli(capsys, *argv)
    assert rc == 1 and "--force" in text and out.read_text().startswith("# my edits")
    assert _cli(capsys, *argv, "--force")[0] == 0
    assert out.read_text() == first
    rc, text = _cli(capsys, "make-yaml", "--base", out, "--layer", "SE", "-p", "neck", "-o", out, "--force")
    assert rc == 1 and "also an input" in text


# ------------------------------------------------------------------------------------------------
# --trust reaches the loaders (and nothing else)
# ------------------------------------------------------------------------------------------------
def test_trust_flags_reach_training(monkeypatch):
    import yolo_attn.compare as compare_pkg
    import yolo_attn.train as train_mod
    from yolo_attn.train import parse_args

    assert parse_args(["model=x.pt", "trust=True"])["trust"] is True  # a yolo_attn key, not refused as unknown
    seen = {}

    class Result:
        metrics, save_dir, map50, map, seconds, best, task = {}, "run", 0.0, 0.0, 0.0, "best.pt", "detect"

        def summary(self):
            return ""

    monkeypatch.setattr(train_mod, "train", lambda **kw: seen.update(train=kw) or Result())
    assert main(["train", "model=x.pt", "--trust"]) == 0 and seen["train"]["trust"] is True
    assert main(["train", "model=x.pt"]) == 0 and "trust" not in seen["train"]
    from yolo_attn.compare.summary import SummarySettings, SweepSummary

    nothing = SweepSummary("x", SummarySettings(1, 64, [0]), [])
    monkeypatch.setattr(compare_pkg, "compare", lambda request, run, report: seen.update(compare=(request, run)) or nothing)
    monkeypatch.setattr(compare_pkg, "fmt_summary", lambda summary: "")
    main(["compare", "--models", "x.pt", "--trust"])
    request, run = seen["compare"]
    assert run.trust is True and "trust" not in request.train_args  # how files are read, not a hashed setting
    import dataclasses

    from yolo_attn.compare.contract import TrialSpec
    from yolo_attn.compare.trial import _train_args

    spec = TrialSpec("t", "m", "x.pt", 0, "h", "/tmp/t", "d.yaml", 1, 64, train_args={"lr0": 0.01}, trust=True)
    assert _train_args(spec)["trust"] is True  # the trial hands it to yolo_attn.train.train
    assert "trust" not in _train_args(dataclasses.replace(spec, trust=False))
