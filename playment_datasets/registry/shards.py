"""Sharded pulls: n machines each pull a deterministic 1/n of a batch, then one commits.

Job ``j`` belongs to shard ``int(sha256(j)[:16], 16) % n`` — stable across machines,
processes and Python versions. ``pull(..., shard=(i, n))`` lists the whole batch, keeps
the jobs of shard ``i``, fetches and normalizes them into
``staging/<project>/<batch>/shards/<i>-of-<n>/`` of a registry directory every worker
shares, and returns that shard as a Dataset of version 0 (not a registry version).
:meth:`Registry.commit_shards` then merges the n shards into ONE version whose content
id equals that of a single-machine pull of the same batch (rows are grouped by shard,
so their order differs from a single pull's listing order).

Each shard area is laid out like a batch staging area (``lock``, ``journal.jsonl``,
``tables/``), so an interrupted shard resumes like any pull; a finished shard has
``result/`` holding its Parquet files and a ``manifest.json`` (``version`` 0 and a
``shard`` field).

Example:
    >>> shard_of("job-1", 4) == shard_of("job-1", 4)
    True
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets.api.ids import validate_id
from playment_datasets.dataset.dataset import Dataset
from playment_datasets.errors import ConfigurationError, RegistryError
from playment_datasets.registry.commit import (
    build_manifest,
    check_source,
    prepare_files,
    validate_jobs,
)
from playment_datasets.registry.index import RegistryDir
from playment_datasets.registry.staging import CommitResult, Staging, content_id_of, open_staging
from playment_datasets.registry.store import atomic_write_json, fsync_dir
from playment_datasets.schema import TABLE_NAMES

logger = logging.getLogger(__name__)

__all__ = [
    "ShardStaging",
    "commit_shards",
    "listing_fingerprint",
    "open_shard_staging",
    "parse_shard",
    "shard_of",
]

_SHARD_RE = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


def shard_of(job_id: str, count: int) -> int:
    """The shard (0 … count-1) that job ``job_id`` belongs to.

    Example:
        >>> 0 <= shard_of("5f2c9a", 8) < 8
        True
    """
    digest = hashlib.sha256(job_id.encode("utf-8")).hexdigest()
    return int(digest[:16], 16) % count


def check_shard(shard: Any) -> tuple[int, int]:
    """``(index, count)`` validated: integers with ``0 <= index < count``."""
    ok = (
        isinstance(shard, (tuple, list))
        and len(shard) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
        and shard[1] >= 1
        and 0 <= shard[0] < shard[1]
    )
    if not ok:
        raise ConfigurationError(
            f"shard must be (index, count) with 0 <= index < count, e.g. (0, 4); got {shard!r}"
        )
    return int(shard[0]), int(shard[1])


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (as given to ``pull --shard``).

    Example:
        >>> parse_shard("1/4")
        (1, 4)
    """
    m = _SHARD_RE.fullmatch(text)
    if not m:
        raise ConfigurationError(f"expected a shard as INDEX/COUNT such as 0/4, got {text!r}")
    return check_shard((int(m.group(1)), int(m.group(2))))


def listing_fingerprint(job_ids: Iterable[str]) -> str:
    """sha256 of the sorted job ids of a listing: shards of one listing agree on it."""
    h = hashlib.sha256()
    for job_id in sorted(job_ids):
        h.update(job_id.encode("utf-8") + b"\n")
    return h.hexdigest()


def shard_dir(
    registry: RegistryDir, project_id: str, batch_id: str, index: int, count: int
) -> Path:
    return registry.root / "staging" / project_id / batch_id / "shards" / f"{index}-of-{count}"


class ShardStaging(Staging):
    """The staging area of one shard; :meth:`commit` finishes the shard (no version)."""

    def __init__(
        self, registry: RegistryDir, project_id: str, batch_id: str, index: int, count: int
    ) -> None:
        self.index, self.count = index, count
        super().__init__(
            registry,
            project_id,
            batch_id,
            path=shard_dir(registry, project_id, batch_id, index, count),
        )

    @property
    def result_path(self) -> Path:
        return self.path / "result"

    def commit(  # type: ignore[override]
        self,
        *,
        jobs: Mapping[str, Mapping[str, Any]],
        source: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> CommitResult:
        """Close the shard's tables and move them to ``result/`` with a shard manifest."""
        self._check_open()
        if self._writer is None:
            self.writer()
        assert self._writer is not None
        counts = self._writer.close()
        self.sync_objects()  # the shard manifest names them
        jobs_v = validate_jobs(jobs)
        source, extra = dict(source or {}), dict(extra or {})
        check_source(source, extra)
        files = prepare_files(self, counts, jobs_v, None)
        cid = content_id_of(jobs_v)
        manifest = build_manifest(
            self, version=0, parent=None, created_at=None, content_id=cid, counts=counts,
            files=files, jobs=jobs_v, source=source, extra=extra,
        )
        atomic_write_json(self.tables_path / "manifest.json", manifest)
        shutil.rmtree(self.result_path, ignore_errors=True)
        self.tables_path.rename(self.result_path)
        fsync_dir(self.path)
        self._writer = None
        self.clear_journal()
        logger.info(
            "finished shard %d/%d of batch %s: %d jobs",
            self.index,
            self.count,
            self.batch_id,
            len(jobs_v),
        )
        # Not marked committed: Staging.close then keeps the area, whose result/ stays
        # for commit_shards().
        return CommitResult(0, True, self.result_path, cid)


def _merge_stats(pulls: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One pull's statistics from the shards': counts add up; seconds is the slowest shard."""
    merged: dict[str, Any] = {}
    for stats in pulls:
        for key, value in stats.items():
            if key == "seconds":
                merged[key] = max(merged.get(key, 0.0), value)
            elif isinstance(value, Mapping):
                into = merged.setdefault(key, {})
                for k, v in value.items():
                    into[k] = into.get(k, 0) + v
            elif isinstance(value, (int, float)):
                merged[key] = merged.get(key, 0) + value
    return merged


def _missing_message(batch_id: str, count: int, missing: list[int]) -> str:
    names = ", ".join(f"{i}/{count}" for i in missing)
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"cannot commit batch {batch_id!r} from {count} shards: {len(missing)} of them {verb} "
        f"not finished ({names}). Run pull(..., shard=(i, {count})) — CLI "
        f"`pull --shard i/{count}` — for each of those, then commit again."
    )


def open_shard_staging(
    registry: RegistryDir, project_id: str, batch_id: str, index: int, count: int
) -> ShardStaging:
    """Open (and lock) the staging area of shard ``index`` of ``count`` of a batch."""
    check_shard((index, count))
    validate_id(project_id, "project id")
    validate_id(batch_id, "batch id")
    registry.check_owner(project_id, batch_id)
    return ShardStaging(registry, project_id, batch_id, index, count)


def commit_shards(registry: RegistryDir, project_id: str, batch_id: str, count: int) -> Dataset:
    """Merge the ``count`` finished shards of a batch into one version (or the latest
    one when its content is unchanged); see the module docstring."""
    validate_id(project_id, "project id")
    validate_id(batch_id, "batch id")
    check_shard((0, count))
    dirs = [shard_dir(registry, project_id, batch_id, i, count) / "result" for i in range(count)]
    missing = [i for i, d in enumerate(dirs) if not (d / "manifest.json").is_file()]
    if missing:
        raise RegistryError(_missing_message(batch_id, count, missing))
    shards = [Dataset(d) for d in dirs]
    infos = [ds.manifest["extra"].get("shard", {}) for ds in shards]
    listings = {info.get("listing_sha256") for info in infos}
    if len(listings) != 1:
        raise RegistryError(
            f"the {count} shards of batch {batch_id!r} saw different job listings (the batch "
            "changed between shard pulls); expected one listing. Pull the shards again."
        )
    jobs: dict[str, dict[str, Any]] = {}
    for ds in shards:
        jobs.update(ds.manifest["jobs"])
    if len(jobs) != infos[0].get("listed"):
        raise RegistryError(
            f"the shards of batch {batch_id!r} hold {len(jobs)} jobs but their listing had "
            f"{infos[0].get('listed')}; expected every job in exactly one shard. Pull them again."
        )
    job_meta: dict[str, dict[str, Any]] = {}
    for ds in shards:
        job_meta.update(ds.job_metadata())
    with open_staging(registry, project_id, batch_id) as staging:
        writer = staging.writer()
        for name in TABLE_NAMES:
            for ds in shards:
                for batch in pq.ParquetFile(ds.path / f"{name}.parquet").iter_batches():
                    writer.write({name: pa.Table.from_batches([batch])})
        pulls = [ds.manifest["extra"].get("pull", {}) for ds in shards]
        result = staging.commit(
            jobs=jobs,
            source=shards[0].manifest.get("source", {}),
            extra={"shards": count, "pull": _merge_stats(pulls), "shard_pulls": pulls},
            job_meta=job_meta,
        )
        # Still under the batch lock: the shards are consumed; an empty area is then removed.
        for d in dirs:
            shutil.rmtree(d.parent, ignore_errors=True)
        try:
            dirs[0].parent.parent.rmdir()
        except OSError:
            pass  # shards of another split remain
    verb = "committed" if result.created else "unchanged; latest is"
    logger.info("batch %s from %d shards: %s version %d", batch_id, count, verb, result.version)
    return registry.load(batch_id, result.version)
