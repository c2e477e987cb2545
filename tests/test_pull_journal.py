"""The staging journal: written by the workers as each result is stored, extensible,
and robust to lines of any shape edited into it between runs."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

import playment_datasets as pds
from playment_datasets.api.client import RetryPolicy
from playment_datasets.emulator import Emulator
from playment_datasets.errors import PullError
from playment_datasets.registry.registry import Registry

SHA = "ab" * 32


def do_pull(emu: Emulator, registry: Path, **options):
    options.setdefault("progress", False)
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, **options)


def test_unknown_fields_of_a_journal_line_are_kept(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    masks = [{"url": "https://x/m.png", "frame_id": "f1", "kind": "segment",
              "sha256": SHA, "etag": '"e"'}]
    with reg.open_staging("p1", "b1") as st:
        st.record("j1", {"id": "j1"}, SHA, '"e1"', extra={"masks": masks, "job_id": "forged"})
    with reg.open_staging("p1", "b1") as st:
        entry = st.journal()["j1"]
    assert entry.extra == {"masks": masks}  # known fields cannot be overridden by extra
    assert (entry.result_sha256, entry.etag, entry.job) == (SHA, '"e1"', {"id": "j1"})


def test_records_from_many_threads_are_whole_lines(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.open_staging("p1", "b1") as st:
        def write(t: int) -> None:
            for i in range(200):
                st.record(f"t{t}-{i}", {"pad": "x" * 3000}, SHA, None)
        threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        lines = st.journal_path.read_bytes().splitlines()
        assert len(st.journal()) == 1600
    assert all(json.loads(line)["job"]["pad"] == "x" * 3000 for line in lines)


#: Lines a hand edit, another tool or a disk fault may leave in a journal.
BAD_LINES = [
    b"not json at all",
    b"[1, 2, 3]",
    b'"a string"',
    b"42",
    b"null",
    b'{"job": {}}',
    b'{"job_id": 17, "result_sha256": null}',
    b'{"job_id": "", "result_sha256": null}',
    b'{"job_id": "JOB", "job": "a string", "result_sha256": null}',
    b'{"job_id": "JOB", "job": {}, "result_sha256": "zz"}',
    b'{"job_id": "JOB", "job": {}, "result_sha256": null, "etag": 5}',
    b'{"job_id": "JOB", "job": {}, "result_sha256": null, "error": "oops"}',
    b"\xff\xfe not utf-8",
    b"[" * 100_000,
]


def test_a_journal_with_bad_lines_of_every_shape_resumes_with_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without masks, every storage request is a result body: the count says what was
    # fetched again.
    with Emulator(jobs=120, seed=6, page_size=20, latency_ms=10) as emu:
        reference = do_pull(emu, tmp_path / "reference", masks=False).manifest["content_id"]
        root = tmp_path / "registry"
        outage = threading.Timer(0.4, emu.set_down, args=(True,))  # an outage part-way
        outage.start()
        with pytest.raises(PullError):
            do_pull(emu, root, workers=2, retry=RetryPolicy(attempts=2, backoff_base=0),
                    masks=False)
        outage.join()
        emu.set_down(False)

        registry = Registry(root)
        with registry.open_staging(emu.project_id, emu.batch_id) as st:
            journal_path = st.journal_path
            stored = {k for k, e in st.journal().items() if e.error is None and e.result_sha256}
        assert stored
        # Edit the journal between runs: bad lines at the start, in the middle and at the
        # end; the lines naming a real job must not override its good entry.
        good = journal_path.read_bytes().splitlines()
        job = next(iter(stored))
        bad = [line.replace(b"JOB", job.encode()) for line in BAD_LINES]
        half = len(good) // 2
        edited = bad[:5] + good[:half] + bad[5:10] + good[half:] + bad[10:]
        journal_path.write_bytes(b"\n".join(edited) + b"\n")

        caplog.set_level(logging.WARNING, logger="playment_datasets")
        emu.reset_stats()
        ds = do_pull(emu, root, masks=False)
        refetched = emu.stats.requests["storage"]
    completed = {job.job_id for job in emu.batch.jobs if job.result_bytes is not None}
    assert refetched == len(completed - stored)  # every good line was still used
    assert ds.version == 1 and len(ds.errors) == 0
    assert ds.manifest["content_id"] == reference
    warned = [r.getMessage() for r in caplog.records if "unreadable line" in r.getMessage()]
    assert warned and f"skipping {len(BAD_LINES)} unreadable line(s)" in warned[0]
    assert registry.verify().ok


def test_a_bad_line_does_not_break_the_pulls_after_it(tmp_path: Path) -> None:
    with Emulator(jobs=30, seed=8) as emu:
        registry = Registry(tmp_path)
        with registry.open_staging(emu.project_id, emu.batch_id) as st:
            st.journal_path.write_bytes(b'{"job_id": ["a", "list"]}\n{"job_id": "j", "job": [1]}\n')
        first = do_pull(emu, tmp_path)
        emu.set_result(emu.batch.jobs[1].job_id, {"changed": True})
        second = do_pull(emu, tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert registry.verify().ok
