"""Benchmark: a large batch — 20,000 jobs of 50 annotations — pull() against the aiohttp peer.

The peer (benchmarks/peers/aiohttp_dump.py, 64 requests in flight) writes one JSON file
per job and nothing else; pull() also stores every result by content, journals it,
normalizes a million annotations into tables and commits a version. Both run in a fresh
child process against the same emulator (in this benchmark's process), with no injected
latency, so what is compared is the work per job. The ratio is the pull's seconds over
the peer's: 2 means the pull took twice as long.

Usage:
    python benchmarks/bench_bulk.py            # 20,000 jobs x 50 annotations, one run
    python benchmarks/bench_bulk.py --quick    # 2,000 jobs x 50 annotations
    python benchmarks/bench_bulk.py --json     # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_table, section_main  # noqa: E402
from benchmarks.bench_pull import generate_bytes_only, library_pull, peer_pull  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.pull.orchestrate import DEFAULT_WORKERS  # noqa: E402

SIZES = {"full": (20_000, 50), "quick": (2_000, 50), "smoke": (100, 5)}
PEER = "aiohttp_dump"


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Seconds of the peer and of pull() (median of ``runs``, one by default: a full run
    takes minutes), jobs/s and annotations/s of each, and the ratio."""
    runs = runs or 1
    jobs, per_job = SIZES[size]
    batch = generate_bytes_only(jobs, seed=11, annotations_per_job=per_job)
    peers, pulls = [], []
    with Emulator(batch, latency_ms=0) as emu:
        for _ in range(runs):
            emu.reset_stats()
            peers.append(peer_pull(emu, PEER, DEFAULT_WORKERS))
            with tempfile.TemporaryDirectory() as registry:
                emu.reset_stats()
                pulls.append(library_pull(emu, registry, DEFAULT_WORKERS))
    if any(p["files"] != jobs for p in peers) or any(p["jobs"] != jobs for p in pulls):
        raise RuntimeError(f"expected {jobs} jobs from each contender; got {peers} / {pulls}")
    annotations = int(statistics.median(p["annotations"] for p in pulls))
    peer_s = statistics.median(p["seconds"] for p in peers)
    pull_s = statistics.median(p["seconds"] for p in pulls)
    return {"jobs": jobs, "annotations_per_job": per_job, "annotations": annotations,
            "runs": runs, "peer_seconds": peer_s, "pull_seconds": pull_s,
            "peer_jobs_per_s": jobs / peer_s, "pull_jobs_per_s": jobs / pull_s,
            "pull_annotations_per_s": annotations / pull_s,
            "pull_over_peer": pull_s / peer_s}


def print_tables(result: dict[str, Any]) -> None:
    rows = [
        {"contender": f"aiohttp, {DEFAULT_WORKERS} in flight (peer): JSON files only",
         "seconds": result["peer_seconds"], "jobs/s": result["peer_jobs_per_s"],
         "× peer's time": 1.0},
        {"contender": "pull(): stored, journalled, normalized, committed",
         "seconds": result["pull_seconds"], "jobs/s": result["pull_jobs_per_s"],
         "× peer's time": result["pull_over_peer"]},
    ]
    print_table(f"Bulk: {result['jobs']:,} jobs × {result['annotations_per_job']} annotations "
                f"({result['annotations']:,} in all), no latency, median of {result['runs']} "
                "run(s)", rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="2,000 jobs x 50 annotations")


if __name__ == "__main__":
    main()
