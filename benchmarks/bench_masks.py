"""Benchmark: what fetching and decoding masks adds to a pull of segmentation jobs.

A batch of image segmentation jobs whose masks are 1024×768 RGBA PNGs is pulled with
masks (each mask fetched through the attachment redirect, stored, decoded into
segment statistics) and with ``masks=False``, alternately in the same run, each into
a fresh registry, in a child process; every figure is the median of the runs. The
ratio with / without is the figure to watch (target: at most 1.5).

Each pair is timed twice: in a fresh process, as a CLI pull runs (the timed pull
imports what it needs on first use, about the same cost with and without masks), and
after a warm-up pull of a small batch in the same process, as a second pull in a
notebook runs (only the work that grows with the batch is timed).

Both figures are measured at 20 ms and at 100 ms per request.

Usage:
    python benchmarks/bench_masks.py            # 200 jobs, 3 runs
    python benchmarks/bench_masks.py --quick    # 100 jobs, one run
    python benchmarks/bench_masks.py --json     # figures as JSON
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_table, run_child, runs_for, section_main  # noqa: E402
from benchmarks.bench_pull import bytes_only  # noqa: E402
from playment_datasets.emulator import (  # noqa: E402
    Emulator,
    GeneratedBatch,
    generate_batch,
)
from playment_datasets.pull.orchestrate import DEFAULT_WORKERS  # noqa: E402

MASK_SIZE = (1024, 768)
#: Latencies per request, as in bench_pull: a fast network and a realistic one.
LATENCIES_MS = (20.0, 100.0)
TARGET_RATIO = 1.5

PULL_CHILD = """
import tempfile, time
import playment_datasets as pds
if sys.argv[8]:  # the warm-up: a small batch pulled with masks, imports done
    with tempfile.TemporaryDirectory() as warm_registry:
        pds.pull(sys.argv[8], sys.argv[9], api_key=sys.argv[3], base_url=sys.argv[4],
                 registry=warm_registry, progress=False)
start = time.perf_counter()
ds = pds.pull(sys.argv[1], sys.argv[2], api_key=sys.argv[3], base_url=sys.argv[4],
              registry=sys.argv[5], workers=int(sys.argv[6]), progress=False,
              masks=sys.argv[7] == "1")
seconds = time.perf_counter() - start
stats = ds.pull_stats
_report(seconds=seconds, jobs=len(ds.jobs), masks_fetched=stats["masks_fetched"],
        mask_bytes=stats["mask_bytes_downloaded"],
        decoded=int((ds.masks["decode_status"] == "ok").sum()))
"""


def jobs_for(size: str) -> int:
    return {"full": 200, "quick": 100, "smoke": 6}[size]


def _pull(emu: Emulator, masks: bool, warm_up: GeneratedBatch | None = None) -> dict[str, Any]:
    warm = [warm_up.project_id, warm_up.batch_id] if warm_up else ["", ""]
    with tempfile.TemporaryDirectory() as registry:
        emu.reset_stats()
        got = run_child(PULL_CHILD, emu.project_id, emu.batch_id, emu.api_key, emu.base_url,
                        registry, str(DEFAULT_WORKERS), "1" if masks else "0", *warm)
    # the bytes of the timed pull: the warm-up downloads its whole small batch each time
    got["body_bytes"] = emu.stats.bytes_served - (_served_bytes(warm_up) if warm_up else 0)
    return got


def _served_bytes(batch: GeneratedBatch) -> int:
    """Body bytes a full pull with masks downloads: every result and every mask."""
    return sum(len(job.result_bytes or b"") + sum(len(b) for b in job.assets.values())
               for job in batch.jobs)


def run(size: str = "full", runs: int | None = None) -> dict[str, Any]:
    """Pull time with and without masks, and their ratio, at each latency."""
    runs = runs_for(size, runs)
    n = jobs_for(size)
    batch = bytes_only(generate_batch(n, seed=5, kinds=["image_segmentation"],
                                      completed_fraction=1.0, mask_size=MASK_SIZE))
    mask_bytes = sum(len(b) for job in batch.jobs for b in job.assets.values())
    warm_up = generate_batch(4, seed=6, kinds=["image_segmentation"], completed_fraction=1.0,
                             mask_size=MASK_SIZE)
    rows = []
    for latency in LATENCIES_MS:
        for process in ("fresh", "warm"):
            with_masks, without = [], []
            with Emulator(batch, latency_ms=latency) as emu:
                emu.add_batch(warm_up)
                warm = warm_up if process == "warm" else None
                for _ in range(runs):  # alternate, so drift on a shared machine hits both alike
                    with_masks.append(_pull(emu, True, warm))
                    without.append(_pull(emu, False, warm))
            seconds_with = statistics.median(r["seconds"] for r in with_masks)
            seconds_without = statistics.median(r["seconds"] for r in without)
            rows.append({
                "latency_ms": latency, "process": process, "jobs": n,
                "masks": with_masks[-1]["masks_fetched"],
                "masks_decoded": with_masks[-1]["decoded"],
                "seconds_with_masks": seconds_with, "seconds_without_masks": seconds_without,
                "ratio": seconds_with / seconds_without,
                "body_bytes_with_masks": with_masks[-1]["body_bytes"],
                "body_bytes_without_masks": without[-1]["body_bytes"],
            })
    return {"jobs": n, "mask_size": list(MASK_SIZE), "mask_bytes": mask_bytes,
            "workers": DEFAULT_WORKERS, "runs": runs, "target_ratio": TARGET_RATIO,
            "rows": rows}


def print_tables(report: dict[str, Any]) -> None:
    """Print the masks section as a table."""
    w, h = report["mask_size"]
    title = (f"Masks: pull of {report['jobs']} image segmentation jobs with {w}x{h} PNG "
             f"masks, workers={report['workers']} (median of {report['runs']} runs; ratio = "
             f"with / without masks, target <= {report['target_ratio']:g})")
    columns = {"latency ms": "latency_ms", "process": "process",
               "masks=False s": "seconds_without_masks",
               "with masks s": "seconds_with_masks", "ratio": "ratio",
               "masks decoded": "masks_decoded", "body bytes with masks": "body_bytes_with_masks",
               "body bytes without": "body_bytes_without_masks"}
    print_table(title, [{head: r[key] for head, key in columns.items()}
                        for r in report["rows"]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main(argv, __doc__.splitlines()[0], run, print_tables,
                        quick_help="100 jobs, one run")


if __name__ == "__main__":
    main()
