"""The ``yolo-attn`` entry point as a shell sees it: a reader that stops early (``| head``)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PYTHON, subprocess_env
from yolo_attn import cli


def _run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reader has already gone (``yolo-attn list | head -0``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader closes before the first line is written: every write hits EPIPE
    try:
        return subprocess.run(
            [PYTHON, "-c", "import sys; from yolo_attn.cli import main; sys.exit(main())", *argv],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=subprocess_env(), timeout=120,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [("list",), ("list", "--json")], ids=" ".join)
def test_closed_pipe_ends_quietly_like_a_command_line_tool(argv):
    proc = _run_into_closed_pipe(*argv)
    assert proc.stderr == "", f"expected no output on stderr, got:\n{proc.stderr}"
    assert proc.returncode == cli.EXIT_BROKEN_PIPE == 141


def test_help_into_a_closed_pipe_leaves_no_traceback():
    """argparse drops its own write errors (exit 0); nothing may fail later, at interpreter exit."""
    proc = _run_into_closed_pipe("--help")
    assert proc.stderr == "", f"expected no output on stderr, got:\n{proc.stderr}"
    assert proc.returncode in (0, cli.EXIT_BROKEN_PIPE)


def test_head_reads_the_first_lines_and_the_cli_exits_cleanly():
    """A reader that takes one line and then closes: the line arrives, nothing lands on stderr."""
    proc = subprocess.Popen(
        [PYTHON, "-c", "import sys; from yolo_attn.cli import main; sys.exit(main())", "list", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(),
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.strip() == b"["
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    # The whole listing may fit in the pipe buffer before the reader closes (exit 0), or not (141).
    assert code in (0, cli.EXIT_BROKEN_PIPE)


def test_broken_pipe_elsewhere_is_not_swallowed(monkeypatch):
    """Only a broken *stdout* means "the reader had enough"; any other broken pipe stays an error."""

    def run(args):
        raise BrokenPipeError("a worker's socket closed")

    monkeypatch.setattr("yolo_attn.commands.list.run", run)
    with pytest.raises(BrokenPipeError, match="worker"):
        cli.main(["list"])


def test_error_line_has_no_colour_codes_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    """Ultralytics colours parts of its messages; a log file or pipe must get the words, not ESC[34m."""
    from ultralytics.utils import colorstr

    def run(args):
        raise ValueError(f"{colorstr('train: ')}images not found")

    monkeypatch.setattr("yolo_attn.commands.list.run", run)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err == "yolo-attn list: error: train: images not found\n"


def test_colour_codes_are_kept_for_a_terminal():
    class Tty:
        def isatty(self):
            return True

    coloured = "\x1b[34m\x1b[1mtrain: \x1b[0mbad"
    assert cli.plain_for(Tty(), coloured) == coloured
    assert cli.plain_for(object(), coloured) == "train: bad"


# ------------------------------------------------------------------------------------------------
# --help and --version load neither torch nor Ultralytics; ``import yolo_attn`` still registers the layers
# ------------------------------------------------------------------------------------------------
HEAVY = ("torch", "ultralytics")

HELP_OF_EVERY_COMMAND = """
    import contextlib, io, json, sys
    from yolo_attn import cli
    out = {}
    for argv in [["--help"], ["--version"], *([name, "--help"] for name in cli._command_modules())]:
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code
        out[" ".join(argv)] = {"code": code, "text": text.getvalue()}
    print(json.dumps({"runs": out, "loaded": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def _python(code: str) -> str:
    import textwrap

    proc = subprocess.run([PYTHON, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_and_version_import_neither_torch_nor_ultralytics():
    """``yolo-attn --help``, ``--version`` and every ``COMMAND --help`` work and take well under a second:
    no command may import torch or Ultralytics before its ``run``."""
    import json

    result = json.loads(_python(HELP_OF_EVERY_COMMAND).splitlines()[-1])
    assert set(result["runs"]) >= {"--help", "--version", *(f"{n} --help" for n in cli._command_modules())}
    for argv, run in result["runs"].items():
        assert run["code"] == 0, argv
        assert run["text"].startswith("usage: yolo-attn") or argv == "--version", (argv, run["text"][:200])
    assert result["runs"]["--version"]["text"].startswith("yolo_attn ")
    assert result["loaded"] == [], f"--help imported {result['loaded']}"


def test_help_imports_nothing_heavy_by_importtime():
    """The same, as ``python -X importtime -m yolo_attn.cli --help`` reports it (every module imported)."""
    proc = subprocess.run([PYTHON, "-X", "importtime", "-m", "yolo_attn.cli", "--help"], capture_output=True,
                          text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "usage: yolo-attn" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "yolo_attn.cli" in imported or "yolo_attn.commands" in imported  # the report is read right
    assert not {m for m in imported if m.split(".")[0] in HEAVY}, sorted(m for m in imported if m.split(".")[0] in HEAVY)[:5]


@pytest.mark.parametrize("first", [
    "import yolo_attn; from ultralytics import YOLO",  # yolo_attn first: the layers arrive with Ultralytics
    "import ultralytics; import yolo_attn",  # Ultralytics first: registered at once
    "import yolo_attn; n = len(yolo_attn.LAYERS)",  # the registry first (it loads the families)
    "from yolo_attn import _ultralytics",  # the bridge module itself (as yolo_attn.train imports it)
    "from yolo_attn.modules.cbam import CBAM",  # a family module (as unpickling a checkpoint imports it)
], ids=["yolo_attn-first", "ultralytics-first", "registry-first", "bridge-first", "family-first"])
def test_import_yolo_attn_still_registers_every_layer(first):
    """A model built after any of these finds every registered layer in Ultralytics' namespace."""
    import json

    out = _python(f"""
        import json
        {first}
        from ultralytics.nn import tasks
        # Built before this process touches yolo_attn's registry or bridge (either would register the layers).
        model = tasks.DetectionModel("yolov5n-cbam-neck.yaml", nc=2, verbose=False)
        wrapped = "yolo_attn" in tasks.parse_model.__code__.co_filename
        from yolo_attn.registry import LAYERS
        names = [s.name for s in LAYERS]
        print(json.dumps({{
            "layers": len(names),
            "missing": [n for n in names if getattr(vars(tasks).get(n), "yolo_attn_spec", None) is None],
            "wrapped": wrapped,
            "cbam": sum(type(m).__name__ == "CBAM" for m in model.modules()),
        }}))
    """)
    result = json.loads(out.splitlines()[-1])
    assert result["layers"] >= 20 and result["missing"] == [], result
    assert result["wrapped"] and result["cbam"] >= 1, result


def test_import_yolo_attn_alone_loads_no_torch():
    out = _python(f"""
        import sys
        import yolo_attn
        print([m for m in {HEAVY!r} if m in sys.modules], yolo_attn.__version__ != "")
        print(len(yolo_attn.modules.FAMILIES) > 10, "SE" in yolo_attn.LAYERS)  # still reachable (loads them now)
    """)
    assert out.split() == ["[]", "True", "True", "True"], out
