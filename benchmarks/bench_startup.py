"""Benchmark: start-up time of the command line and of ``import playment_datasets``.

Each timed run is a fresh process. The commands run ``playment_datasets.cli.main`` in
``python -c`` (what the console script does), which then reports the modules it
imported; ``python -m playment_datasets.cli --help`` and the ``playment-datasets``
console script (when installed next to this Python) are timed as users start them.
The import is ``python -c "import playment_datasets"``. The baseline is
``python -c pass`` measured in the same run, so the ratio is what the package adds to an
empty interpreter. ``list``, ``tag`` and ``show`` work on a registry holding one version
(built once, untimed, by ``playment-datasets demo``). Each command reports which of
pandas, pyarrow, NumPy and urllib3 it imported: the commands that read only JSON import
none of them; ``show`` reads Parquet, so it imports pyarrow (and NumPy), not pandas.

Usage:
    python benchmarks/bench_startup.py            # 15 runs per command
    python benchmarks/bench_startup.py --quick    # 5 runs per command
    python benchmarks/bench_startup.py --json     # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, print_table, runs_for, section_main  # noqa: E402

#: Modules a light command must not import (the heavy ones of the data path).
HEAVY = ("pandas", "pyarrow", "numpy", "urllib3")

#: Runs per command: start-up is short and noisy, so more than the other sections.
RUNS = {"full": 15, "quick": 5, "smoke": 1}

#: Runs the CLI's main with ``argv`` and prints which HEAVY modules it imported.
CLI_CHILD = """
import sys
from playment_datasets.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def _build_registry(root: Path) -> tuple[Path, str]:
    """A registry with one committed version (``playment-datasets demo``: emulator +
    pull), and its batch id."""
    registry = root / "registry"
    proc = subprocess.run([sys.executable, "-m", "playment_datasets.cli", "demo", "--jobs",
                           "20", "--registry", str(registry), "--json"], check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return registry, json.loads(proc.stdout)["batch_id"]


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of one fresh process, and the HEAVY modules it reported (if any)."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[1:]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    heavy = next((line[len("HEAVY="):] for line in proc.stderr.splitlines()
                  if line.startswith("HEAVY=")), "")
    return seconds, heavy


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Median start-up seconds per command, and the ratio to ``python -c pass``."""
    runs_for(size, runs)  # validates the size
    n = runs or RUNS[size]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        registry, batch_id = _build_registry(Path(tmp))
        env["PLAYMENT_DATASETS_HOME"] = str(registry)
        child = CLI_CHILD.replace("{HEAVY!r}", repr(HEAVY))
        commands: dict[str, list[str]] = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "import playment_datasets": [sys.executable, "-c", "import playment_datasets"],
            "playment-datasets --help": [sys.executable, "-c", child, "--help"],
            "playment-datasets --version": [sys.executable, "-c", child, "--version"],
            "playment-datasets list": [sys.executable, "-c", child, "list"],
            "playment-datasets tag": [sys.executable, "-c", child, "tag", f"{batch_id}@1",
                                      "gold"],
            "playment-datasets show (reads Parquet)": [sys.executable, "-c", child, "show",
                                                       batch_id],
            "playment-datasets pull --help": [sys.executable, "-c", child, "pull", "--help"],
            "python -m playment_datasets.cli --help":
                [sys.executable, "-m", "playment_datasets.cli", "--help"],
        }
        script = Path(sys.executable).with_name("playment-datasets")
        if script.is_file():
            commands["console script playment-datasets --help"] = [str(script), "--help"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        heavy: dict[str, set[str]] = {name: set() for name in commands}
        for _ in range(n):  # interleaved: a burst of load hits every command alike
            for name, argv in commands.items():
                seconds, imported = _time(argv, env)
                times[name].append(seconds)
                heavy[name].update(filter(None, imported.split(",")))
    baseline = statistics.median(times["python -c pass (baseline)"])
    rows = []
    for name in commands:
        median = statistics.median(times[name])
        rows.append({"command": name, "median_seconds": median,
                     "min_seconds": min(times[name]), "ratio_vs_python": median / baseline,
                     "heavy_imported": ",".join(sorted(heavy[name]))})
    return {"runs": n, "baseline_seconds": baseline, "rows": rows}


def print_tables(report: dict[str, Any]) -> None:
    """Print the start-up section as a table."""
    print_table(
        f"Start-up: fresh process per run, median of {report['runs']} run(s); ratio vs "
        f"python -c pass ({report['baseline_seconds']:.3f} s)", [
            {"command": r["command"], "median s": r["median_seconds"], "min s": r["min_seconds"],
             "vs python": r["ratio_vs_python"], "heavy modules": r["heavy_imported"] or "-"}
            for r in report["rows"]
        ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="5 runs per command")


if __name__ == "__main__":
    main()
