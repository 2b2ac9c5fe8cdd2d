"""Output meant for programs (``--json``) is only that output, also on a machine where Ultralytics never ran: its
first-run settings banner goes to standard error (yolo_attn/cli.py, yolo_attn/_ultralytics/console.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import subprocess_env

BANNER = "Creating new Ultralytics Settings"


def yolo_attn_fresh(tmp_path, *argv) -> subprocess.CompletedProcess:
    """``yolo-attn ARGV`` in a new process with a new, empty ``YOLO_CONFIG_DIR``."""
    env = subprocess_env(YOLO_CONFIG_DIR=tmp_path / "never-ran")
    return subprocess.run([sys.executable, "-m", "yolo_attn.cli", *map(str, argv)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("argv", [("list", "--json"), ("list", "--json", "--family", "cbam")])
def test_list_json_on_a_machine_where_ultralytics_never_ran(tmp_path, argv):
    proc = yolo_attn_fresh(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert rows and all("name" in r for r in rows)
    assert BANNER in proc.stderr  # moved, not lost


def test_check_data_json_on_a_machine_where_ultralytics_never_ran(tmp_path):
    from yolo_attn.datasets import shapes_yaml

    proc = yolo_attn_fresh(tmp_path, "check-data", shapes_yaml(), "--json", "--no-images")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert isinstance(json.loads(proc.stdout), dict)
    assert BANNER in proc.stderr


def test_a_human_command_keeps_ultralytics_messages_on_stdout(tmp_path):
    proc = yolo_attn_fresh(tmp_path, "list")
    assert proc.returncode == 0 and BANNER in proc.stdout  # unchanged where no program reads the output
