"""List the longest functions and files of the project's Python code.

Usage: python benchmarks/code_metrics.py [--top N] [ROOT]

A size census for reviews, not a test: functions are measured with ``ast`` from the ``def`` line
(decorators excluded) to the last line of the body, so nested functions count inside their parent
and again on their own. Files are measured in lines. Only ``yolo_attn/`` and ``benchmarks/`` are
read by default (the product code); pass ``--tests`` to include ``tests/``.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path


def functions(path: Path):
    """Yield ``(lines, "file:line name")`` for every function in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    stack = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield child.end_lineno - child.lineno + 1, f"{path}:{child.lineno} {name}"
                stack.append((child, name + "."))
            elif isinstance(child, ast.ClassDef):
                stack.append((child, f"{prefix}{child.name}."))
            else:
                stack.append((child, prefix))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=".", help="repository root (default: .)")
    ap.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    ap.add_argument("--tests", action="store_true", help="include tests/")
    args = ap.parse_args(argv)
    root = Path(args.root)
    dirs = ["yolo_attn", "benchmarks"] + (["tests"] if args.tests else [])
    files = sorted(p for d in dirs for p in (root / d).rglob("*.py"))
    funcs = sorted((f for p in files for f in functions(p)), key=lambda t: (-t[0], t[1]))
    sizes = sorted(((len(p.read_text(encoding="utf-8").splitlines()), str(p)) for p in files),
                   key=lambda t: (-t[0], t[1]))
    long = sum(1 for n, _ in funcs if n >= 60)
    print(f"{len(files)} files, {len(funcs)} functions, {long} of them >= 60 lines")
    print(f"\nlongest {args.top} functions (lines):")
    for n, where in funcs[:args.top]:
        print(f"  {n:5d}  {where}")
    print(f"\nlongest {args.top} files (lines):")
    for n, where in sizes[:args.top]:
        print(f"  {n:5d}  {where}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BrokenPipeError:  # piped into head: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
