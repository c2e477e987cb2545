"""Shared pieces of the benchmark scripts: timing, child processes, tables.

Benchmarks print figures and ratios against a baseline measured in the same run;
these machines are shared and noisy, so every figure is a median of several runs.

Importing this module byte-compiles the package (``compileall``, a no-op when nothing
changed): an installed package has its ``.pyc`` files written by pip, while a checkout
run with ``PYTHONDONTWRITEBYTECODE=1`` would compile every module in every fresh process
and so time a cost users do not pay.
"""

# ruff: noqa: T201  (tables of the command-line benchmarks go to stdout)
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _compile_package() -> None:
    import compileall

    compileall.compile_dir(ROOT / "playment_datasets", quiet=1)


_compile_package()


def median_time(fn: Callable[[], Any], runs: int) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` over ``runs`` runs, and every run's time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def run_child(code: str, *args: str, env: dict[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run Python ``code`` in a fresh process; it prints one JSON object last.

    The child's peak RSS (``VmHWM``, Linux) is added as ``peak_rss_mb``.
    """
    # Peak RSS comes from VmHWM: ru_maxrss survives exec, so a child forked from a big
    # parent (the emulator holding a large batch) would report the parent's size.
    prelude = (
        "import json, sys, time\n"
        "def _peak_rss_mb():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "def _report(**fields):\n"
        "    fields['peak_rss_mb'] = _peak_rss_mb()\n"
        "    print(json.dumps(fields))\n"
    )
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with tempfile.TemporaryDirectory() as neutral:
        # ``python -c`` puts the working directory first on sys.path: run from a
        # checkout, a child given another tree's PYTHONPATH would import the checkout
        proc = subprocess.run(
            [sys.executable, "-c", prelude + code, *args], env=full_env,
            cwd=neutral if cwd is None and env and "PYTHONPATH" in env else cwd,
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Print rows of dicts as an aligned table under a title."""
    print(f"\n{title}")
    if not rows:
        print("  (nothing measured)")
        return
    headers = list(rows[0])
    cells = [[_fmt(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for c in cells:
        print("  " + "  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


#: How big a run is: ``full`` gives the figures worth quoting, ``quick`` a small run
#: of every section, ``smoke`` the smallest run that still produces every figure (the
#: test suite runs it to check that every section works; its figures mean nothing).
SIZES = ("full", "quick", "smoke")


def runs_for(size: str, runs: int | None) -> int:
    """Runs per figure: ``runs`` if given, else 3 for a full run and 1 otherwise."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    return runs or (3 if size == "full" else 1)


def add_size_arguments(parser: Any, quick_help: str) -> None:
    """``--quick`` and ``--smoke`` (mutually exclusive); read back with :func:`size_of`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help=quick_help)
    group.add_argument("--smoke", action="store_true",
                       help="the smallest run that produces every figure (checks only)")


def size_of(args: Any) -> str:
    """The size chosen on the command line by :func:`add_size_arguments`."""
    return "smoke" if args.smoke else "quick" if args.quick else "full"


REFERENCE_SCRIPT = ROOT / "benchmarks" / "reference_script.py"


def reference_script_for(base_url: str, api_key: str, project_id: str, batch_id: str) -> str:
    """The reference script's text pointed at ``base_url`` with the given key and ids."""
    text = REFERENCE_SCRIPT.read_text(encoding="utf-8")
    return (text.replace("https://api.playment.io", base_url)
            .replace('x_api_key = ""', f"x_api_key = {api_key!r}")
            .replace('project_id = ""', f"project_id = {project_id!r}")
            .replace('batch_id = ""', f"batch_id = {batch_id!r}"))


def section_main(
    argv: list[str] | None,
    description: str,
    run: Callable[[str, int | None], dict[str, Any]],
    print_tables: Callable[[dict[str, Any]], None],
    *,
    quick_help: str,
) -> dict[str, Any]:
    """The command line of one benchmark section: --quick/--smoke, --runs, --json."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    add_size_arguments(parser, quick_help)
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    report = run(size_of(args), args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
    return report

