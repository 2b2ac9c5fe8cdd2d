"""The ``yolo-attn`` command. Each sub-command lives in its own module of :mod:`yolo_attn.commands`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
it is discovered by name (``make_yaml.py`` -> ``yolo-attn make-yaml``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import re
import select
import signal
import sys

from . import commands


def _command_modules() -> dict[str, str]:
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if not info.name.startswith("_"):
            found[info.name.replace("_", "-")] = f"{commands.__name__}.{info.name}"
    return dict(sorted(found.items()))


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="yolo-attn", description="Attention layers for Ultralytics YOLO models (YOLOv5, YOLOv8, YOLO11, YOLO12, YOLO26; every task).")
    parser.add_argument("--version", action="version", version=f"yolo_attn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _command_modules().items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


# What a shell reports for a tool that a closed pipe stopped (128 + SIGPIPE), e.g. ``yes | head -1``.
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)


def _stdout_reader_gone() -> bool:
    """True when standard output is a pipe whose reading end is closed (``yolo-attn list | head``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows), or stdout is not a real file
        return False


# Terminal control sequences (colours, bold) as Ultralytics puts them into its messages: ESC [ ... letter.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain_for(stream, text: str) -> str:
    """``text`` without terminal colour codes unless ``stream`` is a terminal (a log file or pipe gets plain text)."""
    isatty = getattr(stream, "isatty", None)
    return text if isatty is not None and isatty() else _ANSI.sub("", text)


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a reader that stops early (``| head``) ends it quietly, as it would ``cat``.

    Python ignores SIGPIPE and raises ``BrokenPipeError`` instead; restoring the default handler would
    also kill the process on a broken socket (Ray, data loaders), so only a broken *stdout* is treated
    as the reader having had enough: no traceback, exit status 141 like a tool stopped by SIGPIPE.
    """
    try:
        try:
            return _main(argv)
        finally:  # also after argparse's --help/--version exit: the last buffered lines fail here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # Point stdout at /dev/null so that the interpreter's own flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value tokens after an option (train model=... --short-run epochs=3) belong to "args"
        if not isinstance(getattr(args, "args", None), list) or not all("=" in t for t in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args.extend(extra)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from ._io import OverwriteError
    from .registry import UnknownLayerError

    for_scripts = getattr(args, "json", None) is True  # --json given as a flag: standard output is for a program
    bridge = _import_bridge(for_scripts)
    with bridge.messages_to_stderr() if for_scripts else contextlib.nullcontext():
        try:
            return int(args._run(args) or 0)
        except (bridge.YamlLayerError, UnknownLayerError, OverwriteError, FileNotFoundError, ValueError) as exc:
            print(plain_for(sys.stderr, f"yolo-attn {args.command}: error: {exc}"), file=sys.stderr)
            return 1


def _import_bridge(for_scripts: bool):
    """The bridge, the first import of Ultralytics here; ``for_scripts``: what Ultralytics prints meanwhile (its
    first-run settings banner) goes to standard error (yolo_attn/_ultralytics/console.py)."""
    with contextlib.redirect_stdout(sys.stderr) if for_scripts else contextlib.nullcontext():
        from . import _ultralytics
    return _ultralytics


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
