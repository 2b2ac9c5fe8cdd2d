"""Bad model YAMLs fail with clear errors; names never collide silently; the ``yolo-attn`` list/info commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel

import yolo_attn
from yolo_attn import LAYERS, UnknownLayerError, YamlLayerError
from yolo_attn._ultralytics import MAX_REPEATS, ultralytics_names
from yolo_attn.cli import main

from conftest import cli_output as _cli, stock_dict as _stock_dict, with_row as _with_row, yaml_file as _yaml
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


# ------------------------------------------------------------------------------------------------
# hostile YAMLs: only layer classes, no code through activation or args, clear structure errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["torch_load", "torch_safe_load", "load_checkpoint", "check_requirements",
                                  "yaml_model_load", "parse_model", "attempt_load_weights", "initialize_weights"])
def test_functions_in_the_tasks_namespace_are_not_layers(name, tmp_path, evil_pt):
    evil, marker = evil_pt
    path = _yaml(tmp_path, _with_row(1, [-1, 1, name, [str(evil)]]))
    with pytest.raises(YamlLayerError, match=rf"layer 1 .*'{name}'") as e:
        DetectionModel(str(path), verbose=False)
    assert path.name in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["DetectionModel", "Ensemble", "nn.Parameter", "nn.factory_kwargs", "nn.init",
                                  "torchvision.ops.nms", "nn.functional.relu", "v8DetectionLoss"])
def test_non_layer_classes_and_callables_are_refused(name, tmp_path):
    path = _yaml(tmp_path, _with_row(1, [-1, 1, name, [64]]))
    with pytest.raises(YamlLayerError, match="layer 1"):
        DetectionModel(str(path), verbose=False)


def test_activation_is_never_evaluated_as_code(tmp_path):
    marker = tmp_path / "pwned"
    for act in (f"__import__('os').system('touch {marker}') or nn.SiLU()", f"nn.SiLU(open('{marker}', 'w'))",
                "torch.load('x.pt')", "nn.functional.relu", "nn.Parameter(1)", "nn.SiLU(**{})"):
        path = _yaml(tmp_path, _stock_dict(activation=act))
        with pytest.raises(YamlLayerError, match="activation"):
            DetectionModel(str(path), verbose=False)
    assert not marker.exists()


def test_documented_activations_still_build(tmp_path):
    for act in ("nn.LeakyReLU(0.1)", "torch.nn.SiLU()", "nn.ReLU(inplace=True)"):
        model = DetectionModel(str(_yaml(tmp_path, _stock_dict(activation=act))), verbose=False)
        assert model(torch.zeros(1, 3, 64, 64)) is not None


def test_string_args_may_not_name_parse_model_internals(tmp_path):
    for arg in ("d", "layers", "ch", "ast", "m_", "save"):
        path = _yaml(tmp_path, _with_row(1, [-1, 1, "Conv", [arg, 3, 2]]))
        with pytest.raises(YamlLayerError, match=rf"argument '{arg}' names an internal variable"):
            DetectionModel(str(path), verbose=False)
    DetectionModel("yolov5n.yaml", nc=3, verbose=False)  # Detect's [nc] still resolves


def test_every_ultralytics_and_shipped_config_passes_the_check():
    import ultralytics

    from yolo_attn._ultralytics import load_model_yaml

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    files = sorted(root.rglob("*.yaml")) + sorted((Path(__file__).parents[1] / "models" / "yaml").glob("*.yaml"))
    assert len(files) > 50
    for f in files:
        load_model_yaml(f)  # raises on a false refusal


STRUCTURE = {
    "empty": ("", "no 'nc', 'backbone', 'head'"),
    "not-yaml": ("nc: [1\n", "must be a mapping"),
    "a-list": ("- 1\n- 2\n", "must be a mapping"),
    "no-backbone": ({"nc": 2, "head": []}, "no 'backbone'"),
    "no-head": ({"nc": 2, "backbone": [[-1, 1, "Conv", [16, 3, 2]]]}, "no 'head'"),
    "no-nc": ({"backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": []}, "no 'nc'"),
    "nc-string": ({"nc": "two", "backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": []}, "nc must be"),
    "backbone-not-list": ({"nc": 2, "backbone": "Conv", "head": []}, "'backbone' must be a list"),
    "bad-scales": ({**_stock_dict(), "scales": {"n": [0.33, 0.25]}}, "scale 'n'"),
}


@pytest.mark.parametrize("case", list(STRUCTURE))
def test_model_yaml_structure_errors_name_the_file(case, tmp_path, capsys):
    content, what = STRUCTURE[case]
    path = _yaml(tmp_path, content)
    with pytest.raises(YamlLayerError, match=what) as e:
        DetectionModel(str(path), verbose=False)
    assert path.name in str(e.value)
    rc, out = _cli(capsys, "info", path)
    assert rc == 1 and path.name in out and "Traceback" not in out


@pytest.mark.parametrize("f", [[-1, 99], [-1, -99], [-1, "x"], [], True])
def test_from_out_of_range_in_any_row_names_the_row(f, tmp_path):
    d = _stock_dict()
    i = len(d["backbone"]) + 2  # the first Concat of the head
    assert d["head"][2][2] == "Concat"
    d["head"][2][0] = f
    path = _yaml(tmp_path, d)
    with pytest.raises(YamlLayerError, match=rf"layer {i} .*'from'") as e:
        DetectionModel(str(path), verbose=False)
    assert path.name in str(e.value)


def test_a_row_ultralytics_cannot_build_is_named(tmp_path):
    d = _stock_dict()
    d["head"][2][0] = 6  # Concat needs a list of inputs: Ultralytics fails with a TypeError inside parse_model
    path = _yaml(tmp_path, d)
    i = len(d["backbone"]) + 2
    with pytest.raises(YamlLayerError, match=rf"{path.name}: layer {i} .*Concat.*cannot build"):
        DetectionModel(str(path), verbose=False)


def test_first_row_reads_only_the_image(tmp_path):
    path = _yaml(tmp_path, _with_row(0, [0, 1, "Conv", [64, 6, 2, 2]]))
    with pytest.raises(YamlLayerError, match="layer 0 .*'from' index 0"):
        DetectionModel(str(path), verbose=False)


@pytest.mark.parametrize("module", ["C3", "C3Attn", "Conv"])
def test_absurd_repeat_counts_are_refused_before_building(module, tmp_path):
    row = [-1, 3_000_000, module, [128]]
    path = _yaml(tmp_path, _with_row(2, row))
    with pytest.raises(YamlLayerError, match=rf"layer 2 .*repeats the layer \d+ times .*at most {MAX_REPEATS}"):
        DetectionModel(str(path), verbose=False)


def test_repeat_bound_applies_after_depth_scaling(tmp_path):
    # scale n has depth 0.33: 300 repeats become 99 (allowed), 400 become 132 (refused)
    d = _with_row(2, [-1, 300, "C3", [128]])
    d["backbone"][2][1] = 400
    with pytest.raises(YamlLayerError, match="132 times"):
        DetectionModel(str(_yaml(tmp_path, d)), verbose=False)


INVALID_BASES = {
    "concat-from": (lambda d: d["head"][2].__setitem__(0, [-1, 99]), "does not name an earlier layer"),
    "unknown-name": (lambda d: d["backbone"].__setitem__(1, [-1, 1, "Cnov", [128, 3, 2]]), "Did you mean 'Conv'"),
    "no-nc": (lambda d: d.pop("nc"), "no 'nc'"),
    "bad-arg": (lambda d: d["backbone"].__setitem__(1, [-1, 1, "Conv", [128, 3, 2, "nosuch"]]), "cannot build"),
}


@pytest.mark.parametrize("case", list(INVALID_BASES))
def test_make_yaml_on_an_invalid_base_writes_nothing(case, tmp_path, capsys):
    change, what = INVALID_BASES[case]
    d = _stock_dict()
    change(d)
    base = _yaml(tmp_path, d, "yolov5-badbase.yaml")
    out = tmp_path / "yolov5-out.yaml"
    rc, text = _cli(capsys, "make-yaml", "--base", base, "--layer", "SE", "-p", "backbone-end", "-o", out)
    assert rc == 1 and what in text and base.name in text, text
    assert not out.exists()

# ------------------------------------------------------------------------------------------------
# a row that would allocate more memory than the machine has
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row, index", [
    ([-1, 1, "Conv", [10_000_000, 3, 2]], 1),  # Ultralytics' own layer: 2.5 million channels at width 0.25
    ([-1, 2, "AttnA2C2f", [128, "SE", [], True, 1, False, 1e5]], 1),  # an attention option of 1e5
])
def test_a_row_that_asks_for_gigabytes_is_refused_before_it_allocates(tmp_path, row, index):
    import resource

    d = _with_row(index, row)
    d.pop("scales")  # Ultralytics caps a row's channels at the scale's max_channels; a YAML without scales has no cap
    path = _yaml(tmp_path, {**d, "depth_multiple": 0.33, "width_multiple": 0.25}, name="yolov5-huge.yaml")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(YamlLayerError, match=r"the model would hold [\d,]+ parameters .* more than yolo_attn builds") as err:
        _build(path)
    assert path.name in str(err.value) and "layer " in str(err.value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, f"peak memory grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize("ratio", [0, -1.5, float("nan")])
def test_a2c2f_mlp_ratio_must_be_positive(tmp_path, ratio):
    path = _yaml(tmp_path, _with_row(2, [-1, 1, "AttnA2C2f", [128, "SE", [], True, 1, False, ratio]]))
    with pytest.raises(YamlLayerError, match=r"layer 2 .*AttnA2C2f: mlp_ratio must be a positive number"):
        _build(path)


def test_shipped_and_ultralytics_configs_skip_the_size_build(monkeypatch):
    """Their sizes are known: the dry build on the meta device runs only for other YAMLs."""
    from yolo_attn._ultralytics import parse

    calls = []
    monkeypatch.setattr(parse, "_check_size", lambda d, ch: calls.append(d.get("yaml_file")))
    _build("yolov5n.yaml"), _build("yolov5n-cbam-neck.yaml")
    assert calls == []
