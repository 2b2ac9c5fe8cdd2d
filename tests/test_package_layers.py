"""Which part of the package may import which: scoring sits below the sweep, and diagnose and deploy reach into
``yolo_attn/compare/`` only to read a sweep's results folder.

diagnose and deploy score through :mod:`yolo_attn.scoring`; what they still take from the sweep's package is its
results folder (``compare.store.Store``, the config type ``compare.contract.SweepConfig``: ``diagnose --sweep`` and
``export-check --int8`` read a sweep) and, for export-check's table of paired differences over that sweep's seeds,
the comparison's own interval (``compare.stats.paired_diff_ci``). Anything else there (the trial, the plots, the
report) is the sweep's own and a new import of it fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "yolo_attn"
FROM_COMPARE = {  # the only yolo_attn.compare modules diagnose and deploy import, and where
    "diagnose/sweep.py": {"yolo_attn.compare.store"},
    "deploy/int8.py": {"yolo_attn.compare.contract", "yolo_attn.compare.store", "yolo_attn.compare.stats"},
}
ABOVE_SCORING = ("yolo_attn.compare", "yolo_attn.studies", "yolo_attn.diagnose", "yolo_attn.deploy", "yolo_attn.commands")


def imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved, function-level (lazy) imports included: ``from a.b
    import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a module)."""
    package = path.relative_to(PKG.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def _within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_scan_resolves_relative_imports(tmp_path):
    assert {"yolo_attn.scoring", "yolo_attn.scoring.cocoeval", "yolo_attn.diagnose.compare",
            "yolo_attn.diagnose.compare.Diagnosis"} <= imported_modules(PKG / "diagnose" / "report.py") | \
        imported_modules(PKG / "diagnose" / "data.py")
    assert "yolo_attn.compare.store" in imported_modules(PKG / "diagnose" / "sweep.py")  # a lazy import counts


def test_diagnose_and_deploy_take_from_compare_only_a_sweeps_results():
    found = {}
    for path in sorted((PKG / "diagnose").rglob("*.py")) + sorted((PKG / "deploy").rglob("*.py")):
        mods = {m for m in imported_modules(path) if _within(m, ["yolo_attn.compare"])}
        # a name imported from a module (``from yolo_attn.compare.store import Store``) is not a module of its own
        mods = {m for m in mods if not any(m.startswith(o + ".") for o in mods if o != "yolo_attn.compare")}
        if mods:
            found[path.relative_to(PKG).as_posix()] = mods
    assert found == FROM_COMPARE


def test_scoring_imports_nothing_above_it():
    wrong = {path.name: sorted(m for m in imported_modules(path) if _within(m, ABOVE_SCORING))
             for path in sorted((PKG / "scoring").glob("*.py"))}
    assert not {k: v for k, v in wrong.items() if v}
