"""``Registry.remove(batch, 1)`` while an incremental re-pull of that batch runs in a CLI
child process: the re-pull compared against v1 under its batch lock, finds at commit
time that v1 is gone, and writes the rows it had held back (from the stored raw
results) instead of committing a version without them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import cli_pull, report, wait_for
from reliability_helpers import check_visible_versions, do_pull

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry


@pytest.mark.slow
def test_remove_during_an_incremental_repull_commits_a_complete_version(tmp_path: Path) -> None:
    batch = generate_batch(600, seed=41)
    root, log = tmp_path / "registry", tmp_path / "child.log"
    registry = Registry(root)
    with Emulator(batch, page_size=100) as emu:
        v1 = do_pull(emu, root, workers=16)
        assert v1.version == 1 and v1.manifest["n_jobs"] == 600
        emu.set_latency(15)
        emu.reset_stats()
        proc = cli_pull(emu, root, log, "--workers", "8")  # ~2 s of unchanged results
        # 100 conditional requests answered: the re-pull holds the batch lock and has
        # compared against v1 (it sent v1's ETags).
        wait_for(lambda: emu.stats.not_modified >= 100 or proc.poll() is not None)
        registry.remove(batch.batch_id, 1)
        still_running = proc.poll() is None
        assert proc.wait(timeout=120) == 0, log.read_text()
        stats = emu.stats
    assert still_running, "the re-pull finished before the removal; slow it down"
    assert stats.not_modified == stats.requests["storage"]  # no body was downloaded again

    versions = check_visible_versions(registry, batch.batch_id)  # rows == manifest counts
    assert versions == [1]
    ds = registry.load(batch.batch_id)
    assert ds.manifest["created_at"] != v1.manifest["created_at"]  # a new v1
    assert ds.manifest["n_jobs"] == 600
    assert pq.read_metadata(ds.path / "jobs.parquet").num_rows == 600
    assert ds.manifest["content_id"] == v1.manifest["content_id"]
    assert ds.manifest["counts"] == v1.manifest["counts"]
    assert registry.verify().ok
    report(f"re-pull after remove: v{ds.version} with {ds.manifest['counts']['jobs']} jobs, "
          f"{ds.manifest['counts']['annotations']} annotations; "
          f"{stats.not_modified} results not modified, 0 downloaded")
