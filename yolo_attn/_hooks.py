"""Run code once a module has been imported (a post-import hook). Imports nothing heavy (no torch).

``import yolo_attn`` must not load torch or Ultralytics (``yolo-attn --help`` would take seconds), yet a
model built after ``import yolo_attn`` must find the attention layers in Ultralytics' namespace. So
:func:`after_import` registers them right away when Ultralytics is loaded already, and otherwise the
moment its package has finished importing: a finder first in ``sys.meta_path`` wraps the loader of that
one module, runs the callback after the module's own code, and then leaves ``sys.meta_path``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Callable


class _ThenLoader(importlib.abc.Loader):
    """Executes a module with its own loader, then calls ``callback``."""

    def __init__(self, loader, callback: Callable[[], object]):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        # The module sees its own loader (importlib.resources, pkgutil), never this wrapper.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.callback()


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[], object]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # once: the finders after this one find the real module
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLoader(spec.loader, self.callback)
        return spec


def after_import(name: str, callback: Callable[[], object]) -> None:
    """Call ``callback()`` now if top-level module ``name`` is imported already, else right after it is."""
    if name in sys.modules:
        callback()
    else:  # one hook per module: a second call (importlib.reload) replaces the first
        sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, _AfterImport) and f.name == name)]
        sys.meta_path.insert(0, _AfterImport(name, callback))
