"""Reading and writing the local variables of the ``parse_model`` call that is building a layer."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from ._core import _ORIGINAL_PARSE_MODEL


def _parse_frame():
    """The frame of the innermost running ``parse_model`` (the row being built)."""
    frame = sys._getframe(1)
    code = _ORIGINAL_PARSE_MODEL.__code__
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("a yolo_attn YAML entry was called outside Ultralytics' parse_model")
    return frame


def _parse_locals() -> dict[str, Any]:
    """Local variables of the innermost running ``parse_model`` (the row being built)."""
    return _parse_frame().f_locals


def _set_output_channels(c2: int) -> None:
    """Tell the running ``parse_model`` the output channels of the row being built.

    For a name it does not know, Ultralytics records ``c2 = ch[f]`` (the input channels) *before* it calls the
    entry, and appends ``c2`` to its channel list after the call. A ``block`` layer may change channels, so the
    entry overwrites that local; otherwise the next layer would be built for the wrong input channels.
    """
    frame = _parse_frame()
    write_frame_local(frame, "c2", c2)
    if frame.f_locals.get("c2") != c2:  # pragma: no cover - only on an unsupported interpreter
        raise RuntimeError("yolo_attn could not set the output channels of a block layer in parse_model")


FRAME_LOCALS_PROXY = sys.version_info >= (3, 13)  # PEP 667: frame.f_locals is a write-through proxy


def write_frame_local(frame, name: str, value) -> str:
    """Set local variable ``name`` of the running ``frame``; returns how (the branch the interpreter takes).

    From Python 3.13 on (PEP 667) ``frame.f_locals`` writes through to the frame (``"proxy"``). Before, it is
    a snapshot dict, and ``PyFrame_LocalsToFast`` copies it back into the frame, as debuggers do (``"fast"``).
    """
    frame.f_locals[name] = value
    if FRAME_LOCALS_PROXY:
        return "proxy"
    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return "fast"


def _set_parse_local(name: str, value) -> None:
    """Write one local variable of the running ``parse_model`` (see :func:`_set_output_channels`)."""
    write_frame_local(_parse_frame(), name, value)


def _running_parse_locals() -> dict[str, Any] | None:
    """Locals of the innermost running ``parse_model``, or None outside one."""
    try:
        return _parse_frame().f_locals
    except RuntimeError:
        return None
