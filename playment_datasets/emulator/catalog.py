"""What the emulator serves: projects, batches, jobs, result files and assets.

The :class:`Catalog` is the emulator's in-memory "database". It knows nothing of HTTP:
the server asks it for pages, job records, project counters and file bodies, and the
:class:`~playment_datasets.emulator.server.Emulator` mutates it (``set_result``,
``add_job``, ``remove_job``). Every public method takes the catalogue's own lock, so
request threads and the test thread can use it at the same time.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import json
import mimetypes
import re
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob
from playment_datasets.errors import ConfigurationError, InvalidIdError

__all__ = ["Catalog", "ServedJob", "is_valid_id", "is_token_shaped"]

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_TOKEN_RE = re.compile(r"[0-9]{19}\Z")
# Page tokens look like the nanosecond timestamps Playment hands out
# ("1575822103313046000"): each job gets a creation "timestamp" and a token is the
# timestamp of the last job of the previous page, so pages stay consistent when jobs
# are added or removed between two requests.
_EPOCH_NS = 1_575_822_103_313_046_000
_CURSOR_STEP_NS = 1_000_003
_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a well-formed Playment id (letters, digits, ``-``, ``_``)."""
    return bool(_ID_RE.match(value))


def is_token_shaped(value: str) -> bool:
    """Whether ``value`` looks like a page token (19 decimal digits)."""
    return bool(_TOKEN_RE.match(value))


def is_completed(status: str) -> bool:
    """Playment writes ``completed``, ``COMPLETED`` or ``Complete``; compare loosely."""
    return status.strip().lower() in ("completed", "complete")


def sha256_etag(body: bytes) -> str:
    """The strong ETag the storage host sends for ``body``."""
    return '"' + hashlib.sha256(body).hexdigest() + '"'


@dataclass(frozen=True)
class ServedJob:
    """One job as served: the generated job plus where it lives and its file's ETag."""

    job: GeneratedJob
    project_id: str
    batch_id: str
    cursor: int
    body: bytes | None
    etag: str | None

    @property
    def has_result(self) -> bool:
        return self.body is not None

    def summary(self) -> dict[str, Any]:
        """The job as it appears in a batch page."""
        job = self.job
        return {
            "id": job.job_id,
            "reference_id": job.reference_id,
            "status": job.status,
            "frames": job.n_frames,
            "annotations": job.n_annotations,
            "priority_weight": job.priority_weight,
            "tag": job.tag,
            "viewer_url": "",
        }


@dataclass
class _ServedBatch:
    project_id: str
    batch_id: str
    name: str
    base_cursor: int
    cursors: list[int] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    def next_cursor(self) -> int:
        last = self.cursors[-1] if self.cursors else self.base_cursor
        return last + _CURSOR_STEP_NS


@dataclass(frozen=True)
class Asset:
    """A file the results refer to (a mask PNG, a PCD label file, …)."""

    body: bytes
    etag: str
    content_type: str


def _base_cursor(project_id: str, batch_id: str) -> int:
    spread = zlib.crc32(f"{project_id}/{batch_id}".encode()) % 1_000_000
    return _EPOCH_NS + spread * 1_000_000_000


def _served(job: GeneratedJob, project_id: str, batch_id: str, cursor: int) -> ServedJob:
    body = job.result_bytes if is_completed(job.status) else None
    etag = sha256_etag(body) if body is not None else None
    return ServedJob(job, project_id, batch_id, cursor, body, etag)


def _project_base(kinds: Counter[str]) -> str:
    """Project type ("base") the details endpoint reports, from the jobs' kinds."""
    if not kinds:
        return "IMAGE"
    kind = kinds.most_common(1)[0][0].lower()
    if "video" in kind:
        return "VIDEO"
    if any(word in kind for word in ("point", "pcd", "lidar", "sensor", "3d", "cuboid_3d")):
        return "SENSOR_FUSION"
    return "IMAGE"


class Catalog:
    """Thread-safe store of everything the emulator serves.

    Example:
        >>> from playment_datasets.emulator.batch import GeneratedBatch
        >>> catalog = Catalog()
        >>> catalog.add_batch(GeneratedBatch("p1", "b1", "Batch 1", jobs=[]))
        >>> catalog.page("p1", "b1", after=None, size=100)
        ([], None)
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._batches: dict[str, dict[str, _ServedBatch]] = {}
        self._jobs: dict[str, dict[str, ServedJob]] = {}
        self._assets: dict[str, Asset] = {}
        self._foreign: set[str] = set()

    # -- mutations ---------------------------------------------------------------------

    def add_batch(self, batch: GeneratedBatch) -> None:
        """Serve ``batch`` (its project is created when new)."""
        _check_id("project_id", batch.project_id)
        _check_id("batch_id", batch.batch_id)
        with self._lock:
            batches = self._batches.setdefault(batch.project_id, {})
            if batch.batch_id in batches:
                raise ConfigurationError(
                    f"batch {batch.batch_id!r} of project {batch.project_id!r} is already "
                    "served; give the new batch another batch_id"
                )
            self._jobs.setdefault(batch.project_id, {})
            batches[batch.batch_id] = _ServedBatch(
                batch.project_id, batch.batch_id, batch.name,
                _base_cursor(batch.project_id, batch.batch_id),
            )
            for job in batch.jobs:
                self.add_job(job, batch.project_id, batch.batch_id)

    def add_job(self, job: GeneratedJob, project_id: str, batch_id: str) -> None:
        """Append ``job`` to a served batch (it comes last in the pages)."""
        _check_id("job_id", job.job_id)
        with self._lock:
            served_batch = self._batch(project_id, batch_id)
            if job.job_id in self._jobs[project_id]:
                raise ConfigurationError(
                    f"job {job.job_id!r} already exists in project {project_id!r}; "
                    "job ids must be unique within a project"
                )
            cursor = served_batch.next_cursor()
            served_batch.cursors.append(cursor)
            served_batch.job_ids.append(job.job_id)
            self._jobs[project_id][job.job_id] = _served(job, project_id, batch_id, cursor)
            for key, body in job.assets.items():
                ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
                self._assets[key.lstrip("/")] = Asset(body, sha256_etag(body), ctype)

    def set_result(self, job_id: str, result: dict[str, Any] | bytes | None,
                   status: str = "completed") -> ServedJob:
        """Replace a job's result file (``None``: the job is no longer completed)."""
        with self._lock:
            served = self._require_job(job_id)
            if result is None:
                new_status = "in_progress" if is_completed(status) else status
                job = dataclasses.replace(served.job, status=new_status, result=None,
                                          raw_result=None)
            elif isinstance(result, (bytes, bytearray)):
                job = dataclasses.replace(served.job, status=status, result=None,
                                          raw_result=bytes(result))
            elif isinstance(result, dict):
                job = dataclasses.replace(served.job, status=status,
                                          result=json.loads(json.dumps(result)),
                                          raw_result=None)
            else:
                raise ConfigurationError(
                    f"a result must be a dict, bytes or None, got {type(result).__name__}"
                )
            new = _served(job, served.project_id, served.batch_id, served.cursor)
            self._jobs[served.project_id][job_id] = new
            return new

    def remove_job(self, job_id: str) -> None:
        """Stop serving a job (it disappears from pages, details and storage)."""
        with self._lock:
            served = self._require_job(job_id)
            del self._jobs[served.project_id][job_id]
            served_batch = self._batches[served.project_id][served.batch_id]
            index = served_batch.job_ids.index(job_id)
            del served_batch.job_ids[index]
            del served_batch.cursors[index]

    def add_foreign_project(self, project_id: str) -> None:
        """Register a project that exists but that no served key may read."""
        _check_id("project_id", project_id)
        with self._lock:
            self._foreign.add(project_id)

    # -- queries -----------------------------------------------------------------------

    def has_project(self, project_id: str) -> bool:
        with self._lock:
            return project_id in self._batches

    def is_foreign(self, project_id: str) -> bool:
        with self._lock:
            return project_id in self._foreign and project_id not in self._batches

    def has_batch(self, project_id: str, batch_id: str) -> bool:
        with self._lock:
            return batch_id in self._batches.get(project_id, {})

    def batch_of(self, batch_id: str) -> str | None:
        """The project that holds ``batch_id`` (``None`` when no project does)."""
        with self._lock:
            for project_id, batches in self._batches.items():
                if batch_id in batches:
                    return project_id
            return None

    def job(self, project_id: str, job_id: str) -> ServedJob | None:
        with self._lock:
            return self._jobs.get(project_id, {}).get(job_id)

    def find_job(self, job_id: str) -> ServedJob | None:
        """The job with that id in any project."""
        with self._lock:
            for jobs in self._jobs.values():
                if job_id in jobs:
                    return jobs[job_id]
            return None

    def asset(self, key: str) -> Asset | None:
        with self._lock:
            return self._assets.get(key)

    def find_asset_key(self, path: str) -> str | None:
        """The asset key a URL path refers to: the longest known suffix of the path."""
        parts = [p for p in path.split("/") if p]
        with self._lock:
            for start in range(len(parts)):
                key = "/".join(parts[start:])
                if key in self._assets:
                    return key
        return None

    def batch_name(self, project_id: str, batch_id: str) -> str:
        with self._lock:
            return self._batch(project_id, batch_id).name

    def token_is_valid(self, project_id: str, batch_id: str, token: int) -> bool:
        with self._lock:
            return token >= self._batch(project_id, batch_id).base_cursor

    def page(self, project_id: str, batch_id: str, *, after: int | None,
             size: int) -> tuple[list[dict[str, Any]], int | None]:
        """Job summaries after cursor ``after`` and the cursor to continue from.

        The second value is ``None`` on the last page.
        """
        with self._lock:
            served_batch = self._batch(project_id, batch_id)
            start = 0 if after is None else bisect.bisect_right(served_batch.cursors, after)
            ids = served_batch.job_ids[start:start + size]
            jobs = self._jobs[project_id]
            summaries = [jobs[job_id].summary() for job_id in ids]
            more = start + size < len(served_batch.job_ids)
            next_cursor = served_batch.cursors[start + size - 1] if more else None
            return summaries, next_cursor

    def details(self, project_id: str) -> dict[str, Any]:
        """The ``data`` of ``GET /v1/projects/{pid}/details``."""
        with self._lock:
            kinds: Counter[str] = Counter()
            batches = []
            for served_batch in self._batches[project_id].values():
                counts = self._batch_counts(served_batch, kinds)
                created = dt.datetime.fromtimestamp(served_batch.base_cursor / 1e9, tz=_IST)
                done = counts["total_jobs"] > 0 and (
                    counts["completed_jobs"] == counts["total_jobs"])
                batches.append({
                    "id": served_batch.batch_id,
                    "name": served_batch.name,
                    "description": "",
                    "is_default": False,
                    **counts,
                    "created_at": created.isoformat(timespec="microseconds"),
                    "status": "Complete" if done else "In Progress",
                })
            return {"name": _project_name(project_id), "base": _project_base(kinds),
                    "batches": batches}

    def stats(self, project_id: str) -> dict[str, Any]:
        """The ``data`` of ``GET /v0/projects/{pid}/stats``."""
        details = self.details(project_id)
        totals = Counter[str]()
        for batch in details["batches"]:
            for name in ("total_jobs", "completed_jobs", "total_frames",
                         "completed_frames", "annotations"):
                totals[name] += batch[name]
        return {
            "name": details["name"],
            "base": details["base"],
            "total_batches": len(details["batches"]),
            "completed_batches": sum(b["status"] == "Complete" for b in details["batches"]),
            **{name: totals[name] for name in ("total_jobs", "completed_jobs", "total_frames",
                                               "completed_frames", "annotations")},
        }

    # -- internals ---------------------------------------------------------------------

    def _batch(self, project_id: str, batch_id: str) -> _ServedBatch:
        try:
            return self._batches[project_id][batch_id]
        except KeyError:
            raise ConfigurationError(
                f"batch {batch_id!r} of project {project_id!r} is not served; "
                "add it first with add_batch()"
            ) from None

    def _require_job(self, job_id: str) -> ServedJob:
        served = self.find_job(job_id)
        if served is None:
            raise ConfigurationError(f"job {job_id!r} is not served by this emulator")
        return served

    def _batch_counts(self, served_batch: _ServedBatch, kinds: Counter[str]) -> dict[str, int]:
        jobs = self._jobs[served_batch.project_id]
        counts = dict.fromkeys(("total_jobs", "completed_jobs", "total_frames",
                                "completed_frames", "annotations"), 0)
        for job_id in served_batch.job_ids:
            served = jobs[job_id]
            kinds[served.job.kind] += 1
            counts["total_jobs"] += 1
            counts["total_frames"] += served.job.n_frames
            if is_completed(served.job.status):
                counts["completed_jobs"] += 1
                counts["completed_frames"] += served.job.n_frames
                counts["annotations"] += served.job.n_annotations
        return counts


def _project_name(project_id: str) -> str:
    return f"Emulated project {project_id[:8]}"


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidIdError(
            f"{name} {value!r} cannot be served: ids must be 1-128 characters from "
            "A-Z, a-z, 0-9, '-' and '_'"
        )
