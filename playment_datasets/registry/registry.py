"""The versioned local dataset registry.

Layout under the registry root (``default_registry_path()`` unless given)::

    registry.json                      index: batches → versions, tags (source of truth)
    registry.lock                      lock file of the index
    objects/ab/cdef…                   raw results, content-addressed by sha256
    datasets/<project_id>/<batch_id>/v<N>/
        manifest.json  <table>.parquet …  job_meta.jsonl.gz
    staging/<project_id>/<batch_id>/   in-flight pulls (journal.jsonl, tables/, lock)

A version is immutable and appears atomically (see ``playment_datasets.registry.commit``).
Reading needs no lock: ``registry.json`` is only ever replaced whole.

:class:`Registry` is a thin face: the work is done by the modules of this folder, which
receive a :class:`~playment_datasets.registry.index.RegistryDir` (root, lock timeout,
object store) and never import this module.

Example:
    >>> import tempfile
    >>> reg = Registry(tempfile.mkdtemp())
    >>> reg.datasets().empty
    True
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from playment_datasets._public import public
from playment_datasets.api.ids import validate_id
from playment_datasets.errors import (
    ConfigurationError,
    CorruptDatasetError,
    DatasetNotFoundError,
)
from playment_datasets.registry.index import (
    _VERSION_RE,
    INDEX_FORMAT,
    RegistryDir,
    _join,
    check_index,
    find_entry,
    version_in,
    version_info,
)
from playment_datasets.registry.paths import remove_tree, unsafe_reason, version_rel
from playment_datasets.registry.store import ObjectStore

if TYPE_CHECKING:
    # The modules that read or write Parquet (pyarrow) or build DataFrames (pandas) are
    # imported by the methods that need them: listing, tagging and resolving versions
    # read only JSON, so the command line answers them without importing either.
    import pandas as pd

    from playment_datasets.dataset.dataset import Dataset
    from playment_datasets.dataset.diff import DatasetDiff
    from playment_datasets.registry.maintenance import GcReport, VerifyReport
    from playment_datasets.registry.repair import RepairReport
    from playment_datasets.registry.staging import CommitResult, Staging

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

__all__ = [
    "INDEX_FORMAT",
    "CommitResult",
    "Registry",
    "Staging",
    "check_index",
    "default_registry_path",
    "load",
]

#: Environment variable naming the registry root.
HOME_ENV = "PLAYMENT_DATASETS_HOME"

_TAG_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,127}")


def default_registry_path() -> Path:
    """The registry root: ``$PLAYMENT_DATASETS_HOME``, else the per-user data directory.

    Linux and other Unix: ``$XDG_DATA_HOME/playment-datasets`` or
    ``~/.local/share/playment-datasets``; macOS: ``~/Library/Application
    Support/playment-datasets``; Windows: ``%LOCALAPPDATA%\\playment-datasets``.

    Example:
        >>> default_registry_path().name  # doctest: +SKIP
        'playment-datasets'
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    # appauthor=False: no vendor level on Windows (%LOCALAPPDATA%\playment-datasets).
    import platformdirs

    return platformdirs.user_data_path("playment-datasets", appauthor=False)


def _is_remote_url(value: str) -> bool:
    """Whether ``value`` is a URL of a non-local filesystem (``s3://…``, ``memory://…``)."""
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() == "file":
        return False
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+", scheme) is not None


def _file_url_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"file URL {url!r} names host {parts.netloc!r}; expected file:///absolute/path. "
            "Use a local path or an s3:// URL."
        )
    return unquote(parts.path)


#: Columns of :meth:`Registry.datasets` and their dtypes (``"arrow_string"``: an Arrow
#: string, like the tables of a Dataset): counts as int64, ``created_at`` as UTC
#: datetimes, ``tags`` as lists.
DATASETS_COLUMNS: dict[str, str] = {
    "project_id": "arrow_string", "batch_id": "arrow_string",
    "version": "int64", "created_at": "datetime64[ns, UTC]", "n_jobs": "int64",
    "n_annotations": "int64", "n_errors": "int64", "tags": "object",
    "content_id": "arrow_string", "path": "arrow_string",
}


def _datasets_dtypes() -> dict[str, Any]:
    """:data:`DATASETS_COLUMNS` as pandas dtypes."""
    import pandas as pd
    import pyarrow as pa

    return {name: pd.ArrowDtype(pa.string()) if dtype == "arrow_string" else dtype
            for name, dtype in DATASETS_COLUMNS.items()}


class Registry:
    """A directory of versioned datasets, raw result objects and staging areas.

    ``root`` defaults to :func:`default_registry_path`; ``lock_timeout`` is how many
    seconds to wait for a lock held by another process before RegistryLockError.

    ``root`` may also be a URL such as ``s3://bucket/prefix``: the registry then lives
    on object storage (a :class:`playment_datasets.registry.remote.RemoteRegistry`, see
    docs/scale-out.md). ``file://`` URLs name local directories.

    Example:
        >>> import tempfile
        >>> reg = Registry(tempfile.mkdtemp())
        >>> sha = reg.put_object(b'{"a": 1}')
        >>> reg.get_object(sha)
        b'{"a": 1}'
    """

    #: The subclass that ``Registry(url)`` makes for a URL root: RemoteRegistry, which
    #: sets itself here when defined (imported on the first such URL).
    _url_class: ClassVar[type[Registry] | None] = None

    def __init_subclass__(cls, *, serves_urls: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if serves_urls:
            Registry._url_class = cls

    def __new__(cls, root: Any = None, *args: Any, **kwargs: Any) -> Registry:
        if cls is Registry and isinstance(root, str) and _is_remote_url(root):
            if Registry._url_class is None:
                public("RemoteRegistry")  # importing it sets Registry._url_class
            assert Registry._url_class is not None
            return super().__new__(Registry._url_class)
        return super().__new__(cls)

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = 60.0
    ) -> None:
        if isinstance(root, str) and root.startswith("file://"):
            root = _file_url_path(root)
        if root is not None and not os.fspath(root):
            raise ConfigurationError(
                "registry path is empty; expected a directory (an empty path would mean the "
                "current directory). Pass a path, or leave it out for the default registry."
            )
        self.root = Path(root).expanduser() if root is not None else default_registry_path()
        if self.root.exists() and not self.root.is_dir():
            raise ConfigurationError(
                f"registry path {self.root} is a file, not a directory; point registry= "
                "(--registry, PLAYMENT_DATASETS_HOME) at a directory."
            )
        self.lock_timeout = float(lock_timeout)
        self._objects = ObjectStore(self.root / "objects")

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    @property
    def _dir(self) -> RegistryDir:
        """This registry's directory, handed to the modules that do the work."""
        return RegistryDir(self.root, self.lock_timeout, self._objects)

    def _location(self, rel: str = "") -> str:
        """Where ``rel`` (a path relative to the registry root) is, for messages and tables."""
        return str(self.root / rel) if rel else str(self.root)

    # -- objects -------------------------------------------------------------------
    def put_object(self, data: bytes) -> str:
        """Store raw bytes by content; return their sha256 (idempotent).

        The object is on disk for good after the next journal fsync or commit of a
        staging area of this registry, or after :meth:`sync_objects`.

        Example:
            >>> import tempfile
            >>> reg = Registry(tempfile.mkdtemp())
            >>> reg.get_object(reg.put_object(b"{}"))
            b'{}'
        """
        return self._objects.put(data)

    def sync_objects(self) -> None:
        """Make every object this Registry stored so far durable (a no-op when none).

        Example:
            >>> import tempfile
            >>> reg = Registry(tempfile.mkdtemp())
            >>> _ = reg.put_object(b"{}")
            >>> reg.sync_objects()
        """
        self._objects.sync()

    def get_object(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256`` (DatasetNotFoundError when absent)."""
        return self._objects.get(sha256)

    def has_object(self, sha256: str) -> bool:
        """Whether an object with that sha256 is stored."""
        return self._objects.has(sha256)

    # -- index ---------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.root / "registry.json"

    @contextmanager
    def _index_lock(self) -> Iterator[None]:
        with self._dir.lock():
            yield

    def _read_index(self) -> dict[str, Any]:
        return self._dir.read()

    def _write_index(self, index: dict[str, Any]) -> None:
        self._dir.write(index)

    def _update_index(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Apply ``change`` to the index and write it back, atomically with respect to
        every other writer; an exception in ``change`` writes nothing."""
        return self._dir.update(change)

    # -- hooks of pull() -----------------------------------------------------------
    def _pull_target(self) -> Registry:
        """The local registry a pull stages and commits into (this one)."""
        return self

    def _publish_pulled(self, dataset: Dataset) -> Dataset:
        """What a pull returns once committed into :meth:`_pull_target` (the dataset)."""
        return dataset

    def _entry(self, index: dict[str, Any], batch_id: str) -> dict[str, Any]:
        return find_entry(index, batch_id, self._location())

    _version_in = staticmethod(version_in)

    # -- staging -------------------------------------------------------------------
    def open_staging(
        self, project_id: str, batch_id: str, *, lock_timeout: float | None = None
    ) -> Staging:
        """Open (and lock) the staging area of a batch; use it as a context manager.

        Waits up to ``lock_timeout`` seconds (default: the registry's) for another pull
        of the same batch; the RegistryLockError then says which process holds it.

        Example:
            >>> import tempfile
            >>> with Registry(tempfile.mkdtemp()).open_staging("p1", "b1") as st:
            ...     st.journal()
            {}
        """
        from playment_datasets.registry.staging import open_staging

        return open_staging(self._dir, project_id, batch_id, lock_timeout=lock_timeout)

    def open_shard_staging(
        self, project_id: str, batch_id: str, index: int, count: int
    ) -> Staging:
        """Open (and lock) the staging area of shard ``index`` of ``count`` of a batch
        (``staging/<p>/<b>/shards/<index>-of-<count>/``); see
        :mod:`playment_datasets.registry.shards`."""
        from playment_datasets.registry.shards import open_shard_staging

        return open_shard_staging(self._dir, project_id, batch_id, index, count)

    def commit_shards(self, project_id: str, batch_id: str, count: int) -> Dataset:
        """Merge the ``count`` finished shards of a batch into one version.

        Raises RegistryError naming the shards that are not finished yet. The version's
        content id equals a single-machine pull's; when it equals the latest version's,
        no version is made and the latest is returned.

        Example:
            >>> reg.commit_shards("PROJECT_ID", "BATCH_ID", 4).version  # doctest: +SKIP
            1
        """
        from playment_datasets.registry.shards import commit_shards

        return commit_shards(self._dir, project_id, batch_id, count)

    # -- queries -------------------------------------------------------------------
    def versions(self, batch_id: str) -> list[int]:
        """Committed version numbers of a batch, ascending ([] for an unknown batch)."""
        validate_id(batch_id, "batch id")
        entry = self._read_index()["batches"].get(batch_id)
        return sorted(int(v) for v in entry["versions"]) if entry else []

    def latest_version(self, batch_id: str) -> int | None:
        """The highest committed version of a batch, or None."""
        versions = self.versions(batch_id)
        return versions[-1] if versions else None

    def resolve(self, batch_id: str, version: int | str = "latest") -> tuple[str, int]:
        """``(project_id, version)``; version is ``"latest"``, ``3``, ``"3"``, ``"v3"`` or a tag.

        Example:
            >>> import tempfile
            >>> Registry(tempfile.mkdtemp()).resolve("nope")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            playment_datasets.errors.DatasetNotFoundError: no batch 'nope' in the registry ...
        """
        project_id, n, _ = self._version_info(batch_id, version)
        return project_id, n

    def _version_info(self, batch_id: str, version: int | str) -> tuple[str, int, dict[str, Any]]:
        return version_info(self._read_index(), batch_id, version, self._location())

    def load(self, batch_id: str, version: int | str = "latest") -> Dataset:
        """The Dataset of one version: reads only ``manifest.json``; tables load lazily."""
        return self._dir.load(batch_id, version)

    def manifest(self, batch_id: str, version: int | str = "latest") -> dict[str, Any]:
        """The manifest of one version as a dict."""
        return self.load(batch_id, version).manifest

    def datasets(self) -> pd.DataFrame:
        """One row per version: project_id, batch_id, version, created_at, n_jobs,
        n_annotations, n_errors, tags, content_id, path."""
        import pandas as pd

        dtypes = _datasets_dtypes()
        df = pd.DataFrame(self._dataset_rows(), columns=list(dtypes))
        # The same dtypes with or without rows (an empty frame would be all object).
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
        return df.astype(dtypes)

    def _dataset_rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`datasets` as dicts, read from ``registry.json`` alone
        (``created_at`` as stored: an ISO 8601 string)."""
        rows = []
        for batch_id, entry in sorted(self._read_index()["batches"].items()):
            tags_of: dict[int, list[str]] = {}
            for name, v in sorted(entry.get("tags", {}).items()):
                tags_of.setdefault(int(v), []).append(name)
            for v, info in sorted(entry["versions"].items(), key=lambda kv: int(kv[0])):
                counts = info.get("counts", {})
                rows.append(
                    {
                        "project_id": entry["project_id"],
                        "batch_id": batch_id,
                        "version": int(v),
                        "created_at": info["created_at"],
                        "n_jobs": int(info.get("n_jobs", counts.get("jobs", 0))),
                        "n_annotations": int(counts.get("annotations", 0)),
                        "n_errors": int(counts.get("errors", 0)),
                        "tags": tags_of.get(int(v), []),
                        "content_id": info["content_id"],
                        "path": self._location(info["path"]),
                    }
                )
        return rows

    # -- tags and removal ----------------------------------------------------------
    def tag(self, batch_id: str, version: int | str, name: str) -> None:
        """Point tag ``name`` at a version (moving it if it exists).

        Tag names start with a letter or ``_``, use letters, digits, ``.``, ``_``, ``-``,
        and may not be ``latest`` or look like a version (``v3``).
        """
        if (
            not isinstance(name, str)
            or not _TAG_RE.fullmatch(name)
            or name == "latest"
            or _VERSION_RE.fullmatch(name)
        ):
            raise ConfigurationError(
                f"invalid tag name {name!r}: expected a letter or '_' followed by up to 127 "
                "letters, digits, '.', '_' or '-', other than 'latest' or a version like 'v3'. "
                "Choose another name, e.g. 'gold'."
            )

        def change(index: dict[str, Any]) -> tuple[int, Any]:
            entry = self._entry(index, batch_id)
            n = self._version_in(entry, batch_id, version)
            old = entry.setdefault("tags", {}).get(name)
            entry["tags"][name] = n
            return n, old

        n, old = self._update_index(change)
        if old is not None and old != n:
            logger.info("moved tag %s of %s from v%s to v%d", name, batch_id, old, n)

    def untag(self, batch_id: str, name: str) -> None:
        """Remove tag ``name`` of a batch (the version stays)."""

        def change(index: dict[str, Any]) -> None:
            entry = self._entry(index, batch_id)
            tags = entry.setdefault("tags", {})
            if name not in tags:
                known = _join([repr(t) for t in sorted(tags)]) or "none"
                raise DatasetNotFoundError(
                    f"batch {batch_id!r} has no tag {name!r}; its tags are: {known}."
                )
            del tags[name]

        self._update_index(change)

    def remove(self, batch_id: str, version: int | str) -> None:
        """Delete a version: its index entry and tags first, then its directory.

        The directory is ``datasets/<project>/<batch>/v<N>`` whatever the index's
        ``path`` says; nothing outside the registry root or behind a symlink is ever
        deleted (CorruptDatasetError, index untouched). Raw objects it referenced stay
        until :meth:`gc`.

        Example:
            >>> reg.remove("BATCH_ID", 2)  # doctest: +SKIP
        """
        with self._index_lock():
            index = self._read_index()
            entry = self._entry(index, batch_id)
            n = self._version_in(entry, batch_id, version)
            vdir = self.root / version_rel(entry["project_id"], batch_id, n)
            reason = unsafe_reason(self.root, vdir.parent)
            if reason is not None:
                raise CorruptDatasetError(
                    f"refusing to remove {batch_id} v{n}: {reason}. Nothing was deleted; move "
                    "the link away and run `playment-datasets repair`."
                )
            entry["versions"].pop(str(n))
            entry["tags"] = {t: v for t, v in entry.get("tags", {}).items() if int(v) != n}
            if not entry["versions"]:
                del index["batches"][batch_id]
            self._write_index(index)
            # Not in the index any more: a crash here leaves an orphan that gc removes.
            remove_tree(self.root, vdir)
        logger.info("removed %s v%d", batch_id, n)

    # -- maintenance ---------------------------------------------------------------
    def gc(
        self,
        *,
        dry_run: bool = False,
        grace_seconds: float = 3600.0,
        stale_staging_days: float | None = None,
    ) -> GcReport:
        """Delete what no committed version needs; see :func:`maintenance.collect_garbage`."""
        from playment_datasets.registry.maintenance import collect_garbage

        return collect_garbage(
            self._dir,
            dry_run=dry_run,
            grace_seconds=grace_seconds,
            stale_staging_days=stale_staging_days,
        )

    def verify(self, batch_id: str | None = None, version: int | str | None = None) -> VerifyReport:
        """Re-hash files and objects of one version, one batch or everything; never raises
        on corruption (unknown batch/version still raise DatasetNotFoundError)."""
        from playment_datasets.registry.maintenance import verify_registry

        return verify_registry(self._dir, batch_id, version)

    def repair(self) -> RepairReport:
        """Rebuild ``registry.json`` from the manifests of the version directories,
        keeping the old index's tags that still name an existing version.

        Example:
            >>> reg.repair().added  # doctest: +SKIP
            ['468b6ae3 v1', '468b6ae3 v2']
        """
        from playment_datasets.registry.repair import repair_registry

        return repair_registry(self._dir)

    def diff(self, batch_id: str, a: int | str, b: int | str) -> DatasetDiff:
        """What changed from version ``a`` to version ``b`` of a batch, job by job and
        annotation by annotation."""
        from playment_datasets.dataset.diff import diff_datasets

        return diff_datasets(self.load(batch_id, a), self.load(batch_id, b))

    def renormalize(self, batch_id: str, version: int | str = "latest") -> Dataset:
        """Rebuild a version's tables from its stored raw results with the current
        normalizer, as a new version whose parent is ``version``.

        A new version is made even when the content id is unchanged: the raw results
        are the same but the tables (schema or library version) may differ.
        """
        from playment_datasets.registry.maintenance import renormalize_version

        return renormalize_version(self._dir, batch_id, version)


def load(
    batch_id: str,
    version: int | str = "latest",
    *,
    registry: str | os.PathLike[str] | Registry | None = None,
) -> Dataset:
    """Load a committed version of a batch from the local registry (no network).

    ``version`` is ``"latest"``, a number (``3``, ``"3"``, ``"v3"``) or a tag name;
    ``registry`` is a Registry, a path, or None for :func:`default_registry_path`.

    Example:
        >>> ds = load("BATCH_ID", "gold")        # doctest: +SKIP
        >>> ds.version, len(ds.annotations)      # doctest: +SKIP
        (3, 51234)
    """
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    return reg.load(batch_id, version)


def __getattr__(name: str) -> Any:
    # Re-exported from staging.py (pyarrow), imported on first use.
    if name in ("CommitResult", "Staging"):
        from playment_datasets.registry import staging

        return getattr(staging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
