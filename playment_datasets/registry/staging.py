"""Staging areas: where a pull writes before a version is committed.

One staging area per batch, ``staging/<project_id>/<batch_id>/``, held under an exclusive
per-batch lock for the life of the :class:`Staging` object. It holds:

* ``journal.jsonl`` — one JSON line per fetched job (job metadata, result sha256, ETag,
  error, and any further fields a fetcher adds), appended the moment the job's raw result
  is stored, from whichever thread stored it (appends are serialized by a lock). A rerun
  of an interrupted pull reads it back with :meth:`Staging.journal` and skips what is
  already stored. Lines are flushed at once and fsynced at most every 0.5 s and on close:
  a process killed outright loses nothing that was flushed (a power cut can lose the last
  few entries, which are simply fetched again). A torn last line is cut off before the
  next append; any line that is not a journal record (not JSON, not an object, fields of
  the wrong type) is skipped with a warning.
* ``journal.synced`` — how many bytes of the journal were durable, together with every
  object they name, at the last journal fsync. Raw objects are written without an fsync
  and synced (:meth:`ObjectStore.sync`) just before each journal fsync; so a journal line
  past that mark may name an object a power cut tore. :meth:`Staging.journal` hashes the
  objects of those lines (at most ~0.5 s of work) and removes damaged ones, which the
  pull then fetches again.
* ``lock`` and ``lock.holder.json`` — the batch lock and who holds it (pid, host, since).
* ``tables/`` — the Parquet files of the attempt in progress, written by
  :class:`TableWriter`. Each attempt starts a fresh one; on commit this directory gets
  its ``manifest.json`` and is renamed to ``datasets/<project_id>/<batch_id>/v<N>``.

Nothing under ``staging/`` is ever read by ``load()``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets.api.ids import validate_id
from playment_datasets.registry.commit import (
    CRASH_ENV,
    JOB_META_FILE,
    CommitResult,
    LatestChangedError,
    commit_staging,
    content_id_of,
    job_objects,
    library_version,
)
from playment_datasets.registry.index import RegistryDir
from playment_datasets.registry.lock import FileLock
from playment_datasets.registry.store import fsync_dir, is_sha256
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES, TABLES

logger = logging.getLogger(__name__)

__all__ = [
    "CRASH_ENV",
    "JOB_META_FILE",
    "ROW_GROUP_ROWS",
    "CommitResult",
    "JournalEntry",
    "LatestChangedError",
    "Staging",
    "TableWriter",
    "content_id_of",
    "open_staging",
    "parse_journal_line",
]

#: Rows per Parquet row group (and the most rows a TableWriter buffers per table).
ROW_GROUP_ROWS = 65_536

_FSYNC_EVERY = 0.5  # seconds
_SYNCED_WIDTH = 24  # bytes of journal.synced: a zero-padded decimal count and a newline


def _read_synced(path: Path) -> int:
    """Bytes of the journal known durable with their objects (0 when unknown)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    text = raw.decode("ascii", "replace").strip()
    if len(raw) != _SYNCED_WIDTH or not text.isdigit():
        return 0  # torn or foreign: trust nothing, check every object
    return int(text)

@dataclass(frozen=True)
class JournalEntry:
    """What a staging journal remembers about one job.

    ``extra`` holds the fields of the line beyond the four known ones, as written (a
    fetcher may journal more about a job, e.g. files it stored besides the result).
    """

    job: dict[str, Any]
    result_sha256: str | None
    etag: str | None
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_JOURNAL_FIELDS = ("job_id", "job", "result_sha256", "etag", "error")


def _is_none_or(value: Any, kind: type) -> bool:
    return value is None or isinstance(value, kind)


def parse_journal_line(line: bytes) -> dict[str, Any] | None:
    """One journal line as a dict, or None when it is not a well-formed journal record.

    A record is a JSON object with a non-empty string ``job_id``, an object (or null)
    ``job``, a hex sha256 (or null) ``result_sha256``, a string (or null) ``etag`` and an
    object (or null) ``error``; other fields are kept as they are.

    Example:
        >>> parse_journal_line(b'{"job_id": "j1", "etag": 3}') is None
        True
        >>> parse_journal_line(b'{"job_id": "j1", "masks": []}')["masks"]
        []
    """
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(rec, dict):
        return None
    job_id = rec.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        return None
    sha = rec.get("result_sha256")
    if not (
        _is_none_or(rec.get("job"), dict)
        and (sha is None or is_sha256(sha))
        and _is_none_or(rec.get("etag"), str)
        and _is_none_or(rec.get("error"), dict)
    ):
        return None
    return rec


def _conform(name: str, table: pa.Table) -> pa.Table:
    schema = TABLES[name]
    if table.schema.equals(schema, check_metadata=False):
        return table
    missing = [c for c in schema.names if c not in table.column_names]
    unexpected = [c for c in table.column_names if c not in schema.names]
    if missing or unexpected:
        raise ValueError(
            f"table {name!r} does not match schema.TABLES[{name!r}]: missing columns "
            f"{missing}, unexpected columns {unexpected}"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"table {name!r} cannot be cast to its schema: {exc}") from None


class TableWriter:
    """Streams tables into one Parquet file per table (zstd, row groups of 64k rows).

    Small tables are buffered per table until a row group is full, so memory stays flat
    however many jobs pass through. Every table file exists after :meth:`close`, even
    when empty. The schema version and library version are stored in the file metadata.

    Example:
        >>> import tempfile
        >>> from playment_datasets.schema import empty_tables
        >>> w = TableWriter(Path(tempfile.mkdtemp()) / "tables")
        >>> w.write(empty_tables())
        >>> w.close()["jobs"]
        0
    """

    def __init__(self, directory: Path, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.row_group_rows = row_group_rows
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[pa.Table]] = {n: [] for n in TABLE_NAMES}
        self._pending_rows = dict.fromkeys(TABLE_NAMES, 0)
        self._rows = dict.fromkeys(TABLE_NAMES, 0)
        self._counts: dict[str, int] | None = None
        meta = {
            b"playment_datasets.schema_version": SCHEMA_VERSION.encode(),
            b"playment_datasets.library_version": library_version().encode(),
        }
        self._schemas = {n: s.with_metadata(meta) for n, s in TABLES.items()}

    @property
    def closed(self) -> bool:
        return self._counts is not None

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.parquet"

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        """Append the rows of each table (keys are table names from schema.TABLES)."""
        if self._counts is not None:
            raise RuntimeError("this TableWriter is closed; take a new one from Staging.writer()")
        for name, table in tables.items():
            if name not in TABLES:
                raise ValueError(
                    f"unknown table {name!r}; expected one of {', '.join(TABLE_NAMES)}"
                )
            table = _conform(name, table)
            if table.num_rows == 0:
                continue
            self._pending[name].append(table)
            self._pending_rows[name] += table.num_rows
            self._rows[name] += table.num_rows
            if self._pending_rows[name] >= self.row_group_rows:
                self._flush(name, final=False)

    def _writer(self, name: str) -> pq.ParquetWriter:
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(
                self.path(name), self._schemas[name], compression="zstd"
            )
        return self._writers[name]

    def _flush(self, name: str, *, final: bool) -> None:
        parts = self._pending[name]
        if not parts:
            return
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        n_out = (
            table.num_rows if final else table.num_rows // self.row_group_rows * self.row_group_rows
        )
        if n_out:
            self._writer(name).write_table(
                table.slice(0, n_out), row_group_size=self.row_group_rows
            )
        rest = table.slice(n_out)
        self._pending[name] = [rest] if rest.num_rows else []
        self._pending_rows[name] = rest.num_rows

    def close(self) -> dict[str, int]:
        """Flush and close every file; return the row count per table. Idempotent."""
        if self._counts is not None:
            return dict(self._counts)
        for name in TABLE_NAMES:
            self._flush(name, final=True)
            writer = self._writer(name)  # creates the file of an empty table
            writer.close()
            with open(self.path(name), "rb") as f:
                os.fsync(f.fileno())
        self._writers.clear()
        fsync_dir(self.directory)
        self._counts = dict(self._rows)
        return dict(self._counts)

    def abort(self) -> None:
        """Close open files without caring about their content (the directory is discarded)."""
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - discarding anyway
                logger.debug("ignoring error while aborting a table writer", exc_info=True)
        self._writers.clear()
        self._counts = dict(self._rows)


def _repair_tail(path: Path) -> None:
    """Cut a torn (newline-less) last line off the journal so appends start cleanly."""
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        return
    with f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            idx = f.read(step).rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                break
        logger.warning("journal %s ended in a torn line; dropping %d bytes", path, size - keep)
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())


class Staging:
    """The staging area of one batch, locked for the life of the object.

    Obtain one with :meth:`Registry.open_staging` and use it as a context manager.

    Example:
        >>> import tempfile
        >>> from playment_datasets.registry.registry import Registry
        >>> reg = Registry(tempfile.mkdtemp())
        >>> row = pa.Table.from_pylist([{"job_id": "job1"}], schema=TABLES["jobs"])
        >>> with reg.open_staging("proj", "batch") as st:
        ...     st.record("job1", {"id": "job1"}, reg.put_object(b"{}"), etag=None)
        ...     st.writer().write({"jobs": row})
        ...     res = st.commit(jobs={"job1": {"result_sha256": reg.put_object(b"{}"),
        ...                                    "etag": None, "status": "completed"}})
        >>> res.version, res.created
        (1, True)
    """

    def __init__(
        self,
        registry_dir: RegistryDir,
        project_id: str,
        batch_id: str,
        *,
        path: Path | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.registry_dir = registry_dir
        self.project_id = project_id
        self.batch_id = batch_id
        self.path = (
            path if path is not None else registry_dir.root / "staging" / project_id / batch_id
        )
        self._lock = FileLock(
            self.path / "lock",
            timeout=registry_dir.lock_timeout if lock_timeout is None else lock_timeout,
            what=f"staging lock of batch {batch_id!r}",
            record_holder=True,
        )
        self._lock.acquire()
        self._journal_lock = threading.Lock()  # workers append from their own threads
        self._journal_file: Any = None
        self._last_fsync = 0.0
        self._sync_lock = threading.Lock()  # one journal fsync at a time, outside appends
        self._synced_to = 0  # journal bytes durable with their objects, as last recorded
        self._writer: TableWriter | None = None
        self._committed = False

    # -- journal -------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def synced_path(self) -> Path:
        return self.path / "journal.synced"

    @property
    def tables_path(self) -> Path:
        return self.path / "tables"

    def _check_open(self) -> None:
        if not self._lock.held:
            raise RuntimeError(f"the staging area of batch {self.batch_id!r} is closed")

    def journal(self) -> dict[str, JournalEntry]:
        """Job id → latest journal entry; unreadable lines are skipped with a warning."""
        entries: dict[str, JournalEntry] = {}
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return entries
        bad: list[int] = []
        synced = _read_synced(self.synced_path)
        unsynced: dict[str, dict[str, Any]] = {}  # job id → its latest line past the mark
        offset = 0
        for n, line in enumerate(raw.splitlines(keepends=True), 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            rec = parse_journal_line(line)
            if rec is None:
                bad.append(n)
                continue
            if start >= synced:
                unsynced[rec["job_id"]] = rec
            else:
                unsynced.pop(rec["job_id"], None)
            entries[rec["job_id"]] = JournalEntry(
                job=rec.get("job") or {},
                result_sha256=rec.get("result_sha256"),
                etag=rec.get("etag"),
                error=rec.get("error"),
                extra={k: v for k, v in rec.items() if k not in _JOURNAL_FIELDS},
            )
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (", …" if len(bad) > 10 else "")
            logger.warning(
                "skipping %d unreadable line(s) of %s (line %s): not journal records; "
                "those jobs are fetched again", len(bad), self.journal_path, shown,
            )
        objects = self.registry_dir.objects
        for rec in unsynced.values():
            for sha in job_objects(rec):
                if is_sha256(sha):
                    objects.confirm(sha)  # a torn object is removed: has() is then False
        return entries

    def journal_offsets(self) -> dict[str, int]:
        """Job id → byte offset of its latest readable journal line.

        Unlike :meth:`journal` this keeps no parsed records, so a commit of a very
        large batch reads its journal in constant memory per job.
        """
        offsets: dict[str, int] = {}
        try:
            f = open(self.journal_path, "rb")
        except FileNotFoundError:
            return offsets
        with f:
            offset = 0
            for line in f:
                rec = parse_journal_line(line)
                if rec is not None:  # else a torn or unreadable line: see journal()
                    offsets[rec["job_id"]] = offset
                offset += len(line)
        return offsets

    def record(
        self,
        job_id: str,
        job: dict[str, Any],
        result_sha256: str | None,
        etag: str | None,
        error: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one job's outcome to the journal (flushed now, fsynced every ≤0.5 s).

        Safe to call from several threads at once: lines are appended whole, one at a
        time. ``extra`` adds fields to the line (read back in ``JournalEntry.extra``).
        """
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"expected a non-empty job id string, got {job_id!r}")
        if result_sha256 is not None and not is_sha256(result_sha256):
            raise ValueError(
                f"expected a hex sha256 or None for job {job_id!r}, got {result_sha256!r}"
            )
        fields = {k: v for k, v in (extra or {}).items() if k not in _JOURNAL_FIELDS}
        line = json.dumps(
            {
                "job_id": job_id,
                "job": job,
                "result_sha256": result_sha256,
                "etag": etag,
                "error": error,
                **fields,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode("utf-8") + b"\n"
        with self._journal_lock:
            self._check_open()
            if self._journal_file is None:
                self.path.mkdir(parents=True, exist_ok=True)
                _repair_tail(self.journal_path)
                self._confirm_unsynced()
                self._journal_file = open(self.journal_path, "ab")
            self._journal_file.write(line)
            self._journal_file.flush()
            now = time.monotonic()
            due = now - self._last_fsync >= _FSYNC_EVERY
            if due:
                self._last_fsync = now
        if due:
            self._sync_journal()

    def _confirm_unsynced(self) -> None:
        """Before appending to a journal left by an earlier process: check the objects
        its lines past the durable mark name, so that the next mark never covers a torn
        object."""
        try:
            f = open(self.journal_path, "rb")
        except FileNotFoundError:  # a new journal: a mark left by an old one says nothing
            self.synced_path.unlink(missing_ok=True)
            return
        with f:
            f.seek(_read_synced(self.synced_path))
            tail = f.read()
        objects = self.registry_dir.objects
        for line in tail.splitlines():
            rec = parse_journal_line(line)
            for sha in job_objects(rec) if rec is not None else ():
                if is_sha256(sha):
                    objects.confirm(sha)

    def _sync_journal(self, *, closing: bool = False) -> None:
        """Sync the objects, then fsync the journal, then record how far it is durable.

        Every line up to the recorded size was appended after its objects were stored,
        so the objects sync covers them: a durable line never names a non-durable object
        (lines past the mark are checked on reading, see :meth:`journal`).
        """
        with self._sync_lock:
            with self._journal_lock:
                f = self._journal_file
                if f is None:
                    return
                f.flush()
                size = f.tell()
                fd = f.fileno()
                if closing:
                    self._journal_file = None
            try:
                self.registry_dir.objects.sync()
                os.fsync(fd)
                if size > self._synced_to:
                    self._write_synced(size)
            finally:
                if closing:
                    f.close()

    def _write_synced(self, size: int) -> None:
        data = f"{size:0{_SYNCED_WIDTH - 1}d}\n".encode("ascii")
        fd = os.open(self.synced_path, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            os.pwrite(fd, data, 0)  # one sector: written whole or not at all
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._synced_to == 0:
            fsync_dir(self.path)  # the file may be new
        self._synced_to = size

    def _close_journal(self) -> None:
        self._sync_journal(closing=True)

    def sync_objects(self) -> None:
        """Make every raw object stored so far durable (done before any commit)."""
        self.registry_dir.objects.sync()

    def clear_journal(self) -> None:
        """Forget every journal entry (done after a successful commit)."""
        self._check_open()
        self._close_journal()
        # The mark first: a journal without one is checked whole, never the reverse.
        self.synced_path.unlink(missing_ok=True)
        self._synced_to = 0
        self.journal_path.unlink(missing_ok=True)
        fsync_dir(self.path)

    # -- tables --------------------------------------------------------------------
    def writer(self) -> TableWriter:
        """A fresh TableWriter for this attempt; any earlier ``tables/`` is discarded."""
        self._check_open()
        self._discard_tables()
        self._writer = TableWriter(self.tables_path)
        return self._writer

    def _discard_tables(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        shutil.rmtree(self.tables_path, ignore_errors=True)

    # -- commit --------------------------------------------------------------------
    def commit(
        self,
        *,
        jobs: Mapping[str, Mapping[str, str | None]],
        source: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        force: bool = False,
        parent: int | None = None,
        job_meta: Mapping[str, Mapping[str, Any]] | None = None,
        keep_journal: bool = False,
        tables_complete: bool = True,
    ) -> CommitResult:
        """Turn the staged tables into a new immutable version (or reuse the latest).

        ``jobs`` maps every job id of the batch to ``{"result_sha256", "etag", "status"}``.
        When its content id equals the latest version's and ``force`` is false, nothing is
        written and the latest version is returned with ``created=False``. ``parent``
        overrides the recorded parent (default: the latest version); ``job_meta`` gives
        job metadata for jobs missing from the journal; ``keep_journal`` leaves the
        journal in place. Tables come from the last :meth:`writer`; without one, every
        table is empty. The tables must hold one ``jobs`` row per job and every
        ``result_sha256`` must be stored, else RegistryError and nothing is committed.
        ``tables_complete=False`` (a pull that held back the rows of unchanged jobs)
        commits only as "unchanged" and raises LatestChangedError when the latest
        version holds other content by now.
        """
        self._check_open()
        if self._writer is None:
            self.writer()
        assert self._writer is not None
        counts = self._writer.close()
        self.sync_objects()  # the manifest names them: they must be on disk first
        result = commit_staging(
            self,
            counts=counts,
            jobs=jobs,
            source=dict(source or {}),
            extra=dict(extra or {}),
            force=force,
            parent=parent,
            job_meta=job_meta,
            tables_complete=tables_complete,
        )
        self._writer = None
        shutil.rmtree(self.tables_path, ignore_errors=True)  # present when nothing was created
        if not keep_journal:
            self.clear_journal()
        self._committed = True
        return result

    # -- life cycle ----------------------------------------------------------------
    def close(self) -> None:
        """Close the journal, drop unfinished tables and release the lock."""
        if not self._lock.held:
            return
        try:
            self._close_journal()
            if self._writer is not None:
                self._writer.abort()
                self._writer = None
            if self._committed and not self.journal_path.exists():
                shutil.rmtree(self.tables_path, ignore_errors=True)
                try:  # nothing left to resume: remove the area (the lock protocol allows it)
                    self._lock.clear_holder()
                    (self.path / "lock").unlink()
                    self.path.rmdir()
                except OSError:
                    pass
        finally:
            self._lock.release()

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._lock.held else "closed"
        return f"<Staging project={self.project_id} batch={self.batch_id} {state}>"


def open_staging(
    registry_dir: RegistryDir, project_id: str, batch_id: str, *,
    lock_timeout: float | None = None,
) -> Staging:
    """Open (and lock) the staging area of a batch in ``registry_dir``, after checking
    the ids and that the batch is not registered under another project.

    ``lock_timeout`` (default: the registry's) is how long to wait for another holder.
    """
    validate_id(project_id, "project id")
    validate_id(batch_id, "batch id")
    registry_dir.check_owner(project_id, batch_id)
    return Staging(registry_dir, project_id, batch_id, lock_timeout=lock_timeout)
