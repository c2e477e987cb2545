"""The latest version of a batch, as a re-pull compares against it.

Read under the batch's staging lock (so a pull that waited for another one compares
against what that one committed), and checked with ``verify`` first: a latest version
whose files or raw objects are damaged is not trusted. Its Parquet rows are then not held
back, its job records are not reused, and the pull commits a new version even when the
content id is unchanged; raw objects that fail their hash are removed from the store so
they are downloaded again (no ``If-None-Match`` for them).

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.registry import Registry
    >>> read_previous(Registry(tempfile.mkdtemp()), "BATCH", "PROJECT") is None
    True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from playment_datasets.errors import DatasetNotFoundError, PlaymentDatasetsError
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.store import is_sha256

__all__ = ["Previous", "read_previous"]

log = logging.getLogger(__name__)


@dataclass
class Previous:
    """The latest committed version of the batch, as far as a re-pull needs it.

    ``trusted`` is false when verify found its manifest or tables damaged: then nothing
    of its tables is reused and a new version is made whatever the content id says.
    """

    version: int
    content_id: str | None
    jobs: dict[str, dict[str, Any]]
    trusted: bool = True
    jobs_table: pa.Table | None = None
    with_masks: bool = False
    _records: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    def pulled_masks(self) -> bool:
        """Whether this version was pulled with masks (then a job entry without
        ``masks`` means the job has none)."""
        return self.with_masks

    def records(self) -> dict[str, dict[str, Any]]:
        """Job records of the latest version (built once, only when needed)."""
        if self._records is None:
            rows = self.jobs_table.to_pylist() if self.jobs_table is not None else []
            self._records = {row["job_id"]: _record_from_row(row) for row in rows}
        return self._records


def _record_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map a ``jobs`` table row back to the API's job record field names."""
    names = {"n_frames": "frames", "n_annotations": "annotations", "source_url": "result"}
    keep = ("reference_id", "status", "work_flow_id", "tag", "priority_weight")
    record = {k: row[k] for k in keep if row.get(k) is not None}
    record.update({api: row[col] for col, api in names.items() if row.get(col) is not None})
    return record


def read_previous(registry: Registry, batch_id: str, project_id: str) -> Previous | None:
    """The latest version of ``batch_id`` (None when there is none, or of another project).

    Call it while holding the batch's staging lock. The version is verified; its jobs
    table is read now, so a version removed while the pull runs cannot take the rows
    the pull held back with it.
    """
    version = registry.latest_version(batch_id)
    if version is None:
        return None
    try:
        manifest = registry.manifest(batch_id, version)
    except DatasetNotFoundError:
        return None  # removed between the two reads
    except PlaymentDatasetsError as exc:
        log.warning("batch %s v%d: unreadable manifest (%s); pulling it whole again",
                    batch_id, version, exc)
        return Previous(version, None, {}, trusted=False)
    if not isinstance(manifest, dict) or manifest.get("project_id") != project_id:
        return None
    jobs = manifest.get("jobs")
    jobs = {str(k): v for k, v in jobs.items() if isinstance(v, dict)} if isinstance(
        jobs, dict) else {}
    pull_stats = (manifest.get("extra") or {}).get("pull") or {}
    previous = Previous(version, manifest.get("content_id"), jobs,
                        with_masks=isinstance(pull_stats, dict)
                        and bool(pull_stats.get("with_masks")))
    damaged = _damaged(registry, batch_id, version)
    if damaged is None:
        return previous
    bad_objects, other = damaged
    for rel in bad_objects:
        # A content-addressed file whose hash is wrong is of no use to anyone; once it is
        # gone the fetch sends no If-None-Match for it and stores the body again.
        (registry.root / rel).unlink(missing_ok=True)
    if bad_objects:
        log.warning("batch %s v%d: %d raw object(s) failed verification; they are "
                    "downloaded again", batch_id, version, len(bad_objects))
    if other:
        log.warning("batch %s v%d failed verification (%s); its tables are rebuilt into a "
                    "new version", batch_id, version, other[0])
        previous.trusted = False
        return previous
    try:
        previous.jobs_table = registry.load(batch_id, version).arrow("jobs")
    except DatasetNotFoundError:
        return None  # removed meanwhile: nothing to compare against
    except (PlaymentDatasetsError, OSError, pa.ArrowException) as exc:
        log.warning("batch %s v%d: jobs table unreadable (%s)", batch_id, version, exc)
        previous.trusted = False
    return previous


def _damaged(registry: Registry, batch_id: str, version: int) -> tuple[set[str], list[str]] | None:
    """None when the version verifies; else (paths of bad objects, other problems)."""
    try:
        report = registry.verify(batch_id, version)
    except DatasetNotFoundError:
        return set(), ["removed while reading it"]
    except Exception as exc:  # noqa: BLE001 - verify may trip over any corruption
        return set(), [f"verify failed: {type(exc).__name__}"]
    if report.ok:
        return None
    bad: set[str] = set()
    other: list[str] = []
    for problem in report.problems:
        parts = PurePosixPath(problem.path).parts
        sha = "".join(parts[1:]) if len(parts) == 3 and parts[0] == "objects" else ""
        if is_sha256(sha) and problem.kind in ("mismatch", "missing"):
            bad.add(problem.path)
        else:
            other.append(str(problem))
    return bad, other
