"""verify: re-hash every file of the selected versions and every raw object they use,
and check each manifest against the index, its own jobs and its tables' row counts.

It never raises on corruption: whatever is damaged — an index that is not UTF-8 or of
the wrong shape, a manifest that is not an object, a truncated Parquet file, a missing
object, a path that leaves the registry — becomes one :class:`VerifyProblem`.

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.registry import Registry
    >>> Registry(tempfile.mkdtemp()).verify().ok
    True
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets.dataset.dataset import read_json
from playment_datasets.errors import CorruptDatasetError, RegistryError
from playment_datasets.registry.commit import content_id_of, job_objects
from playment_datasets.registry.index import RegistryDir, version_in
from playment_datasets.registry.paths import (
    check_version_manifest,
    scan_version_dirs,
    unsafe_reason,
    version_rel,
)
from playment_datasets.registry.store import is_sha256, sha256_file

logger = logging.getLogger(__name__)

__all__ = ["VerifyProblem", "VerifyReport", "select_versions", "verify_registry"]


@dataclass(frozen=True)
class VerifyProblem:
    """One damaged thing: ``kind`` is ``missing``, ``mismatch``, ``unreadable`` or
    ``unsafe`` (a path outside the registry or through a symbolic link)."""

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


_Problem = Callable[[Path, str, "str | None", "str | None"], None]


def _check_table(path: Path, rows: Any, problem: _Problem) -> None:
    """The Parquet file reads and holds as many rows as the manifest counts say."""
    try:
        got = pq.ParquetFile(path).metadata.num_rows
    except FileNotFoundError:
        return  # reported by the hash check
    except (pa.ArrowException, OSError) as exc:
        problem(path, "unreadable", "a Parquet file", f"{type(exc).__name__}: {exc}")
        return
    if got != rows:
        problem(path, "mismatch", f"{rows} rows (manifest counts)", f"{got} rows")


def _plain(name: object) -> bool:
    """A file or table name that stays inside its version directory."""
    return isinstance(name, str) and name.strip(".") != "" and not any(
        c in name for c in "/\\\0"
    ) and not name.startswith("..")


def _verify_version(
    reg: RegistryDir,
    report: VerifyReport,
    batch_id: str,
    entry: dict[str, Any],
    n: int,
    seen_objects: dict[str, tuple[str, str | None] | None],
) -> None:
    info = entry["versions"][str(n)]

    def problem(path: Path | str, kind: str, expected: str | None, got: str | None) -> None:
        rel = path if isinstance(path, str) else path.relative_to(reg.root).as_posix()
        report.problems.append(VerifyProblem(rel, kind, expected, got, batch_id, n))

    rel = version_rel(entry["project_id"], batch_id, n)
    if info["path"] != rel:  # the canonical directory is what is checked below
        problem("registry.json", "unsafe", f"path {rel}", f"path {info['path']}")
    vdir = reg.root / rel
    mpath = vdir / "manifest.json"
    report.files_checked += 1
    reason = unsafe_reason(reg.root, mpath)
    if reason is not None:
        problem(rel, "unsafe", "a real directory", reason)
        return
    try:
        manifest = check_version_manifest(
            read_json(mpath, "manifest"), entry["project_id"], batch_id, n
        )
    except FileNotFoundError:
        problem(mpath, "missing", "manifest.json", None)
        return
    except (OSError, RegistryError) as exc:
        problem(mpath, "unreadable", f"a JSON manifest of {batch_id} v{n}", str(exc))
        return
    if manifest["content_id"] != info["content_id"]:
        problem(mpath, "mismatch", info["content_id"], manifest["content_id"])
    jobs = manifest["jobs"]
    if content_id_of(jobs) != manifest["content_id"]:
        problem(mpath, "mismatch", manifest["content_id"], content_id_of(jobs))
    files, counts = manifest["files"], manifest["counts"]
    tables = {f"{t}.parquet": t for t in manifest["tables"] if _plain(t)}
    for t in manifest["tables"]:
        if not _plain(t):
            problem(mpath, "unsafe", "a plain table name", repr(t))
    for fname in sorted(set(tables) - set(files)):
        problem(vdir / fname, "missing", "an entry in manifest files", None)
    for fname, finfo in sorted(files.items()):
        report.files_checked += 1
        path = vdir / fname
        if not _plain(fname):
            problem(mpath, "unsafe", "a file name", repr(fname))
            continue
        if not isinstance(finfo, dict) or not is_sha256(finfo.get("sha256")):
            problem(mpath, "unreadable", f"a sha256 for {fname}", repr(finfo))
            continue
        if (reason := unsafe_reason(reg.root, path)) is not None:
            problem(path, "unsafe", "a regular file", reason)
            continue
        bad = _check_file(path, finfo["sha256"])
        if bad:
            problem(path, bad[0], finfo["sha256"], bad[1])
        if fname in tables:
            _check_table(path, counts.get(tables[fname]), problem)
    for job in jobs.values():
        sha = job.get("result_sha256")
        if sha is not None and not is_sha256(sha):
            problem(mpath, "unreadable", "a result sha256", repr(sha))
            continue
        for sha in job_objects(job):  # the raw result and the fetched masks
            _check_object(reg, sha, seen_objects, report, problem)


def _check_object(reg: RegistryDir, sha: str, seen_objects: dict[str, Any],
                  report: VerifyReport, problem: Callable[..., None]) -> None:
    """Hash one stored object once per verify run; report it when missing or damaged."""
    if not is_sha256(sha):
        problem(reg.root / "objects", "unreadable", "an object sha256", repr(sha))
        return
    if sha not in seen_objects:
        report.objects_checked += 1
        seen_objects[sha] = _check_file(reg.objects.path(sha), sha)
    bad = seen_objects[sha]
    if bad:
        problem(reg.objects.path(sha), bad[0], sha, bad[1])


def select_versions(
    read_index: Callable[[], dict[str, Any]],
    entry_of: Callable[[dict[str, Any], str], dict[str, Any]],
    batch_id: str | None,
    version: int | str | None,
    report: VerifyReport,
) -> list[tuple[str, dict[str, Any], list[int]]]:
    """``(batch, index entry, version numbers)`` to verify; an unreadable index becomes a
    problem of ``report`` (and nothing is selected). Unknown batches and versions raise
    DatasetNotFoundError. Shared by local and remote registries."""
    if version is not None and batch_id is None:
        raise ValueError("verify(version=...) needs a batch_id as well")
    try:
        index = read_index()
    except RegistryError as exc:
        report.problems.append(
            VerifyProblem("registry.json", "unreadable", "a readable JSON index", str(exc))
        )
        return []
    selected = []
    for b in [batch_id] if batch_id is not None else sorted(index["batches"]):
        entry = entry_of(index, b)
        ns = [version_in(entry, b, version)] if version is not None else sorted(
            int(v) for v in entry["versions"]
        )
        selected.append((b, entry, ns))
    return selected


def verify_registry(
    reg: RegistryDir, batch_id: str | None, version: int | str | None
) -> VerifyReport:
    """Check the selected versions; see the module docstring. An unknown batch or
    version raises DatasetNotFoundError; corruption never raises."""
    report = VerifyReport()
    selected = select_versions(reg.read, reg.entry, batch_id, version, report)
    seen_objects: dict[str, tuple[str, str | None] | None] = {}
    for b, entry, n in ((b, e, n) for b, e, ns in selected for n in ns):
        report.versions_checked.append((b, n))
        try:
            _verify_version(reg, report, b, entry, n, seen_objects)
        except (CorruptDatasetError, RegistryError, OSError, ValueError, TypeError,
                KeyError, AttributeError, pa.ArrowException) as exc:  # fmt: skip
            # whatever else is damaged: a problem, never an exception
            logger.debug("verify of %s v%d failed", b, n, exc_info=True)
            report.problems.append(VerifyProblem(
                version_rel(entry["project_id"], b, n), "unreadable", "a readable version",
                f"{type(exc).__name__}: {exc}", b, n,
            ))  # fmt: skip
    if report.problems and not selected:
        return report  # the index itself is unreadable
    indexed = {(b, int(v)) for b, entry, _ in selected for v in entry["versions"]}
    report.orphans = [
        path.relative_to(reg.root).as_posix()
        for _, b, n, path, problem in scan_version_dirs(reg.root)
        if problem is None and (b, n) not in indexed and batch_id in (None, b)
    ]
    return report
