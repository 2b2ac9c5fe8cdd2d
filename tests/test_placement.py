"""Placement generator, shipped configs, by-name resolution.

The renumbering is checked against an independent computation: the data-flow graph of the base
(which layers each layer reads) must survive the placement unchanged once inserted layers are
collapsed into the layer they read, and the inserted layers must sit exactly where the placement
says. Building is done with Ultralytics' ``parse_model`` and a plain forward loop (no stride probe,
which costs more than the rest of a small build); the full ``YOLO(name)`` path is exercised by the
by-name tests.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import PYTHON, REPO, subprocess_env
from conftest import run_layers as forward
from ultralytics.nn.modules.block import C3k, C3k2

from yolo_attn import UnknownLayerError
from yolo_attn.configs import CONV_LAYERS, ShippedConfig, config_dir, shipped_configs
from yolo_attn.placement import (
    GENERATED_MARK,
    ULTRALYTICS_LICENSE_LINE,
    IndexMap,
    PlacementError,
    generate_configs,
    is_generated,
    make_yaml,
    map_path,
    render_shipped,
    render_yaml,
)

SCALES = "nsmlx"
# the blocks of each base (YOLOv5 C3, YOLOv8 C2f, YOLO11 C3k2 and C2PSA) with their yolo_attn variants
BLOCK_FAMILY = {"C3", "C3Attn", "C3FMM", "C2f", "AttnC2f", "FMMC2f", "C3k2", "AttnC3k2", "FMMC3k2", "C2PSA"}
VARIANTS = {"C3": ("C3Attn", "C3FMM"), "C2f": ("AttnC2f", "FMMC2f"), "C3k2": ("AttnC3k2", "FMMC3k2")}  # plain -> (attn, fmm)
SHIPPED = shipped_configs()
# Real builds at m/l/x for every layer's two placements that together meet every channel count of the model
# (attention inside all C3 bottlenecks, and after every backbone C3), plus the MHSA and FMM configs; the other
# configs differ only in where the same layer sits and are built at m/l/x on the meta device (construction
# checks every channel and depth dependent option without paying for weight initialisation).
HEAVY_SUBSET = {c.filename for c in SHIPPED if c.placements[0] in ("c3", "backbone") and "-add-" not in c.filename}
HEAVY_SUBSET |= {c.filename for c in SHIPPED if c.layer in (None, "MHSA") and c.base == "yolov5.yaml"}


# ------------------------------------------------------------------------------------------------
# Helpers (independent of yolo_attn.placement)
# ------------------------------------------------------------------------------------------------
def rows_of(d: dict) -> list:
    return list(d["backbone"]) + list(d["head"])


def sources(d: dict) -> list[set]:
    """For each layer, the set of absolute layer indices it reads (-1 = the image)."""
    out = []
    for i, (f, *_rest) in enumerate(rows_of(d)):
        out.append({i + x if x < 0 else x for x in (f if isinstance(f, list) else [f])})
    return out


def load(name: str) -> dict:
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(name)
    d.pop("scale", None)
    d.pop("yaml_file", None)
    return d


def build(d: dict, scale: str = "n", device: str = "cpu"):
    from ultralytics.nn.tasks import parse_model

    d = copy.deepcopy(d)
    d["scale"] = scale
    with torch.device(device):
        seq, _ = parse_model(d, ch=3, verbose=False)
    return seq


def expected_anchors(d: dict, placement) -> list[int]:
    """Base indices a splice placement inserts after, computed from module names and sections."""
    nb = len(d["backbone"])
    rows = rows_of(d)
    blocks = [i for i, r in enumerate(rows) if r[2] in BLOCK_FAMILY]
    spp = [i for i, r in enumerate(rows) if r[2] in ("SPPF", "SPP")]
    if isinstance(placement, int):
        return [placement]
    return {
        "backbone-end": [max(i for i in blocks if i < min(nb, *spp))],  # the last backbone block before SPPF
        "backbone": [i for i in blocks if i < nb],
        "neck": [i for i in blocks if i >= nb],
        "sppf": spp,
        "psa": [i for i, r in enumerate(rows) if r[2] == "C2PSA"],
    }[placement]


def check_graph(base: dict, new: dict, imap: IndexMap, layer: str, placements: list) -> None:
    """The independent check of a generated YAML against its base."""
    b_rows, n_rows = rows_of(base), rows_of(new)
    b_src, n_src = sources(base), sources(new)
    mapped = set(imap.map.values())
    assert sorted(imap.map) == list(range(len(b_rows)))
    assert len(mapped) == len(b_rows)
    inserted = [j for j in range(len(n_rows)) if j not in mapped]
    assert inserted == imap.inserted

    # every 'from' names an earlier layer, and sections are respected
    for j, s in enumerate(n_src):
        assert all(-1 <= x < j for x in s), (j, n_rows[j])
        assert (j == 0) == (s == {-1})
    assert len(new["backbone"]) == len(base["backbone"]) + sum(1 for j in inserted if j < len(new["backbone"]))

    # expected inserted count, from the placements alone
    splice = sorted({a for p in placements if p != "head-in" and not str(p).startswith(("c3", "c2f", "fmm")) for a in expected_anchors(base, p)})
    detect_inputs = sorted(b_src[-1]) if "head-in" in placements else []
    assert len(n_rows) == len(b_rows) + len(splice) + len(detect_inputs)
    for j in inserted:
        assert n_rows[j][1:] == [1, layer, imap.args], n_rows[j]
        assert len(n_src[j]) == 1

    def collapse(j: int) -> int:
        while j in inserted:
            (j,) = n_src[j]
        return j

    # 1. the data flow of the base survives: same sources once inserted layers are collapsed
    for i, s in enumerate(b_src):
        j = imap[i]
        assert {collapse(x) if x >= 0 else x for x in n_src[j]} == {imap[x] if x >= 0 else x for x in s}, (i, j)
        # modules kept (or replaced by C3 variants), n and args untouched except for replacements
        if j in imap.replaced:
            assert n_rows[j][2] in VARIANTS[b_rows[i][2]]
        else:
            assert n_rows[j][1:] == b_rows[i][1:]

    # 2. splices: one inserted layer reads each anchor, and every base reader of the anchor reads it instead
    for a in splice:
        first = [j for j in inserted if n_src[j] == {imap[a]}]
        assert len(first) >= 1, f"nothing inserted after base layer {a}"
        for c, s in enumerate(b_src):
            if a in s and imap[c] not in inserted:
                reads = n_src[imap[c]]
                assert imap[a] not in reads, (a, c)

    # 3. head-in: Detect reads only inserted layers, one per input; other readers are untouched
    if detect_inputs:
        det = imap[len(b_rows) - 1]
        assert n_rows[det][2] == b_rows[-1][2]
        assert all(x in inserted for x in n_src[det]) and len(n_src[det]) == len(detect_inputs)
        assert all(j == det - len(detect_inputs) + k for k, j in enumerate(sorted(n_src[det])))

    # 4. the index map, read back from JSON
    assert IndexMap(**{**imap.as_json(), "map": {int(k): v for k, v in imap.as_json()["map"].items()}}).map == imap.map


# ------------------------------------------------------------------------------------------------
# Renumbering against the independent graph check, on several bases
# ------------------------------------------------------------------------------------------------
BASES = ["yolov5.yaml", "yolov5-p6.yaml", "yolov5-cbam-backbone.yaml", "yolov5-se-head-in.yaml", "yolov5-eca-c3.yaml",
         "yolov8.yaml", "yolo11.yaml", "yolov8-cbam-c2f.yaml", "yolo11-se-no-psa.yaml"]  # fmt: skip
PLACEMENT_SETS = [
    ["backbone-end"],
    ["backbone"],
    ["sppf"],
    ["neck"],
    ["head-in"],
    ["backbone-end", "neck"],
    ["backbone", "backbone-end", "sppf"],  # duplicate anchor: one layer after the last backbone C3
    ["neck", "head-in"],
    ["c3-backbone", "neck"],
    ["fmm-neck", "backbone"],
    [0, 3, 5],
    ["c3"],
    ["c2f-neck", "sppf"],
    ["c3k2", "backbone"],
    ["fmm-backbone", "psa"],
]
REPLACED_BY = {"c3": {"C3"}, "c2f": {"C2f"}, "c3k2": {"C3k2"}, "fmm": set(VARIANTS)}  # placement prefix -> plain blocks


@pytest.mark.parametrize("placements", PLACEMENT_SETS, ids=lambda p: "+".join(map(str, p)))
@pytest.mark.parametrize("base", BASES)
def test_renumbering_matches_data_flow(base, placements):
    d = load(base)
    rows = rows_of(d)
    nb = len(d["backbone"])
    replace = [p for p in placements if str(p).startswith(("c3", "c2f", "fmm"))]
    wanted = {}  # placement -> base rows it must replace
    for p in replace:
        prefix, _, scope = p.partition("-")
        wanted[p] = [i for i, r in enumerate(rows) if r[2] in REPLACED_BY[prefix] and (not scope or (i < nb) == (scope == "backbone"))]
    missing = [p for p in replace if not wanted[p]]
    if missing or ("psa" in placements and not any(r[2] == "C2PSA" for r in rows)):
        with pytest.raises(PlacementError, match=rf"no (plain|C2PSA).*Placements on base {re.escape(base)}: backbone-end"):
            make_yaml(base, "SimAM", [], placements)
        return
    new, imap = make_yaml(base, "SimAM", [], placements)
    check_graph(d, new, imap, "SimAM", placements)
    for p, want in wanted.items():
        got = sorted(i for i in imap.map if imap[i] in imap.replaced)
        assert set(want) <= set(got)
        assert all(rows_of(new)[imap[i]][2] == VARIANTS[rows[i][2]][p.startswith("fmm")] for i in want)
    # the generated dict survives writing and reading back
    assert yaml.safe_load(render_yaml(new, "header", imap.notes)) == new


def test_stock_placements_by_hand():
    """A few outcomes spelled out for the stock model, as a reader would check them."""
    new, imap = make_yaml(None, "SE", [16], ["backbone-end"])
    rows = rows_of(new)
    assert rows[9] == [-1, 1, "SE", [16]] and rows[10][2] == "SPPF" and rows[10][0] == -1
    assert [r[0] for r in rows if r[2] == "Concat"] == [[-1, 6], [-1, 4], [-1, 15], [-1, 11]]
    assert rows[-1][0] == [18, 21, 24]
    assert imap.inserted == [9] and imap[9] == 10 and imap[24] == 25

    new, imap = make_yaml(None, "SE", [], ["head-in"])
    rows = rows_of(new)
    assert rows[24:] == [[17, 1, "SE", []], [20, 1, "SE", []], [23, 1, "SE", []], [[24, 25, 26], 1, "Detect", ["nc"]]]
    assert rows[18][0] == -1 and rows[21][0] == -1  # the PAN path still reads the raw C3 outputs

    new, imap = make_yaml(None, "CBAM", [{"fuse": "add"}], ["c3-neck"])
    assert rows_of(new)[13] == [-1, 3, "C3Attn", [512, "CBAM", [{"fuse": "add"}], False]]
    assert rows_of(new)[2] == [-1, 3, "C3", [128]] and imap.replaced == [13, 17, 20, 23]

    new, _ = make_yaml(None, None, None, ["fmm-backbone"])
    assert [r[2] for r in new["backbone"]].count("C3FMM") == 4

    new, _ = make_yaml(None, "MHSA", [], ["c3-backbone-end"])
    assert rows_of(new)[8] == [-1, 3, "C3Attn", [1024, "MHSA", []]]

    p6, imap = make_yaml("yolov5-p6.yaml", "ECA", [], ["backbone"])
    assert len(rows_of(p6)) == 34 + 5 and rows_of(p6)[-1][0] == [28, 31, 34, 37]


def test_new_base_placements_by_hand():
    """YOLOv8 and YOLO11: the same placement names, each base's own block, C2PSA as a block and removable."""
    new, imap = make_yaml("yolov8.yaml", "SE", [], ["backbone-end"])
    rows = rows_of(new)
    assert rows[9] == [-1, 1, "SE", []] and rows[10][2] == "SPPF" and rows[-1][0] == [16, 19, 22]
    new, imap = make_yaml("yolov8.yaml", "CBAM", [16], ["c2f-backbone"])
    assert rows_of(new)[2] == [-1, 3, "AttnC2f", [128, "CBAM", [16], True]] and rows_of(new)[12] == [-1, 3, "C2f", [512]]
    assert imap.replaced == [2, 4, 6, 8]
    new, imap = make_yaml("yolo11.yaml", "ECA", [], ["backbone-end"])  # before SPPF, not after C2PSA
    assert rows_of(new)[9][2] == "ECA" and [r[2] for r in rows_of(new)[10:12]] == ["SPPF", "C2PSA"]
    new, imap = make_yaml("yolo11.yaml", "ECA", [], ["backbone"])  # after every backbone block, C2PSA included
    assert [r[2] for r in new["backbone"]].count("ECA") == 5 and new["backbone"][-1][2] == "ECA"
    assert rows_of(new)[imap[21]][0] == [-1, imap[10] + 1]  # the P5 Concat reads the ECA after C2PSA
    new, imap = make_yaml("yolo11.yaml", None, None, ["fmm-neck"])
    assert rows_of(new)[22] == [-1, 2, "FMMC3k2", [1024, True]] and imap.replaced == [13, 16, 19, 22]
    new, imap = make_yaml("yolo11.yaml", "SE", [], ["c3k2-backbone-end"])
    assert rows_of(new)[8] == [-1, 2, "AttnC3k2", [1024, "SE", [], True]]


def test_no_psa_removes_c2psa_and_renumbers():
    base = load("yolo11.yaml")
    new, imap = make_yaml("yolo11.yaml", None, None, ["no-psa"])
    rows = rows_of(new)
    assert len(rows) == 23 and "C2PSA" not in [r[2] for r in rows] and imap.removed == [10]
    assert 10 not in imap.map and imap.map == {i: i - (i > 10) for i in range(24) if i != 10}
    assert rows[imap[21]][0] == [-1, 9] and rows[-1] == [[15, 18, 21], 1, "Detect", ["nc"]]
    b_src, n_src = sources(base), sources(new)
    for i, s in enumerate(b_src):  # every other layer reads what it read, C2PSA's readers read SPPF instead
        if i != 10:
            assert n_src[imap[i]] == {imap[9] if x == 10 else (imap[x] if x >= 0 else x) for x in s}
    assert IndexMap(**{**imap.as_json(), "map": imap.map}).removed == [10]
    new, imap = make_yaml("yolo11.yaml", "SE", [], ["no-psa", "sppf"])  # SE where C2PSA was
    assert [r[2] for r in new["backbone"][-2:]] == ["SPPF", "SE"] and len(rows_of(new)) == 24
    assert seq_types(new)[:11] == seq_types(load("yolo11.yaml"))[:10] + ["SE"]
    with pytest.raises(PlacementError, match="conflicts with placement no-psa"):
        make_yaml("yolo11.yaml", "SE", [], ["no-psa", "psa"])
    with pytest.raises(PlacementError, match="layer 10 .C2PSA. is removed by placement no-psa"):
        make_yaml("yolo11.yaml", "SE", [], ["no-psa", 10])


def seq_types(d: dict) -> list[str]:
    return [r[2] for r in rows_of(d)]


def test_negative_relative_indices_are_re_resolved():
    d = load("yolov5.yaml")
    d["head"][2][0] = [-1, -6]  # Concat (layer 12) reads layer 6 relatively
    new, imap = make_yaml(d, "SE", [], ["backbone"])
    concat = rows_of(new)[imap[12]]
    assert concat[0] == [-1, imap[6] + 1 - imap[12]]  # still relative, now to the SE after layer 6
    assert rows_of(new)[imap[6] + 1][2] == "SE"


# ------------------------------------------------------------------------------------------------
# The index map against built models
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base,layer,placements",
    [("yolov5.yaml", "CBAM", ["backbone", "neck", "head-in"]), ("yolov5-p6.yaml", "SE", ["c3", "sppf"]), ("yolov5-se-neck.yaml", None, ["fmm"]),
     ("yolo11.yaml", "SE", ["c3k2-backbone", "neck", "psa"]), ("yolov8.yaml", None, ["fmm"]), ("yolov8-se-neck.yaml", "ECA", ["c2f"])],
)  # fmt: skip
def test_index_map_matches_built_models(base, layer, placements, tmp_path):
    from yolo_attn.cli import main

    out = tmp_path / "yolov5-test.yaml"
    argv = ["make-yaml", "--base", base, "--placement", *placements, "-o", str(out), "--map"]
    assert main(argv + (["--layer", layer] if layer else [])) == 0
    imap = IndexMap.load(map_path(out))
    assert json.loads(map_path(out).read_text())["base"] == base
    base_model, new_model = build(load(base)), build(yaml.safe_load(out.read_text()))
    assert len(new_model) == len(base_model) + len(imap.inserted)
    for i, m in enumerate(base_model):
        n = new_model[imap[i]]
        assert n.i == imap[i]
        shapes = {k: v.shape for k, v in m.state_dict().items()}
        new_shapes = {k: v.shape for k, v in n.state_dict().items()}
        if imap[i] in imap.replaced:
            assert type(n).__name__ in VARIANTS[type(m).__name__]
            assert shapes.items() <= new_shapes.items()  # every C3 weight has its place in the replacement
        else:
            assert type(n) is type(m) and new_shapes == shapes, (i, imap[i])
    for j in imap.inserted:
        assert type(new_model[j]).__name__ == layer


# ------------------------------------------------------------------------------------------------
# Shipped configs: build at every scale, forward, no drift
# ------------------------------------------------------------------------------------------------
def test_shipped_configs_cover_the_promised_layers():
    names = {c.filename for c in SHIPPED}
    assert len(names) == len(SHIPPED)
    for layer in (*CONV_LAYERS, "MHSA"):
        assert any(c.layer == layer for c in SHIPPED), layer
    for n in ("yolov5-fmm.yaml", "yolov5-se-add-backbone-end.yaml", "yolov5-cbam-add-neck.yaml", "yolov5-cbam-neck.yaml",
              "yolov8-cbam-neck.yaml", "yolo11-se-backbone-end.yaml", "yolov8-fmm.yaml", "yolo11-no-psa.yaml", "yolo11-eca-c3k2.yaml"):  # fmt: skip
        assert n in names
    for base in ("yolov8.yaml", "yolo11.yaml", "yolo26.yaml", "yolo12.yaml"):  # the light gates on the newer bases
        for gate in ("SE", "ECA", "CBAM", "CoordAtt", "SimAM", "EMA"):
            got = {c.placements for c in SHIPPED if c.base == base and c.layer == gate}
            block = "c2f" if base == "yolov8.yaml" else "c3k2"
            main = {"backbone-end", "backbone", "neck", "head-in", block, f"{block}-neck"}
            main |= {"a2c2f"} if base == "yolo12.yaml" else {"sppf"}  # YOLO12 has no SPPF; its A2C2f attention swapped
            main |= {"psa", "no-psa"} if base == "yolo26.yaml" else set()
            assert {(p,) for p in main - {"no-psa"}} <= got and (("no-psa", "sppf") in got) == (base != "yolov8.yaml" and base != "yolo12.yaml")
    for c in SHIPPED:
        filename, _layer, _args, _placements = c  # documented unpacking
        stem = Path(c.base).stem
        version, _, task = stem.partition("-")  # task models: yolo11-seg.yaml -> yolo11-seg-<gate>-<placement>.yaml
        assert version in ("yolov5", "yolov8", "yolo11", "yolo26", "yolo12") and task in ("", "seg", "pose", "obb", "cls")
        assert re.fullmatch(rf"{stem}-[a-z0-9-]+\.yaml", filename) and not re.match(rf"{version}[nsmlx]-", filename)


def test_no_drift():
    report = generate_configs(check=True)
    assert report.skipped == {}, f"layers not registered: {report.skipped}"
    assert report.ok, f"drifted: {report.drifted}, stale: {report.stale} (run yolo-attn make-configs)"
    assert len(report.unchanged) == len(SHIPPED)


def test_every_shipped_config_carries_ultralytics_licence_and_its_source():
    """Each config is derived from an Ultralytics model YAML: Ultralytics' licence line first, then the file it
    comes from (the same text the generator writes; test_no_drift compares whole files)."""
    from ultralytics.utils import ROOT

    for c in SHIPPED:
        lines = (config_dir() / c.filename).read_text(encoding="utf-8").splitlines()
        source = next(ROOT.rglob(c.base)).relative_to(ROOT.parent).as_posix()
        assert lines[0] == f"# {ULTRALYTICS_LICENSE_LINE}", c.filename
        assert lines[1] == f"# Derived by yolo_attn from Ultralytics' {source}; AGPL-3.0 like it.", c.filename
        assert source.startswith("ultralytics/cfg/models/") and source.endswith("/" + c.base)


def test_licence_line_is_the_one_ultralytics_writes():
    from ultralytics.utils import ROOT

    for base in sorted({c.base for c in SHIPPED}):
        first = next(ROOT.rglob(base)).read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# {ULTRALYTICS_LICENSE_LINE}", f"{base}: Ultralytics' licence line changed: {first!r}"


def test_stale_detection_reads_the_mark_below_the_licence_lines(tmp_path):
    text = render_shipped(ShippedConfig("yolov5-se-neck.yaml", "SE", (), ("neck",)))
    assert not text.startswith(f"# {GENERATED_MARK}") and is_generated(text)
    (tmp_path / "yolov5-gone-neck.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(f"nc: 1\n# {GENERATED_MARK} (a comment far below the header)\n" * 4)
    report = generate_configs(tmp_path, check=True, configs=[])
    assert report.stale == ["yolov5-gone-neck.yaml"]


def test_generator_rewrites_and_removes_stale(tmp_path):
    configs = [ShippedConfig("yolov5-se-neck.yaml", "SE", (), ("neck",)), ShippedConfig("yolov5-nope-neck.yaml", "NoSuchLayer", (), ("neck",))]
    (tmp_path / "yolov5-old.yaml").write_text("# Generated by `yolo-attn make-configs` from x\nnc: 1\n")
    (tmp_path / "mine.yaml").write_text("# hand written\nnc: 1\n")
    report = generate_configs(tmp_path, configs=configs)
    assert report.written == ["yolov5-se-neck.yaml"] and report.removed == ["yolov5-old.yaml"]
    assert report.skipped == {"NoSuchLayer": ["yolov5-nope-neck.yaml"]}
    assert (tmp_path / "mine.yaml").exists()
    assert (tmp_path / "yolov5-se-neck.yaml").read_text() == (config_dir() / "yolov5-se-neck.yaml").read_text()
    (tmp_path / "yolov5-se-neck.yaml").write_text("edited\n")
    assert generate_configs(tmp_path, check=True, configs=configs).drifted == ["yolov5-se-neck.yaml"]


def _scaled(filename: str, scale: str) -> str:
    stem = filename.split("-", 1)[0]
    return filename.replace(f"{stem}-", f"{stem}{scale}-", 1)


def _scales(c: ShippedConfig) -> str:
    """YOLOv5 configs at every scale; on the newer bases the configs that differ in structure (SE at each placement,
    FMM, no-psa) at every scale. The other gates at the same placements differ only in the gate, which
    tests/test_layers_bases.py builds at every scale of both bases; tests/test_transfer_bases.py builds every
    YOLOv8/YOLO11 config by its scaled name at n (with a forward) and s. The task configs (``yolo11-seg-...``):
    tests/test_layers_tasks.py."""
    if c.task:
        return ""
    return SCALES if c.base == "yolov5.yaml" or c.layer in (None, "SE") else ""


SHIPPED_CASES = [
    pytest.param(c.filename, s, id=f"{c.filename[:-len('.yaml')]}-{s}".removeprefix("yolov5-"))
    for c in SHIPPED
    for s in _scales(c)
]


@pytest.fixture
def one_thread():
    """64x64 forwards gain nothing from a second thread, and OpenMP threads on a busy machine cost seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("filename,scale", SHIPPED_CASES)
def test_shipped_config_builds(filename, scale, one_thread):
    """Every shipped config builds by its scaled name at every scale and runs a 64x64 forward.

    YOLOv5: scales n and s, and HEAVY_SUBSET at every scale, build real weights and run the forward; YOLOv8/YOLO11
    (whose configs the transfer tests also build for real at n and s): scale n. The others are constructed on
    the meta device (every channel/depth dependent option is checked at construction). See ``_scales``.
    YOLO_ATTN_FULL_BUILDS=1 builds and runs everything for real (about 5x longer).
    """
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(_scaled(filename, scale))
    assert d["scale"] == scale and Path(d["yaml_file"]).name == _scaled(filename, scale)
    cfg = next(c for c in SHIPPED if c.filename == filename)
    real_scales = "ns" if cfg.base == "yolov5.yaml" else "n"
    real = scale in real_scales or filename in HEAVY_SUBSET or os.environ.get("YOLO_ATTN_FULL_BUILDS") == "1"
    seq = build(d, scale, "cpu" if real else "meta")
    if real:
        seq.train()  # raw head outputs; no anchors or strides needed
        with torch.no_grad():
            y = forward(seq, torch.zeros(1, 3, 64, 64))
        y = y.get("one2many", y) if isinstance(y, dict) else y  # YOLO26: the one-to-many and one-to-one branches
        out = y["boxes"] if isinstance(y, dict) else y[0]
        assert out.shape[0] == 1 and torch.isfinite(out).all()
    ours = {type(m).__name__ for m in seq.modules() if type(m).__module__.startswith("yolo_attn.")}
    if cfg.layer is None and "no-psa" in cfg.placements:
        assert not ours and "C2PSA" not in {type(m).__name__ for m in seq}
        return
    layer = cfg.layer or {"yolov5.yaml": "C3FMM", "yolov8.yaml": "FMMC2f"}.get(cfg.base, "FMMC3k2")
    assert layer in ours
    if cfg.base in ("yolo11.yaml", "yolo26.yaml", "yolo12.yaml"):  # the newer Detect head (not the legacy one), every C3k2 replaced or not
        assert seq[-1].legacy is False
    if any(isinstance(m, C3k2) for m in seq):  # C3k2 (and its variants) use C3k units from scale m on, as in Ultralytics
        # (YOLO26's last head block has PSA units instead, at every scale: Sequential(bottleneck, PSA block))
        units = [u for m in seq if isinstance(m, C3k2) for u in m.m if not isinstance(u, torch.nn.Sequential)]
        assert all(isinstance(u, C3k) for u in units) == (scale in "mlx")  # at n/s only rows saying c3k=True


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base,layer,args,placements,error,match",
    [
        (None, "SE", [], ["middle"], PlacementError, r"base yolov5\.yaml: unknown placement 'middle'"),
        (None, "SE", [], [40], PlacementError, r"yolov5\.yaml, placement 40: layer index 40 out of range \(.*0\.\.24\)"),
        (None, "SE", [], [24], PlacementError, r"placement 24: layer 24 is the detection head"),
        (None, "SEE", [], ["neck"], UnknownLayerError, r"yolov5\.yaml: unknown attention layer 'SEE'\. Did you mean 'SE'\?"),
        (None, "C3FMM", [], ["neck"], PlacementError, r"placement neck: C3FMM is a block layer.*use placement fmm"),
        (None, "C3Attn", [], ["c3"], PlacementError, r"placement c3: C3Attn is a block layer"),
        (None, "SE", ["x"], ["neck"], PlacementError, r"placement neck: bad arguments \['x'\] for layer SE"),
        (None, "SE", [{"fuse": "max"}], ["neck"], PlacementError, r"bad arguments .* for layer SE: .*fuse"),
        (None, None, [], ["neck"], PlacementError, r"placement neck: this placement needs an attention layer"),
        (None, "SE", [], ["fmm"], PlacementError, r"placement fmm: uses no attention layer, but layer SE was given"),
        (None, "SE", [], ["c3", "fmm-neck"], PlacementError, r"placement fmm-neck: conflicts with placement c3"),
        (None, "SE", [], ["c3:1"], PlacementError, r"placement c3:1: layer 1 is Conv, not a C3"),
        ("yolov5-eca-c3.yaml", "SE", [], ["c3-neck"], PlacementError, r"base yolov5-eca-c3\.yaml, placement c3-neck: no plain C3 layer in the head"),
        ("yolov5-se-c3-backbone.yaml", None, [], ["fmm-backbone-end"], PlacementError, r"last backbone block layer 8 is C3Attn"),
        ("yolo11.yaml", "SE", [], ["c3"], PlacementError,
         r"base yolo11\.yaml, placement c3: no plain C3 layer .*Placements on base yolo11\.yaml: backbone-end, .*c3k2, c3k2-backbone"),
        ("yolov8.yaml", "SE", [], ["c3k2-neck"], PlacementError, r"yolov8\.yaml, placement c3k2-neck: no plain C3k2 layer in the head.* c2f-neck"),
        ("yolov8.yaml", "SE", [], ["psa"], PlacementError, r"yolov8\.yaml, placement psa: no C2PSA layer .*Placements on base yolov8\.yaml"),
        ("yolov5.yaml", None, [], ["no-psa"], PlacementError, r"yolov5\.yaml, placement no-psa: no C2PSA layer to remove"),
        ("yolo11.yaml", "SE", [], ["c2f:2"], PlacementError, r"placement c2f:2: layer 2 is C3k2, not a C2f"),
        ("yolo11.yaml", "AttnC3k2", [], ["c3k2"], PlacementError, r"placement c3k2: AttnC3k2 is a block layer"),
        ("yolov8.yaml", "SE", [], ["c2f", "fmm-neck"], PlacementError, r"layer 12 cannot become both AttnC2f and FMMC2f"),
        ("nonexistent-model.yaml", "SE", [], ["neck"], FileNotFoundError, r"'nonexistent-model\.yaml' not found"),
    ],
)
def test_errors(base, layer, args, placements, error, match):
    with pytest.raises(error, match=match):
        make_yaml(base, layer, args, placements)


def test_errors_without_c3_or_sppf_or_detect():
    d = load("yolov5.yaml")
    for row in rows_of(d):
        if row[2] in ("C3", "SPPF"):
            row[2], row[3] = "Conv", [row[3][0], 1, 1]
    d["yaml_file"] = "my-conv-only.yaml"
    for p, msg in [("backbone", "no C3, C2f, C3k2 or A2C2f block in the backbone"), ("neck", "no C3, C2f, C3k2 or A2C2f block in the head"),
                   ("sppf", "no SPPF or SPP"), ("c3", "no plain C3 layer")]:  # fmt: skip
        with pytest.raises(PlacementError, match=rf"base my-conv-only\.yaml, placement {p}: {msg}"):
            make_yaml(d, "SE", [], [p])


def test_cli_errors(tmp_path, capsys):
    from yolo_attn.cli import main

    assert main(["make-yaml", "--layer", "SE", "--placement", "nowhere", "-o", str(tmp_path / "a.yaml")]) == 1
    assert "unknown placement 'nowhere'" in capsys.readouterr().err
    assert main(["make-yaml", "--layer", "SE", "--args", "[16, {fuse: add}", "--placement", "neck", "-o", str(tmp_path / "a.yaml")]) == 1
    assert "not YAML flow text" in capsys.readouterr().err
    assert not (tmp_path / "a.yaml").exists()
    assert main(["make-yaml", "--layer", "CBAM", "--args", "[16, {fuse: add}]", "--placement", "backbone-end", "neck", "-o", str(tmp_path / "b.yaml")]) == 0
    text = (tmp_path / "b.yaml").read_text()
    assert text.startswith("# Generated by `yolo-attn make-yaml") and "- [-1, 1, CBAM, [16, {fuse: add}]] # 9" in text


# ------------------------------------------------------------------------------------------------
# By-name resolution and packaging
# ------------------------------------------------------------------------------------------------
RESOLVE = """
import sys, yolo_attn
from pathlib import Path
from ultralytics.nn.tasks import yaml_model_load, check_yaml
from ultralytics import YOLO
for name, scale in (("yolov5s-cbam-neck.yaml", "s"), ("yolov5-cbam-neck.yaml", ""), ("yolov5x-fmm.yaml", "x")):
    d = yaml_model_load(name)
    assert d["scale"] == scale, (name, d["scale"])
    assert any(r[2] in ("CBAM", "C3FMM") for r in d["backbone"] + d["head"]), name
print(Path(check_yaml("yolov5-cbam-neck.yaml")).parent)
print(Path(check_yaml("yolov5.yaml")).parent.name)  # Ultralytics' own configs are still Ultralytics'
try:
    yaml_model_load("yolov5s-no-such-config.yaml")
except FileNotFoundError:
    print("missing ok")
model = YOLO("yolov5n-se-backbone-end.yaml")
assert type(model.model.model[9]).__name__ == "SE", model.model.model[9]
for name, layer in (("yolov8s-cbam-neck.yaml", "CBAM"), ("yolo11n-se-backbone-end.yaml", "SE")):
    d = yaml_model_load(name)
    assert d["scale"] == name[len(name.split("-")[0]) - 1] and any(r[2] == layer for r in d["backbone"] + d["head"]), name
assert type(YOLO("yolo11n-se-backbone-end.yaml").model.model[9]).__name__ == "SE"
print(yolo_attn.__file__)
"""


def test_configs_resolve_by_name_from_another_directory(tmp_path):
    r = subprocess.run([PYTHON, "-c", RESOLVE], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert Path(lines[0]) == (REPO / "models" / "yaml").resolve()
    assert lines[1] == "v5" and lines[2] == "missing ok"


def test_pyproject_packages_every_subpackage():
    """The explicit package list of pyproject.toml must name every package directory of yolo_attn."""
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    assert cfg["package-dir"]["yolo_attn.cfg"] == "models/yaml"
    on_disk = {
        ".".join(p.relative_to(REPO).parts)
        for p in [REPO / "yolo_attn", *(REPO / "yolo_attn").rglob("*")]
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))
    }
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_wheel_ships_configs_and_resolves_them(tmp_path):
    """A regular (non-editable) install: build the wheel, install it into a directory, resolve from elsewhere."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "yolo_attn", src / "yolo_attn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "models" / "yaml", src / "models" / "yaml")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "whl")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.split("/")[-1] for n in names if n.startswith("yolo_attn/cfg/"))
    assert shipped == sorted(c.filename for c in SHIPPED)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: AGPL-3.0-only" in meta and "License-File: LICENSE" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    r = subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = subprocess_env(PYTHONPATH=str(tmp_path / "site"))
    r = subprocess.run([PYTHON, "-c", RESOLVE], cwd=run_dir, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert Path(lines[0]) == tmp_path / "site" / "yolo_attn" / "cfg"
    assert Path(lines[-1]).is_relative_to(tmp_path / "site")
