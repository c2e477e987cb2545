"""gc while pulls run: files that vanish mid-scan are skipped, and the objects of a pull
that holds its staging lock are kept, journaled or not yet."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trust_registry_helpers import WORKTREE, child_env

from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_objects_stored_under_a_held_staging_lock_survive_gc(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    stale = reg.put_object(b'{"left": "over"}')
    _age(reg._objects.path(stale), 600)
    with reg.open_staging("p1", "b1"):
        _age(reg.root / "staging" / "p1" / "b1" / "lock", 60)  # the pull started 60 s ago
        fresh = reg.put_object(b'{"stored": "by the pull, not journaled yet"}')
        _age(reg._objects.path(fresh), 30)
        report = reg.gc(grace_seconds=0)
        assert report.objects_removed == [stale]  # older than the pull: garbage
        assert reg.has_object(fresh)
    assert reg.gc(grace_seconds=0).objects_removed == [fresh]  # the pull is gone


def test_objects_named_in_any_journal_line_survive_gc(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    kept = reg.put_object(b'{"a": 1}')
    _age(reg._objects.path(kept), 600)
    journal = reg.root / "staging" / "p1" / "b1" / "journal.jsonl"
    journal.parent.mkdir(parents=True)
    # a line of a shape gc does not know still keeps what it names
    journal.write_text(f'["odd", {{"masks": ["{kept}"]}}]\n', encoding="utf-8")
    assert reg.gc(grace_seconds=0).objects_removed == []
    assert reg.has_object(kept)


_PULL = ["-m", "playment_datasets", "pull", "--no-progress", "--json", "--workers", "8"]


@pytest.mark.slow
def test_gc_with_no_grace_during_a_real_pull(tmp_path: Path) -> None:
    """A CLI pull runs while gc(grace_seconds=0) is called again and again: no call
    raises, garbage is collected, and the pull commits a version that verifies."""
    root = tmp_path / "reg"
    reg = Registry(root)
    garbage = [reg.put_object(f'{{"garbage": {i}}}'.encode()) for i in range(20)]
    for sha in garbage:
        _age(reg._objects.path(sha), 3600)
    with Emulator(jobs=400, seed=41, latency_ms=15) as emu:
        proc = subprocess.Popen(
            [sys.executable, *_PULL, emu.project_id, emu.batch_id, "--registry", str(root),
             "--base-url", emu.base_url],
            cwd=str(WORKTREE), env=child_env(emu.api_key),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        calls, removed, failures = 0, set(), []
        while proc.poll() is None:
            try:
                removed |= set(reg.gc(grace_seconds=0).objects_removed)
            except Exception as exc:  # noqa: BLE001 - counted, then asserted to be none
                failures.append(repr(exc))
            calls += 1
        out, err = proc.communicate()
        served = emu.stats.requests["storage"]
    assert proc.returncode == 0, err.decode()
    assert failures == [], failures
    assert calls >= 5, calls  # gc really ran during the pull
    assert set(garbage) <= removed
    ds = reg.load(emu.batch_id)
    assert ds.counts["jobs"] == 400 and served >= 300
    report = reg.verify(emu.batch_id)
    assert report.ok, report
    sys.stderr.write(f"gc calls during the pull: {calls}, garbage removed: {len(removed)}, "
                     f"bodies served: {served}, verify: {report!r}\n")
