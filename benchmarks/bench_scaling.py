"""Benchmark: pull() throughput as ``workers`` grows, at 50 ms of injected latency.

Each job costs three requests (job record, attachment redirect, signed storage URL), so
with ``workers`` requests in flight the network allows at most
``workers / (3 x latency)`` jobs/s. Next to each measured figure that bound is printed:
where the measured jobs/s stops following it, the machine (CPU, the emulator in this
same process), not the network, is the limit.

Usage:
    python benchmarks/bench_scaling.py            # workers 1, 4, 16, 32, 64, 128
    python benchmarks/bench_scaling.py --quick    # workers 1, 16, 64, fewer jobs
    python benchmarks/bench_scaling.py --json     # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_table, runs_for, section_main  # noqa: E402
from benchmarks.bench_pull import generate_bytes_only, library_pull, subset  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402

LATENCY_MS = 50.0
REQUESTS_PER_JOB = 3


def plan(size: str) -> list[tuple[int, int]]:
    """(workers, jobs) per point: enough jobs for a few seconds at the bound, capped."""
    if size == "smoke":
        return [(w, min(64, 2 * w)) for w in (1, 16, 64)]
    if size == "quick":
        return [(w, min(200, 10 * w)) for w in (1, 16, 64)]
    return [(w, min(1000, 60 * w)) for w in (1, 4, 16, 32, 64, 128)]


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Every figure of the scaling section."""
    runs = runs_for(size, runs)
    points = plan(size)
    full = generate_bytes_only(max(n for _, n in points), seed=3, annotations_per_job=8)
    rows = []
    for workers, n in points:
        with Emulator(subset(full, n), latency_ms=LATENCY_MS) as emu:
            got = []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as registry:
                    emu.reset_stats()
                    got.append(library_pull(emu, registry, workers))
        seconds = statistics.median(g["seconds"] for g in got)
        bound = workers / (REQUESTS_PER_JOB * LATENCY_MS / 1000)
        rows.append({"workers": workers, "jobs": n, "seconds": seconds,
                     "jobs_per_s": n / seconds, "latency_bound_jobs_per_s": bound,
                     "share_of_bound": (n / seconds) / bound})
    return {"latency_ms": LATENCY_MS, "runs": runs, "rows": rows}


def print_tables(report: dict[str, Any]) -> None:
    """Print the scaling section as a table."""
    print_table(
        f"Scaling: pull() jobs/s by workers at {report['latency_ms']:g} ms latency (median of "
        f"{report['runs']} runs; bound = workers / (3 x latency))", [
            {"workers": r["workers"], "jobs": r["jobs"], "seconds": r["seconds"],
             "jobs/s": r["jobs_per_s"], "latency-bound jobs/s": r["latency_bound_jobs_per_s"],
             "share of bound": r["share_of_bound"]} for r in report["rows"]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="three points, fewer jobs")


if __name__ == "__main__":
    main()
