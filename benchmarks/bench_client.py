"""Benchmark: the request path alone — PlaymentClient fetching jobs, no normalizing.

Each job is what a pull worker asks for: the job record, the attachment redirect and
the signed storage URL (three requests). A child process fetches every job of a batch
with ``workers`` threads against the emulator (in this process) and reports wall time
and its own CPU time; CPU ms per job is the figure the transport controls. With
``--baseline-tree`` (another checkout of the library) both trees run alternately at
every latency and the ratios are this tree's over the baseline's.

Usage:
    python benchmarks/bench_client.py                              # this tree only
    python benchmarks/bench_client.py --baseline-tree /path/to/other/checkout
    python benchmarks/bench_client.py --smoke --json
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, add_size_arguments, print_table, run_child, size_of  # noqa: E402
from benchmarks.bench_pull import bytes_only  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402

CLIENT_CHILD = """
from concurrent.futures import ThreadPoolExecutor
from playment_datasets.api.client import PlaymentClient
base_url, key, project, batch, workers = sys.argv[1:6]
client = PlaymentClient(api_key=key, base_url=base_url, pool_size=int(workers))
ids = [job["id"] for job in client.iter_batch_jobs(project, batch)]

def fetch(job_id):
    record = client.get_job(project, job_id)
    if record.get("result"):
        client.fetch_result(record["result"])

start, cpu = time.perf_counter(), time.process_time()
with ThreadPoolExecutor(int(workers)) as pool:
    list(pool.map(fetch, ids))
_report(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu,
        jobs=len(ids))
"""


def measure(tree: str, emu: Emulator, workers: int) -> dict[str, Any]:
    """One child run of the client of ``tree`` against ``emu``."""
    return run_child(CLIENT_CHILD, emu.base_url, emu.api_key, emu.project_id, emu.batch_id,
                     str(workers), env={"PYTHONPATH": tree})


def run(size: str = "full", runs: int | None = None, *, baseline: str | None = None,
        workers: int = 64) -> dict[str, Any]:
    """Rows of jobs/s and CPU ms per job per latency and tree (medians of ``runs``)."""
    runs = runs or (5 if size == "full" else 1)
    jobs = {"full": 1000, "quick": 300, "smoke": 30}[size]
    latencies = [0.0, 20.0, 100.0] if size != "smoke" else [0.0]
    trees = {"this tree": str(ROOT)}
    if baseline:
        trees["baseline"] = str(Path(baseline).resolve())
    batch = bytes_only(generate_batch(jobs, seed=1, kinds=["image"], completed_fraction=1.0))
    rows = []
    for latency in latencies:
        got: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        with Emulator(batch, latency_ms=latency) as emu:
            for _ in range(runs):  # alternate, so that a busy moment hits both trees
                for name, tree in trees.items():
                    got[name].append(measure(tree, emu, workers))
            leaks = emu.stats.leaks
        for name, results in got.items():
            rows.append({
                "latency_ms": latency, "tree": name, "workers": workers, "jobs": jobs,
                "jobs_per_s": statistics.median(r["jobs"] / r["seconds"] for r in results),
                "cpu_ms_per_job": statistics.median(1000 * r["cpu_seconds"] / r["jobs"]
                                                    for r in results),
                "key_leaks": leaks,
            })
        if baseline:
            this, base = rows[-2], rows[-1]
            for row in (this, base):
                row["jobs_per_s_vs_baseline"] = row["jobs_per_s"] / base["jobs_per_s"]
                row["cpu_vs_baseline"] = row["cpu_ms_per_job"] / base["cpu_ms_per_job"]
    return {"runs": runs, "rows": rows}


def print_tables(result: dict[str, Any]) -> None:
    print_table(f"Client request path: get_job + fetch_result per job (median of "
                f"{result['runs']} runs)", result["rows"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, "300 jobs, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--workers", type=int, default=64, help="threads (default 64)")
    parser.add_argument("--baseline-tree", default=None,
                        help="another checkout of the library to compare with")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = run(size_of(args), args.runs, baseline=args.baseline_tree, workers=args.workers)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)
    return result


if __name__ == "__main__":
    main()
