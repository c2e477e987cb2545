"""Raw objects are written without an fsync and synced before each journal fsync. A CLI
pull SIGKILLed mid-fetch, then left as a power cut could leave it (the last journal lines
past the durable mark, their objects torn), resumes fetching exactly the jobs whose
stored result is not intact. Two pulls of different batches write one registry at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import bodies, cli_pull, kill_when, report

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry

#: Journal lines the killed run writes before its SIGKILL.
KILL_AT_LINES = 300
#: Journaled results the simulated power cut tears (the last ones journaled).
TORN = 7


def _journal(root: Path, emu: Emulator) -> Path:
    return root / "staging" / emu.project_id / emu.batch_id / "journal.jsonl"


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_sigkill_then_torn_objects_refetches_only_the_torn_and_the_unjournaled(
    tmp_path: Path,
) -> None:
    batch = generate_batch(900, seed=41)
    results = sum(1 for job in batch.jobs if job.result_bytes is not None)
    root, log = tmp_path / "registry", tmp_path / "pull.log"
    with Emulator(batch, page_size=100, latency_ms=15) as emu:
        journal = _journal(root, emu)
        proc = cli_pull(emu, root, log, "--no-masks")
        assert kill_when(proc, lambda: _lines(journal) >= KILL_AT_LINES), log.read_text()

        # Read the journal from outside, as a test of the files left behind.
        records = [json.loads(line) for line in journal.read_bytes().splitlines()]
        stored = {r["job_id"]: r["result_sha256"] for r in records
                  if r.get("error") is None and r.get("result_sha256")}
        # Tear only bodies no other job of the batch has, so each torn object is one job.
        by_job = {job.job_id: job.result_bytes for job in batch.jobs}
        shas = [hashlib.sha256(b).hexdigest() for b in by_job.values() if b is not None]
        unique = {sha for sha in shas if shas.count(sha) == 1}
        torn = [r for r in records if r["job_id"] in stored
                and r["result_sha256"] in unique][-TORN:]
        assert len(torn) == TORN
        # A power cut before the last sync: the durable mark is older than these lines
        # and their objects never reached the disk whole.
        raw = journal.read_bytes()
        mark = raw.index(json.dumps(torn[0], ensure_ascii=False,
                                    separators=(",", ":")).encode())
        (journal.parent / "journal.synced").write_bytes(f"{mark:023d}\n".encode())
        for r in torn:
            sha = r["result_sha256"]
            obj = root / "objects" / sha[:2] / sha[2:]
            obj.write_bytes(obj.read_bytes()[: obj.stat().st_size // 2])
        intact = len(stored) - TORN

        emu.reset_stats()
        proc = cli_pull(emu, root, log, "--no-masks")
        assert proc.wait(timeout=180) == 0, log.read_text()
        served = bodies(emu)
    report(f"killed at {len(records)} journal lines ({len(stored)} stored results), "
           f"{TORN} torn; the resume downloaded {served} of {results} result bodies")
    # Every result but the intact journaled ones is downloaded once: the torn, the ones
    # in flight at the kill, and the ones not reached yet. None journaled and intact.
    assert served == results - intact
    reg = Registry(root)
    assert reg.verify().ok
    ds = reg.load(batch.batch_id)
    assert len(ds.jobs) == len(batch.jobs)
    for r in torn:
        assert reg.get_object(r["result_sha256"]) == by_job[r["job_id"]]


@pytest.mark.slow
def test_two_processes_pull_different_batches_into_one_registry(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    batches = [generate_batch(300, seed=51), generate_batch(300, seed=52)]
    assert batches[0].batch_id != batches[1].batch_id
    with Emulator(batches[0], latency_ms=5) as one, Emulator(batches[1], latency_ms=5) as two:
        procs = [cli_pull(emu, root, tmp_path / f"pull{i}.log", "--no-masks")
                 for i, emu in enumerate((one, two))]
        codes = [proc.wait(timeout=180) for proc in procs]
    assert codes == [0, 0], [(tmp_path / f"pull{i}.log").read_text() for i in range(2)]
    reg = Registry(root)  # a reader in this process sees what both wrote
    assert reg.verify().ok
    for batch in batches:
        ds = reg.load(batch.batch_id)
        assert len(ds.jobs) == len(batch.jobs)
        for job in batch.jobs:
            sha = ds.manifest["jobs"][job.job_id]["result_sha256"]
            if job.result_bytes is not None:
                assert reg.get_object(sha) == job.result_bytes
