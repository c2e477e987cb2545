"""Benchmark normalize_result against a json.loads + pandas.json_normalize baseline.

The baseline builds what most hand-written loaders build: one row per annotation with
its bounding box (json.loads, pandas.json_normalize of the shape lists / trackers,
explode of the per-frame maps, min/max of the vertices). normalize_result builds every
table (annotations, points, edges, attributes, frames…) with full validation.

The ratio depends on job size: pandas' per-call overhead dominates the baseline for
small jobs, so the speed-up shrinks as jobs grow (see ``--per-job``).

Usage:
    python benchmarks/bench_normalize.py            # >= 200,000 annotations
    python benchmarks/bench_normalize.py --quick    # a small run
    python benchmarks/bench_normalize.py --json     # machine-readable output
    python benchmarks/bench_normalize.py --per-job 40   # bigger jobs
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playment_datasets.emulator.generator import generate_batch  # noqa: E402
from playment_datasets.normalize import normalize_result  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about 20k rows)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--per-job", type=int, default=8,
                        help="annotations per job (default 8, the generator's default)")
    args = parser.parse_args(argv)

    target = 20_000 if args.quick else 200_000
    per_job = args.per_job
    n_jobs = 1
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
    records = [{"job_id": jid, "status": "completed"} for jid, _ in jobs]

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

    t_norm, rows_norm = _time(run_normalize, args.repeat)
    t_base, rows_base = _time(run_baseline, args.repeat)
    t_loads, _ = _time(run_loads, args.repeat)
    if rows_norm != n_annotations or rows_base != n_annotations:
        print(f"row counts differ: normalize {rows_norm}, baseline {rows_base}, "
              f"truth {n_annotations}", file=sys.stderr)
        return 1
    report = {
        "jobs": len(jobs),
        "annotations_per_job": per_job,
        "annotations": n_annotations,
        "repeat": args.repeat,
        "normalize_seconds": round(t_norm, 4),
        "baseline_seconds": round(t_base, 4),
        "normalize_annotations_per_s": round(n_annotations / t_norm),
        "baseline_annotations_per_s": round(n_annotations / t_base),
        "speedup": round(t_base / t_norm, 2),
        "json_loads_share_of_normalize": round(t_loads / t_norm, 3),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['jobs']:,} jobs of ~{per_job} annotations, {n_annotations:,} "
              f"annotations (image + video), median of {args.repeat} runs")
        print(f"{'method':<38}{'seconds':>10}{'annotations/s':>16}")
        print(f"{'normalize_result (all tables)':<38}{t_norm:>10.3f}"
              f"{report['normalize_annotations_per_s']:>16,}")
        print(f"{'json.loads + json_normalize + explode':<38}{t_base:>10.3f}"
              f"{report['baseline_annotations_per_s']:>16,}")
        print(f"speed-up: {report['speedup']}x; json.loads is "
              f"{report['json_loads_share_of_normalize']:.0%} of normalize time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
