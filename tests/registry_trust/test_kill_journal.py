"""A CLI pull with the default 64 workers, SIGKILLed three times while fetching: each
kill costs at most the bodies that were in flight, and the final run's content equals a
clean pull's."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import bodies, cli_pull, kill_when, report, stored_in_journal
from reliability_helpers import do_pull

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry

#: The CLI's default ``--workers`` (DEFAULT_WORKERS); the CLI runs with its default.
DEFAULT_WORKERS = 64

#: Bodies each killed run is allowed to fetch before its SIGKILL (a different count each
#: time, so the kills fall at different points of the listing and of the fetch window).
KILL_AFTER = (260, 390, 320)


@pytest.mark.slow
def test_sigkill_while_fetching_refetches_only_what_was_in_flight(tmp_path: Path) -> None:
    batch = generate_batch(1200, seed=14)
    results = sum(1 for job in batch.jobs if job.result_bytes is not None)
    with Emulator(batch, page_size=100) as emu:
        # Without masks every storage request is a result body, so the count says how
        # many jobs were fetched again (mask resume: tests/test_pull_masks.py).
        reference = do_pull(emu, tmp_path / "reference", workers=16, masks=False)
        emu.set_latency(15)
        root, log = tmp_path / "registry", tmp_path / "children.log"
        served_total = distinct = lost_before = 0
        figures = []
        for after in KILL_AFTER:
            emu.reset_stats()
            proc = cli_pull(emu, root, log, "--no-masks")
            assert kill_when(proc, lambda a=after: bodies(emu) >= a), log.read_text()
            served = bodies(emu)
            served_total += served
            journaled = len(stored_in_journal(root, emu))
            # Each run fetches first what the last kill lost (it is at the front of what
            # is left), so the bodies seen for the first time are served - lost_before.
            distinct += served - lost_before
            lost = distinct - journaled  # served, but not journaled: fetched again later
            figures.append((served, journaled, lost))
            assert 0 <= lost <= DEFAULT_WORKERS, figures
            lost_before = lost
        emu.reset_stats()
        proc = cli_pull(emu, root, log, "--no-masks")
        assert proc.wait(timeout=180) == 0, log.read_text()
        final = bodies(emu)
        served_total += final

    ds = Registry(root).load(batch.batch_id)
    assert ds.version == 1
    assert ds.manifest["content_id"] == reference.manifest["content_id"]
    assert Registry(root).verify().ok
    refetched = served_total - results  # every body beyond one per result was a re-fetch
    for n, (served, journaled, lost) in enumerate(figures, 1):
        report(f"kill {n}: run served {served} bodies, journal holds {journaled}, "
              f"re-downloaded after the kill: {lost} (workers {DEFAULT_WORKERS})")
    report(f"final run served {final}; {served_total} bodies in all for {results} results "
          f"= {refetched} re-downloaded over {len(KILL_AFTER)} kills")
    assert refetched == sum(lost for _, _, lost in figures)
    assert refetched <= len(KILL_AFTER) * DEFAULT_WORKERS
