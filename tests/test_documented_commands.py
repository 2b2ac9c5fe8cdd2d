"""Every ``yolo-attn`` command shown in README.md and docs/*.md runs, with its documented flags intact.

The commands are read from the Markdown itself (fenced shell blocks; ``text`` blocks are output and are
not read), so a new or edited example cannot escape. Each block runs as a script would, its commands in
order, in one working folder shared by all blocks that holds stand-ins for the files the examples name
(``DATA.yaml``, ``yolov5s.pt``, a VOC export, ...). Commands that train run at reduced size: the size flags
(``--epochs``, ``--seeds``, ``--imgsz``, search's ``--budget``) keep their names with smaller values, and a
small generated dataset stands in for the shipped one and for datasets outside the repository. A command
identical to one already run is not run twice.
"""

from __future__ import annotations

import importlib.util

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
SUBCOMMANDS_THAT_TRAIN = {"compare", "study", "search", "train", "make-stock"}
# documented files the stand-in folder provides (model checkpoints: randomly initialised, Ultralytics format)
CHECKPOINTS = {"yolov5n.pt": "yolov5n.yaml", "yolov5s.pt": "yolov5s.yaml", "stock.pt": "yolov5n.yaml",
               "se.pt": "yolov5n-se-backbone-end.yaml", "cbam.pt": "yolov5n-cbam-neck.yaml"}
# reduced sizes: flag -> value (the flag is added when the documented command leaves it at its default)
REDUCED = {
    "compare": {"--epochs": "1", "--seeds": "2", "--imgsz": "64", "--boot": "100", "--threads": "1"},
    "study": {"--epochs": "1", "--seeds": "2", "--imgsz": "64", "--threads": "1"},
    "search": {"--budget": "0.01", "--max-epochs": "2", "--min-epochs": "1", "--imgsz": "64", "--threads": "1",
               "--confirm-seeds": "2"},
    "diagnose": {"--imgsz": "64", "--boot": "50"},
    "make-stock": {"--epochs": "1"},
    "make-shapes": {"--n-train": "320", "--n-val": "80"},  # detection's defaults; classify's 2000 + 400 reduced
}
REDUCED_KEYS = {"train": {"epochs": "1", "imgsz": "64", "workers": "0"}}


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    argv: tuple[str, ...]


@dataclass(frozen=True)
class DocBlock:
    where: str
    commands: tuple[DocCommand, ...]


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations; each result keeps the number of its first line."""
    out, buf, first = [], "", None
    for n, line in lines:
        first = n if first is None else first
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((first, buf + line))
        buf, first = "", None
    return out


def documented_blocks(files=DOCS) -> list[DocBlock]:
    blocks = []
    for path in files:
        rel = path.relative_to(REPO)
        fence, body = None, []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                if fence is None:
                    fence, body = (n, line[3:].strip().lower()), []
                    continue
                if fence[1] in SHELL_FENCES:
                    cmds = [DocCommand(f"{rel}:{ln}", tuple(seg)) for ln, text in _logical_lines(body)
                            for seg in _segments(shlex.split(text, comments=True)) if seg[0] == "yolo-attn"]
                    if cmds:
                        blocks.append(DocBlock(f"{rel}:{fence[0]}", tuple(cmds)))
                fence = None
            elif fence is not None:
                body.append((n, line))
    return blocks


def _segments(tokens: list[str]) -> list[list[str]]:
    """Split a shell line at ``&&`` / ``;`` / ``||``."""
    segs, cur = [], []
    for t in tokens:
        if t in ("&&", ";", "||"):
            segs.append(cur)
            cur = []
        else:
            cur.append(t)
    return [s for s in segs + [cur] if s]


# ------------------------------------------------------------------------------------------------
# The folder the examples run in
# ------------------------------------------------------------------------------------------------
def _write_tiny_dataset(folder: Path) -> Path:
    from yolo_attn.datasets.shapes import ShapesConfig, write_dataset

    write_dataset(folder / "tiny", ShapesConfig(n_train=24, n_val=8, imgsz=64, min_size=14, max_size=40),
                  folder / "generated.yaml")
    d = yaml.safe_load((folder / "generated.yaml").read_text())
    y = folder / "tiny.yaml"  # with an absolute path: copies of it work from any folder
    y.write_text(yaml.safe_dump({"path": str(folder / "tiny"), "train": "images/train", "val": "images/val",
                                 "names": d["names"]}, sort_keys=False))
    return y


def _write_voc_export(folder: Path, data_yaml: Path) -> None:
    """A LabelImg/VOC export (annotations/*.xml + images/*.png) of the tiny dataset's images."""
    from PIL import Image

    d = yaml.safe_load(data_yaml.read_text())
    root = Path(d["path"])
    names = d["names"]
    (folder / "annotations").mkdir(parents=True)
    (folder / "images").mkdir()
    for img in sorted((root / "images" / "train").iterdir()):
        im = Image.open(img)
        w, h = im.size
        im.save(folder / "images" / f"{img.stem}.png")
        objs = []
        for row in (root / "labels" / "train" / f"{img.stem}.txt").read_text().split("\n"):
            if not row.strip():
                continue
            c, x, y, bw, bh = row.split()
            x0, y0 = (float(x) - float(bw) / 2) * w, (float(y) - float(bh) / 2) * h
            x1, y1 = x0 + float(bw) * w, y0 + float(bh) * h
            objs.append(f"<object><name>{names[int(c)]}</name><bndbox><xmin>{x0:.0f}</xmin><ymin>{y0:.0f}</ymin>"
                        f"<xmax>{x1:.0f}</xmax><ymax>{y1:.0f}</ymax></bndbox></object>")
        (folder / "annotations" / f"{img.stem}.xml").write_text(
            f"<annotation><filename>{img.stem}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{''.join(objs)}</annotation>")


def _tiny_images(data_yaml: Path):
    """(split, image, YOLO rows, width, height) of every image of the tiny dataset."""
    from PIL import Image

    d = yaml.safe_load(data_yaml.read_text())
    root = Path(d["path"])
    for split in ("train", "val"):
        for img in sorted((root / "images" / split).iterdir()):
            rows = [r.split() for r in (root / "labels" / split / f"{img.stem}.txt").read_text().splitlines() if r.strip()]
            w, h = Image.open(img).size
            yield split, img, [(int(c), *(float(v) for v in xywh)) for c, *xywh in rows], w, h


def _pixel_box(row, w, h):
    c, x, y, bw, bh = row
    return c, (x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w, (y + bh / 2) * h


def _write_exports(folder: Path, data_yaml: Path) -> None:
    """The tiny dataset as labelling tools export it: Roboflow YOLO (my-export/) and COCO (coco-export/) folders
    with train/valid/test splits, LabelMe JSON (labelme-export/) and CVAT for images XML (cvat-export/)."""
    import json

    names = yaml.safe_load(data_yaml.read_text())["names"]
    names = [names[i] for i in range(len(names))]
    coco, cvat, k = {}, [], 0
    for split, img, rows, w, h in _tiny_images(data_yaml):
        k += 1
        rf = "valid" if split == "val" else ("test" if k % 4 == 0 else "train")  # a quarter of train becomes test
        for kind, body in (("images", None), ("labels", "".join(" ".join(map(str, r)) + "\n" for r in rows))):
            (folder / "my-export" / rf / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(img, folder / "my-export" / rf / "images" / img.name)
        (folder / "my-export" / rf / "labels" / f"{img.stem}.txt").write_text(body)
        (folder / "coco-export" / rf).mkdir(parents=True, exist_ok=True)
        shutil.copy(img, folder / "coco-export" / rf / img.name)
        js = coco.setdefault(rf, {"images": [], "annotations": [], "categories": [
            {"id": 0, "name": "shapes", "supercategory": "none"},
            *({"id": i + 1, "name": n, "supercategory": "shapes"} for i, n in enumerate(names))]})
        js["images"].append({"id": k, "file_name": img.name, "width": w, "height": h})
        boxes = [_pixel_box(r, w, h) for r in rows]
        for c, x0, y0, x1, y1 in boxes:
            js["annotations"].append({"id": len(js["annotations"]), "image_id": k, "category_id": c + 1,
                                      "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
        flat = f"{split}-{img.name}"  # one folder for both splits: the names must differ
        (folder / "labelme-export").mkdir(exist_ok=True)
        shutil.copy(img, folder / "labelme-export" / flat)
        shapes = [{"label": names[c], "points": [[x1, y1], [x0, y0]], "shape_type": "rectangle", "flags": {}}
                  for c, x0, y0, x1, y1 in boxes]
        (folder / "labelme-export" / f"{Path(flat).stem}.json").write_text(json.dumps(
            {"version": "5.4.1", "shapes": shapes, "imagePath": flat, "imageData": None, "imageHeight": h,
             "imageWidth": w}))
        (folder / "cvat-export" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(img, folder / "cvat-export" / "images" / flat)
        cvat.append(f'<image id="{k}" name="{flat}" width="{w}" height="{h}">' + "".join(
            f'<box label="{names[c]}" occluded="0" xtl="{x0:.2f}" ytl="{y0:.2f}" xbr="{x1:.2f}" ybr="{y1:.2f}"></box>'
            for c, x0, y0, x1, y1 in boxes) + "</image>")
    (folder / "my-export" / "data.yaml").write_text(yaml.safe_dump(
        {"train": "../train/images", "val": "../valid/images", "nc": len(names), "names": names}, sort_keys=False))
    for rf, js in coco.items():
        (folder / "coco-export" / rf / "_annotations.coco.json").write_text(json.dumps(js))
    labels = "".join(f"<label><name>{n}</name></label>" for n in names)
    (folder / "cvat-export" / "annotations.xml").write_text(
        f"<annotations><version>1.1</version><meta><task><labels>{labels}</labels></task></meta>{''.join(cvat)}"
        "</annotations>")


@dataclass
class Workspace:
    folder: Path
    tiny: Path  # the small dataset's YAML
    done: dict  # reduced argv -> CompletedProcess already run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    from ultralytics.nn.tasks import yaml_model_load

    from yolo_attn.weights import save_model_checkpoint
    from yolo_attn.models import build_model

    folder = tmp_path_factory.mktemp("documented")
    tiny = _write_tiny_dataset(folder / "_data")
    shutil.copy(tiny, folder / "DATA.yaml")
    (folder / "data").mkdir()
    shutil.copy(tiny, folder / "data" / "shapes.yaml")  # `data=data/shapes.yaml` as run from a checkout
    (folder / "data" / "weights").mkdir()
    shutil.copy(REPO / "data" / "weights" / "yolov5n-shapes.pt", folder / "data" / "weights")  # the shipped stock
    _write_voc_export(folder / "face-mask-detection", tiny)
    _write_exports(folder, tiny)
    p6 = yaml_model_load("yolov5-p6.yaml")
    (folder / "my-yolov5-p6.yaml").write_text(yaml.safe_dump({k: p6[k] for k in ("nc", "scales", "backbone", "head")},
                                                             sort_keys=False))
    for name, model_yaml in CHECKPOINTS.items():
        save_model_checkpoint(build_model(model_yaml), folder / name)
    return Workspace(folder, tiny, {})


# ------------------------------------------------------------------------------------------------
# Reduced sizes and stand-ins
# ------------------------------------------------------------------------------------------------
def _stand_in(token: str, ws: Workspace) -> str:
    """A documented file outside the repository (shared/ datasets, weights) is replaced by a stand-in."""
    if token.startswith("../shared/") and token.endswith(".yaml"):
        return str(ws.tiny)
    if token.startswith("../shared/") and token.endswith(".pt"):
        return str(ws.folder / "yolov5n.pt")
    return token


def _set_flag(argv: list[str], flag: str, value: str) -> None:
    if flag in argv:
        i = argv.index(flag)
        argv[i + 1] = value
    else:
        argv += [flag, value]


def reduced(cmd: DocCommand, ws: Workspace) -> list[str]:
    argv = [_stand_in(t, ws) for t in cmd.argv[1:]]
    sub = argv[0]
    if sub in REDUCED:
        for flag, value in REDUCED[sub].items():
            _set_flag(argv, flag, value)
    if sub in ("compare", "study", "search") and "--data" not in argv:
        argv += ["--data", str(ws.tiny)]  # the shipped dataset (400 images) at reduced size
    if sub in ("compare", "study", "search") and "--quiet" not in argv:
        argv.append("--quiet")
    for key, value in REDUCED_KEYS.get(sub, {}).items():
        argv = [a for a in argv if not a.startswith(f"{key}=")] + [f"{key}={value}"]
    if sub == "train" and not any(a.startswith("project=") for a in argv):
        argv.append(f"project={ws.folder / 'runs' / 'train'}")
    return argv


def _yolo_attn() -> list[str]:
    script = Path(sys.executable).with_name("yolo-attn")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "yolo_attn.cli"]


def _run(argv: list[str], ws: Workspace) -> subprocess.CompletedProcess:
    key = tuple(argv)
    if key not in ws.done:
        # the code beside these tests, also where another yolo_attn is installed
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONHASHSEED": "0", "PYTHONPATH": path}
        ws.done[key] = subprocess.run([*_yolo_attn(), *argv], cwd=ws.folder, capture_output=True, text=True,
                                      env=env, timeout=1500, stdin=subprocess.DEVNULL)
    return ws.done[key]


BLOCKS = documented_blocks()


def test_the_markdown_holds_the_documented_commands():
    """The reader finds the examples (a reader that found none would make the test below pass vacuously)."""
    found = {c.argv[1] for b in BLOCKS for c in b.commands}
    assert {"compare", "train", "transfer", "make-yaml", "check-data", "import-data", "diagnose", "study",
            "search"} <= found, found
    main_job = subprocess.run([sys.executable, str(REPO / ".ci" / "readme_quickstart.py"), str(REPO / "README.md")],
                              capture_output=True, text=True, check=True).stdout.splitlines()[0]
    main_argv = tuple(shlex.split(main_job.split("&&")[-1]))
    quick = [c for b in BLOCKS for c in b.commands if c.where.startswith("README.md:") and c.argv == main_argv]
    assert quick, f"the README's main job ({main_argv}) is not among the documented commands"
    flat = " ".join(t for b in BLOCKS for c in b.commands for t in c.argv)
    for placeholder in ("<", "...", "|"):  # not runnable as written
        assert placeholder not in flat, f"a documented command holds {placeholder!r}: {flat}"


def test_reduction_keeps_documented_flags():
    ws = Workspace(Path("/w"), Path("/w/tiny.yaml"), {})
    cmd = DocCommand("x:1", ("yolo-attn", "compare", "--models", "a.yaml", "--seeds", "3", "--epochs", "30",
                             "--control-width"))
    argv = reduced(cmd, ws)
    assert argv[:3] == ["compare", "--models", "a.yaml"] and "--control-width" in argv
    assert argv[argv.index("--seeds") + 1] == "2" and argv[argv.index("--epochs") + 1] == "1"
    train = reduced(DocCommand("x:2", ("yolo-attn", "train", "model=m.yaml", "epochs=20", "attn_init=identity")), ws)
    assert "attn_init=identity" in train and "epochs=1" in train and "epochs=20" not in train


def needs_deploy_extra(block: DocBlock) -> bool:
    """A block with ``export-check --int8`` (OpenVINO and NNCF: the deploy extra; CI runs it in its deploy step)."""
    return any(c.argv[1] == "export-check" and "--int8" in c.argv for c in block.commands)


def runs_on_a_cluster(block: DocBlock) -> bool:
    """The cluster block of docs/cluster.md (``--ray-address``): tests/test_cluster.py runs it, as written, against
    a real two-node Ray cluster it starts (``pytest -m ray``, CI's Ray step)."""
    return any("--ray-address" in c.argv for c in block.commands)


def _block_params():
    return [pytest.param(b, id=b.where, marks=[pytest.mark.deploy] if needs_deploy_extra(b) else []) for b in BLOCKS
            if not runs_on_a_cluster(b)]


def test_the_cluster_block_is_the_one_the_cluster_test_runs():
    """Left out above only because tests/test_cluster.py runs exactly that block (read from the same markers)."""
    blocks = [b for b in BLOCKS if runs_on_a_cluster(b)]
    assert [b.where.split(":")[0] for b in blocks] == ["docs/cluster.md"]
    assert "cluster-commands" in (REPO / "tests" / "test_cluster.py").read_text()


@pytest.mark.parametrize("block", _block_params())
def test_documented_block_runs(block: DocBlock, workspace: Workspace):
    if needs_deploy_extra(block) and importlib.util.find_spec("openvino") is None:
        pytest.skip("needs the deploy extra (OpenVINO, NNCF): CI runs it after pip install -e '.[dev,deploy]'")
    for cmd in block.commands:
        argv = reduced(cmd, workspace)
        r = _run(argv, workspace)
        assert r.returncode == 0, (f"{cmd.where}: `{shlex.join(cmd.argv)}` (run as `yolo-attn {shlex.join(argv)}`) "
                                   f"exited {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}")
        _check_outputs(argv, workspace.folder, cmd.where)


def _check_outputs(argv: list[str], folder: Path, where: str) -> None:
    """The files a command promises exist after it."""
    for flag in ("-o", "--output"):
        if flag in argv:
            assert (folder / argv[argv.index(flag) + 1]).exists(), f"{where}: {argv} wrote no {flag} file"
    if "--out" in argv and argv[0] in ("compare", "study", "search", "diagnose", "import-data"):
        out = folder / argv[argv.index("--out") + 1]
        assert out.is_dir() and any(out.iterdir()), f"{where}: {argv} left {out} empty"
    if argv[0] == "compare" and "--out" in argv and "--plan" not in argv:
        assert (folder / argv[argv.index("--out") + 1] / "summary.md").is_file(), f"{where}: no summary.md"
    if argv[0] == "import-data":
        out = folder / argv[3]
        assert (out / "data.yaml").is_file(), f"{where}: import-data wrote no {out}/data.yaml"


def test_every_subcommand_is_documented_somewhere():
    """A sub-command nobody shows is a sub-command no test walks: each one appears in a documented example."""
    from yolo_attn.cli import _command_modules

    shown = {c.argv[1] for b in BLOCKS for c in b.commands}
    missing = sorted(set(_command_modules()) - shown)
    assert not missing, f"sub-commands with no documented example in README.md or docs/: {missing}"
