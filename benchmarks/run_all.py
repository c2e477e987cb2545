"""Run every benchmark and print one combined table of figures and ratios.

Sections (each also runs alone as ``python benchmarks/bench_<name>.py``):

1. fetch — the reference script, a requests + threads peer and an aiohttp peer vs
   pull() at 20 ms and 100 ms latency (bench_pull, benchmarks/peers);
2. incremental — an unchanged re-pull vs the first pull (bench_pull);
3. normalize — annotations/s vs json.loads + pandas.json_normalize (bench_normalize);
4. memory — peak RSS of pulls of growing batches (bench_pull);
5. load — pds.load() + ds.annotations vs reading per-job JSON files (bench_load);
6. scaling — pull() jobs/s as workers grows at 50 ms latency (bench_scaling);
7. masks — a pull of segmentation jobs with 1024×768 PNG masks vs masks=False (bench_masks);
8. startup — ``--help``, ``--version``, ``list``, ``tag``, ``show`` and ``import
   playment_datasets`` vs ``python -c pass`` (bench_startup);
9. cli — ``playment-datasets pull`` of 300 jobs at 20 ms, a fresh process, vs the reference
   script and the aiohttp peer on the same jobs (bench_cli);
10. bulk — pull() of 20,000 jobs × 50 annotations vs the aiohttp peer (bench_bulk).

Every figure is a median of 3 runs (1 with ``--quick`` or ``--smoke``); every ratio is against a
baseline measured in the same run. The machines are shared: compare ratios, not
absolute figures, across runs.

Usage:
    python benchmarks/run_all.py             # full run (many minutes)
    python benchmarks/run_all.py --quick     # small sizes, one run each
    python benchmarks/run_all.py --smoke     # the smallest sizes: checks that all runs
    python benchmarks/run_all.py --json      # one JSON document with every figure
    python benchmarks/run_all.py --only fetch,masks   # some sections only
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (  # noqa: E402
    bench_bulk,
    bench_cli,
    bench_load,
    bench_masks,
    bench_normalize,
    bench_pull,
    bench_scaling,
    bench_startup,
)
from benchmarks._common import add_size_arguments, print_table, runs_for, size_of  # noqa: E402

#: Section names for ``--only`` (fetch includes the incremental re-pull).
SECTIONS = ("fetch", "normalize", "memory", "load", "scaling", "masks", "startup", "cli",
            "bulk")


def run(size: str = "full", runs: int | None = None,
        only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    """Every section's figures (or those of ``only``), plus the combined summary rows."""
    started = time.perf_counter()
    result: dict[str, Any] = {"size": size, "runs": runs_for(size, runs),
                              "machine": {"cpus": os.cpu_count(),
                                          "python": platform.python_version()}}
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        got = fn()
        seconds[name] = time.perf_counter() - t0
        return got

    if "fetch" in only:
        pulled = timed("fetch+incremental", lambda: bench_pull.run(size, runs, memory=False))
        result["fetch"], result["incremental"] = pulled["fetch"], pulled["incremental"]
    if "normalize" in only:
        result["normalize"] = timed("normalize", lambda: bench_normalize.run(size, runs))
    if "memory" in only:
        result["memory"] = timed(
            "memory", lambda: bench_pull.run(size, runs, fetch=False))["memory"]
    if "load" in only:
        result["load"] = timed("load", lambda: bench_load.run(size, runs))
    if "scaling" in only:
        result["scaling"] = timed("scaling", lambda: bench_scaling.run(size, runs))
    if "masks" in only:
        result["masks"] = timed("masks", lambda: bench_masks.run(size, runs))
    if "startup" in only:
        result["startup"] = timed("startup", lambda: bench_startup.run(size, runs))
    if "cli" in only:
        result["cli"] = timed("cli", lambda: bench_cli.run(size, runs))
    if "bulk" in only:  # one run unless --runs says otherwise: it takes minutes
        result["bulk"] = timed("bulk", lambda: bench_bulk.run(size, runs))
    result["summary"] = summary(result)
    result["section_seconds"] = seconds
    result["total_seconds"] = time.perf_counter() - started
    return result


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline figure: section, figure, value, baseline, ratio."""
    rows: list[dict[str, Any]] = []

    def add(section: str, figure: str, value: float, baseline: float | None = None,
            ratio: float | None = None) -> None:
        rows.append({"section": section, "figure": figure, "value": value,
                     "baseline": baseline, "ratio": ratio})

    for r in result.get("fetch", {}).get("rows", []):
        at = f"@{r['latency_ms']:g} ms"
        if r["contender"].startswith("reference"):
            ref = r["jobs_per_s"]
            add("fetch", f"reference jobs/s {at} ({r['jobs']} jobs)", ref)
        elif "(peer)" in r["contender"]:
            add("fetch", f"{r['contender']} jobs/s {at}", r["jobs_per_s"], ref,
                r["ratio_vs_reference"])
            if r["contender"].startswith("aiohttp"):
                peer = r["jobs_per_s"]
        else:
            add("fetch", f"pull jobs/s {at} workers={r['workers']}",
                r["jobs_per_s"], ref, r["ratio_vs_reference"])
            add("fetch", f"pull vs the aiohttp peer {at} workers={r['workers']}",
                r["jobs_per_s"], peer, r["ratio_vs_aiohttp_peer"])
            add("fetch", f"concurrency efficiency {at} workers={r['workers']}",
                r["concurrency_efficiency"])
    for r in result.get("incremental", {}).get("rows", []):
        add("incremental", f"re-pull s @{r['latency_ms']:g} ms (baseline: first pull)",
            r["repull_seconds"], r["first_pull_seconds"], r["repull_speedup"])
        add("incremental", f"re-pull body bytes @{r['latency_ms']:g} ms (baseline: first)",
            r["repull_body_bytes"], r["first_pull_body_bytes"])
    if n := result.get("normalize"):
        add("normalize", "BatchNormalizer annotations/s", n["batch_normalizer_annotations_per_s"],
            n["baseline_annotations_per_s"], n["batch_speedup"])
        add("normalize", "normalize_result annotations/s", n["normalize_annotations_per_s"],
            n["baseline_annotations_per_s"], n["speedup"])
        add("normalize", "json.loads share of BatchNormalizer time",
            n["json_loads_share_of_batch_normalizer"])
    if mem := result.get("memory"):
        for r in mem["rows"]:
            add("memory", f"peak RSS MB, {r['jobs']:,} jobs", r["peak_rss_mb"],
                mem["rows"][0]["peak_rss_mb"], r["rss_vs_smallest"])
        add("memory", "growth largest/smallest", mem["growth_ratio"])
    if ld := result.get("load"):
        add("load", f"load + annotations s, {ld['annotations']:,} annotations",
            ld["load_seconds"], ld["baseline_seconds"], ld["speedup"])
        add("load", "load under 1 s (1 = yes)", 1.0 if ld["load_under_1s"] else 0.0)
    for r in result.get("scaling", {}).get("rows", []):
        add("scaling", f"jobs/s workers={r['workers']} (baseline: latency bound)",
            r["jobs_per_s"], r["latency_bound_jobs_per_s"], r["share_of_bound"])
    for r in result.get("masks", {}).get("rows", []):
        add("masks", f"pull s with masks @{r['latency_ms']:g} ms, {r['process']} process "
                     "(baseline: masks=False)",
            r["seconds_with_masks"], r["seconds_without_masks"], r["ratio"])
    for r in result.get("startup", {}).get("rows", [])[1:]:
        add("startup", f"{r['command']} s (ratio: × python -c pass)", r["median_seconds"],
            result["startup"]["baseline_seconds"], r["ratio_vs_python"])
    if cli := result.get("cli"):
        at = f"{cli['jobs']} jobs @{cli['latency_ms']:g} ms"
        add("cli", f"CLI pull s, {at} (baseline: reference script)", cli["cli_seconds"],
            cli["reference_seconds"], cli["speedup_vs_reference"])
        add("cli", f"CLI pull s, {at} (baseline: aiohttp peer)", cli["cli_seconds"],
            cli["peer_seconds"], cli["speedup_vs_peer"])
        add("cli", f"CLI pull s outside listing + fetching, {at}", cli["cli_other_seconds"])
    if bulk := result.get("bulk"):
        add("bulk", f"pull s, {bulk['jobs']:,} jobs x {bulk['annotations_per_job']} annotations "
                    "(baseline: aiohttp peer)",
            bulk["pull_seconds"], bulk["peer_seconds"], 1 / bulk["pull_over_peer"])
        add("bulk", "pull annotations/s, same run", bulk["pull_annotations_per_s"])
    return rows


def print_all(result: dict[str, Any]) -> None:
    """Print every section's table, then the combined table."""
    if "fetch" in result:
        bench_pull.print_tables({"fetch": result["fetch"], "incremental": result["incremental"]})
    if "normalize" in result:
        bench_normalize.print_tables(result["normalize"])
    if "memory" in result:
        bench_pull.print_tables({"memory": result["memory"]})
    for name, module in (("load", bench_load), ("scaling", bench_scaling),
                         ("masks", bench_masks), ("startup", bench_startup),
                         ("cli", bench_cli), ("bulk", bench_bulk)):
        if name in result:
            module.print_tables(result[name])
    size = "" if result["size"] == "full" else f"{result['size']}, "
    print_table(f"All benchmarks ({size}median of "
                f"{result['runs']} run(s); ratio = value / baseline, or baseline / value for "
                f"times; {result['total_seconds']:.0f} s in all)", result["summary"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, "small sizes, one run each")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--only", type=_sections, default=SECTIONS, metavar="S[,S…]",
                        help=f"run only these sections ({', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    result = run(size_of(args), args.runs, args.only)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_all(result)
    return result


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected section names from {', '.join(SECTIONS)}, got {text!r}")
    return names


if __name__ == "__main__":
    main()
