"""Scenario 3: SIGKILL a pulling process while listing, fetching, writing Parquet and
committing; after every kill the registry verifies and shows no partial version, and the
final rerun has the content of an uninterrupted pull."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_helpers import check_visible_versions, child_env, do_pull

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.staging import CRASH_ENV

# With REL_KILL_AFTER_TABLE=k the child kills itself once k table files are flushed while
# the tables are being written (the others are open or not yet created).
CHILD = """
import os, signal, sys
import playment_datasets as pds
from playment_datasets.registry import staging

after = int(os.environ.get("REL_KILL_AFTER_TABLE", "0"))
if after:
    flushed = []
    original = staging.TableWriter._flush
    def _flush(self, name, *, final):
        original(self, name, final=final)
        if final:
            flushed.append(name)
            if len(flushed) >= after:
                os.kill(os.getpid(), signal.SIGKILL)
    staging.TableWriter._flush = _flush
pds.pull(sys.argv[1], sys.argv[2], base_url=sys.argv[3], registry=sys.argv[4],
         workers=4, progress=False)
"""


def _run_until(emu: Emulator, root: Path, log: Path, trigger: Callable[[], bool] | None,
               **env: str) -> tuple[int, dict[str, int]]:
    """Run one child pull; SIGKILL it when ``trigger()`` turns true. (returncode, requests)"""
    emu.reset_stats()
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, emu.project_id, emu.batch_id, emu.base_url, str(root)],
            env=child_env(emu.api_key, **env), stdout=subprocess.DEVNULL, stderr=err)
        seen: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if trigger is not None and trigger():
                seen = dict(emu.stats.requests)
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        returncode = proc.wait(timeout=60)
    return returncode, seen


@pytest.mark.slow
def test_sigkill_at_seeded_points_of_every_stage(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    batch = generate_batch(300, seed=9)
    with Emulator(batch, page_size=10, latency_ms=8) as emu:
        reference = do_pull(emu, tmp_path / "reference", workers=8).manifest["content_id"]
        root = tmp_path / "registry"
        log = tmp_path / "children.log"
        registry = Registry(root)
        killed: list[tuple[str, object]] = []

        def requests_of(kind: str, at_least: int) -> Callable[[], bool]:
            return lambda: emu.stats.requests[kind] >= at_least

        points: list[tuple[str, object, dict[str, str], Callable[[], bool] | None]] = []
        points += [("listing", k, {}, requests_of("listing", k))
                   for k in sorted(rng.sample(range(2, 28), 3))]
        points += [("fetching", k, {}, requests_of("storage", k))
                   for k in sorted(rng.sample(range(3, 40), 4))]
        points += [("writing parquet", k, {"REL_KILL_AFTER_TABLE": str(k)}, None)
                   for k in sorted(rng.sample(range(1, 9), 2))]
        points += [("committing", step, {CRASH_ENV: step}, None)
                   for step in ("before-rename", "after-rename", "after-index")]
        assert len(points) >= 10
        pages = -(-len(batch.jobs) // 10)

        for stage, where, env, trigger in points:
            # Listing runs interleaved with fetching, so a kill while listing has stored
            # jobs too: those kills get registries of their own, leaving the later
            # stages a batch that still has fetching to do.
            here = tmp_path / f"listing-{where}" if stage == "listing" else root
            registry = Registry(here)
            returncode, seen = _run_until(emu, here, log, trigger, **env)
            assert returncode == -signal.SIGKILL, (stage, where, returncode, log.read_text())
            if stage == "listing":  # listing runs interleaved with fetching: killed mid-way
                assert where <= seen["listing"] < pages, seen
            killed.append((stage, where))
            report = registry.verify()
            assert report.ok, (stage, where, str(report))
            visible = check_visible_versions(registry, emu.batch_id)
            if stage != "committing" or where != "after-index":
                assert visible == [], (stage, where)  # a partial version is never visible
            for version in visible:
                assert registry.manifest(emu.batch_id, version)["content_id"] == reference

        emu.reset_stats()
        final = do_pull(emu, root)
        resumed = do_pull(emu, tmp_path / f"listing-{points[0][1]}")
    assert [stage for stage, _ in killed].count("committing") == 3
    assert final.manifest["content_id"] == reference
    assert resumed.manifest["content_id"] == reference
    assert len(final.errors) == 0
    assert check_visible_versions(registry, emu.batch_id) == [final.version]
    assert registry.verify().ok
