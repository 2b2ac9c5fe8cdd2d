"""Bad model YAMLs fail with clear errors; names never collide silently; the ``yolo-attn`` list/info commands."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from ultralytics.nn.tasks import DetectionModel

import yolo_attn
from yolo_attn import LAYERS, UnknownLayerError, YamlLayerError
from yolo_attn._ultralytics import ultralytics_names
from yolo_attn.cli import main

from conftest import GATING, PRESERVE, SPECS, default_row, model_dict, sppf_index, spec_params

POS = sppf_index()  # index the inserted row gets


def _build(path):
    return DetectionModel(str(path), verbose=False)


def _assert_names_row(msg: str, path, index: int = POS):
    assert path.name in msg, f"error does not name the YAML file: {msg}"
    assert f"layer {index}" in msg, f"error does not name the layer index: {msg}"


# ------------------------------------------------------------------------------------------------
# unknown names
# ------------------------------------------------------------------------------------------------
def test_unknown_name_lists_registered_names_and_closest_match(make_yaml):
    typo, expected = ("CBMA", "CBAM") if "CBAM" in LAYERS else ("SEE", "SE")
    path = make_yaml("n", [-1, 1, typo, []])
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    assert f"Did you mean {expected!r}" in msg
    for name in LAYERS.names():
        assert name in msg
    _assert_names_row(msg, path)


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_wrong_case_suggests_the_registered_name(spec):
    msg = LAYERS.unknown_message(spec.name.lower())
    assert f"Did you mean {spec.name!r}" in msg


def test_unknown_name_through_the_python_api():
    with pytest.raises(UnknownLayerError, match="Registered layers"):
        yolo_attn.build("NoSuchAttention", 64)
    with pytest.raises(KeyError):  # UnknownLayerError is a KeyError for dict-like callers
        LAYERS.get("NoSuchAttention")


def test_unknown_name_in_yolo(make_yaml):
    from ultralytics import YOLO

    with pytest.raises(YamlLayerError, match="unknown attention layer"):
        YOLO(str(make_yaml("n", [-1, 1, "NoSuchAttention", []])))


def test_typo_of_an_ultralytics_layer_suggests_it(make_yaml):
    with pytest.raises(YamlLayerError, match=r"layer 9 .*'Cnov'.*Did you mean 'Conv'\?"):
        DetectionModel(str(make_yaml("n", [-1, 1, "Cnov", [64, 1, 1]])), verbose=False)


def test_stock_ultralytics_yaml_still_builds():
    model = DetectionModel("yolov5n.yaml", verbose=False)
    assert not any(m.type.startswith("yolo_attn.") for m in model.model)


# ------------------------------------------------------------------------------------------------
# bad arguments: the error names file, row and layer index
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,what",
    [(["abc"], "reduction"), ([512], "exceeds"), ([0], "reduction"), ([16, {"nonsense": 1}], "nonsense")],
    ids=["string", "larger-than-channels", "zero", "unknown-option"],
)
def test_se_bad_arguments(make_yaml, args, what):
    path = make_yaml("n", [-1, 1, "SE", args])
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    _assert_names_row(msg, path)
    assert "SE" in msg and what in msg


@pytest.mark.parametrize("spec", spec_params(PRESERVE))
def test_bad_init_names_row(spec, make_yaml):
    path = make_yaml("n", default_row(spec, init="bogus"))
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    _assert_names_row(msg, path)
    assert spec.name in msg and "init" in msg and "bogus" in msg


@pytest.mark.parametrize("spec", spec_params(GATING))
def test_bad_fuse_names_row(spec, make_yaml):
    path = make_yaml("n", default_row(spec, fuse="bogus"))
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    _assert_names_row(msg, path)
    assert spec.name in msg and "fuse" in msg and "bogus" in msg


@pytest.mark.parametrize("spec", spec_params([s for s in SPECS if s.kind == "block"]))
@pytest.mark.parametrize("c2", ["abc", 0, -8], ids=["string", "zero", "negative"])
def test_block_bad_channels(spec, c2, make_yaml):
    path = make_yaml("n", [-1, 3, spec.name, [c2]])
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    _assert_names_row(str(e.value), path)
    assert "output channels" in str(e.value)
    assert "[-1, 3," in str(e.value), "the row is shown with its YAML repeat count"


def test_block_with_unknown_inner_attention(make_yaml):
    path = make_yaml("n", [-1, 3, "C3Attn", [512, "SEE"]])
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    _assert_names_row(str(e.value), path)
    assert "Did you mean 'SE'" in str(e.value)


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_list_from_is_rejected(spec, make_yaml):
    row = default_row(spec)
    row[0] = [-1, 6]
    path = make_yaml("n", row)
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    _assert_names_row(msg, path)
    assert "'from'" in msg and "one input" in msg


@pytest.mark.parametrize("f", [99, -99], ids=["after", "before-input"])
def test_from_index_out_of_range(f, make_yaml):
    spec = PRESERVE[0]
    path = make_yaml("n", [f, 1, spec.name, []])
    with pytest.raises(YamlLayerError, match="does not name an earlier layer") as e:
        _build(path)
    _assert_names_row(str(e.value), path)


# ------------------------------------------------------------------------------------------------
# malformed rows
# ------------------------------------------------------------------------------------------------
MALFORMED = {
    "three-fields": ([-1, 1, "SE"], "a row must be"),
    "five-fields": ([-1, 1, "SE", [], 1], "a row must be"),
    "not-a-list": ("SE", "a row must be"),
    "number-zero": ([-1, 0, "SE", []], "number must be a positive integer"),
    "number-string": ([-1, "x", "SE", []], "number must be a positive integer"),
    "args-not-list": ([-1, 1, "SE", 16], "args must be a list"),
    "module-not-string": ([-1, 1, 123, []], "unknown attention layer"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_rows(case, tmp_path):
    row, what = MALFORMED[case]
    d = model_dict([-1, 1, "SE", []] if PRESERVE else [])
    d["backbone"][POS] = row
    path = tmp_path / "yolov5n-bad.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(YamlLayerError) as e:
        _build(path)
    msg = str(e.value)
    assert what in msg and path.name in msg and f"layer {POS}" in msg


def test_yaml_layer_error_is_a_value_error():
    assert issubclass(YamlLayerError, ValueError)


# ------------------------------------------------------------------------------------------------
# name collisions with Ultralytics
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in SPECS])
def test_no_silent_collision_with_ultralytics_names(spec):
    names = ultralytics_names()
    assert "Conv" in names and "C3" in names and "SPPF" in names  # sanity: the set is Ultralytics' namespace
    if spec.name in names:
        assert spec.overrides == spec.name, f"{spec.name} shadows Ultralytics' {spec.name} without overrides="
    else:
        assert spec.overrides == "", (
            f"{spec.name} declares overrides={spec.overrides!r} but Ultralytics {yolo_attn._ultralytics.ULTRALYTICS_VERSION} "
            f"resolves no YAML name {spec.name!r}: declare overrides only for a real collision"
        )


def test_install_refuses_undeclared_shadowing(monkeypatch):
    from yolo_attn import _ultralytics
    from yolo_attn.registry import Registry

    reg = Registry()

    @reg.register(family="t", paper="p", year=2020)
    class Conv:  # noqa: D401 - collides with Ultralytics' Conv
        pass

    monkeypatch.setattr(_ultralytics, "LAYERS", reg)
    with pytest.raises(RuntimeError, match="would shadow Ultralytics' own 'Conv'"):
        _ultralytics.install()

    reg2 = Registry()
    reg2.register(name="Path", family="t", paper="p", year=2020, overrides="Path")(type("Path", (), {}))
    monkeypatch.setattr(_ultralytics, "LAYERS", reg2)
    with pytest.raises(RuntimeError, match="not a model layer"):
        _ultralytics.install()


def test_registry_rejects_duplicate_names_and_bad_kinds():
    from yolo_attn.registry import Registry

    reg = Registry()
    reg.register(name="X", family="t", paper="p", year=2020)(type("A", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        reg.register(name="X", family="t", paper="p", year=2020)(type("B", (), {}))
    with pytest.raises(ValueError, match="kind must be one of"):
        reg.register(name="Y", family="t", paper="p", year=2020, kind="weird")(type("C", (), {}))


# ------------------------------------------------------------------------------------------------
# yolo-attn list / info
# ------------------------------------------------------------------------------------------------
def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(LAYERS.names())
    for spec in SPECS:
        r = by_name[spec.name]
        assert r["family"] == spec.family and r["paper"] == spec.paper and r["year"] == spec.year
        assert r["kind"] in ("preserve", "block") and r["kind"] == spec.kind
        assert r["nondeterministic"] is spec.nondeterministic
        assert r["onnx"] is spec.onnx
        assert r["gating"] is spec.gating


def test_list_family_filter(capsys):
    family = SPECS[0].family
    assert main(["list", "--json", "--family", family]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["family"] == family for r in rows)


def test_list_text_marks_caveats(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip() and not line.startswith(" ")}
    for spec in SPECS:
        line = lines[spec.name]
        assert str(spec.year) in line and spec.family in line and spec.kind in line
        assert ("nondeterministic" in line) == spec.nondeterministic, line
        assert ("no-onnx" in line) == (not spec.onnx), line
    assert f"{len(SPECS)} layers" in out


def test_console_script_is_installed():
    import shutil
    import subprocess

    from conftest import subprocess_env

    import sys
    from pathlib import Path

    # the script of the interpreter running the tests (a venv's own, not another installation's on PATH)
    exe = shutil.which("yolo-attn", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"no yolo-attn console script beside {sys.executable} (package not installed there)")
    out = subprocess.run([exe, "list", "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert {r["name"] for r in json.loads(out.stdout)} == set(LAYERS.names())


@pytest.fixture
def ultralytics_log():
    """Everything Ultralytics' LOGGER prints during the test (its handler holds the stdout of import time)."""
    import io
    import logging

    from ultralytics.utils import LOGGER

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.INFO)
    LOGGER.addHandler(handler)
    yield buf
    LOGGER.removeHandler(handler)


def test_info_prints_the_layer_table(make_yaml, ultralytics_log):
    spec = PRESERVE[0]
    path = make_yaml("n", default_row(spec))
    assert main(["info", str(path), "--imgsz", "64"]) == 0
    out = ultralytics_log.getvalue()
    assert re.search(r"from\s+n\s+params\s+module\s+arguments", out), out[-2000:]  # Ultralytics' layer table
    assert f"{spec.cls.__module__}.{spec.cls.__qualname__}" in out
    assert "parameters" in out and "GFLOPs" in out
    assert f"{POS}:{spec.cls.__qualname__}" in out, "attention layers line"


def test_info_errors_are_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.yaml")]) == 1
    assert "yolo-attn info: error:" in capsys.readouterr().err
    bad = tmp_path / "yolov5n-bad.yaml"
    bad.write_text(yaml.safe_dump(model_dict([-1, 1, "NoSuchAttention", []])))
    assert main(["info", str(bad)]) == 1
    assert "unknown attention layer" in capsys.readouterr().err
