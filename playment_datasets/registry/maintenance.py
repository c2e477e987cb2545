"""Registry upkeep: gc (delete what nothing needs) and renormalize (rebuild tables from
stored raw results without the network); verify lives in ``verify``.

gc deletes only what it can prove unneeded. It stops before deleting anything while the
index is missing or unreadable, or while any indexed version cannot be read safely (a
path that leaves the root, a symlink, a damaged manifest); it never deletes through or
behind a symbolic link; files that vanish while it scans are skipped; and objects of a
running pull are kept: every sha256 in any staging journal, and — while a staging lock
is held — every object stored since that pull took its lock.

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.registry import Registry
    >>> Registry(tempfile.mkdtemp()).gc().summary()["objects_removed"]
    0
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playment_datasets.dataset.dataset import Dataset
from playment_datasets.errors import CorruptDatasetError, RegistryError, RegistryLockError
from playment_datasets.registry.commit import content_id_of, job_objects
from playment_datasets.registry.index import RegistryDir
from playment_datasets.registry.lock import FileLock
from playment_datasets.registry.media import MEDIA_INDEX, media_refs
from playment_datasets.registry.paths import (
    read_version_manifest,
    remove_tree,
    scan_version_dirs,
    unsafe_reason,
)
from playment_datasets.registry.staging import open_staging
from playment_datasets.registry.store import TMP_PREFIX
from playment_datasets.registry.verify import VerifyProblem, VerifyReport, verify_registry
from playment_datasets.schema import TABLE_NAMES, upgrade_table

logger = logging.getLogger(__name__)

__all__ = [
    "GcReport",
    "VerifyProblem",
    "VerifyReport",
    "collect_garbage",
    "renormalize_version",
    "verify_registry",
]


# -- gc ----------------------------------------------------------------------------
@dataclass
class GcReport:
    """What :meth:`Registry.gc` removed (or would remove, with ``dry_run``).

    ``skipped`` lists what gc left alone on purpose (a symlink, an orphan directory
    that is not a complete version, a staging area in use) with the reason.
    """

    dry_run: bool
    objects_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    orphan_versions: list[str] = field(default_factory=list)
    staging_removed: list[str] = field(default_factory=list)
    temp_files_removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "objects_removed": len(self.objects_removed),
            "bytes_freed": self.bytes_freed,
            "orphan_versions": len(self.orphan_versions),
            "staging_removed": len(self.staging_removed),
            "temp_files_removed": len(self.temp_files_removed),
            "skipped": len(self.skipped),
        }

    def __repr__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        s = self.summary()
        return (
            f"<GcReport {verb} {s['objects_removed']} object(s) ({s['bytes_freed']} bytes), "
            f"{s['orphan_versions']} orphan version(s), {s['staging_removed']} staging area(s), "
            f"{s['temp_files_removed']} temporary file(s); {s['skipped']} skipped>"
        )


def _stopped(why: str) -> CorruptDatasetError:
    return CorruptDatasetError(f"gc stopped without deleting anything: {why}")


_SHA_IN_TEXT = re.compile(rb"[0-9a-f]{64}")


def _journal_refs(path: Path) -> set[str]:
    """Every sha256 a staging journal mentions, whatever the shape of its lines: a
    line gc cannot parse may still name an object a pull needs."""
    try:
        data = path.read_bytes()
    except OSError:  # vanished (committed meanwhile) or unreadable: nothing to add
        return set()
    return {m.decode() for m in _SHA_IN_TEXT.findall(data)}


def _walk(root: Path, top: Path) -> Iterator[tuple[Path, list[str]]]:
    """``(directory, file names)`` under ``top``, never entering a symlinked directory."""
    if unsafe_reason(root, top) is not None or not top.is_dir():
        return
    for dirpath, _dirs, files in os.walk(top, followlinks=False):
        yield Path(dirpath), files


def _held_since(lock_path: Path) -> float | None:
    """When the pull holding ``lock_path`` started (the lock file's mtime, which is at or
    before it), or None when nobody holds it. Probed without creating anything."""
    try:
        started = lock_path.stat().st_mtime
        import fcntl  # POSIX: the same flock filelock takes; Windows: see below
    except FileNotFoundError:
        return None
    except ImportError:  # pragma: no cover - Windows
        probe = FileLock(lock_path, timeout=0, what="staging lock")
        try:
            probe.acquire()
        except RegistryLockError:
            return lock_path.stat().st_mtime
        probe.release()
        return None
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return started
    finally:
        os.close(fd)  # closing releases a lock we took
    return None


def _staging_live(reg: RegistryDir, skip: set[str]) -> tuple[set[str], float | None]:
    """Objects referenced by staging journals, and the start of the oldest running pull."""
    refs: set[str] = set()
    oldest: float | None = None
    for directory, files in _walk(reg.root, reg.root / "staging"):
        if directory.relative_to(reg.root).as_posix() in skip:
            continue
        if "journal.jsonl" in files:
            refs |= _journal_refs(directory / "journal.jsonl")
        if "lock" in files and (since := _held_since(directory / "lock")) is not None:
            oldest = since if oldest is None else min(oldest, since)
    return refs, oldest


def _version_refs(reg: RegistryDir, batch_id: str, entry: dict[str, Any], n: int) -> set[str]:
    """The objects version ``n`` references, read only through trusted paths."""
    remedy = (f"Run `playment-datasets verify`, then `repair` or "
              f"`remove {batch_id}@{n}`.")  # fmt: skip
    info = entry["versions"][str(n)]
    try:
        vdir = reg.version_dir(entry["project_id"], batch_id, n, info)
        manifest = read_version_manifest(reg.root, entry["project_id"], batch_id, n)
        if manifest["content_id"] != info["content_id"] or content_id_of(
            manifest["jobs"]
        ) != manifest["content_id"]:
            raise CorruptDatasetError(f"the manifest of {batch_id} v{n} does not match its content")
        errors_path = vdir / "errors.parquet"
        if (reason := unsafe_reason(reg.root, errors_path)) is not None:
            raise CorruptDatasetError(reason)
        errors = pq.read_table(errors_path, columns=["raw_sha256"])
    except (CorruptDatasetError, OSError, KeyError, pa.ArrowException) as exc:
        raise _stopped(
            f"cannot count what {batch_id} v{n} references ({exc}). {remedy}"
        ) from None
    refs: set[Any] = {s for j in manifest["jobs"].values() if isinstance(j, dict)
                      for s in job_objects(j)}  # raw results and fetched masks
    refs |= set(errors.column("raw_sha256").drop_null().to_pylist())
    return {r for r in refs if isinstance(r, str)}


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        return sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _object_files(reg: RegistryDir, report: GcReport) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Stored objects as ``(sha256, path, lstat)``; symlinks and vanished files skipped."""
    root = reg.objects.root
    if (reason := unsafe_reason(reg.root, root)) is not None:
        report.skipped.append(f"objects/: {reason}; no object deleted")
        return
    for sub in _entries(root):
        if len(sub.name) != 2 or not sub.is_dir(follow_symlinks=False):
            if sub.is_symlink():
                report.skipped.append(f"objects/{sub.name}: a symbolic link")
            continue
        for f in _entries(Path(sub.path)):
            sha = sub.name + f.name
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                continue
            try:
                st = f.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we scanned
            if stat.S_ISREG(st.st_mode):
                yield sha, Path(f.path), st


def _collect_orphans(reg: RegistryDir, index: dict[str, Any], report: GcReport) -> None:
    indexed = {(b, int(v)) for b, e in index["batches"].items() for v in e["versions"]}
    for project_id, batch_id, n, vdir, problem in scan_version_dirs(reg.root):
        rel = vdir.relative_to(reg.root).as_posix()
        if problem is not None:
            report.skipped.append(f"{rel}: {problem}")
            continue
        if (batch_id, n) in indexed:
            continue
        try:  # only a complete version left by a crash is an orphan gc may delete
            read_version_manifest(reg.root, project_id, batch_id, n)
        except CorruptDatasetError as exc:
            report.skipped.append(f"{rel}: not in registry.json and not a complete version "
                                  f"({exc}); inspect it, then delete it or run repair")
            continue
        report.orphan_versions.append(rel)
        if not report.dry_run:
            remove_tree(reg.root, vdir)


def _newest_mtime(area: Path) -> float:
    newest = 0.0
    for directory, files in _walk(area, area):
        for name in [".", *files]:
            try:
                newest = max(newest, (directory / name).lstat().st_mtime)
            except FileNotFoundError:
                continue
    return newest


def _remove_stale_staging(reg: RegistryDir, days: float, report: GcReport) -> None:
    cutoff = time.time() - days * 86400
    staging = reg.root / "staging"
    if unsafe_reason(reg.root, staging) is not None:
        return
    for project in _entries(staging):
        if not project.is_dir(follow_symlinks=False):
            continue
        for batch in _entries(Path(project.path)):
            area = Path(batch.path)
            if not batch.is_dir(follow_symlinks=False) or _newest_mtime(area) >= cutoff:
                continue
            lock = FileLock(area / "lock", timeout=0, what="staging lock")
            try:
                lock.acquire()
            except RegistryLockError:
                continue  # a pull is using it
            try:
                report.staging_removed.append(area.relative_to(reg.root).as_posix())
                if not report.dry_run:
                    for child in area.iterdir():
                        if child.name != "lock":
                            remove_tree(reg.root, child)
                    (area / "lock").unlink()
                    area.rmdir()
            finally:
                lock.release()


def _remove_temps(
    reg: RegistryDir, now: float, grace: float, pull_started: float | None, report: GcReport
) -> None:
    temps: list[Path] = []
    if unsafe_reason(reg.root, reg.objects.root) is None:
        for sub in _entries(reg.objects.root):
            if sub.is_dir(follow_symlinks=False):
                temps += [Path(f.path) for f in _entries(Path(sub.path))
                          if f.name.startswith(TMP_PREFIX)]  # fmt: skip
    temps += [Path(e.path) for e in _entries(reg.root) if e.name.startswith(TMP_PREFIX)]
    for tmp in temps:
        try:
            st = tmp.lstat()
        except FileNotFoundError:
            continue  # renamed into place while we scanned
        if pull_started is not None and st.st_mtime >= pull_started - _CLOCK_SLACK:
            continue  # maybe an object a running pull is writing right now
        if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= grace:
            report.temp_files_removed.append(tmp.relative_to(reg.root).as_posix())
            if not report.dry_run:
                tmp.unlink(missing_ok=True)


#: Seconds an object's mtime may precede the lock file's and still count as the pull's.
_CLOCK_SLACK = 2.0


def collect_garbage(
    reg: RegistryDir, *, dry_run: bool, grace_seconds: float, stale_staging_days: float | None
) -> GcReport:
    """Remove unreferenced objects, orphan version directories and temporary files.

    An object is kept when any indexed version or any staging journal references it,
    when it is younger than ``grace_seconds``, or when a staging lock is held and the
    object is no older than that pull (so are temporary files). Staging areas untouched for
    ``stale_staging_days`` are removed when that is given and no pull holds them. Runs
    under the registry lock, so no commit interleaves; see the module docstring for
    when it stops without deleting anything.
    """
    report = GcReport(dry_run=dry_run)
    now = time.time()
    with reg.lock():
        try:
            index = reg.read()
        except RegistryError as exc:
            raise _stopped(str(exc)) from None
        referenced: set[str] = set()
        for batch_id, entry in index["batches"].items():
            for v in entry["versions"]:
                referenced |= _version_refs(reg, batch_id, entry, int(v))
        if stale_staging_days is not None:
            _remove_stale_staging(reg, stale_staging_days, report)
        journal_refs, pull_started = _staging_live(reg, set(report.staging_removed))
        referenced |= journal_refs
        for media_index in (reg.root / "datasets").glob(f"*/*/{MEDIA_INDEX}"):
            referenced |= media_refs(media_index)  # fetched source media
        for sha, path, st in _object_files(reg, report):
            if sha in referenced or now - st.st_mtime < grace_seconds:
                continue
            if pull_started is not None and st.st_mtime >= pull_started - _CLOCK_SLACK:
                continue  # stored by a pull still running, maybe not journaled yet
            report.objects_removed.append(sha)
            report.bytes_freed += st.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
        _collect_orphans(reg, index, report)
        _remove_temps(reg, now, grace_seconds, pull_started, report)
    logger.info("gc: %r", report)
    return report


# -- renormalize -------------------------------------------------------------------
def _fill_job_columns(
    tables: dict[str, pa.Table], job_id: str, info: dict[str, Any]
) -> dict[str, pa.Table]:
    """Fill null result_sha256 / etag of the jobs rows from the manifest."""
    jobs = tables.get("jobs")
    if jobs is None or jobs.num_rows == 0:
        return tables
    for col in ("result_sha256", "etag"):
        value = info.get(col)
        if value is not None and col in jobs.column_names:
            i = jobs.schema.get_field_index(col)
            filled = pc.coalesce(jobs.column(col), pa.scalar(value, pa.string()))
            jobs = jobs.set_column(i, col, filled)
    return {**tables, "jobs": jobs}


def _stored_masks(reg: RegistryDir, entry: Mapping[str, Any]) -> dict[str, Any]:
    """``masks=`` for normalizing a job again: its masks as the pull stored them."""
    if not entry.get("masks"):
        return {}  # no mask fetched: the rows say not_fetched, as in the version
    from playment_datasets.normalize import stored_masks

    return {"masks": stored_masks(entry["masks"], reg.objects.get)}


def renormalize_version(reg: RegistryDir, batch_id: str, version: int | str) -> Dataset:
    """Rebuild the tables of a version from its raw objects as a new child version.

    Jobs with a stored result are normalized again from the raw bytes (with the job
    metadata recorded at pull time); rows of jobs without a result (not completed, or
    failed to fetch) are carried over unchanged. The pull journal is left untouched.
    """
    from playment_datasets.normalize import normalize_result  # written alongside; import late

    project_id, n = reg.resolve(batch_id, version)
    src = reg.load(batch_id, n)
    jobs: dict[str, Any] = src.manifest["jobs"]
    meta = src.job_metadata()
    with open_staging(reg, project_id, batch_id) as staging:
        writer = staging.writer()
        for job_id in sorted(jobs):
            sha = jobs[job_id].get("result_sha256")
            if sha:
                tables = normalize_result(reg.objects.get(sha), job=meta.get(job_id),
                                          strict=False, **_stored_masks(reg, jobs[job_id]))
                writer.write(_fill_job_columns(dict(tables), job_id, jobs[job_id]))
        carried = sorted(j for j, info in jobs.items() if not info.get("result_sha256"))
        if carried:
            for name in TABLE_NAMES:  # tables / columns newer than the version: empty / null
                old = (src.arrow(name, filters=[("job_id", "in", carried)])
                       if name in src.tables() else None)
                writer.write({name: upgrade_table(name, old)})
        result = staging.commit(
            jobs=jobs,
            source=src.manifest.get("source") or {},
            extra={**(src.manifest.get("extra") or {}), "renormalized_from": n},
            force=True,
            parent=n,
            job_meta=meta,
            keep_journal=True,
        )
    logger.info("renormalized %s v%d into v%d", batch_id, n, result.version)
    return reg.load(batch_id, result.version)
