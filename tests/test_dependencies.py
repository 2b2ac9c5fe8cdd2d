"""Every third-party module that ``yolo_attn`` imports is a declared requirement of the installed package.

A fresh ``pip install yolo_attn`` installs the requirements and nothing else, so an import that only works
because some other package happened to bring its distribution in (scipy through Ray, say) breaks on a new
machine. Modules that only an optional extra provides must be imported lazily (inside a function) so that
``import yolo_attn`` and every command that does not need them work without the extra.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "yolo_attn"

# Import name -> distribution name, for modules that may not be installed here (an extra's) and so are absent
# from importlib.metadata.packages_distributions(); the rest is read from the installed metadata.
KNOWN_DISTRIBUTIONS = {"ray": "ray", "yaml": "pyyaml", "cv2": "opencv-python", "PIL": "pillow", "sklearn": "scikit-learn"}


@dataclass(frozen=True)
class Import:
    module: str  # top-level name
    file: Path
    line: int
    lazy: bool  # inside a function body (not run by importing the module)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(a.name.split(".")[0], path, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append(Import(child.module.split(".")[0], path, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


@functools.lru_cache(maxsize=None)
def third_party_imports() -> tuple[Import, ...]:
    """Every import of a module outside the standard library and yolo_attn, anywhere in the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        out += [i for i in _imports(path) if i.module not in sys.stdlib_module_names and i.module != "yolo_attn"
                and i.module != "__future__"]
    return out


@functools.lru_cache(maxsize=None)
def _installed_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def _distribution(module: str) -> str:
    installed = _installed_distributions().get(module)
    if installed:
        return _canonical(installed[0])
    return _canonical(KNOWN_DISTRIBUTIONS.get(module, module))


@dataclass(frozen=True)
class Requirement:
    name: str
    extra: str | None  # None: installed by a plain ``pip install yolo_attn``


def declared_requirements() -> list[Requirement]:
    """The requirements in the installed yolo_attn metadata (what pip installs), with the extra each needs."""
    out = []
    for line in md.requires("yolo_attn") or []:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line).group(1)
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        out.append(Requirement(_canonical(name), extra.group(1) if extra else None))
    return out


def test_the_scan_sees_the_known_imports():
    """The walk finds top-level and function-level imports (a scan that found nothing would pass everything)."""
    modules = {i.module: i for i in third_party_imports()}
    assert {"torch", "ultralytics", "numpy", "yaml", "scipy", "pycocotools", "matplotlib"} <= set(modules)
    assert any(i.module == "ray" and i.lazy for i in third_party_imports())
    assert not any(i.module == "ray" and not i.lazy for i in third_party_imports())


def test_every_imported_distribution_is_declared():
    required = {r.name for r in declared_requirements() if r.extra is None}
    missing = sorted({f"{_distribution(i.module)} (import {i.module}: {i.file.relative_to(PACKAGE.parent)}:{i.line})"
                      for i in third_party_imports() if not i.lazy and _distribution(i.module) not in required})
    lazy_missing = sorted({
        f"{_distribution(i.module)} (import {i.module}: {i.file.relative_to(PACKAGE.parent)}:{i.line})"
        for i in third_party_imports()
        if i.lazy and _distribution(i.module) not in {r.name for r in declared_requirements()}})
    assert not missing, f"imported at module level but not a requirement of yolo_attn: {missing}"
    assert not lazy_missing, f"imported but neither a requirement nor in an extra: {lazy_missing}"


def test_extras_are_imported_lazily_with_an_install_hint():
    """A module that only an extra installs is imported inside functions, next to a ``yolo_attn[extra]`` hint."""
    core = {r.name for r in declared_requirements() if r.extra is None}
    extras = {r.name: r.extra for r in declared_requirements() if r.extra is not None and r.name not in core}
    for imp in third_party_imports():
        dist = _distribution(imp.module)
        if dist not in extras or extras[dist] == "dev":
            continue
        assert imp.lazy, f"{imp.file}:{imp.line}: {imp.module} (extra '{extras[dist]}') imported at module level"
        text = imp.file.read_text()
        if f"yolo_attn[{extras[dist]}]" not in text and f"import_{imp.module}()" not in text:
            pytest.fail(f"{imp.file}: imports {imp.module} from extra '{extras[dist]}' without saying "
                        f"pip install 'yolo_attn[{extras[dist]}]' (or calling import_{imp.module}())")


def test_missing_ray_says_which_extra_to_install(monkeypatch):
    from yolo_attn.compare.backends import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # ``import ray`` now raises ImportError
    with pytest.raises(ImportError, match=re.escape("pip install 'yolo_attn[ray]'")):
        import_ray()


def test_no_runtime_import_comes_from_the_dev_extra():
    """``dev`` is for the tests; a user's ``pip install yolo_attn`` does not install it."""
    core = {r.name for r in declared_requirements() if r.extra is None}
    dev_only = {r.name for r in declared_requirements() if r.extra == "dev"} - core
    used = sorted({f"{imp.module} ({imp.file.name}:{imp.line})" for imp in third_party_imports()
                   if _distribution(imp.module) in dev_only})
    assert not used, f"yolo_attn imports modules that only the dev extra installs: {used}"
