"""The one home of file-writing helpers: atomic writes and the refuse-to-overwrite rule.

Every file yolo_attn writes for a user (reports, checkpoints, dataset files, YAMLs) goes through
:func:`atomic_write` (or :func:`atomic_save`), so a crash or a full disk never leaves a half-written
file behind, and every command that could overwrite something the user has checks
:func:`refuse_overwrite` first, so nothing is replaced without ``--force``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable


class OverwriteError(FileExistsError):
    """An output path exists (or is one of the inputs) and ``--force`` was not given."""


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_save(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to produce the file at a temporary path beside ``path``, fsync it, rename it over ``path``.

    Readers see either the old file or the complete new one; on any error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_NPZ_LOCK = threading.Lock()


def read_arrays(path: str | Path, only: tuple[str, ...] | None = None) -> dict:
    """The arrays of a ``.npz`` file (those named in ``only`` that it holds; default all), read in full (never
    pickled objects).

    Reads hold one lock: numpy parses each array's header with ``ast``, and CPython 3.11 can raise
    ``SystemError: AST constructor recursion depth mismatch`` when two threads parse at once (the bootstrap
    reads the trials' files on a thread pool).
    """
    import numpy as np

    with _NPZ_LOCK, np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files if only is None or name in only}


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically (see :func:`atomic_save`)."""
    blob = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return atomic_save(path, lambda tmp: tmp.write_bytes(blob))


def atomic_write_json(path: str | Path, obj, indent: int | None = 2) -> Path:
    """``json.dumps`` ``obj`` (non-JSON values through ``str``) and write it atomically."""
    return atomic_write(path, json.dumps(obj, indent=indent, default=str) + "\n")


def refuse_overwrite(path: str | Path, force: bool = False, inputs=(), what: str = "output") -> Path:
    """Raise :class:`OverwriteError` when ``path`` is one of ``inputs`` (always) or exists (unless ``force``).

    A directory counts as existing only when it is non-empty.
    """
    path = Path(path)
    resolved = path.resolve()
    for src in inputs:
        if src is not None and Path(src).resolve() == resolved:
            raise OverwriteError(f"{what} {path} is also an input; choose another output path")
    exists = path.is_file() or (path.is_dir() and any(path.iterdir())) or path.is_symlink()
    if exists and not force:
        kind = "folder is not empty" if path.is_dir() else "exists"
        raise OverwriteError(f"{what} {path} {kind}; pass --force to overwrite it")
    return path
