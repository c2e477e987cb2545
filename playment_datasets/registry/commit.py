"""The commit protocol that turns a staging area into an immutable version.

Order of operations (each step durable before the next):

1. check the staged tables against what the manifest will say (one ``jobs`` row per job,
   each table's rows as counted, every referenced raw object stored) — a version is never
   committed with fewer rows than its manifest claims; write ``job_meta.jsonl.gz`` and
   hash every staged file (outside any registry lock);
2. take the registry lock; re-read ``registry.json``; if the content id equals the
   latest version's (and not ``force``) stop: nothing is created. A pull that held back
   the rows of unchanged jobs (``tables_complete=False``) commits only this way; when the
   latest version changed meanwhile it gets :class:`LatestChangedError` and writes them;
3. allocate ``N = max(versions in the index, v<N> directories on disk) + 1`` so an orphan
   left by an earlier crash is never overwritten;
4. write ``manifest.json`` into the staged directory (tmp + fsync + rename), fsync it;
5. rename the staged directory to ``datasets/<project>/<batch>/v<N>`` and fsync the parent;
6. add the version to ``registry.json`` (tmp + fsync + ``os.replace``) and release the lock.

``registry.json`` is the source of truth: a crash before step 6 leaves at most an orphan
directory that ``load()`` never shows and ``gc()`` removes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import signal
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets._version import __version__
from playment_datasets.errors import ConfigurationError, RegistryError
from playment_datasets.registry.index import RegistryDir
from playment_datasets.registry.store import atomic_write_json, fsync_dir, is_sha256, sha256_file
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES

logger = logging.getLogger(__name__)

__all__ = [
    "CRASH_ENV",
    "JOB_META_FILE",
    "CommitResult",
    "LatestChangedError",
    "StagedBatch",
    "commit_staging",
    "content_id_of",
    "job_objects",
    "library_version",
]

#: Layout version of manifest.json.
MANIFEST_FORMAT = 1
#: Name of the per-version file that keeps each job's metadata for re-normalization.
JOB_META_FILE = "job_meta.jsonl.gz"
#: Test-only: name of a commit step at which the process kills itself with SIGKILL.
CRASH_ENV = "PLAYMENT_DATASETS_TEST_CRASH_AT"

_SECRET_KEY_RE = re.compile(r"key|token|secret|passw|auth", re.IGNORECASE)


def library_version() -> str:
    """The running playment_datasets version."""
    return __version__


def _content_of(info: Mapping[str, Any]) -> Any:
    sha = info.get("result_sha256") or ""
    masks = info.get("masks")
    if not masks:
        return sha  # as before masks existed: versions without masks keep their ids
    return [sha, sorted(str(m.get("sha256") or "") + " " + str(m.get("url")) for m in masks)]


def content_id_of(jobs: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 over the sorted ``(job_id, result_sha256 or "")`` pairs, as compact JSON.

    A job with fetched masks contributes ``[result_sha256, its masks' sha256 and URL]``
    instead, so a mask that changed (or was fetched this time) makes a new version.

    Example:
        >>> content_id_of({"j1": {"result_sha256": None}}) == content_id_of({"j1": {}})
        True
    """
    pairs = sorted((job_id, _content_of(info)) for job_id, info in jobs.items())
    payload = json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class LatestChangedError(RegistryError):
    """The staged tables leave out rows held in the latest version, and the latest version
    is not that one any more (removed, or another pull committed): write the rows first."""


@dataclass(frozen=True)
class CommitResult:
    """Outcome of :meth:`Staging.commit`: the version that holds the content."""

    version: int
    created: bool
    path: Path
    content_id: str


class StagedBatch(Protocol):
    """What the commit protocol reads of a staging area
    (:class:`~playment_datasets.registry.staging.Staging` is one)."""

    registry_dir: RegistryDir
    project_id: str
    batch_id: str

    @property
    def tables_path(self) -> Path: ...

    @property
    def journal_path(self) -> Path: ...

    def journal_offsets(self) -> dict[str, int]: ...


def _crash_point(step: str) -> None:
    """Test-only hook: die abruptly at ``step`` when CRASH_ENV names it."""
    if os.environ.get(CRASH_ENV) == step:  # pragma: no cover - the process dies here
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _check_no_secrets(obj: Any, where: str) -> None:
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if _SECRET_KEY_RE.search(str(key)):
                raise ConfigurationError(
                    f"{where} has a field named {str(key)!r}; fields that look like credentials "
                    "(names containing key, token, secret, password or auth) are never written "
                    "to a manifest. Leave that field out."
                )
            _check_no_secrets(value, where)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_no_secrets(value, where)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _write_job_meta(
    path: Path, jobs: Mapping[str, Any], meta_of: Callable[[str], Mapping[str, Any] | None]
) -> int:
    rows = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for job_id in sorted(jobs):
            meta = meta_of(job_id)
            if meta:
                line = json.dumps(
                    {"job_id": job_id, "job": meta}, ensure_ascii=False, default=str
                )
                gz.write(line.encode("utf-8") + b"\n")
                rows += 1
        gz.close()
        raw.flush()
        os.fsync(raw.fileno())
    return rows


def job_objects(info: Mapping[str, Any]) -> list[str]:
    """The stored objects one manifest (or journal) job entry references: its raw result
    and its fetched masks.

    Example:
        >>> job_objects({"result_sha256": "a" * 64, "masks": [{"sha256": None}]}) == ["a" * 64]
        True
    """
    result = info.get("result_sha256")
    return ([result] if isinstance(result, str) and result else []) + _mask_objects(info)


def _mask_objects(info: Mapping[str, Any]) -> list[str]:
    """The stored masks of one job entry (a mask that was not fetched has none)."""
    masks = info.get("masks")
    if not isinstance(masks, list):
        return []
    shas = [m.get("sha256") for m in masks if isinstance(m, Mapping)]
    return [s for s in shas if isinstance(s, str) and s]


def _masks_of(job_id: str, masks: Any) -> list[dict[str, Any]]:
    if not isinstance(masks, list) or not all(isinstance(m, Mapping) for m in masks):
        raise ValueError(f"job {job_id!r}: masks must be a list of mappings, got {masks!r}")
    for m in masks:
        if m.get("sha256") is not None and not is_sha256(m["sha256"]):
            raise ValueError(
                f"job {job_id!r}: a mask sha256 must be a hex sha256 or None, got {m['sha256']!r}"
            )
    return [dict(m) for m in masks]


def validate_jobs(jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for job_id, info in jobs.items():
        if not isinstance(job_id, str) or not job_id or not isinstance(info, Mapping):
            raise ValueError(
                f"jobs must map job id strings to {{'result_sha256', 'etag', 'status'}} mappings; "
                f"got {job_id!r}: {type(info).__name__}"
            )
        sha = info.get("result_sha256")
        if sha is not None and not is_sha256(sha):
            raise ValueError(
                f"job {job_id!r}: result_sha256 must be a hex sha256 or None, got {sha!r}"
            )
        out[job_id] = {
            "result_sha256": sha,
            "etag": info.get("etag"),
            "status": info.get("status"),
            "result_url": info.get("result_url"),
        }
        if info.get("masks"):
            out[job_id]["masks"] = _masks_of(job_id, info["masks"])
    return out


def prepare_files(
    staging: StagedBatch,
    counts: Mapping[str, int],
    jobs: Mapping[str, Any],
    job_meta: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """Write the job metadata file and hash every file of the staged tables directory."""
    offsets = staging.journal_offsets()  # records are read one at a time: flat memory
    given = job_meta or {}
    tables = staging.tables_path
    with ExitStack() as stack:
        journal = stack.enter_context(open(staging.journal_path, "rb")) if offsets else None

        def meta_of(job_id: str) -> Mapping[str, Any] | None:
            if job_id in given:
                return given[job_id]
            offset = offsets.get(job_id)
            if offset is None or journal is None:
                return None
            journal.seek(offset)
            return json.loads(journal.readline()).get("job") or None

        meta_rows = _write_job_meta(tables / JOB_META_FILE, jobs, meta_of)
    files: dict[str, dict[str, Any]] = {}
    for name in TABLE_NAMES:
        p = tables / f"{name}.parquet"
        files[p.name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size, "rows": counts[name]}
    p = tables / JOB_META_FILE
    files[p.name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size, "rows": meta_rows}
    fsync_dir(tables)
    return files


def check_source(source: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    _check_no_secrets(source, "source")
    for what, obj in (("source", source), ("extra", extra)):
        try:
            json.dumps(obj)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} must be JSON-serializable: {exc}") from None


def _unchanged(staging: StagedBatch, cid: str, force: bool) -> CommitResult | None:
    """The latest version's CommitResult when it already holds content ``cid``."""
    if force:
        return None
    reg = staging.registry_dir
    entry = reg.read()["batches"].get(staging.batch_id)
    if not entry or not entry["versions"]:
        return None
    latest = max(int(v) for v in entry["versions"])
    info = entry["versions"][str(latest)]
    if info["content_id"] != cid:
        return None
    logger.info("batch %s unchanged (content %s): keeping v%d", staging.batch_id, cid[:12], latest)
    return CommitResult(version=latest, created=False, path=reg.root / info["path"], content_id=cid)


def build_manifest(
    staging: StagedBatch,
    *,
    version: int,
    parent: int | None,
    created_at: str | None,
    content_id: str,
    counts: Mapping[str, int],
    files: Mapping[str, Any],
    jobs: Mapping[str, Any],
    source: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a version (or, with version 0, of a finished shard)."""
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "parent": parent,
        "project_id": staging.project_id,
        "batch_id": staging.batch_id,
        "content_id": content_id,
        "library_version": library_version(),
        "schema_version": SCHEMA_VERSION,
        "tables": list(TABLE_NAMES),
        "n_jobs": len(jobs),
        "counts": {name: int(counts[name]) for name in TABLE_NAMES},
        "files": dict(files),
        "jobs": dict(jobs),
        "source": dict(source),
        "extra": dict(extra),
    }
    if created_at is not None:
        manifest["created_at"] = created_at
    return manifest


def check_staged(
    staging: StagedBatch, counts: Mapping[str, int], jobs: Mapping[str, Mapping[str, Any]]
) -> None:
    """Refuse tables that hold less than the manifest will say (RegistryError).

    One ``jobs`` row per job, each Parquet file with the rows its writer counted, and
    every object a job references (its raw result, its fetched masks) in the object store.
    """
    problems: list[str] = []
    if counts["jobs"] != len(jobs):
        problems.append(f"the jobs table has {counts['jobs']} rows for {len(jobs)} jobs")
    for name in TABLE_NAMES:
        path = staging.tables_path / f"{name}.parquet"
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{path.name} is unreadable ({exc})")
            continue
        if rows != counts[name]:
            problems.append(f"{path.name} has {rows} rows, {counts[name]} were written")
    objects = staging.registry_dir.objects
    for what, shas in (
        ("raw result", {info.get("result_sha256") for info in jobs.values()}),
        ("mask", {sha for info in jobs.values() for sha in _mask_objects(info)}),
    ):
        missing = sorted(str(sha) for sha in shas if sha and not objects.has(str(sha)))
        if missing:
            problems.append(f"{len(missing)} {what} object(s) are not in the object store "
                            f"(first: {missing[0]})")
    if problems:
        raise RegistryError(
            f"refusing to commit batch {staging.batch_id!r}: {'; '.join(problems)}. Nothing "
            "was committed and the journal is kept; run the same pull again (it re-fetches "
            "what is missing)."
        )


def commit_staging(
    staging: StagedBatch,
    *,
    counts: Mapping[str, int],
    jobs: Mapping[str, Mapping[str, Any]],
    source: dict[str, Any],
    extra: dict[str, Any],
    force: bool,
    parent: int | None,
    job_meta: Mapping[str, Mapping[str, Any]] | None,
    tables_complete: bool = True,
) -> CommitResult:
    """Commit the closed tables of ``staging``; see the module docstring for the protocol.

    ``tables_complete=False`` says the tables leave out the rows of jobs unchanged since
    the latest version: then the commit only succeeds as "unchanged" (under the registry
    lock) and raises :class:`LatestChangedError` when the latest holds other content.
    """
    reg = staging.registry_dir
    project_id, batch_id = staging.project_id, staging.batch_id
    jobs_v = validate_jobs(jobs)
    check_source(source, extra)
    cid = content_id_of(jobs_v)
    if not tables_complete:
        with reg.lock():  # the answer must hold at the moment it is given
            if (done := _unchanged(staging, cid, force=False)) is not None:
                return done
        raise LatestChangedError(
            f"the latest version of batch {batch_id!r} changed while it was pulled; the "
            "rows of its unchanged jobs must be written before committing"
        )
    if (done := _unchanged(staging, cid, force)) is not None:
        return done
    check_staged(staging, counts, jobs_v)
    files = prepare_files(staging, counts, jobs_v, job_meta)
    from playment_datasets.dataset.quality import quality_counts_of_dir

    extra = {**extra, "quality": quality_counts_of_dir(staging.tables_path)}
    with reg.lock():
        if (done := _unchanged(staging, cid, force)) is not None:
            return done  # another process committed the same content meanwhile
        index = reg.read()
        entry = index["batches"].get(batch_id)
        if entry is not None and entry["project_id"] != project_id:
            raise RegistryError(
                f"batch {batch_id!r} is registered under project {entry['project_id']!r}, "
                f"not {project_id!r}; batch ids are unique across projects. Check the project id."
            )
        known = [int(v) for v in entry["versions"]] if entry else []
        latest = max(known, default=None)
        version = max(known + reg.dir_versions(project_id, batch_id), default=0) + 1
        created_at = _utc_now()
        manifest = build_manifest(
            staging, version=version, parent=parent if parent is not None else latest,
            created_at=created_at, content_id=cid, counts=counts, files=files, jobs=jobs_v,
            source=source, extra=extra,
        )
        atomic_write_json(staging.tables_path / "manifest.json", manifest)
        if not reg.index_path.exists():  # so a crash below leaves an orphan, not a lost index
            reg.write(index)
        _crash_point("before-rename")
        dest = reg.batch_dir(project_id, batch_id) / f"v{version}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging.tables_path, dest)
        fsync_dir(dest.parent)
        fsync_dir(dest.parent.parent)
        _crash_point("after-rename")
        if entry is None:
            entry = index["batches"][batch_id] = {
                "project_id": project_id,
                "versions": {},
                "tags": {},
            }
        entry["versions"][str(version)] = {
            "content_id": cid,
            "created_at": created_at,
            "parent": manifest["parent"],
            "n_jobs": len(jobs_v),
            "counts": manifest["counts"],
            "path": dest.relative_to(reg.root).as_posix(),
        }
        reg.write(index)
        _crash_point("after-index")
    logger.info("committed %s v%d (%d jobs, content %s)", batch_id, version, len(jobs_v), cid[:12])
    return CommitResult(version=version, created=True, path=dest, content_id=cid)
