"""Benchmark: ``playment-datasets pull`` as a user runs it, against what they would run instead.

A batch of 300 image jobs is served by the emulator (in this benchmark's process) with
20 ms of latency per request. Each contender is a fresh process, timed from launch to
exit, so interpreter start-up, imports and the commit count as a user waits for them:

- the reference script (sequential ``requests``, one JSON file per job), on all 300 jobs;
- the aiohttp peer (benchmarks/peers/aiohttp_dump.py, 64 requests in flight);
- ``python -m playment_datasets.cli pull`` into a new registry (default settings).

Rounds interleave the contenders; every figure is a median. The ratios divide the
contenders' seconds by the CLI's, so 20 means the CLI took a twentieth of the time.
The CLI's own time is also split into the pull (``pull_stats.seconds``: listing and
fetching) and the rest (start-up, normalizing what is left, the commit, the summary).

Usage:
    python benchmarks/bench_cli.py            # 300 jobs, 3 rounds
    python benchmarks/bench_cli.py --quick    # 100 jobs, 1 round
    python benchmarks/bench_cli.py --json     # figures as JSON
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

from benchmarks._common import (  # noqa: E402
    ROOT,
    print_table,
    reference_script_for,
    runs_for,
    section_main,
)
from benchmarks.bench_pull import bytes_only  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402

LATENCY_MS = 20.0
JOBS = {"full": 300, "quick": 100, "smoke": 20}
IN_FLIGHT = 64


def _timed(cmd: list[str], *, cwd: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one fresh process, launch to exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited with {done.returncode}: "
                           f"{done.stderr[-2000:]}")
    return seconds


def _reference(emu: Emulator, tmp: str) -> float:
    script = Path(tmp, "reference.py")
    script.write_text(reference_script_for(emu.base_url, emu.api_key, emu.project_id,
                                           emu.batch_id), encoding="utf-8")
    Path(tmp, emu.batch_id).mkdir()
    seconds = _timed([sys.executable, str(script)], cwd=tmp)
    _expect_files(Path(tmp, emu.batch_id), emu)
    return seconds


def _peer(emu: Emulator, tmp: str) -> float:
    out = Path(tmp, "out")
    out.mkdir()
    seconds = _timed([sys.executable, str(ROOT / "benchmarks" / "peers" / "aiohttp_dump.py"),
                      emu.base_url, emu.api_key, emu.project_id, emu.batch_id, str(out),
                      str(IN_FLIGHT)], cwd=tmp)
    _expect_files(out, emu)
    return seconds


def _cli(emu: Emulator, tmp: str) -> tuple[float, float]:
    """Seconds of the CLI pull, and the pull's own seconds from the manifest."""
    registry = Path(tmp, "registry")
    env = {**os.environ, "PLAYMENT_API_KEY": emu.api_key}
    seconds = _timed([sys.executable, "-m", "playment_datasets.cli", "pull", emu.project_id,
                      emu.batch_id, "--registry", str(registry), "--base-url", emu.base_url,
                      "--no-progress"], cwd=tmp, env=env)
    manifests = sorted(registry.glob("datasets/*/*/v*/manifest.json"))
    if len(manifests) != 1:
        raise RuntimeError(f"expected one committed version in {registry}, found "
                           f"{len(manifests)}")
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    if len(manifest["jobs"]) != len(emu.batch.jobs):
        raise RuntimeError(f"the CLI pull committed {len(manifest['jobs'])} jobs of "
                           f"{len(emu.batch.jobs)}")
    return seconds, float(manifest["extra"]["pull"]["seconds"])


def _expect_files(directory: Path, emu: Emulator) -> None:
    got = len(list(directory.iterdir()))
    if got != len(emu.batch.jobs):
        raise RuntimeError(f"expected a file per job ({len(emu.batch.jobs)}) in "
                           f"{directory}, got {got}")


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Seconds of each contender (median of ``runs`` interleaved rounds) and the ratios."""
    runs = runs_for(size, runs)
    jobs = JOBS[size]
    batch = bytes_only(generate_batch(jobs, seed=7, kinds=["image"], completed_fraction=1.0))
    got: dict[str, list[Any]] = {"reference": [], "peer": [], "cli": []}
    leaks = dict.fromkeys(got, 0)
    with Emulator(batch, latency_ms=LATENCY_MS) as emu:
        for _ in range(runs):
            for name, fn in (("reference", _reference), ("peer", _peer), ("cli", _cli)):
                emu.reset_stats()
                with tempfile.TemporaryDirectory() as tmp:
                    got[name].append(fn(emu, tmp))
                leaks[name] += emu.stats.leaks
    ref = statistics.median(got["reference"])
    peer = statistics.median(got["peer"])
    cli = statistics.median(s for s, _ in got["cli"])
    pull = statistics.median(p for _, p in got["cli"])
    return {
        "jobs": jobs, "latency_ms": LATENCY_MS, "runs": runs,
        "reference_seconds": ref, "peer_seconds": peer, "cli_seconds": cli,
        "cli_pull_seconds": pull, "cli_other_seconds": cli - pull,
        "speedup_vs_reference": ref / cli, "speedup_vs_peer": peer / cli,
        "key_leaks": leaks,  # requests that carried the API key to the storage host
    }


def print_tables(result: dict[str, Any]) -> None:
    leaks = result["key_leaks"]
    rows = [
        {"contender": "reference script (sequential requests)",
         "seconds": result["reference_seconds"], "cli speed-up": result["speedup_vs_reference"],
         "key sent to storage": leaks["reference"]},
        {"contender": f"aiohttp, {IN_FLIGHT} in flight (peer)", "seconds": result["peer_seconds"],
         "cli speed-up": result["speedup_vs_peer"], "key sent to storage": leaks["peer"]},
        {"contender": "playment-datasets pull (whole process)", "seconds": result["cli_seconds"],
         "cli speed-up": 1.0, "key sent to storage": leaks["cli"]},
        {"contender": "  of which listing + fetching (pull_stats.seconds)",
         "seconds": result["cli_pull_seconds"]},
        {"contender": "  of which start-up, normalizing, commit, summary",
         "seconds": result["cli_other_seconds"]},
    ]
    print_table(f"CLI: {result['jobs']} jobs at {result['latency_ms']:g} ms, a fresh process "
                f"each, median of {result['runs']} interleaved round(s)", rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="100 jobs, one round")


if __name__ == "__main__":
    main()
