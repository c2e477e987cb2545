"""Registry: objects, staging journal, commits, tags, removal, gc and verify on real files."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playment_datasets.errors import (
    ConfigurationError,
    DatasetNotFoundError,
    RegistryError,
    RegistryLockError,
)
from playment_datasets.registry.registry import Registry, default_registry_path
from playment_datasets.registry.staging import TableWriter
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES, TABLES


# -- helpers shared by the other registry test modules ----------------------------------
def make_table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """A table of schema ``name``; columns not given are null."""
    rows = list(rows)
    schema = TABLES[name]
    return pa.Table.from_pydict({c: [r.get(c) for r in rows] for c in schema.names}, schema=schema)


def commit_batch(
    reg: Registry,
    results: Mapping[str, bytes | None],
    annotations: Iterable[Mapping[str, Any]] = (),
    *,
    project: str = "proj",
    batch: str = "batch1",
    **kwargs: Any,
):
    """Store raw results, journal them, write jobs + annotations tables and commit."""
    with reg.open_staging(project, batch) as st:
        jobs = {}
        for job_id, raw in results.items():
            sha = reg.put_object(raw) if raw is not None else None
            st.record(job_id, {"id": job_id, "status": "completed"}, sha, f'"{job_id}"')
            jobs[job_id] = {"result_sha256": sha, "etag": f'"{job_id}"', "status": "completed"}
        w = st.writer()
        w.write({"jobs": make_table("jobs", [{"job_id": j, "result_sha256": s["result_sha256"]}
                                             for j, s in jobs.items()])})  # fmt: skip
        w.write({"annotations": make_table("annotations", annotations)})
        return st.commit(jobs=jobs, source={"base_url": "http://127.0.0.1:1"}, **kwargs)


def snapshot(directory: Path) -> dict[str, tuple[str, int, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(directory.iterdir())
    }


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry", lock_timeout=5)


# -- objects ---------------------------------------------------------------------------
def test_objects_round_trip_and_dedupe(reg: Registry) -> None:
    data = b'{"data": {"annotations": {}}}'
    sha = reg.put_object(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert reg.put_object(data) == sha
    assert reg.get_object(sha) == data
    assert reg.has_object(sha)
    path = reg.root / "objects" / sha[:2] / sha[2:]
    assert path.read_bytes() == data
    assert [p for p in (reg.root / "objects").rglob("*") if p.is_file()] == [path]
    missing = hashlib.sha256(b"other").hexdigest()
    assert not reg.has_object(missing)
    with pytest.raises(DatasetNotFoundError, match="not in the object store"):
        reg.get_object(missing)
    with pytest.raises(ValueError):
        reg.get_object("../../etc/passwd")


def test_files_follow_the_umask(reg: Registry) -> None:
    old = os.umask(0o027)
    try:
        sha = reg.put_object(b"x")
    finally:
        os.umask(old)
    mode = (reg.root / "objects" / sha[:2] / sha[2:]).stat().st_mode & 0o777
    assert mode == 0o640


# -- staging journal -------------------------------------------------------------------
def test_journal_survives_a_torn_last_line(reg: Registry) -> None:
    sha = reg.put_object(b"r")
    with reg.open_staging("proj", "b") as st:
        for j in ("j1", "j2", "j3"):
            st.record(j, {"id": j}, sha, "e", None)
        st.record("j2", {"id": "j2"}, None, None, {"stage": "fetch", "message": "boom"})
        journal_path = st.journal_path
    with open(journal_path, "ab") as f:
        f.write(b'{"job_id": "j4", "job": {"id"')  # the crash tore this line
    with reg.open_staging("proj", "b") as st:
        entries = st.journal()
        assert sorted(entries) == ["j1", "j2", "j3"]
        assert entries["j1"].result_sha256 == sha and entries["j1"].etag == "e"
        assert entries["j2"].result_sha256 is None
        assert entries["j2"].error == {"stage": "fetch", "message": "boom"}
        st.record("j5", {"id": "j5"}, sha, None)
        assert sorted(st.journal()) == ["j1", "j2", "j3", "j5"]
    lines = journal_path.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # the torn fragment was cut, not glued


def test_staging_lock_is_exclusive_per_batch(tmp_path: Path) -> None:
    reg = Registry(tmp_path, lock_timeout=0.2)
    with reg.open_staging("proj", "b1"):
        with pytest.raises(RegistryLockError, match="staging lock of batch 'b1'.*lock_timeout"):
            reg.open_staging("proj", "b1")
        with reg.open_staging("proj", "b2"):  # another batch is independent
            pass
    with reg.open_staging("proj", "b1"):  # released on exit
        pass


def test_staging_is_never_visible_to_load(reg: Registry) -> None:
    with reg.open_staging("proj", "b") as st:
        st.writer().write({"jobs": make_table("jobs", [{"job_id": "j1"}])})
        with pytest.raises(DatasetNotFoundError):
            reg.load("b")
    assert reg.datasets().empty


# -- table writer ----------------------------------------------------------------------
def test_table_writer_row_groups_metadata_and_empty_tables(tmp_path: Path) -> None:
    w = TableWriter(tmp_path / "t", row_group_rows=10)
    for start in range(0, 25, 3):
        rows = [
            {"job_id": f"j{i}", "annotation_key": f"k{i}"} for i in range(start, min(start + 3, 25))
        ]
        w.write({"annotations": make_table("annotations", rows)})
    counts = w.close()
    assert counts["annotations"] == 25 and counts["points"] == 0
    assert {p.name for p in (tmp_path / "t").iterdir()} == {f"{n}.parquet" for n in TABLE_NAMES}
    pf = pq.ParquetFile(tmp_path / "t" / "annotations.parquet")
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)] == [10, 10, 5]
    assert pf.metadata.row_group(0).column(0).compression == "ZSTD"
    meta = pf.schema_arrow.metadata
    assert meta[b"playment_datasets.schema_version"] == SCHEMA_VERSION.encode()
    assert b"playment_datasets.library_version" in meta
    table = pq.read_table(tmp_path / "t" / "annotations.parquet")
    assert table.column("job_id").to_pylist() == [f"j{i}" for i in range(25)]
    assert pq.read_table(tmp_path / "t" / "points.parquet").schema.equals(TABLES["points"])


def test_table_writer_refuses_a_wrong_schema(tmp_path: Path) -> None:
    w = TableWriter(tmp_path / "t")
    with pytest.raises(ValueError, match="missing columns"):
        w.write({"jobs": pa.table({"job_id": ["a"]})})
    with pytest.raises(ValueError, match="unknown table"):
        w.write({"nope": pa.table({"a": [1]})})


# -- commits ---------------------------------------------------------------------------
def test_commit_creates_v1_then_dedupes_then_v2(reg: Registry) -> None:
    r1 = commit_batch(reg, {"j1": b"1", "j2": b"2", "j3": None})
    assert (r1.version, r1.created) == (1, True)
    assert r1.path == reg.root / "datasets" / "proj" / "batch1" / "v1"
    m1 = reg.manifest("batch1")
    expected_cid = hashlib.sha256(
        json.dumps(
            [["j1", hashlib.sha256(b"1").hexdigest()], ["j2", hashlib.sha256(b"2").hexdigest()],
             ["j3", ""]], separators=(",", ":"),
        ).encode()
    ).hexdigest()  # fmt: skip
    assert m1["content_id"] == r1.content_id == expected_cid
    assert m1["version"] == 1 and m1["parent"] is None
    assert m1["project_id"] == "proj" and m1["batch_id"] == "batch1"
    assert m1["schema_version"] == SCHEMA_VERSION
    assert m1["counts"]["jobs"] == 3 and m1["counts"]["annotations"] == 0
    assert m1["jobs"]["j3"] == {
        "result_sha256": None, "etag": '"j3"', "status": "completed", "result_url": None
    }
    assert m1["source"] == {"base_url": "http://127.0.0.1:1"}
    for name, info in m1["files"].items():
        data = (r1.path / name).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["bytes"] == len(data)
    assert m1["created_at"].endswith("Z")
    assert not (reg.root / "staging" / "proj" / "batch1" / "journal.jsonl").exists()

    r_same = commit_batch(reg, {"j3": None, "j2": b"2", "j1": b"1"})
    assert (r_same.version, r_same.created, r_same.path) == (1, False, r1.path)
    assert reg.versions("batch1") == [1]

    r2 = commit_batch(reg, {"j1": b"1", "j2": b"2-changed", "j3": None})
    assert (r2.version, r2.created) == (2, True)
    assert reg.manifest("batch1", 2)["parent"] == 1
    assert reg.latest_version("batch1") == 2

    index = json.loads((reg.root / "registry.json").read_text())
    assert index["format"] == 1
    entry = index["batches"]["batch1"]
    assert entry["project_id"] == "proj" and entry["tags"] == {}
    assert entry["versions"]["2"]["path"] == "datasets/proj/batch1/v2"
    assert entry["versions"]["2"]["content_id"] == r2.content_id
    assert entry["versions"]["1"]["counts"]["jobs"] == 3


def test_force_commit_makes_a_new_version_of_equal_content(reg: Registry) -> None:
    r1 = commit_batch(reg, {"j1": b"1"})
    r2 = commit_batch(reg, {"j1": b"1"}, force=True)
    assert (r2.version, r2.created, r2.content_id) == (2, True, r1.content_id)


def test_versions_are_immutable(reg: Registry) -> None:
    r1 = commit_batch(reg, {"j1": b"1"}, [{"job_id": "j1", "annotation_key": "k"}])
    before = snapshot(r1.path)
    commit_batch(reg, {"j1": b"1"})  # unchanged
    commit_batch(reg, {"j1": b"2"})
    commit_batch(reg, {"j1": b"2"}, force=True)
    reg.tag("batch1", 1, "gold")
    reg.untag("batch1", "gold")
    reg.gc(grace_seconds=0)
    reg.remove("batch1", 2)
    assert snapshot(r1.path) == before
    assert reg.versions("batch1") == [1, 3]


def test_secrets_are_refused_in_source(reg: Registry) -> None:
    with reg.open_staging("proj", "b") as st:
        secret = "s3cr3t-value"
        for bad in ({"api_key": secret}, {"x-api-key": secret}, {"auth": {"t": secret}},
                    {"nested": [{"Token": secret}]}):  # fmt: skip
            with pytest.raises(ConfigurationError, match="never written"):
                st.commit(jobs={}, source=bad)
    assert reg.versions("b") == []
    files = [p for p in reg.root.rglob("*") if p.is_file()]
    assert files and all(secret.encode() not in p.read_bytes() for p in files)


def test_a_batch_belongs_to_one_project(reg: Registry) -> None:
    commit_batch(reg, {"j1": b"1"}, project="p1")
    with pytest.raises(RegistryError, match="registered under project 'p1'"):
        commit_batch(reg, {"j1": b"1"}, project="p2")


# -- resolve, tags, datasets, remove ---------------------------------------------------
def test_resolve_tags_and_errors(reg: Registry) -> None:
    commit_batch(reg, {"j1": b"1"})
    commit_batch(reg, {"j1": b"2"})
    assert reg.resolve("batch1") == ("proj", 2)
    for v in (1, "1", "v1", " 1 "):
        assert reg.resolve("batch1", v) == ("proj", 1)
    reg.tag("batch1", 1, "gold")
    assert reg.resolve("batch1", "gold") == ("proj", 1)
    assert reg.load("batch1", "gold").version == 1
    reg.tag("batch1", "latest", "gold")  # moving a tag
    assert reg.resolve("batch1", "gold") == ("proj", 2)
    with pytest.raises(DatasetNotFoundError) as info:
        reg.resolve("batch1", "silver")
    assert str(info.value) == (
        "batch 'batch1' has no version 'silver': it has versions 1, 2 and tags 'gold'; "
        "use one of those (or 'latest')."
    )
    for bad in (3, "v9", True, None):
        with pytest.raises(DatasetNotFoundError):
            reg.resolve("batch1", bad)  # type: ignore[arg-type]
    with pytest.raises(DatasetNotFoundError, match="no batch 'other'.*holds batches 'batch1'"):
        reg.load("other")
    for bad_name in ("latest", "v2", "3", "a/b", "", "-x"):
        with pytest.raises(ConfigurationError):
            reg.tag("batch1", 1, bad_name)
    reg.untag("batch1", "gold")
    with pytest.raises(DatasetNotFoundError, match="no tag 'gold'"):
        reg.untag("batch1", "gold")
    with pytest.raises(DatasetNotFoundError):
        reg.resolve("batch1", "gold")


def test_empty_registry_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="it is empty.*pds.pull"):
        Registry(tmp_path).load("b")


def test_datasets_table(reg: Registry) -> None:
    assert list(reg.datasets().columns) == [
        "project_id", "batch_id", "version", "created_at", "n_jobs", "n_annotations",
        "n_errors", "tags", "content_id", "path",
    ]  # fmt: skip
    commit_batch(reg, {"j1": b"1", "j2": b"2"}, [{"job_id": "j1", "annotation_key": "a"}])
    commit_batch(reg, {"j1": b"1"}, batch="other")
    reg.tag("batch1", 1, "gold")
    df = reg.datasets()
    assert df["batch_id"].tolist() == ["batch1", "other"]
    row = df.iloc[0]
    assert (row["version"], row["n_jobs"], row["n_annotations"], row["n_errors"]) == (1, 2, 1, 0)
    assert row["tags"] == ["gold"]
    assert row["path"] == str(reg.root / "datasets" / "proj" / "batch1" / "v1")
    assert str(df["created_at"].dt.tz) == "UTC"
    # the same dtypes with and without rows
    empty = Registry(reg.root.parent / "empty").datasets()
    assert empty.empty and df.dtypes.to_dict() == empty.dtypes.to_dict()
    assert str(df["n_jobs"].dtype) == "int64"
    assert isinstance(df["batch_id"].dtype, pd.ArrowDtype)


def test_remove(reg: Registry) -> None:
    commit_batch(reg, {"j1": b"1"})
    r2 = commit_batch(reg, {"j1": b"2"})
    reg.tag("batch1", 2, "gold")
    reg.remove("batch1", "gold")
    assert reg.versions("batch1") == [1]
    assert not r2.path.exists()
    with pytest.raises(DatasetNotFoundError):
        reg.resolve("batch1", "gold")
    reg.remove("batch1", 1)
    assert reg.versions("batch1") == []
    with pytest.raises(DatasetNotFoundError):
        reg.load("batch1")
    assert reg.has_object(hashlib.sha256(b"1").hexdigest())  # until gc


def test_default_registry_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLAYMENT_DATASETS_HOME", str(tmp_path / "home"))
    assert default_registry_path() == tmp_path / "home"
    assert Registry().root == tmp_path / "home"
    monkeypatch.delenv("PLAYMENT_DATASETS_HOME")
    if os.name == "posix" and os.uname().sysname == "Linux":
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_registry_path() == tmp_path / "xdg" / "playment-datasets"
        monkeypatch.delenv("XDG_DATA_HOME")
        expected = Path.home() / ".local" / "share" / "playment-datasets"
        assert default_registry_path() == expected


# -- gc --------------------------------------------------------------------------------
def test_gc_removes_only_unreferenced_objects(reg: Registry) -> None:
    commit_batch(reg, {"j1": b"kept-by-version"})
    unreferenced = reg.put_object(b"unreferenced")
    with reg.open_staging("proj", "inflight") as st:
        journaled = reg.put_object(b"kept-by-journal")
        st.record("j9", {"id": "j9"}, journaled, None)
    kept = hashlib.sha256(b"kept-by-version").hexdigest()

    assert reg.gc().objects_removed == []  # young objects are spared by the grace period
    dry = reg.gc(dry_run=True, grace_seconds=0)
    assert dry.objects_removed == [unreferenced] and dry.bytes_freed == len(b"unreferenced")
    assert reg.has_object(unreferenced)
    report = reg.gc(grace_seconds=0)
    assert report.objects_removed == [unreferenced]
    assert not reg.has_object(unreferenced)
    assert reg.has_object(kept) and reg.has_object(journaled)
    assert reg.verify().ok

    reg.remove("batch1", 1)
    assert reg.gc(grace_seconds=0).objects_removed == [kept]


def test_gc_removes_stale_staging_not_held(reg: Registry) -> None:
    sha = reg.put_object(b"x")
    with reg.open_staging("proj", "old") as st:
        st.record("j", {}, sha, None)
    old = reg.root / "staging" / "proj" / "old"
    for p in [old, *old.iterdir()]:
        os.utime(p, (0, 0))
    with reg.open_staging("proj", "held") as held:
        held.record("j", {}, sha, None)
        for p in [held.path, *held.path.iterdir()]:
            os.utime(p, (0, 0))
        report = reg.gc(grace_seconds=0, stale_staging_days=1)
    assert report.staging_removed == ["staging/proj/old"]
    assert not old.exists() and (reg.root / "staging" / "proj" / "held" / "journal.jsonl").exists()
    assert reg.has_object(sha)  # still referenced by the held journal


# -- verify ----------------------------------------------------------------------------
def test_verify_catches_flipped_byte_missing_file_and_bad_object(reg: Registry) -> None:
    r1 = commit_batch(
        reg, {"j1": b"raw-1", "j2": b"raw-2"}, [{"job_id": "j1", "annotation_key": "a"}]
    )
    assert reg.verify().ok and reg.verify("batch1", 1).ok
    manifest = reg.manifest("batch1")

    target = r1.path / "annotations.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    (r1.path / "points.parquet").unlink()
    obj = reg.root / "objects" / manifest["jobs"]["j2"]["result_sha256"][:2]
    obj_file = obj / manifest["jobs"]["j2"]["result_sha256"][2:]
    obj_file.write_bytes(b"raw-2 tampered")

    report = reg.verify()
    assert not report.ok
    # the flipped byte may also leave the file unreadable (it can hit the footer): a
    # second problem for the same path, which some pyarrow versions report
    unreadable = [p for p in report.problems if p.kind == "unreadable"]
    found = [p for p in report.problems if p.kind != "unreadable"]
    by_path = {p.path: p for p in found}
    flipped = by_path["datasets/proj/batch1/v1/annotations.parquet"]
    assert flipped.kind == "mismatch"
    assert flipped.expected == manifest["files"]["annotations.parquet"]["sha256"]
    assert flipped.got == hashlib.sha256(bytes(data)).hexdigest()
    missing = by_path["datasets/proj/batch1/v1/points.parquet"]
    assert (missing.kind, missing.got) == ("missing", None)
    bad_obj = by_path[obj_file.relative_to(reg.root).as_posix()]
    assert bad_obj.kind == "mismatch"
    assert bad_obj.got == hashlib.sha256(b"raw-2 tampered").hexdigest()
    assert (bad_obj.batch_id, bad_obj.version) == ("batch1", 1)
    assert len(found) == 3
    assert [p.path for p in unreadable] in ([], [flipped.path])
    assert f"{len(report.problems)} problem(s)" in repr(report)


def test_verify_reports_a_missing_manifest_without_raising(reg: Registry) -> None:
    r1 = commit_batch(reg, {"j1": b"1"})
    (r1.path / "manifest.json").unlink()
    report = reg.verify("batch1")
    assert [(p.path, p.kind) for p in report.problems] == [
        ("datasets/proj/batch1/v1/manifest.json", "missing")
    ]
    with pytest.raises(DatasetNotFoundError):
        reg.verify("unknown")
