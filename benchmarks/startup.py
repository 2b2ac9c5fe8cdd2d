"""Start-up cost of yolo_attn's activation without an import (yolo_attn-autoload.pth -> _yolo_attn_autoload.py).

Makes two throw-away virtual environments (no pip) that reach this interpreter's packages and the checkout through
a path line in a ``.pth`` file; one of them also has the activation exactly as the wheel installs it (the ``.pth``
file and the module in its site-packages). Then times fresh interpreters, every variant once per repetition, the
order reversed on every other repetition:

* ``without``: no activation (yolo_attn not installed, or installed before this feature);
* ``with``: the activation as installed (``YOLO_ATTN_AUTOLOAD`` unset);
* ``with, off``: the activation installed and switched off (``YOLO_ATTN_AUTOLOAD=0``);

for ``python -c pass`` (a process that never imports Ultralytics) and ``python -c "import ultralytics"`` (there
the activation registers the layers: it imports yolo_attn's modules and Ultralytics' model code, which a plain
``import ultralytics`` of 8.4 leaves for later). The activation's module is byte-compiled, as pip does.

    python benchmarks/startup.py [--reps-pass 200] [--reps-import 20] [--out benchmarks/results/startup.md]
"""

from __future__ import annotations

import argparse
import os
import py_compile
import resource
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTH, MODULE = "yolo_attn-autoload.pth", "_yolo_attn_autoload.py"
VARIANTS = ("without", "with", "with, off")
COMMANDS = {"python -c pass": "pass", 'python -c "import ultralytics"': "import ultralytics"}


def make_venv(folder: Path, activation: bool) -> Path:
    """A venv reaching this interpreter's site-packages and the checkout; with ``activation``, the wheel's two files."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "zz-benchmark-base.pth").write_text("\n".join([*site.getsitepackages(), str(ROOT)]) + "\n")
    if activation:
        shutil.copy(ROOT / PTH, purelib / PTH)
        shutil.copy(ROOT / MODULE, purelib / MODULE)
        py_compile.compile(str(purelib / MODULE), doraise=True)
    return python


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(python: Path, code: str, env: dict) -> tuple[float, float]:
    """Seconds of one fresh interpreter: wall time and CPU time (user + system; steadier on a busy machine)."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run([str(python), "-c", code], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, _children_cpu() - cpu


def measure(pythons: dict, code: str, reps: int, env: dict) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per variant; each repetition runs every variant, in reversed order on odd repetitions."""
    envs = {"without": env, "with": env, "with, off": {**env, "YOLO_ATTN_AUTOLOAD": "0"}}
    times = {v: [] for v in VARIANTS}
    for variant in VARIANTS:  # warm the file cache and the bytecode of both venvs
        time_once(pythons[variant], code, envs[variant])
    for rep in range(reps):
        for variant in VARIANTS if rep % 2 == 0 else VARIANTS[::-1]:
            times[variant].append(time_once(pythons[variant], code, envs[variant]))
    return times


def paired_diff(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the per-repetition differences b - a (ms) and the half-width of its 95% interval (normal approx.)."""
    d = [(y - x) * 1e3 for x, y in zip(a, b)]
    return statistics.fmean(d), 1.96 * statistics.stdev(d) / len(d) ** 0.5


LINE_COST = """
import sys, time, timeit
line = open(sys.argv[1]).read()
start = time.perf_counter(); exec(line); first = time.perf_counter() - start
finder = sys.meta_path[0]
call = min(timeit.repeat(lambda: finder.find_spec("json", None), number=10000, repeat=5)) / 10000
print(first * 1e6, call * 1e9)
"""


def line_cost(python: Path, env: dict, reps: int = 50) -> tuple[float, float]:
    """In a fresh process without the activation: microseconds of the first ``exec`` of the ``.pth`` line (what
    site.py does at start-up) and nanoseconds of one call of its finder for another module (each later import),
    medians over ``reps`` processes."""
    rows = [subprocess.run([str(python), "-c", LINE_COST, str(ROOT / PTH)], env=env, check=True, capture_output=True,
                           text=True).stdout.split() for _ in range(reps)]
    return statistics.median(float(r[0]) for r in rows), statistics.median(float(r[1]) for r in rows)


def _diff_cell(times: dict, variant: str, which: int) -> str:
    mean, half = paired_diff([t[which] for t in times["without"]], [t[which] for t in times[variant]])
    return f"{mean:+.2f} ({mean - half:+.2f} .. {mean + half:+.2f})"


def report(results: dict, reps: dict) -> str:
    lines = ["| command | reps | time | without: median ms | with: median ms | with, off: median ms "
             "| with - without: mean ms (95% CI) | off - without: mean ms (95% CI) |", "|---|---|---|---|---|---|---|---|"]
    for command, times in results.items():
        for which, kind in enumerate(("wall", "CPU")):
            med = {v: statistics.median(t[which] for t in times[v]) * 1e3 for v in VARIANTS}
            lines.append(f"| `{command}` | {reps[command]} | {kind} | {med['without']:.1f} | {med['with']:.1f} "
                         f"| {med['with, off']:.1f} | {_diff_cell(times, 'with', which)} "
                         f"| {_diff_cell(times, 'with, off', which)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps-pass", type=int, default=200)
    parser.add_argument("--reps-import", type=int, default=20)
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args()
    reps = {"python -c pass": args.reps_pass, 'python -c "import ultralytics"': args.reps_import}
    with tempfile.TemporaryDirectory(prefix="yolo-attn-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("YOLO_ATTN_AUTOLOAD", "PYTHONPATH")}
        env.update(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(Path(tmp, "config")))  # settings made once, in the warm-up
        plain, active = make_venv(Path(tmp, "plain"), False), make_venv(Path(tmp, "active"), True)
        pythons = {"without": plain, "with": active, "with, off": active}
        results = {cmd: measure(pythons, code, reps[cmd], env) for cmd, code in COMMANDS.items()}
        first_us, call_ns = line_cost(plain, env)
        table = report(results, reps) + (
            f"\n\nIn-process (medians of 50 fresh processes): the `.pth` line, compiled and run once at start-up, "
            f"{first_us:.0f} us; its finder, asked for a module other than `ultralytics`, {call_ns:.0f} ns per import.")
    print(table)
    if args.out:
        Path(args.out).write_text(f"# Start-up cost of the activation without an import\n\n{table}\n")


if __name__ == "__main__":
    main()
