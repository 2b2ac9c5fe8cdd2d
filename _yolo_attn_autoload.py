"""yolo_attn's activation without an import: Ultralytics finds the attention layers in any Python process.

``yolo_attn-autoload.pth``, installed into site-packages beside ``yolo_attn`` (setup.py), runs one line
when Python starts: it puts a finder first in ``sys.meta_path`` that answers only for ``ultralytics`` and
imports nothing (this module is not even read). When ``ultralytics`` is imported (the stock ``yolo``
command, ``from ultralytics import YOLO``, Ultralytics' DDP worker script, Ray and Tuner workers), the
finder calls :func:`find_spec` here and, right after Ultralytics' package has run, leaves
``sys.meta_path`` and imports ``yolo_attn``: that registers the layers and the shipped configs with
Ultralytics (yolo_attn/__init__.py). A process that never imports Ultralytics pays for compiling that
one line and for one call of the finder per module it imports (benchmarks/results/startup.md).

``YOLO_ATTN_AUTOLOAD=0`` (or ``false``, ``no``, ``off``), read when Ultralytics is imported, switches it off;
``import yolo_attn`` still registers the layers then. ``python -S`` processes no ``.pth`` file, so it has no
activation either. ``yolo_attn`` is imported only after Ultralytics (which loads torch): before torch it would
set its OpenMP policy (yolo_attn/_threads.py) in a stock Ultralytics process.
"""

import os
import sys

ENV = "YOLO_ATTN_AUTOLOAD"
_OFF = ("0", "false", "no", "off")
FINDER = "YoloAttnAutoload"  # the class name of the .pth file's finder


def enabled() -> bool:
    """False when ``YOLO_ATTN_AUTOLOAD`` switches the activation off."""
    return os.environ.get(ENV, "").strip().lower() not in _OFF


def _register() -> None:
    """Import ``yolo_attn``: with Ultralytics loaded it registers the layers at once. A failure (an Ultralytics
    version yolo_attn does not support, a broken install) warns instead of breaking Ultralytics' import."""
    try:
        import yolo_attn  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - whatever it is, Ultralytics itself must still import
        import warnings

        warnings.warn(f"yolo_attn: its layers are not registered with Ultralytics ({type(exc).__name__}: {exc}); "
                      f"{ENV}=0 switches this activation off", RuntimeWarning, stacklevel=2)


def _leave() -> None:
    """Take the ``.pth`` file's finder out of ``sys.meta_path`` (both, where site.py read the file twice)."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != FINDER]


def _register_after(loader) -> None:
    """Make ``loader`` (the instance that imports ``ultralytics`` now) run :func:`_register` after the package's own
    code, once; the package keeps its plain loader."""
    def exec_module(module) -> None:
        del loader.exec_module  # the class's method again
        _leave()
        type(loader).exec_module(loader, module)
        _register()

    loader.exec_module = exec_module


def find_spec(finder, fullname: str):
    """What the ``.pth`` file's finder answers for ``ultralytics`` (the only name it answers for): the package's
    own spec, whose loader runs :func:`_register` after the package. The finder stays until then: a ``find_spec``
    that imports nothing (a library checking whether Ultralytics is installed) leaves it waiting for the import.
    Switched off, it leaves at once and answers None."""
    if not enabled():
        _leave()
        return None
    from importlib.util import find_spec as find_real

    waiting = sys.meta_path[:]
    _leave()  # the finders after it find the real package
    try:
        spec = find_real(fullname)
    finally:
        sys.meta_path[:] = waiting
    if spec is not None and hasattr(type(spec.loader), "exec_module"):
        _register_after(spec.loader)
    return spec
