"""Registry upkeep: verify (re-hash everything), gc (delete what nothing needs) and
renormalize (rebuild tables from stored raw results without the network).

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.registry import Registry
    >>> Registry(tempfile.mkdtemp()).verify().ok
    True
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playment_datasets.dataset.dataset import Dataset, read_json
from playment_datasets.errors import CorruptDatasetError, RegistryError, RegistryLockError
from playment_datasets.registry.commit import job_objects
from playment_datasets.registry.index import RegistryDir, version_in
from playment_datasets.registry.lock import FileLock
from playment_datasets.registry.staging import content_id_of, open_staging
from playment_datasets.registry.store import TMP_PREFIX, sha256_file
from playment_datasets.schema import TABLE_NAMES, upgrade_table

logger = logging.getLogger(__name__)

__all__ = ["GcReport", "VerifyProblem", "VerifyReport", "collect_garbage", "verify_registry"]


# -- verify ------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyProblem:
    """One damaged file: ``kind`` is ``missing``, ``mismatch`` or ``unreadable``."""

    path: str  # relative to the registry root
    kind: str
    expected: str | None
    got: str | None
    batch_id: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        where = f"{self.batch_id} v{self.version}: " if self.batch_id else ""
        return f"{where}{self.path}: {self.kind} (expected {self.expected}, got {self.got})"


@dataclass
class VerifyReport:
    """Result of :meth:`Registry.verify`; ``ok`` is true when no problem was found.

    ``orphans`` lists version directories absent from registry.json (left by a crash
    before the index update); they are harmless, never loaded, and removed by gc.
    """

    problems: list[VerifyProblem] = field(default_factory=list)
    versions_checked: list[tuple[str, int]] = field(default_factory=list)
    files_checked: int = 0
    objects_checked: int = 0
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"<VerifyReport {state}: {len(self.versions_checked)} version(s), "
            f"{self.files_checked} file(s), {self.objects_checked} object(s)>"
        )

    def __str__(self) -> str:
        return "\n".join([repr(self), *(f"  {p}" for p in self.problems)])


def _check_file(path: Path, expected: str) -> tuple[str, str | None] | None:
    try:
        got = sha256_file(path)
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:
        return "unreadable", type(exc).__name__
    return None if got == expected else ("mismatch", got)


def verify_registry(
    reg: RegistryDir, batch_id: str | None, version: int | str | None
) -> VerifyReport:
    """Re-hash every file of the selected versions and every raw object they reference."""
    report = VerifyReport()
    rel = lambda p: p.relative_to(reg.root).as_posix()  # noqa: E731
    try:
        index = reg.read()
    except RegistryError as exc:
        report.problems.append(VerifyProblem("registry.json", "unreadable", "JSON index", str(exc)))
        return report
    if version is not None and batch_id is None:
        raise ValueError("verify(version=...) needs a batch_id as well")
    selected: list[tuple[str, dict[str, Any], int]] = []
    batches = [batch_id] if batch_id is not None else sorted(index["batches"])
    for b in batches:
        entry = reg.entry(index, b)  # raises DatasetNotFoundError for an unknown batch
        ns = (
            [version_in(entry, b, version)]
            if version is not None
            else sorted(int(v) for v in entry["versions"])
        )
        selected += [(b, entry, n) for n in ns]
    seen_objects: dict[str, tuple[str, str | None] | None] = {}
    for b, entry, n in selected:
        info = entry["versions"][str(n)]
        vdir = reg.root / info["path"]
        report.versions_checked.append((b, n))

        def problem(path: Path, kind: str, expected: str | None, got: str | None) -> None:
            report.problems.append(VerifyProblem(rel(path), kind, expected, got, b, n))  # noqa: B023

        mpath = vdir / "manifest.json"
        report.files_checked += 1
        try:
            manifest = read_json(mpath, "manifest")
        except FileNotFoundError:
            problem(mpath, "missing", "manifest.json", None)
            continue
        except (OSError, RegistryError, UnicodeDecodeError) as exc:
            problem(mpath, "unreadable", "JSON manifest", type(exc).__name__)
            continue
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            problem(mpath, "unreadable", "JSON manifest", "not a manifest")
            continue
        if manifest.get("content_id") != info["content_id"]:
            problem(mpath, "mismatch", info["content_id"], str(manifest.get("content_id")))
        jobs = manifest.get("jobs", {})
        if content_id_of(jobs) != manifest.get("content_id"):
            problem(mpath, "mismatch", str(manifest.get("content_id")), content_id_of(jobs))
        for table in manifest.get("tables", []):
            if f"{table}.parquet" not in manifest["files"]:
                problem(vdir / f"{table}.parquet", "missing", "an entry in manifest files", None)
        for fname, finfo in sorted(manifest["files"].items()):
            report.files_checked += 1
            bad = _check_file(vdir / fname, finfo["sha256"])
            if bad:
                problem(vdir / fname, bad[0], finfo["sha256"], bad[1])
        for sha in (s for job in jobs.values() for s in job_objects(job)):
            if sha not in seen_objects:
                report.objects_checked += 1
                seen_objects[sha] = _check_file(reg.objects.path(sha), sha)
            bad = seen_objects[sha]
            if bad:
                problem(reg.objects.path(sha), bad[0], sha, bad[1])
    report.orphans = [rel(p) for p in _orphans(reg, index) if batch_id in (None, p.parent.name)]
    return report


# -- gc ----------------------------------------------------------------------------
@dataclass
class GcReport:
    """What :meth:`Registry.gc` removed (or would remove, with ``dry_run``)."""

    dry_run: bool
    objects_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    orphan_versions: list[str] = field(default_factory=list)
    staging_removed: list[str] = field(default_factory=list)
    temp_files_removed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "objects_removed": len(self.objects_removed),
            "bytes_freed": self.bytes_freed,
            "orphan_versions": len(self.orphan_versions),
            "staging_removed": len(self.staging_removed),
            "temp_files_removed": len(self.temp_files_removed),
        }

    def __repr__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        s = self.summary()
        return (
            f"<GcReport {verb} {s['objects_removed']} object(s) ({s['bytes_freed']} bytes), "
            f"{s['orphan_versions']} orphan version(s), {s['staging_removed']} staging area(s), "
            f"{s['temp_files_removed']} temporary file(s)>"
        )


def _orphans(reg: RegistryDir, index: dict[str, Any]) -> list[Path]:
    indexed = {
        info["path"] for entry in index["batches"].values() for info in entry["versions"].values()
    }
    out = []
    for vdir in sorted((reg.root / "datasets").glob("*/*/v*")):
        if (
            re.fullmatch(r"v\d+", vdir.name)
            and vdir.relative_to(reg.root).as_posix() not in indexed
        ):
            out.append(vdir)
    return out


def _journal_refs(path: Path) -> set[str]:
    refs: set[str] = set()
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return refs
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            refs.update(job_objects(rec))
            if isinstance(rec.get("error"), dict):
                refs.add(str(rec["error"].get("raw_sha256")))
    return refs


def _version_refs(vdir: Path) -> set[str]:
    try:
        manifest = read_json(vdir / "manifest.json", "manifest")
        refs = {s for j in manifest["jobs"].values() for s in job_objects(j)}
        errors = pq.read_table(vdir / "errors.parquet", columns=["raw_sha256"])
    except (OSError, KeyError, TypeError, AttributeError, RegistryError, pa.ArrowException) as exc:
        raise CorruptDatasetError(
            f"cannot read the references of {vdir} ({exc}); gc stopped without deleting "
            "anything it might need. Run verify() and remove or re-pull that version."
        ) from None
    refs |= set(errors.column("raw_sha256").drop_null().to_pylist())
    return {r for r in refs if isinstance(r, str)}


def _remove_stale_staging(reg: RegistryDir, days: float, report: GcReport) -> None:
    cutoff = time.time() - days * 86400
    for area in sorted((reg.root / "staging").glob("*/*")):
        if not area.is_dir():
            continue
        newest = max((p.stat().st_mtime for p in area.rglob("*")), default=area.stat().st_mtime)
        if newest >= cutoff:
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
                        shutil.rmtree(child) if child.is_dir() else child.unlink()
                (area / "lock").unlink()
                area.rmdir()
        finally:
            lock.release()


def collect_garbage(
    reg: RegistryDir, *, dry_run: bool, grace_seconds: float, stale_staging_days: float | None
) -> GcReport:
    """Remove unreferenced objects, orphan version directories and temporary files.

    An object is kept when any indexed version or any staging journal references it,
    or when it is younger than ``grace_seconds`` (a pull may be about to reference it).
    Staging areas untouched for ``stale_staging_days`` are removed when that is given
    and no pull holds them. Runs under the registry lock, so no commit interleaves.
    """
    report = GcReport(dry_run=dry_run)
    now = time.time()
    with reg.lock():
        index = reg.read()
        if stale_staging_days is not None:
            _remove_stale_staging(reg, stale_staging_days, report)
        referenced: set[str] = set()
        for entry in index["batches"].values():
            for info in entry["versions"].values():
                referenced |= _version_refs(reg.root / info["path"])
        for journal in (reg.root / "staging").glob("*/*/journal.jsonl"):
            if journal.parent.relative_to(reg.root).as_posix() not in report.staging_removed:
                referenced |= _journal_refs(journal)
        for sha, path in reg.objects.iter_all():
            if sha in referenced:
                continue
            st = path.stat()
            if now - st.st_mtime < grace_seconds:
                continue
            report.objects_removed.append(sha)
            report.bytes_freed += st.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
        for vdir in _orphans(reg, index):
            report.orphan_versions.append(vdir.relative_to(reg.root).as_posix())
            if not dry_run:
                shutil.rmtree(vdir, ignore_errors=True)
        temps = [*reg.objects.iter_tmp(), *reg.root.glob(f"{TMP_PREFIX}*")]
        for tmp in temps:
            if now - tmp.stat().st_mtime >= grace_seconds:
                report.temp_files_removed.append(tmp.relative_to(reg.root).as_posix())
                if not dry_run:
                    tmp.unlink(missing_ok=True)
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
