"""Benchmark normalize_result against a json.loads + pandas.json_normalize baseline.

The baseline builds what most hand-written loaders build: one row per annotation with
its bounding box (json.loads, pandas.json_normalize of the shape lists / trackers,
explode of the per-frame maps, min/max of the vertices). normalize_result builds every
table (annotations, points, edges, attributes, frames…) with full validation.

The ratio depends on job size: pandas' per-call overhead dominates the baseline for
small jobs, so the speed-up shrinks as jobs grow (see ``--per-job``). normalize is
measured twice: through BatchNormalizer as pull() uses it (jobs added in order, tables
built every 50,000 rows) and one job at a time with normalize_result. The share of
json.loads is the time of parsing every result alone over the normalize time.

Usage:
    python benchmarks/bench_normalize.py            # >= 200,000 annotations
    python benchmarks/bench_normalize.py --quick    # a small run
    python benchmarks/bench_normalize.py --smoke    # the smallest run (checks only)
    python benchmarks/bench_normalize.py --json     # machine-readable output
    python benchmarks/bench_normalize.py --per-job 40   # bigger jobs
    python benchmarks/bench_normalize.py --previous-tree ../old-checkout
        # also: BatchNormalizer of another checkout (e.g. main) on the same jobs,
        # each in a fresh process, alternating, CPU time of one core (fastest of three
        # passes per process, and the first pass)
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import gc
import json
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402
    ROOT,
    add_size_arguments,
    print_table,
    run_child,
    runs_for,
    size_of,
)
from playment_datasets.emulator.generator import generate_batch  # noqa: E402
from playment_datasets.normalize import BatchNormalizer, normalize_result  # noqa: E402
from playment_datasets.pull.orchestrate import _ROWS_PER_WRITE  # noqa: E402

_LISTS = ("rectangles", "polygons", "lines", "cuboids", "landmarks")


def _bbox(row: dict[str, Any]) -> tuple[float, float, float, float]:
    pts = row.get("coordinates")
    if not isinstance(pts, list):
        pts = list((row.get("points") or {}).values())
    xs = [p["x"] for p in pts]
    ys = [p["y"] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def baseline(raw: bytes, job_id: str) -> pd.DataFrame:
    """json.loads + pandas.json_normalize + explode: one row per annotation with bbox."""
    doc = json.loads(raw.decode("utf-8"))
    body = doc.get("data", doc)
    frames = []
    if "annotations" in body:
        for name in _LISTS:
            items = body["annotations"].get(name) or []
            if items:
                df = pd.json_normalize(items, max_level=0)
                df["type"] = name[:-1]
                frames.append(df)
    else:
        trackers = pd.json_normalize(body["annotation_data"]["annotations"], max_level=0)
        trackers["frames"] = trackers["frames"].map(lambda m: list(m.items()))
        per_frame = trackers.explode("frames", ignore_index=True)
        objs = pd.json_normalize(
            [{"frame_id": f, **o} for f, o in per_frame["frames"]], max_level=0
        )
        objs["track_id"] = per_frame["_id"].to_numpy()
        objs["type"] = per_frame["type"].to_numpy()
        frames.append(objs)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(df):
        boxes = [_bbox(r) for r in df.to_dict("records")]
        df[["x_min", "y_min", "x_max", "y_max"]] = pd.DataFrame(boxes, index=df.index)
    df["job_id"] = job_id
    return df


def _time(fn: Any, repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def make_jobs(target: int, per_job: int) -> tuple[list[tuple[str, bytes]], int]:
    """(job id, result bytes) of image and video jobs holding >= ``target`` annotations."""
    jobs: list[tuple[str, bytes]] = []
    n_annotations = 0
    seed = 0
    while n_annotations < target:  # generate until the target is met
        n_jobs = max(1, (target - n_annotations) // per_job + 1)
        batch = generate_batch(n_jobs, seed=seed, kinds=["image", "video"],
                               annotations_per_job=per_job, completed_fraction=1.0)
        for job in batch.jobs:
            jobs.append((job.job_id, job.result_bytes or b""))
            n_annotations += job.n_annotations
        seed += 1
        # drop the generated dict trees: kept alive, every full garbage collection
        # would walk millions of objects and slow both contenders alike
        del batch
    gc.collect()
    return jobs, n_annotations


# BatchNormalizer passes over pickled jobs, in a fresh process of a given checkout: the
# CPU time of the first pass and of the fastest of three (this code runs on shared
# machines, where another tenant can slow any one pass by a third).
_CHILD = """
import pickle
import playment_datasets
from playment_datasets.normalize import BatchNormalizer
from playment_datasets.pull.orchestrate import _ROWS_PER_WRITE
jobs = pickle.load(open(sys.argv[1], "rb"))
records = [{"job_id": jid, "status": "completed"} for jid, _ in jobs]
passes = []
for _ in range(3):
    started = time.process_time()
    normalizer = BatchNormalizer()
    rows = 0
    for (_, raw), rec in zip(jobs, records):
        normalizer.add(raw, rec)
        if normalizer.rows >= _ROWS_PER_WRITE:
            rows += normalizer.flush()["annotations"].num_rows
    rows += normalizer.flush()["annotations"].num_rows
    passes.append(time.process_time() - started)
_report(first_cpu_seconds=passes[0], cpu_seconds=min(passes), rows=rows,
        package=playment_datasets.__file__)
"""


def compare_trees(jobs: list[tuple[str, bytes]], n_annotations: int, previous: str,
                  repeat: int) -> dict[str, Any]:
    """BatchNormalizer of this checkout and of ``previous``, alternating in fresh processes.

    Each process reports its first pass and its fastest of three; the figures are the
    medians over ``max(repeat, 5)`` processes per checkout.
    """
    times: dict[str, list[float]] = {"this": [], "previous": []}
    firsts: dict[str, list[float]] = {"this": [], "previous": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "jobs.pickle")
        with open(path, "wb") as f:
            pickle.dump(jobs, f)
        for _ in range(max(repeat, 5)):
            for name, tree in (("this", str(ROOT)), ("previous", previous)):
                got = run_child(_CHILD, path, env={"PYTHONPATH": tree})
                if not Path(got["package"]).resolve().is_relative_to(Path(tree).resolve()):
                    raise RuntimeError(f"the child for {tree} imported {got['package']}")
                if got["rows"] != n_annotations:
                    raise RuntimeError(f"{tree}: BatchNormalizer made {got['rows']} annotation "
                                       f"rows, expected {n_annotations}")
                times[name].append(got["cpu_seconds"])
                firsts[name].append(got["first_cpu_seconds"])
    this, before = statistics.median(times["this"]), statistics.median(times["previous"])
    first, first_before = statistics.median(firsts["this"]), statistics.median(firsts["previous"])
    return {
        "previous_tree": previous,
        "this_cpu_annotations_per_s": round(n_annotations / this),
        "previous_cpu_annotations_per_s": round(n_annotations / before),
        "speedup_vs_previous": round(before / this, 2),
        "this_first_pass_annotations_per_s": round(n_annotations / first),
        "previous_first_pass_annotations_per_s": round(n_annotations / first_before),
        "first_pass_speedup_vs_previous": round(first_before / first, 2),
    }


def run(size: str = "full", repeat: int | None = None, per_job: int = 8,
        previous: str | None = None) -> dict[str, Any]:
    """Every figure of the normalize section (raises if a row count is wrong)."""
    repeat = runs_for(size, repeat)
    target = {"full": 200_000, "quick": 20_000, "smoke": 2_000}[size]
    jobs, n_annotations = make_jobs(target, per_job)
    versus = compare_trees(jobs, n_annotations, previous, repeat) if previous else {}
    records = [{"job_id": jid, "status": "completed"} for jid, _ in jobs]

    def run_batch() -> int:
        # as pull() uses it: add jobs in order, write a batch every _ROWS_PER_WRITE rows
        normalizer = BatchNormalizer()
        rows = 0
        for (_, raw), rec in zip(jobs, records, strict=True):
            normalizer.add(raw, rec)
            if normalizer.rows >= _ROWS_PER_WRITE:
                rows += normalizer.flush()["annotations"].num_rows
        return rows + normalizer.flush()["annotations"].num_rows

    def run_normalize() -> int:
        rows = 0
        for (_, raw), rec in zip(jobs, records, strict=True):
            rows += normalize_result(raw, rec)["annotations"].num_rows
        return rows

    def run_baseline() -> int:
        return sum(len(baseline(raw, jid)) for jid, raw in jobs)

    def run_loads() -> int:
        for _, raw in jobs:
            json.loads(raw.decode("utf-8"))
        return 0

    t_batch, rows_batch = _time(run_batch, repeat)
    t_norm, rows_norm = _time(run_normalize, repeat)
    t_base, rows_base = _time(run_baseline, repeat)
    t_loads, _ = _time(run_loads, repeat)
    if not rows_batch == rows_norm == rows_base == n_annotations:
        raise RuntimeError(f"row counts differ: BatchNormalizer {rows_batch}, normalize_result "
                           f"{rows_norm}, baseline {rows_base}, truth {n_annotations}")
    return {
        "jobs": len(jobs),
        "annotations_per_job": per_job,
        "annotations": n_annotations,
        "repeat": repeat,
        "flush_every_rows": _ROWS_PER_WRITE,
        "batch_normalizer_seconds": round(t_batch, 4),
        "normalize_seconds": round(t_norm, 4),
        "baseline_seconds": round(t_base, 4),
        "json_loads_seconds": round(t_loads, 4),
        "batch_normalizer_annotations_per_s": round(n_annotations / t_batch),
        "normalize_annotations_per_s": round(n_annotations / t_norm),
        "baseline_annotations_per_s": round(n_annotations / t_base),
        "batch_speedup": round(t_base / t_batch, 2),
        "speedup": round(t_base / t_norm, 2),
        "json_loads_share_of_batch_normalizer": round(t_loads / t_batch, 3),
        "json_loads_share_of_normalize": round(t_loads / t_norm, 3),
        **versus,
    }


def print_tables(report: dict[str, Any]) -> None:
    """Print the normalize section as a table."""
    n = report["annotations"]
    print_table(
        f"Normalize: {report['jobs']:,} jobs of ~{report['annotations_per_job']} annotations, "
        f"{n:,} annotations (image + video), median of {report['repeat']} runs", [
            {"method": f"BatchNormalizer, flush every {report['flush_every_rows']:,} rows "
                       "(as pull)",
             "seconds": report["batch_normalizer_seconds"],
             "annotations/s": report["batch_normalizer_annotations_per_s"],
             "vs baseline": report["batch_speedup"],
             "json.loads share": report["json_loads_share_of_batch_normalizer"]},
            {"method": "normalize_result, one job at a time",
             "seconds": report["normalize_seconds"],
             "annotations/s": report["normalize_annotations_per_s"],
             "vs baseline": report["speedup"],
             "json.loads share": report["json_loads_share_of_normalize"]},
            {"method": "baseline: json.loads + json_normalize + explode",
             "seconds": report["baseline_seconds"],
             "annotations/s": report["baseline_annotations_per_s"],
             "vs baseline": 1.0, "json.loads share": None},
        ])
    if "previous_tree" in report:
        print_table(
            f"BatchNormalizer vs {report['previous_tree']}: same jobs, fresh processes, "
            "alternating; CPU time of one core, median over processes of the fastest of "
            "three passes (and of the first pass)", [
                {"checkout": "this", "annotations/s": report["this_cpu_annotations_per_s"],
                 "vs previous": report["speedup_vs_previous"],
                 "first pass annotations/s": report["this_first_pass_annotations_per_s"],
                 "first pass vs previous": report["first_pass_speedup_vs_previous"]},
                {"checkout": report["previous_tree"],
                 "annotations/s": report["previous_cpu_annotations_per_s"], "vs previous": 1.0,
                 "first pass annotations/s": report["previous_first_pass_annotations_per_s"],
                 "first pass vs previous": 1.0},
            ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, "a small run (about 20k rows)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per method (median; default 3, 1 with --quick or --smoke)")
    parser.add_argument("--per-job", type=int, default=8,
                        help="annotations per job (default 8, the generator's default)")
    parser.add_argument("--previous-tree", default=None, metavar="PATH",
                        help="also time BatchNormalizer of the checkout at PATH on the same jobs")
    args = parser.parse_args(argv)
    try:
        report = run(size_of(args), args.repeat, args.per_job, args.previous_tree)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
