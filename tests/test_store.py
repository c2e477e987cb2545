"""The raw object store: cheap puts, one sync before each durable record, and the check
of objects a journal names past its durable mark (what a power cut may have torn)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from playment_datasets.registry import store as store_module
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.store import ObjectStore


def _obj(root: Path, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return root / "objects" / sha[:2] / sha[2:]


def test_put_then_get_has_and_sync(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    sha = store.put(b'{"a": 1}')
    assert sha == hashlib.sha256(b'{"a": 1}').hexdigest()
    assert store.has(sha) and store.get(sha) == b'{"a": 1}'
    store.sync()
    store.sync()  # nothing new: a no-op
    assert _obj(tmp_path, b'{"a": 1}').read_bytes() == b'{"a": 1}'


def test_sync_without_syncfs_fsyncs_each_file_and_skips_collected_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_SYNCFS", None)
    store = ObjectStore(tmp_path / "objects")
    keep, gone = store.put(b"kept"), store.put(b"collected")
    store.path(gone).unlink()  # as gc would, between the put and the sync
    store.sync()
    assert store.get(keep) == b"kept" and not store.has(gone)


def test_put_keeps_an_identical_object_and_refreshes_its_mtime(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = store.path(store.put(b"same bytes"))
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino
    store.put(b"same bytes")
    assert path.stat().st_ino == inode  # not rewritten
    assert path.stat().st_mtime > 1_000_000


@pytest.mark.parametrize("torn", [b"", b"same by", b"same bytes and more", b"SAME BYTES"])
def test_put_replaces_a_torn_copy(tmp_path: Path, torn: bytes) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = store.path(store.put(b"same bytes"))
    path.write_bytes(torn)
    store.put(b"same bytes")
    assert path.read_bytes() == b"same bytes"


def test_confirm_removes_a_damaged_object_only(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    good, bad = store.put(b"good"), store.put(b"bad")
    store.path(bad).write_bytes(b"bad, torn")
    assert store.confirm(good) is True
    assert store.confirm(bad) is False
    assert store.has(good) and not store.has(bad)
    assert store.confirm("0" * 64) is False  # never stored


def _synced_mark(staging_dir: Path) -> int:
    return int((staging_dir / "journal.synced").read_bytes())


def test_closing_a_journal_records_its_whole_size_as_durable(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.open_staging("proj", "batch") as st:
        for i in range(5):
            st.record(f"j{i}", {"id": f"j{i}"}, reg.put_object(f"r{i}".encode()), etag=None)
        path = st.path
    assert _synced_mark(path) == (path / "journal.jsonl").stat().st_size


def _power_cut(staging_dir: Path, keep_lines: int) -> list[dict[str, object]]:
    """Put the durable mark back to the start of line ``keep_lines`` (a state a power cut
    before the last sync leaves); returns the records past it."""
    lines = (staging_dir / "journal.jsonl").read_bytes().splitlines(keepends=True)
    mark = sum(len(line) for line in lines[:keep_lines])
    (staging_dir / "journal.synced").write_bytes(f"{mark:023d}\n".encode())
    return [json.loads(line) for line in lines[keep_lines:]]


def test_journal_checks_and_drops_torn_objects_past_the_durable_mark(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    bodies = [f"result {i}".encode() * 50 for i in range(6)]
    with reg.open_staging("proj", "batch") as st:
        for i, body in enumerate(bodies):
            st.record(f"j{i}", {"id": f"j{i}"}, reg.put_object(body), etag=None)
        path = st.path
    past = _power_cut(path, keep_lines=4)
    assert [r["job_id"] for r in past] == ["j4", "j5"]
    _obj(tmp_path, bodies[5]).write_bytes(bodies[5][:100])  # torn past the mark
    _obj(tmp_path, bodies[1]).write_bytes(b"rotted later")  # damaged before the mark
    with reg.open_staging("proj", "batch") as st:
        entries = st.journal()
    assert sorted(entries) == [f"j{i}" for i in range(6)]  # every line is still read
    assert reg.has_object(entries["j4"].result_sha256 or "")  # intact: kept
    assert not reg.has_object(entries["j5"].result_sha256 or "")  # torn: fetched again
    # Lines before the mark are trusted without hashing (their objects were synced
    # first); later damage there is what verify finds.
    assert reg.has_object(entries["j1"].result_sha256 or "")


def test_appending_after_a_power_cut_checks_the_unsynced_tail_first(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    bodies = [f"body {i}".encode() * 40 for i in range(4)]
    with reg.open_staging("proj", "batch") as st:
        for i, body in enumerate(bodies):
            st.record(f"j{i}", {"id": f"j{i}"}, reg.put_object(body), etag=None)
        path = st.path
    _power_cut(path, keep_lines=2)
    _obj(tmp_path, bodies[3]).write_bytes(b"")
    with reg.open_staging("proj", "batch") as st:  # no journal() read: a plain append
        st.record("j9", {"id": "j9"}, reg.put_object(b"new"), etag=None)
    assert not _obj(tmp_path, bodies[3]).exists()  # not covered by the new durable mark
    assert _obj(tmp_path, bodies[2]).read_bytes() == bodies[2]
    assert _synced_mark(path) == (path / "journal.jsonl").stat().st_size


@pytest.mark.parametrize("content", [b"", b"12", b"not a number at all!!!\n", b"x" * 30])
def test_an_unreadable_mark_means_every_line_is_checked(tmp_path: Path, content: bytes) -> None:
    reg = Registry(tmp_path)
    with reg.open_staging("proj", "batch") as st:
        st.record("j1", {"id": "j1"}, reg.put_object(b"first"), etag=None)
        path = st.path
    (path / "journal.synced").write_bytes(content)
    _obj(tmp_path, b"first").write_bytes(b"firs")
    with reg.open_staging("proj", "batch") as st:
        st.journal()
    assert not _obj(tmp_path, b"first").exists()


def test_a_committed_version_verifies_and_a_damaged_object_is_reported(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    from playment_datasets.schema import TABLES

    reg = Registry(tmp_path)
    row = pa.Table.from_pylist([{"job_id": "j1"}], schema=TABLES["jobs"])
    with reg.open_staging("proj", "batch") as st:
        sha = reg.put_object(b'{"raw": true}')
        st.record("j1", {"id": "j1"}, sha, etag=None)
        st.writer().write({"jobs": row})
        st.commit(jobs={"j1": {"result_sha256": sha, "etag": None, "status": "completed"}})
    assert reg.verify().ok
    _obj(tmp_path, b'{"raw": true}').write_bytes(b'{"raw": false}')
    problems = reg.verify().problems
    assert [(p.kind, p.path) for p in problems] == [("mismatch", f"objects/{sha[:2]}/{sha[2:]}")]
