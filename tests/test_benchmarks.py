"""The benchmark suite runs end to end and every section reports its figures.

Nothing here asserts a speed or a ratio: the machines are shared and noisy. The test
checks that ``run_all.py --smoke --json`` (the smallest sizes, one run each) exits
cleanly and that every section produced positive numbers under the expected keys.
Its timeout only guards against a hang: a busy machine may take several times longer
than an idle one.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _positive(row: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = row[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_fetch_compares_the_reference_script_with_pull(report: dict[str, Any]) -> None:
    rows = report["fetch"]["rows"]
    assert {r["latency_ms"] for r in rows} == {20.0, 100.0}
    for latency in (20.0, 100.0):
        at = [r for r in rows if r["latency_ms"] == latency]
        assert sum(r["contender"].startswith("reference") for r in at) == 1
        assert sum("(peer)" in r["contender"] for r in at) == 2
        assert any(r["workers"] == report["fetch"]["default_workers"] and "default" in
                   r["contender"] for r in at)
    assert any(r["latency_ms"] == 100.0 and r["workers"] == 64 for r in rows)
    for r in rows:
        _positive(r, "jobs", "seconds", "jobs_per_s", "ratio_vs_reference",
                  "ratio_vs_aiohttp_peer", "concurrency_efficiency")
        if r["contender"].startswith("pull()"):
            assert r["key_leaks"] == 0
    assert "subset" in report["fetch"]["note"]


@pytest.mark.slow
def test_incremental_counts_the_bytes_of_both_pulls(report: dict[str, Any]) -> None:
    rows = report["incremental"]["rows"]
    assert rows
    for r in rows:
        _positive(r, "first_pull_seconds", "repull_seconds", "repull_speedup",
                  "first_pull_body_bytes")
        assert r["repull_body_bytes"] >= 0
        assert r["repull_created_version"] is False


@pytest.mark.slow
def test_normalize_measures_both_paths_and_the_baseline(report: dict[str, Any]) -> None:
    _positive(report["normalize"], "annotations", "batch_normalizer_annotations_per_s",
              "normalize_annotations_per_s", "baseline_annotations_per_s", "batch_speedup",
              "speedup", "json_loads_share_of_batch_normalizer",
              "json_loads_share_of_normalize")


@pytest.mark.slow
def test_memory_reports_peak_rss_per_size(report: dict[str, Any]) -> None:
    mem = report["memory"]
    assert len(mem["rows"]) >= 2
    assert [r["jobs"] for r in mem["rows"]] == sorted(r["jobs"] for r in mem["rows"])
    for r in mem["rows"]:
        _positive(r, "jobs", "annotations", "seconds", "peak_rss_mb", "rss_vs_smallest")
    _positive(mem, "growth_ratio")


@pytest.mark.slow
def test_load_compares_load_with_reading_json_files(report: dict[str, Any]) -> None:
    ld = report["load"]
    _positive(ld, "jobs", "annotations", "load_seconds", "baseline_seconds", "speedup",
              "load_peak_rss_mb", "baseline_peak_rss_mb")
    assert isinstance(ld["load_under_1s"], bool)


@pytest.mark.slow
def test_scaling_reports_every_point_with_its_bound(report: dict[str, Any]) -> None:
    rows = report["scaling"]["rows"]
    assert [r["workers"] for r in rows] == [1, 16, 64]
    for r in rows:
        _positive(r, "jobs", "seconds", "jobs_per_s", "latency_bound_jobs_per_s",
                  "share_of_bound")


@pytest.mark.slow
def test_masks_compares_pulls_with_and_without_masks(report: dict[str, Any]) -> None:
    masks = report["masks"]
    assert masks["mask_size"] == [1024, 768]
    assert [(r["latency_ms"], r["process"]) for r in masks["rows"]] == [
        (20.0, "fresh"), (20.0, "warm"), (100.0, "fresh"), (100.0, "warm")]
    for r in masks["rows"]:
        _positive(r, "jobs", "seconds_with_masks", "seconds_without_masks", "ratio",
                  "body_bytes_with_masks", "body_bytes_without_masks")
        assert r["masks"] == r["masks_decoded"] == r["jobs"]  # one mask per job, all decoded
        assert r["body_bytes_with_masks"] > r["body_bytes_without_masks"]


@pytest.mark.slow
def test_startup_times_every_light_command(report: dict[str, Any]) -> None:
    startup = report["startup"]
    rows = {r["command"]: r for r in startup["rows"]}
    for name in ("python -c pass (baseline)", "import playment_datasets",
                 "playment-datasets --help", "playment-datasets --version",
                 "playment-datasets list", "playment-datasets tag",
                 "playment-datasets show (reads Parquet)"):
        _positive(rows[name], "median_seconds", "min_seconds", "ratio_vs_python")
    _positive(startup, "baseline_seconds")
    for name in ("playment-datasets --help", "playment-datasets --version",
                 "playment-datasets list", "playment-datasets tag"):
        assert rows[name]["heavy_imported"] == "", rows[name]  # reads JSON only
    assert "pandas" not in rows["playment-datasets show (reads Parquet)"]["heavy_imported"]


@pytest.mark.slow
def test_cli_times_the_pull_command_against_the_reference_and_the_peer(
        report: dict[str, Any]) -> None:
    cli = report["cli"]
    _positive(cli, "jobs", "reference_seconds", "peer_seconds", "cli_seconds",
              "cli_pull_seconds", "speedup_vs_reference", "speedup_vs_peer")
    assert cli["cli_pull_seconds"] < cli["cli_seconds"]
    assert cli["key_leaks"]["cli"] == 0


@pytest.mark.slow
def test_bulk_compares_a_large_pull_with_the_peer(report: dict[str, Any]) -> None:
    bulk = report["bulk"]
    _positive(bulk, "jobs", "annotations", "peer_seconds", "pull_seconds", "pull_over_peer",
              "pull_annotations_per_s")
    assert bulk["annotations"] >= bulk["jobs"]


@pytest.mark.slow
def test_summary_has_a_row_for_every_section(report: dict[str, Any]) -> None:
    sections = {r["section"] for r in report["summary"]}
    assert sections == {"fetch", "incremental", "normalize", "memory", "load", "scaling",
                        "masks", "startup", "cli", "bulk"}
    for r in report["summary"]:
        assert isinstance(r["value"], (int, float)) and r["value"] >= 0, r
