"""Release metadata: one version number, the licence as PEP 639 declares it, the supported Pythons."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import yolo_attn
from conftest import PYTHON, REPO, subprocess_env
from yolo_attn import cli

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_is_written_once_and_read_from_the_installed_metadata():
    assert yolo_attn.__version__ == metadata.version("yolo_attn") == PYPROJECT["project"]["version"]
    literal = re.compile(r"""__version__\s*=\s*["']""")
    assert [p for p in (REPO / "yolo_attn").rglob("*.py") if literal.search(p.read_text(encoding="utf-8"))] == []


def test_version_of_a_checkout_that_is_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert yolo_attn._installed_version() == "0+unknown"


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"yolo_attn {metadata.version('yolo_attn')}"


def test_licence_metadata_is_pep_639():
    project = PYPROJECT["project"]
    assert project["license"] == "AGPL-3.0-only"  # an SPDX expression (a table is deprecated)
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # deprecated by PEP 639
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]  # the first setuptools with PEP 639
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU AFFERO GENERAL PUBLIC LICENSE") and "Version 3, 19 November 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) == 661  # the full text, unabridged


def test_supported_pythons_match_what_the_readme_says():
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Python 3.10+" in readme and "CI runs Python 3.11" in readme


# ------------------------------------------------------------------------------------------------
# The test suite leaves nothing behind (tests/conftest.py)
# ------------------------------------------------------------------------------------------------
def test_ultralytics_settings_and_folders_live_in_the_session_dir():
    """Subprocesses (the trials of compare, study, search) read the session's settings: every folder inside it."""
    from ultralytics.utils import SETTINGS, SETTINGS_FILE

    from conftest import SESSION_DIR

    assert os.environ["YOLO_CONFIG_DIR"] == str(SESSION_DIR)
    assert SETTINGS_FILE == SESSION_DIR / "Ultralytics" / "settings.json" and SETTINGS["sync"] is False
    code = ("from ultralytics.utils import DATASETS_DIR, RUNS_DIR, SETTINGS, SETTINGS_FILE, WEIGHTS_DIR\n"
            "print(SETTINGS_FILE, DATASETS_DIR, RUNS_DIR, WEIGHTS_DIR, sep='\\n')")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    folders = [Path(line) for line in r.stdout.strip().splitlines()[-4:]]
    assert all(f.is_absolute() and f.is_relative_to(SESSION_DIR) for f in folders), folders
    assert "settings reset" not in r.stdout + r.stderr and "updated to the latest schema" not in r.stdout + r.stderr


def test_tree_entries_sees_new_files_and_folders_but_not_bytecode_caches(tmp_path):
    from conftest import tree_entries

    (tmp_path / "kept.txt").write_text("x")
    before = tree_entries(tmp_path)
    (tmp_path / "runs" / "detect").mkdir(parents=True)
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"")
    assert tree_entries(tmp_path) - before == {"runs", str(Path("runs") / "detect"), "model.onnx", "pkg"}
    assert tree_entries(tmp_path / "missing") == frozenset()


def test_a_session_that_leaves_a_file_in_the_tree_fails(tmp_path):
    """The real conftest in a copy of the test layout: one test writes into the 'working tree', the run fails."""
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "test_leaky.py").write_text(
        "from conftest import REPO\n\n\ndef test_clean(tmp_path):\n    (tmp_path / 'fine.txt').write_text('x')\n\n\n"
        "def test_leaky():\n    (REPO / 'left.onnx').write_text('x')\n"
    )
    r = subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "2 passed, 1 error" in out and "left 1 new files or folders behind" in out and "left.onnx" in out, out
    assert "fine.txt" not in out


def test_runs_on_the_shipped_shapes_data_read_a_session_copy():
    """Ultralytics writes label caches beside the labels: trainings must not read data/shapes in the tree."""
    import yaml

    from conftest import SESSION_DIR
    from yolo_attn.datasets import shapes_yaml

    root = Path(yaml.safe_load(shapes_yaml().read_text())["path"])
    assert not root.is_relative_to(REPO) and (root.is_relative_to(SESSION_DIR) or not (REPO / "data").is_dir())
