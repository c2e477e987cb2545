"""Benchmark: pull() against the reference script, on the emulator with latency.

Three sections, each against a baseline measured in the same run:

* fetch: the reference script (sequential) and two peers a user might write instead
  (requests + threads, aiohttp; benchmarks/peers/) vs pull() at 20 ms and 100 ms of
  injected latency, with the library's default ``workers`` and with more at 100 ms.
  The peers get the same number of requests in flight as pull()'s default workers.
  Each contender's modules are imported before its clock starts (pull()'s 0.3 s of
  pandas, pyarrow and urllib3; the peers' aiohttp or requests); bench_cli times whole
  processes, start-up included.
  The reference script's throughput does not depend on the batch size, so it runs on
  a small subset of jobs (30 at 20 ms, 15 at 100 ms) to keep the run short.
* incremental: an unchanged re-pull vs the first pull, with the result-body bytes the
  emulator served to each.
* memory: the peak RSS (VmHWM of the child process) of pulls of growing batches.

Usage:
    python benchmarks/bench_pull.py                 # full run
    python benchmarks/bench_pull.py --quick         # a small smoke run
    python benchmarks/bench_pull.py --json          # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    add_size_arguments,
    print_table,
    reference_script_for,
    run_child,
    runs_for,
    size_of,
)
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402
from playment_datasets.pull.orchestrate import DEFAULT_WORKERS  # noqa: E402

#: Jobs the reference script fetches per latency (its jobs/s does not depend on it).
REFERENCE_JOBS = {20.0: 30, 100.0: 15}
#: The extra ``workers`` setting measured at high latency.
HIGH_LATENCY_WORKERS = 128

REFERENCE_CHILD = """
import contextlib, io, runpy, time
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):  # it prints every job id
    runpy.run_path(sys.argv[1], run_name="__main__")
_report(seconds=time.perf_counter() - start)
"""

PEER_CHILD = """
import importlib, os, tempfile
peer = importlib.import_module("benchmarks.peers." + sys.argv[1])
with tempfile.TemporaryDirectory() as out:
    start = time.perf_counter()
    peer.main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], out, int(sys.argv[6]))
    seconds = time.perf_counter() - start
    files = len(os.listdir(out))
_report(seconds=seconds, files=files)
"""

#: The peers (module of benchmarks/peers → contender label).
PEERS = {"requests_threads": "requests + {workers} threads (peer)",
         "aiohttp_dump": "aiohttp, {workers} in flight (peer)"}

# Each child imports its contender before starting the clock (pds.pull's modules, as the
# peers' aiohttp or requests): the figure is the call, as a notebook's second cell runs it.
PULL_CHILD = """
import time
import playment_datasets as pds
pull = pds.pull  # imports the pull's modules, pandas and pyarrow among them
start = time.perf_counter()
ds = pull(sys.argv[1], sys.argv[2], api_key=sys.argv[3], base_url=sys.argv[4],
              registry=sys.argv[5], workers=int(sys.argv[6]), progress=False)
seconds = time.perf_counter() - start
_report(seconds=seconds, version=ds.version, jobs=len(ds.jobs),
        annotations=int(ds.manifest["counts"]["annotations"]))
"""


def bytes_only(batch: GeneratedBatch) -> GeneratedBatch:
    """Keep each job's result as served bytes only; drop the parsed dict tree.

    A generated result costs a few KB per annotation as Python dicts and a few hundred
    bytes as JSON. The emulator serves ``raw_result`` as the job's result file, so a
    completed job stays completed; the ground truth stays in ``job.truth``.
    """
    for job in batch.jobs:
        if job.result is not None:
            job.raw_result = job.result_bytes
            job.result = None
    gc.collect()
    return batch


def generate_bytes_only(n_jobs: int, *, seed: int, annotations_per_job: int,
                        kinds: list[str] | None = None, chunk: int = 2000) -> GeneratedBatch:
    """A batch of ``n_jobs`` completed jobs, generated in chunks and kept as bytes only."""
    kinds = kinds or ["image"]
    jobs: list[GeneratedJob] = []
    seen: set[str] = set()
    project_id = batch_id = None
    part = 0
    while len(jobs) < n_jobs:
        got = generate_batch(min(chunk, n_jobs - len(jobs)), seed=seed * 1000 + part,
                             kinds=kinds, completed_fraction=1.0, project_id=project_id,
                             batch_id=batch_id, annotations_per_job=annotations_per_job)
        project_id, batch_id = got.project_id, got.batch_id
        bytes_only(got)
        for job in got.jobs:
            if job.job_id not in seen:
                seen.add(job.job_id)
                job.reference_id = f"{len(jobs) + 1:06d}"
                jobs.append(job)
        part += 1
        del got
    return GeneratedBatch(str(project_id), str(batch_id), f"Batch {seed}", jobs)


def subset(batch: GeneratedBatch, n_jobs: int) -> GeneratedBatch:
    """The first ``n_jobs`` jobs of ``batch`` as a batch of their own (jobs shared)."""
    return GeneratedBatch(batch.project_id, batch.batch_id, batch.name, batch.jobs[:n_jobs])


def _requests(emu: Emulator) -> int:
    return sum(emu.stats.requests.values())


def reference_pull(batch: GeneratedBatch, latency_ms: float) -> dict[str, Any]:
    """Run the reference script on ``batch`` in a child; seconds, requests, key leaks."""
    with Emulator(batch, latency_ms=latency_ms) as emu, tempfile.TemporaryDirectory() as tmp:
        Path(tmp, batch.batch_id).mkdir()
        script = Path(tmp, "reference.py")
        script.write_text(reference_script_for(emu.base_url, emu.api_key, batch.project_id,
                                               batch.batch_id), encoding="utf-8")
        seconds = float(run_child(REFERENCE_CHILD, str(script), cwd=tmp)["seconds"])
        return {"seconds": seconds, "requests": _requests(emu), "leaks": emu.stats.leaks}


def library_pull(emu: Emulator, registry: str, workers: int) -> dict[str, Any]:
    """Run pull() against ``emu`` into ``registry`` in a child process."""
    got = run_child(PULL_CHILD, emu.project_id, emu.batch_id, emu.api_key, emu.base_url,
                    registry, str(workers))
    got["requests"] = _requests(emu)
    got["body_bytes"] = emu.stats.bytes_served
    got["leaks"] = emu.stats.leaks
    return got


def peer_pull(emu: Emulator, module: str, workers: int) -> dict[str, Any]:
    """Run one peer of benchmarks/peers against ``emu`` in a child process."""
    got = run_child(PEER_CHILD, module, emu.base_url, emu.api_key, emu.project_id,
                    emu.batch_id, str(workers))
    got["requests"] = _requests(emu)
    got["leaks"] = emu.stats.leaks
    return got


def _efficiency(requests: float, latency_ms: float, workers: int, seconds: float) -> float:
    """Share of the ideal: (requests x latency / workers) / wall time."""
    return (requests * latency_ms / 1000 / workers) / seconds


def _row(latency_ms: float, contender: str, workers: int, jobs: int,
         results: list[dict[str, Any]]) -> dict[str, Any]:
    """One fetch row from the runs of one contender (ratios are added by bench_fetch)."""
    seconds = statistics.median(r["seconds"] for r in results)
    return {
        "latency_ms": latency_ms, "contender": contender, "workers": workers, "jobs": jobs,
        "seconds": seconds, "jobs_per_s": jobs / seconds,
        "concurrency_efficiency": _efficiency(
            statistics.median(r["requests"] for r in results), latency_ms, workers, seconds),
        "key_leaks": sum(r["leaks"] for r in results),
    }


def bench_fetch(jobs: int, latency_ms: float, runs: int,
                reference_jobs: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fetch rows at one latency, and the incremental (re-pull) row of the default workers.

    Every row's ``ratio_vs_reference`` and ``ratio_vs_aiohttp_peer`` divide its jobs/s by
    the reference script's and the aiohttp peer's, measured in the same run.
    """
    ref_batch = bytes_only(generate_batch(reference_jobs, seed=1, kinds=["image"],
                                          completed_fraction=1.0))
    refs = [reference_pull(ref_batch, latency_ms) for _ in range(runs)]
    rows = [_row(latency_ms, "reference script (sequential)", 1, reference_jobs, refs)]
    settings = [DEFAULT_WORKERS]
    if latency_ms >= 100 and HIGH_LATENCY_WORKERS != DEFAULT_WORKERS:
        settings.append(HIGH_LATENCY_WORKERS)
    batch = bytes_only(generate_batch(jobs, seed=1, kinds=["image"], completed_fraction=1.0))
    completed = sum(job.raw_result is not None for job in batch.jobs)
    incremental: dict[str, Any] = {}
    with Emulator(batch, latency_ms=latency_ms) as emu:
        for module, label in PEERS.items():
            peers = []
            for _ in range(runs):
                emu.reset_stats()
                peers.append(peer_pull(emu, module, DEFAULT_WORKERS))
                if peers[-1]["files"] != completed:
                    raise RuntimeError(f"peer {module} wrote {peers[-1]['files']} files; the "
                                       f"batch has {completed} completed jobs")
            rows.append(_row(latency_ms, label.format(workers=DEFAULT_WORKERS),
                             DEFAULT_WORKERS, jobs, peers))
        for workers in settings:
            firsts, repulls = [], []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as registry:
                    emu.reset_stats()
                    firsts.append(library_pull(emu, registry, workers))
                    if workers == DEFAULT_WORKERS:
                        emu.reset_stats()
                        repulls.append(library_pull(emu, registry, workers))
            label = "default" if workers == DEFAULT_WORKERS else "high-latency setting"
            rows.append(_row(latency_ms, f"pull() workers={workers} ({label})", workers, jobs,
                             firsts))
            if repulls:
                first_s = rows[-1]["seconds"]
                repull_s = statistics.median(r["seconds"] for r in repulls)
                incremental = {
                    "latency_ms": latency_ms, "workers": workers, "jobs": jobs,
                    "first_pull_seconds": first_s, "repull_seconds": repull_s,
                    "repull_speedup": first_s / repull_s,
                    "first_pull_body_bytes": statistics.median(r["body_bytes"] for r in firsts),
                    "repull_body_bytes": statistics.median(r["body_bytes"] for r in repulls),
                    "repull_created_version": any(r["version"] != f["version"]
                                                  for r, f in zip(repulls, firsts, strict=True)),
                }
    ref_jps = rows[0]["jobs_per_s"]
    aiohttp_jps = next(r["jobs_per_s"] for r in rows if r["contender"].startswith("aiohttp"))
    for row in rows:
        row["ratio_vs_reference"] = row["jobs_per_s"] / ref_jps
        row["ratio_vs_aiohttp_peer"] = row["jobs_per_s"] / aiohttp_jps
    return rows, incremental


def bench_memory(sizes: list[int], annotations_per_job: int, runs: int) -> dict[str, Any]:
    """Peak RSS of pulls (latency 0, default workers) of batches of growing size.

    Peak RSS barely varies between runs (unlike times), and a 50,000-job pull takes
    minutes, so :func:`run` pulls each size once.
    """
    full = generate_bytes_only(max(sizes), seed=2, annotations_per_job=annotations_per_job)
    rows = []
    for n in sorted(sizes):
        batch = subset(full, n)
        expected = sum(job.n_annotations for job in batch.jobs)
        got = []
        with Emulator(batch) as emu:
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as registry:
                    emu.reset_stats()
                    got.append(library_pull(emu, registry, DEFAULT_WORKERS))
        for g in got:
            if g["annotations"] != expected or g["jobs"] != n:
                raise RuntimeError(f"pull of {n} jobs stored {g['jobs']} jobs and "
                                   f"{g['annotations']} annotations; expected {expected}")
        rows.append({"jobs": n, "annotations": expected,
                     "seconds": statistics.median(g["seconds"] for g in got),
                     "peak_rss_mb": statistics.median(g["peak_rss_mb"] for g in got)})
    del full
    gc.collect()
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["rss_vs_smallest"] = row["peak_rss_mb"] / base
    return {"workers": DEFAULT_WORKERS, "latency_ms": 0.0, "rows": rows,
            "growth_ratio": rows[-1]["peak_rss_mb"] / base}


def run(size: str = "full", runs: int | None = None, *, fetch: bool = True,
        memory: bool = True) -> dict[str, Any]:
    """Every figure of the fetch, incremental and memory sections."""
    runs = runs_for(size, runs)
    jobs = {"full": 1000, "quick": 200, "smoke": 40}[size]
    reference_jobs = REFERENCE_JOBS if size != "smoke" else dict.fromkeys(REFERENCE_JOBS, 4)
    result: dict[str, Any] = {}
    if fetch:
        rows: list[dict[str, Any]] = []
        incremental = []
        for latency, ref_jobs in reference_jobs.items():
            got, inc = bench_fetch(jobs, latency, runs, ref_jobs)
            rows += got
            incremental.append(inc)
        subsets = ", ".join(f"{n} at {lat:g} ms" for lat, n in reference_jobs.items())
        result["fetch"] = {"runs": runs, "default_workers": DEFAULT_WORKERS, "rows": rows,
                           "note": f"the reference script runs on a subset of the jobs "
                                   f"({subsets}); its jobs/s does not depend on the batch size"}
        result["incremental"] = {"runs": runs, "rows": incremental}
    if memory:
        sizes, per_job = {"full": ([5000, 20000, 50000], 50), "quick": ([500, 2000], 20),
                          "smoke": ([50, 200], 5)}[size]
        result["memory"] = {"runs": 1, **bench_memory(sizes, per_job, 1)}
    return result


def print_tables(result: dict[str, Any]) -> None:
    """Print the tables of the sections in ``result``."""
    if "fetch" in result:
        fetch = result["fetch"]
        print_table(f"Fetch: pull() vs the reference script (median of {fetch['runs']} runs; "
                    f"default workers={fetch['default_workers']})", [
            {"latency ms": r["latency_ms"], "contender": r["contender"], "jobs": r["jobs"],
             "seconds": r["seconds"], "jobs/s": r["jobs_per_s"],
             "vs reference": r["ratio_vs_reference"],
             "vs aiohttp peer": r["ratio_vs_aiohttp_peer"],
             "concurrency efficiency": r["concurrency_efficiency"],
             "key leaks": r["key_leaks"]} for r in fetch["rows"]])
        print(f"  note: {fetch['note']}")
    if "incremental" in result:
        print_table("Incremental: unchanged re-pull vs first pull", [
            {"latency ms": r["latency_ms"], "workers": r["workers"], "jobs": r["jobs"],
             "first s": r["first_pull_seconds"], "re-pull s": r["repull_seconds"],
             "speed-up": r["repull_speedup"], "first body bytes": r["first_pull_body_bytes"],
             "re-pull body bytes": r["repull_body_bytes"]}
            for r in result["incremental"]["rows"]])
    if "memory" in result:
        mem = result["memory"]
        print_table(f"Memory: peak RSS of a pull as the batch grows (latency 0, workers="
                    f"{mem['workers']}; growth largest/smallest {mem['growth_ratio']:.2f}x)", [
            {"jobs": r["jobs"], "annotations": r["annotations"], "seconds": r["seconds"],
             "peak RSS MB": r["peak_rss_mb"], "vs smallest": r["rss_vs_smallest"]}
            for r in mem["rows"]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, "small sizes, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory section")
    parser.add_argument("--memory-only", action="store_true", help="only the memory section")
    args = parser.parse_args(argv)
    result = run(size_of(args), args.runs, fetch=not args.memory_only, memory=not args.no_memory)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)
    return result


if __name__ == "__main__":
    main()
