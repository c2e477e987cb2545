"""Benchmark: load a committed version vs reading the reference script's JSON files.

A version of 1,000,000 annotations (``--quick``: 100,000) is built without HTTP: jobs
are generated, each result is written as ``<job_id>.json`` the way the reference script
writes it (``json.dump`` of the result JSON), and the same files are normalized through
BatchNormalizer into a registry staging area and committed. The build is not timed:
this benchmark measures loading.

Each timed run is a fresh child process (no in-process cache; the OS page cache stays
warm): ``pds.load(batch_id, registry=...)`` plus reading ``ds.annotations`` into pandas,
against the baseline of reading the per-job JSON files into one annotations frame
(``json.loads`` + ``pandas.json_normalize``, the baseline of ``bench_normalize.py``).

Usage:
    python benchmarks/bench_load.py            # 1,000,000 annotations, 3 runs
    python benchmarks/bench_load.py --quick    # 100,000 annotations, 1 run
    python benchmarks/bench_load.py --json     # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_table, run_child, runs_for, section_main  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402
from playment_datasets.normalize import BatchNormalizer  # noqa: E402
from playment_datasets.pull.orchestrate import _ROWS_PER_WRITE  # noqa: E402
from playment_datasets.registry.registry import Registry  # noqa: E402

ANNOTATIONS_PER_JOB = 50

LOAD_CHILD = """
import time
import playment_datasets as pds
start = time.perf_counter()
ds = pds.load(sys.argv[1], registry=sys.argv[2])
frame = ds.annotations
seconds = time.perf_counter() - start
_report(seconds=seconds, rows=len(frame), columns=len(frame.columns))
"""

BASELINE_CHILD = """
import os, time
import pandas as pd
from benchmarks.bench_normalize import baseline
folder = sys.argv[1]
start = time.perf_counter()
frames = []
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
        frames.append(baseline(f.read(), name[:-len(".json")]))
frame = pd.concat(frames, ignore_index=True)
seconds = time.perf_counter() - start
_report(seconds=seconds, rows=len(frame), columns=len(frame.columns))
"""


def build(root: Path, annotations: int, *, chunk: int = 1000, seed: int = 5) -> dict[str, Any]:
    """Write the JSON files under ``root/files`` and commit a version into ``root/registry``.

    Returns the batch id, the files folder, the registry path and the counts.
    """
    files = root / "files"
    files.mkdir()
    registry = Registry(root / "registry")
    n_jobs = -(-annotations // ANNOTATIONS_PER_JOB)
    project_id = batch_id = None
    manifest: dict[str, dict[str, str | None]] = {}
    total = 0
    part = 0
    normalizer = BatchNormalizer()
    staging = writer = None
    try:
        while len(manifest) < n_jobs:
            batch = generate_batch(min(chunk, n_jobs - len(manifest)), seed=seed * 1000 + part,
                                   kinds=["image"], completed_fraction=1.0,
                                   project_id=project_id, batch_id=batch_id,
                                   annotations_per_job=ANNOTATIONS_PER_JOB)
            part += 1
            if staging is None:
                project_id, batch_id = batch.project_id, batch.batch_id
                staging = registry.open_staging(project_id, batch_id)
                writer = staging.writer()
            assert writer is not None
            for job in batch.jobs:
                if job.job_id in manifest:
                    continue
                path = files / f"{job.job_id}.json"
                # the bytes json.dump(result, outfile) writes, as the reference script
                # does, in one call (json.dump streams through the pure-Python encoder)
                path.write_text(json.dumps(job.result))
                raw = path.read_bytes()
                sha = registry.put_object(raw)  # a commit checks its objects are stored
                normalizer.add(raw, {"job_id": job.job_id, "status": job.status,
                                     "reference_id": job.reference_id,
                                     "project_id": project_id, "batch_id": batch_id,
                                     "result_sha256": sha})
                if normalizer.rows >= _ROWS_PER_WRITE:
                    writer.write(normalizer.flush())
                manifest[job.job_id] = {"result_sha256": sha, "etag": None,
                                        "status": job.status}
                total += job.n_annotations
            del batch
            gc.collect()
        assert staging is not None and writer is not None
        writer.write(normalizer.flush())
        result = staging.commit(jobs=manifest, source={"base_url": "file://benchmark"})
    finally:
        if staging is not None:
            staging.close()
    return {"batch_id": str(batch_id), "files": str(files), "registry": str(registry.root),
            "jobs": len(manifest), "annotations": total, "version": result.version}


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Every figure of the load section."""
    runs = runs_for(size, runs)
    target = {"full": 1_000_000, "quick": 100_000, "smoke": 5_000}[size]
    with tempfile.TemporaryDirectory() as tmp:
        built = build(Path(tmp), target)
        loads = [run_child(LOAD_CHILD, built["batch_id"], built["registry"])
                 for _ in range(runs)]
        bases = [run_child(BASELINE_CHILD, built["files"]) for _ in range(runs)]
    for got in loads + bases:
        if got["rows"] != built["annotations"]:
            raise RuntimeError(f"a reader found {got['rows']} annotations; the version holds "
                               f"{built['annotations']}")
    load_s = statistics.median(r["seconds"] for r in loads)
    base_s = statistics.median(r["seconds"] for r in bases)
    return {
        "runs": runs, "jobs": built["jobs"], "annotations": built["annotations"],
        "load_seconds": load_s, "baseline_seconds": base_s,
        "speedup": base_s / load_s, "load_under_1s": load_s < 1.0,
        "load_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in loads),
        "baseline_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in bases),
        "load_columns": loads[0]["columns"], "baseline_columns": bases[0]["columns"],
    }


def print_tables(report: dict[str, Any]) -> None:
    """Print the load section as a table."""
    print_table(
        f"Load: {report['annotations']:,} annotations in {report['jobs']:,} jobs, fresh "
        f"child process per run (median of {report['runs']} runs)", [
            {"reader": "pds.load() + ds.annotations", "seconds": report["load_seconds"],
             "vs baseline": report["speedup"], "columns": report["load_columns"],
             "peak RSS MB": report["load_peak_rss_mb"],
             "under 1 s": "yes" if report["load_under_1s"] else "no"},
            {"reader": "baseline: per-job JSON files, json.loads + json_normalize",
             "seconds": report["baseline_seconds"], "vs baseline": 1.0,
             "columns": report["baseline_columns"],
             "peak RSS MB": report["baseline_peak_rss_mb"], "under 1 s": ""},
        ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="100,000 annotations, one run")


if __name__ == "__main__":
    main()
