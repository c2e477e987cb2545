"""Benchmark: pull() against the reference script, on the emulator with latency.

Both pull the same batch from the same emulator in one run. The reference script
(``reference_script.py``) fetches sequentially; its throughput does not depend on
the batch size, so it runs on the first ``--reference-jobs`` jobs of the batch to keep
the run short. Also measured: an unchanged re-pull, and the peak RSS of pulls of
growing batches (memory must stay flat).

Usage:
    python benchmarks/bench_pull.py                 # full run
    python benchmarks/bench_pull.py --quick         # a small smoke run
    python benchmarks/bench_pull.py --json          # figures as JSON
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_table, reference_script_for, run_child  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.emulator.batch import GeneratedBatch  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402

REFERENCE_CHILD = """
import contextlib, io, runpy, time
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):  # it prints every job id
    runpy.run_path(sys.argv[1], run_name="__main__")
_report(seconds=time.perf_counter() - start)
"""

PULL_CHILD = """
import time
import playment_datasets as pds
start = time.perf_counter()
ds = pds.pull(sys.argv[1], sys.argv[2], api_key=sys.argv[3], base_url=sys.argv[4],
              registry=sys.argv[5], workers=int(sys.argv[6]), progress=False)
seconds = time.perf_counter() - start
_report(seconds=seconds, version=ds.version, jobs=len(ds.jobs),
        annotations=int(ds.manifest["counts"]["annotations"]))
"""


def reference_pull(batch: GeneratedBatch, latency_ms: float) -> tuple[float, int]:
    """Seconds the reference script takes for ``batch``, and the key leaks it caused."""
    with Emulator(batch, latency_ms=latency_ms) as emu, tempfile.TemporaryDirectory() as tmp:
        Path(tmp, batch.batch_id).mkdir()
        script = Path(tmp, "reference.py")
        script.write_text(reference_script_for(emu.base_url, emu.api_key, batch.project_id,
                                               batch.batch_id), encoding="utf-8")
        seconds = float(run_child(REFERENCE_CHILD, str(script), cwd=tmp)["seconds"])
        return seconds, emu.stats.leaks


def library_pull(emu: Emulator, registry: str, workers: int) -> dict[str, Any]:
    return run_child(PULL_CHILD, emu.project_id, emu.batch_id, emu.api_key, emu.base_url,
                     registry, str(workers))


def bench_fetch(jobs: int, latency_ms: float, runs: int, reference_jobs: int,
                workers: int) -> dict[str, Any]:
    batch = generate_batch(jobs, seed=1, kinds=["image"], completed_fraction=1.0)
    ref_batch = generate_batch(reference_jobs, seed=1, kinds=["image"], completed_fraction=1.0)
    ref, ref_leaks = [], 0
    for _ in range(runs):
        seconds, leaked = reference_pull(ref_batch, latency_ms)
        ref.append(reference_jobs / seconds)
        ref_leaks += leaked
    with Emulator(batch, latency_ms=latency_ms) as emu:
        leaks = 0
        firsts, repulls, first_bytes, repull_bytes = [], [], [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as registry:
                emu.reset_stats()
                first = library_pull(emu, registry, workers)
                first_bytes.append(emu.stats.bytes_served)
                emu.reset_stats()
                again = library_pull(emu, registry, workers)
                repull_bytes.append(emu.stats.bytes_served)
                leaks += emu.stats.leaks
                firsts.append(first)
                repulls.append(again)
    first_s = statistics.median(r["seconds"] for r in firsts)
    repull_s = statistics.median(r["seconds"] for r in repulls)
    ref_jps = statistics.median(ref)
    requests = 3 * jobs + -(-jobs // 100)
    return {
        "jobs": jobs, "latency_ms": latency_ms, "workers": workers,
        "reference_jobs_per_s": ref_jps,
        "pull_jobs_per_s": jobs / first_s,
        "speedup": (jobs / first_s) / ref_jps,
        "pull_seconds": first_s,
        "repull_seconds": repull_s,
        "repull_speedup": first_s / repull_s,
        "first_pull_body_bytes": statistics.median(first_bytes),
        "repull_body_bytes": statistics.median(repull_bytes),
        "concurrency_efficiency": (requests * latency_ms / 1000 / workers) / first_s,
        "key_leaks_to_storage": leaks,
        "reference_key_leaks_to_storage": ref_leaks,
    }


def bench_memory(sizes: list[int], annotations_per_job: int, workers: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        batch = generate_batch(n, seed=2, kinds=["image"], completed_fraction=1.0,
                               annotations_per_job=annotations_per_job)
        with Emulator(batch) as emu, tempfile.TemporaryDirectory() as registry:
            got = library_pull(emu, registry, workers)
        del batch
        rows.append({"jobs": n, "annotations": got["annotations"],
                     "seconds": got["seconds"], "peak_rss_mb": got["peak_rss_mb"]})
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["rss_vs_smallest"] = row["peak_rss_mb"] / base
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[20.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-jobs", type=int, default=150)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--memory-jobs", type=int, nargs="*", default=[5000, 20000])
    parser.add_argument("--annotations-per-job", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.runs, args.reference_jobs = 200, 1, 40
        args.memory_jobs, args.annotations_per_job = [500, 2000], 20
    fetch = [bench_fetch(args.jobs, lat, args.runs, args.reference_jobs, args.workers)
             for lat in args.latency_ms]
    memory = bench_memory(args.memory_jobs, args.annotations_per_job, args.workers) \
        if args.memory_jobs else []
    result = {"fetch": fetch, "memory": memory}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(f"Fetch: pull() vs the reference script (median of {args.runs} runs)", [
            {"latency ms": r["latency_ms"], "jobs": r["jobs"],
             "reference jobs/s": r["reference_jobs_per_s"], "pull jobs/s": r["pull_jobs_per_s"],
             "speed-up": r["speedup"], "efficiency": r["concurrency_efficiency"],
             "key leaks (ref / pull)": f"{r['reference_key_leaks_to_storage']} / "
                                       f"{r['key_leaks_to_storage']}"} for r in fetch])
        print_table("Incremental: unchanged re-pull vs first pull", [
            {"latency ms": r["latency_ms"], "first s": r["pull_seconds"],
             "re-pull s": r["repull_seconds"], "speed-up": r["repull_speedup"],
             "first body bytes": r["first_pull_body_bytes"],
             "re-pull body bytes": r["repull_body_bytes"]} for r in fetch])
        print_table("Memory: peak RSS of a pull as the batch grows", [
            {"jobs": r["jobs"], "annotations": r["annotations"], "seconds": r["seconds"],
             "peak RSS MB": r["peak_rss_mb"], "vs smallest": r["rss_vs_smallest"]} for r in memory])
    return result


if __name__ == "__main__":
    main()
