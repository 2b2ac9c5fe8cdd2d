"""The ``yolo-attn`` command. Each sub-command lives in its own module of :mod:`yolo_attn.commands`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
it is discovered by name (``make_yaml.py`` -> ``yolo-attn make-yaml``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
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

    parser = argparse.ArgumentParser(prog="yolo-attn", description="Attention layers for Ultralytics YOLOv5 models.")
    parser.add_argument("--version", action="version", version=f"yolo_attn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _command_modules().items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value tokens after an option (train model=... --short-run epochs=3) belong to "args"
        if not isinstance(getattr(args, "args", None), list) or not all("=" in t for t in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args.extend(extra)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from ._ultralytics import YamlLayerError
    from .registry import UnknownLayerError

    try:
        return int(args._run(args) or 0)
    except (YamlLayerError, UnknownLayerError, FileNotFoundError, ValueError) as exc:
        print(f"yolo-attn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
