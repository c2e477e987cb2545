"""A commit checks its own tables and objects, and a commit that relies on the latest
version for held-back rows refuses when that version changed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from playment_datasets.errors import RegistryError
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.staging import LatestChangedError
from playment_datasets.schema import TABLES


def jobs_rows(*job_ids: str) -> pa.Table:
    return pa.Table.from_pylist([{"job_id": j} for j in job_ids], schema=TABLES["jobs"])


def manifest_jobs(reg: Registry, *job_ids: str) -> dict[str, dict[str, str | None]]:
    return {j: {"result_sha256": reg.put_object(j.encode()), "etag": None, "status": "completed"}
            for j in job_ids}


def test_a_commit_with_fewer_jobs_rows_than_jobs_is_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.open_staging("p1", "b1") as st:
        st.writer().write({"jobs": jobs_rows("j1")})
        with pytest.raises(RegistryError, match="the jobs table has 1 rows for 2 jobs"):
            st.commit(jobs=manifest_jobs(reg, "j1", "j2"))
    assert reg.versions("b1") == []


def test_a_commit_referencing_a_missing_object_is_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    jobs = manifest_jobs(reg, "j1")
    sha = jobs["j1"]["result_sha256"]
    assert sha is not None
    (tmp_path / "objects" / sha[:2] / sha[2:]).unlink()
    with reg.open_staging("p1", "b1") as st:
        st.writer().write({"jobs": jobs_rows("j1")})
        with pytest.raises(RegistryError, match=rf"1 raw result object\(s\) .* \(first: {sha}\)"):
            st.commit(jobs=jobs)
    assert reg.versions("b1") == []


def test_held_back_rows_commit_only_as_unchanged(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    jobs = manifest_jobs(reg, "j1", "j2")
    with reg.open_staging("p1", "b1") as st:
        st.writer().write({"jobs": jobs_rows("j1", "j2")})
        assert st.commit(jobs=jobs).version == 1
    with reg.open_staging("p1", "b1") as st:  # the latest holds this content: fine
        st.writer()
        result = st.commit(jobs=jobs, tables_complete=False)
    assert (result.version, result.created) == (1, False)
    reg.remove("b1", 1)
    with reg.open_staging("p1", "b1") as st:  # the latest is gone: the rows must be written
        st.writer()
        with pytest.raises(LatestChangedError):
            st.commit(jobs=jobs, tables_complete=False)
        st.writer().write({"jobs": jobs_rows("j1", "j2")})
        result = st.commit(jobs=jobs)
    assert (result.version, result.created) == (1, True)
    assert reg.verify().ok


def test_a_commit_referencing_a_missing_mask_object_is_refused(tmp_path: Path) -> None:
    # A version must not name a mask its store lacks: ds.mask() would fail long after.
    reg = Registry(tmp_path)
    jobs: dict[str, dict] = dict(manifest_jobs(reg, "j1"))
    kept, lost = reg.put_object(b"mask one"), reg.put_object(b"mask two")
    jobs["j1"]["masks"] = [
        {"url": f"https://storage.example/{n}.png", "frame_id": None, "kind": "png",
         "sha256": sha, "etag": None} for n, sha in (("a", kept), ("b", lost))]
    (tmp_path / "objects" / lost[:2] / lost[2:]).unlink()
    with reg.open_staging("p1", "b1") as st:
        st.writer().write({"jobs": jobs_rows("j1")})
        with pytest.raises(RegistryError, match=rf"1 mask object\(s\) .* \(first: {lost}\)"):
            st.commit(jobs=jobs)
    assert reg.versions("b1") == []
