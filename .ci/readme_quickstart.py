"""Print the command lines of README.md's quick-start block (comments and blank lines left out), one a line.

CI runs them exactly as written; a README whose quick start has no such block, or whose first two command
lines are not the main job and the test command, stops CI here.
"""

from __future__ import annotations

import sys
from pathlib import Path


def quickstart_lines(readme: str) -> list[str]:
    text = Path(readme).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.strip().lower() == "## quick start")
    fence = next(i for i in range(start, len(text)) if text[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(text)) if text[i].startswith("```"))
    return [line.strip() for line in text[fence + 1 : end] if line.strip() and not line.strip().startswith("#")]


if __name__ == "__main__":
    lines = quickstart_lines(sys.argv[1])
    if len(lines) < 2 or "yolo-attn compare" not in lines[0] or "pytest" not in lines[1]:
        sys.exit(f"{sys.argv[1]}: the quick start must hold the main job then the test command, found {lines}")
    print("\n".join(lines))
