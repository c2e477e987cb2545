"""Scenario 2: the API goes down mid-pull for longer than the retry budget."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from reliability_helpers import SHORT_RETRY, do_pull

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.errors import PullError
from playment_datasets.registry.registry import Registry

API_KEY = "rel-outage-key-0b9e61d2"


def _down_after(emu: Emulator, storage_requests: int, stop: threading.Event) -> None:
    while not stop.is_set():
        if emu.stats.requests["storage"] >= storage_requests:
            emu.set_down(True)
            return
        time.sleep(0.002)


def test_outage_stops_with_a_resumable_error_and_the_rerun_fetches_only_the_rest(
    tmp_path: Path,
) -> None:
    batch = generate_batch(300, seed=5)
    completed = {job.job_id for job in batch.jobs if job.result_bytes is not None}
    with Emulator(batch, api_key=API_KEY, page_size=50, latency_ms=3) as emu:
        reference = do_pull(emu, tmp_path / "reference", workers=8).manifest["content_id"]

        root = tmp_path / "registry"
        emu.reset_stats()
        stop = threading.Event()
        watcher = threading.Thread(target=_down_after, args=(emu, 100, stop))
        watcher.start()
        try:
            with pytest.raises(PullError) as info:
                do_pull(emu, root, workers=8, retry=SHORT_RETRY)
        finally:
            stop.set()
            watcher.join()
        message = str(info.value)
        assert emu.stats.faults["down"] > 0
        assert "run the same pull again to resume" in message
        assert API_KEY not in message and API_KEY not in repr(info.value)

        registry = Registry(root)
        assert registry.versions(emu.batch_id) == []  # nothing partial is visible
        assert registry.verify().ok
        with registry.open_staging(emu.project_id, emu.batch_id) as staging:
            journal = staging.journal()
        stored = {job_id for job_id, entry in journal.items() if entry.error is None}
        found = re.search(r"(\d+) of the (\d+) jobs listed so far are stored", message)
        assert found, message
        assert int(found.group(1)) == len(stored)
        assert len(stored) <= int(found.group(2)) <= len(batch.jobs)
        assert 0 < len(stored) < len(batch.jobs)

        emu.set_down(False)
        emu.reset_stats()
        ds = do_pull(emu, root, workers=8)
        stats = emu.stats
    assert ds.manifest["content_id"] == reference
    assert len(ds.errors) == 0 and ds.version == 1
    # Nothing stored is downloaded (or even asked about) again: the results and masks of
    # the jobs not stored, and the masks whose fetch failed in the outage, are.
    unstored_masks = sum(len(job.truth.masks) for job in batch.jobs
                         if job.job_id in completed - stored)
    failed_masks = sum(1 for job_id in stored for m in journal[job_id].extra.get("masks") or []
                       if not m["sha256"])
    assert stats.requests["storage"] == len(completed - stored) + unstored_masks + failed_masks
    assert stats.requests["job"] == len(batch.jobs) - len(stored)
    assert ds.manifest["extra"]["pull"]["resumed"] == len(stored)
