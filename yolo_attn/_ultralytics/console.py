"""Ultralytics' console messages kept out of output meant for programs (``yolo-attn list --json | jq``).

Ultralytics logs through one ``logging.StreamHandler`` bound to standard output when it is first imported, and that
first import, on a machine where Ultralytics never ran, logs its "Creating new Ultralytics Settings" banner.
``yolo_attn.cli`` imports this bridge with standard output redirected to standard error (the banner goes there), and
runs such a command inside :func:`messages_to_stderr`.
"""

from __future__ import annotations

import contextlib
import logging
import sys


@contextlib.contextmanager
def messages_to_stderr():
    """Inside, Ultralytics' log messages go to standard error; afterwards to standard output again, as Ultralytics
    sets them up (also when its logger was created under a redirection of standard output)."""
    from ultralytics.utils import LOGGER

    out, err = sys.stdout, sys.stderr
    moved = [h for h in LOGGER.handlers if type(h) is logging.StreamHandler and h.stream in (out, err)]
    for handler in moved:
        handler.setStream(err)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(out)


@contextlib.contextmanager
def quiet_ultralytics(enabled: bool = True):
    """Raise Ultralytics' logger to WARNING (which also disables its progress bars) while inside."""
    from ultralytics.utils import LOGGER

    old = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(old)
