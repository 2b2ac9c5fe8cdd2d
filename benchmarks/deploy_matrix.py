"""The full deployment matrix: every registered layer x every format, written into the package and the docs.

    python benchmarks/deploy_matrix.py                  # all layers, all formats; writes both files below
    python benchmarks/deploy_matrix.py --render-only    # re-render docs/deploy.md from the committed JSON

Runs ``yolo-attn export-check --all-layers`` (YOLOv5n with each layer at backbone-end, imgsz 64, two shapes
validation images; block layers in the base they derive from), writes the results to
``yolo_attn/deploy/support.json`` (what ``yolo-attn list`` shows) and replaces the matrix in ``docs/deploy.md``
between ``<!-- matrix start -->`` and ``<!-- matrix end -->`` with :func:`yolo_attn.deploy.matrix.markdown_matrix`
of that file. Formats whose packages are missing are recorded as not checked.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "deploy.md"
START, END = "<!-- matrix start -->", "<!-- matrix end -->"


def render(doc: Path = DOC) -> None:
    from yolo_attn.deploy.matrix import markdown_matrix, read_results

    text = doc.read_text(encoding="utf-8")
    block = f"{START}\n{markdown_matrix(read_results())}{END}"
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if n != 1:
        raise SystemExit(f"{doc}: expected one {START} ... {END} block, found {n}")
    doc.write_text(new, encoding="utf-8")
    print(f"written: {doc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render-only", action="store_true", help="only re-render docs/deploy.md from support.json")
    ap.add_argument("--layers", nargs="+", help="only these layers (the JSON then holds only them)")
    ap.add_argument("--formats", nargs="+", help="only these formats")
    ap.add_argument("--out", help="folder for the exported models (default: a temporary folder)")
    args = ap.parse_args()
    if not args.render_only:
        from yolo_attn.cli import main as cli
        from yolo_attn.deploy.matrix import SUPPORT_FILE

        with tempfile.TemporaryDirectory(prefix="deploy-matrix-") as tmp:
            argv = ["export-check", "--all-layers", "--out", args.out or tmp, "--json", str(SUPPORT_FILE), "--force"]
            argv += ["--layers", *args.layers] if args.layers else []
            argv += ["--formats", *args.formats] if args.formats else []
            cli(argv)  # exit status 1 when a layer fails a format: still a matrix to write
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
