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
