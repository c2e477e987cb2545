"""Registries on object storage: the local layout, behind an fsspec URL (``s3://…``).

Under the registry URL (for example ``s3://bucket/prefix``)::

    registry.json               index, same format as a local registry; only ever replaced
                                by a compare-and-swap write (S3 ``If-Match`` on its ETag)
    objects/ab/cdef…            raw results, content-addressed by sha256
    datasets/<p>/<b>/v<N>/      manifest.json + the Parquet files, exactly as on disk
    claims/<b>/v<N>             marks version number N of batch b as taken (created with
                                S3 ``If-None-Match: *``, so two writers never share a number)

A pull into a remote registry stages and commits into a local *working registry* (so
resume and incremental re-pulls work as usual), then :meth:`RemoteRegistry.publish`
uploads the version:

1. upload the raw objects the version references that the remote lacks (idempotent);
2. claim the next free version number by creating ``claims/<b>/v<N>`` if absent;
3. upload the version's files, ``manifest.json`` (renumbered to ``N``) last;
4. add the version to ``registry.json`` by a conditional write against the ETag read
   before the change, re-reading and retrying when another writer got there first.

Readers only follow ``registry.json``: a version is visible exactly when step 4
succeeds, and by then all its files are in place. A writer that dies earlier leaves a
claim and some files that no reader ever sees (``verify()`` lists them as orphans).
See docs/scale-out.md for the guarantee and its limits.

Example:
    >>> from playment_datasets.registry.registry import Registry
    >>> reg = Registry("memory://bucket/registry")   # doctest: +SKIP
    >>> reg.datasets().empty                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets._optional import import_optional
from playment_datasets.dataset.dataset import Dataset
from playment_datasets.errors import (
    ConfigurationError,
    CorruptDatasetError,
    RegistryError,
    RegistryLockError,
)
from playment_datasets.registry.commit import job_objects
from playment_datasets.registry.index import INDEX_FORMAT, check_index
from playment_datasets.registry.registry import Registry, _is_remote_url, default_registry_path
from playment_datasets.registry.staging import Staging, content_id_of
from playment_datasets.registry.store import ObjectStore, is_sha256
from playment_datasets.registry.verify import VerifyProblem, VerifyReport, select_versions

logger = logging.getLogger(__name__)

__all__ = ["RemoteDataset", "RemoteRegistry"]

_T = TypeVar("_T")
#: Compare-and-swap attempts on registry.json before giving up.
_CAS_ATTEMPTS = 40
#: Raw objects uploaded per request batch.
_UPLOAD_BATCH = 64
_CLAIM_RE = re.compile(r"v(\d+)")
#: URL schemes with the conditional writes publishing relies on.
_SCHEMES = ("s3", "s3a", "memory")


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is an S3 precondition failure or write conflict."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FileExistsError):
            return True
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


class _ConditionalWrites:
    """Create-if-absent and replace-if-unchanged writes of small files."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def read(self, path: str) -> tuple[bytes, str] | None:
        """``(content, etag)`` of ``path``, or None when it does not exist."""
        raise NotImplementedError

    def create(self, path: str, data: bytes) -> bool:
        """Write ``path`` only if it does not exist; False when it does."""
        raise NotImplementedError

    def replace(self, path: str, data: bytes, etag: str) -> bool:
        """Overwrite ``path`` only if its ETag is still ``etag``; False otherwise."""
        raise NotImplementedError


class _S3Writes(_ConditionalWrites):
    """S3 conditional writes: ``If-None-Match: *`` and ``If-Match: <etag>`` on PutObject."""

    def read(self, path: str) -> tuple[bytes, str] | None:
        self.fs.invalidate_cache(path)
        try:
            # ETag first, then the body: if a writer slips in between, the body is newer
            # than the ETag and the compare-and-swap that follows fails safely.
            etag = self.fs.info(path)["ETag"]
            return self.fs.cat_file(path), etag
        except FileNotFoundError:
            return None

    def create(self, path: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(path, data, mode="create")
        except OSError as exc:
            if _is_conflict(exc):
                return False
            raise
        return True

    def replace(self, path: str, data: bytes, etag: str) -> bool:
        try:
            self.fs.pipe_file(path, data, IfMatch=etag)
        except OSError as exc:
            if _is_conflict(exc):
                return False
            raise
        return True


class _InProcessWrites(_ConditionalWrites):
    """Conditional writes made atomic by one lock in this process (``memory://``).

    Only correct when every writer is in this process: for tests and notebooks.
    """

    _lock = threading.Lock()

    def read(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            try:
                data = self.fs.cat_file(path)
            except FileNotFoundError:
                return None
            return data, hashlib.sha256(data).hexdigest()

    def create(self, path: str, data: bytes) -> bool:
        with self._lock:
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
            return True

    def replace(self, path: str, data: bytes, etag: str) -> bool:
        with self._lock:
            try:
                current = self.fs.cat_file(path)
            except FileNotFoundError:
                return False
            if hashlib.sha256(current).hexdigest() != etag:
                return False
            self.fs.pipe_file(path, data)
            return True


def _conditional_writes(fs: Any, url: str) -> _ConditionalWrites:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if {"s3", "s3a"} & set(protocols):
        return _S3Writes(fs)
    if "memory" in protocols:
        return _InProcessWrites(fs)
    raise ConfigurationError(
        f"registry URL {url!r} uses {protocols[0]!r}; a remote registry needs atomic "
        "conditional writes, which playment_datasets implements for s3:// (and memory:// "
        "for tests). Use an s3:// URL (any S3-compatible store), or a local path."
    )


class RemoteDataset(Dataset):
    """A version in a remote registry; tables are read through fsspec when asked for.

    ``path`` is the version's key on the filesystem, ``url`` its full URL.

    Example:
        >>> ds = Registry("s3://bucket/reg").load("BATCH_ID")   # doctest: +SKIP
        >>> ds.table_path("annotations")                         # doctest: +SKIP
        's3://bucket/reg/datasets/PROJECT/BATCH_ID/v1/annotations.parquet'
    """

    path: PurePosixPath  # type: ignore[assignment]

    def __init__(self, fs: Any, key: str, *, objects: Callable[[str], bytes] | None = None
                 ) -> None:
        self.fs = fs
        self._objects = objects
        self.path = PurePosixPath(key)
        self.url = str(fs.unstrip_protocol(key))
        try:
            raw = fs.cat_file(f"{key}/manifest.json")
        except FileNotFoundError:
            raise CorruptDatasetError(
                f"{self.url}/manifest.json is missing; expected every version to hold a "
                "manifest.json. Run verify() and remove or re-publish that version."
            ) from None
        self.manifest: dict[str, Any] = json.loads(raw)
        self._cache = {}

    def table_path(self, name: str) -> str:
        """The URL of table ``name``'s Parquet file (pass ``storage_options`` to engines)."""
        return str(self.fs.unstrip_protocol(str(self._file(name))))

    def _read(
        self, name: str, columns: Sequence[str] | None, filters: Any
    ) -> pa.Table:
        key = str(self._file(name))
        try:
            return pq.read_table(
                key,
                filesystem=self.fs,
                columns=list(columns) if columns else None,
                filters=filters,
            )
        except FileNotFoundError:
            raise CorruptDatasetError(
                f"{self.table_path(name)} is missing from {self.batch_id} v{self.version}; "
                "run verify() and remove or re-publish that version."
            ) from None

    def job_metadata(self) -> dict[str, dict[str, Any]]:
        key = f"{self.path}/job_meta.jsonl.gz"
        try:
            raw = self.fs.cat_file(key)
        except FileNotFoundError:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for line in gzip.decompress(raw).decode("utf-8").splitlines():
            rec = json.loads(line)
            out[rec["job_id"]] = rec["job"]
        return out

    def _register_duckdb(self, con: Any, name: str) -> None:
        import pyarrow.dataset as pads

        # DuckDB scans the Arrow dataset lazily; reads go through this fsspec filesystem,
        # so no DuckDB extension or separate credentials are needed.
        con.register(
            name, pads.dataset(str(self._file(name)), filesystem=self.fs, format="parquet")
        )


class RemoteRegistry(Registry, serves_urls=True):
    """A registry on object storage, with the local layout and the same read API.

    ``url`` is an fsspec URL (``s3://bucket/prefix``; ``memory://…`` for tests);
    ``storage_options`` go to fsspec (e.g. ``{"client_kwargs": {"endpoint_url": …}}``;
    by default credentials and endpoint come from the usual ``AWS_*`` settings).
    ``work_dir`` is the local working registry that pulls stage and commit into before
    publishing (default: ``<default registry>/remote/<hash of url>``); :attr:`root` is it.

    Supported: ``datasets``, ``versions``, ``resolve``, ``load``, ``manifest``, ``diff``,
    ``tag``, ``untag``, ``remove``, ``verify``, objects, and ``publish``. Not supported:
    ``gc``, ``renormalize`` and ``open_staging`` (do those in a local registry).

    Example:
        >>> reg = RemoteRegistry("s3://bucket/reg")                  # doctest: +SKIP
        >>> ds = pds.pull("PROJECT", "BATCH", registry=reg)          # doctest: +SKIP
        >>> reg.load("BATCH").to_duckdb().sql("SELECT count(*) FROM jobs")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str,
        *,
        lock_timeout: float = 60.0,
        storage_options: Mapping[str, Any] | None = None,
        work_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(root, str) or not _is_remote_url(root):
            raise ConfigurationError(
                f"RemoteRegistry expects a URL such as 's3://bucket/prefix', got {root!r}. "
                "Use Registry(path) for a local directory."
            )
        scheme = root.partition("://")[0].lower()
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"registry URL {root!r} uses {scheme!r}; a remote registry needs atomic "
                "conditional writes, which playment_datasets implements for s3:// (any "
                "S3-compatible store) and memory:// (tests). Use one of those, or a local path."
            )
        fsspec = import_optional("fsspec", extra="s3")
        self.url = root.rstrip("/")
        try:
            self.fs, base = fsspec.core.url_to_fs(self.url, **dict(storage_options or {}))
        except ImportError as exc:
            raise ImportError(
                f"the registry URL {self.url!r} needs a filesystem package that is not "
                f"installed ({exc}). For s3:// install it with: pip install "
                "'playment-datasets[s3]'"
            ) from exc
        self._base = str(base).rstrip("/")
        self._writes = _conditional_writes(self.fs, self.url)
        if work_dir is None:
            digest = hashlib.sha256(self.url.encode("utf-8")).hexdigest()[:16]
            work_dir = default_registry_path() / "remote" / digest
        self.local = Registry(work_dir, lock_timeout=lock_timeout)
        self.root = self.local.root
        self.lock_timeout = float(lock_timeout)
        self._objects = self.local._objects

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.url!r})"

    def _key(self, rel: str) -> str:
        return f"{self._base}/{rel}" if rel else self._base

    def _location(self, rel: str = "") -> str:
        return f"{self.url}/{rel}" if rel else self.url

    # -- objects -------------------------------------------------------------------
    def _object_key(self, sha256: str) -> str:
        if not is_sha256(sha256):
            raise ValueError(f"expected a 64-character lowercase hex sha256, got {sha256!r}")
        return self._key(f"objects/{sha256[:2]}/{sha256[2:]}")

    def put_object(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.fs.pipe_file(self._object_key(sha), data)
        return sha

    def get_object(self, sha256: str) -> bytes:
        from playment_datasets.errors import DatasetNotFoundError

        try:
            return bytes(self.fs.cat_file(self._object_key(sha256)))
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"object {sha256} is not in {self._location('objects')}; expected a raw "
                "result uploaded by publish(). Publish its version again, or verify()."
            ) from None

    def has_object(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._object_key(sha256)))

    def _upload_objects(self, shas: set[str], source: ObjectStore) -> int:
        prefix = self._key("objects")
        self.fs.invalidate_cache(prefix)
        try:
            present = {p.rstrip("/")[-65:].replace("/", "") for p in self.fs.find(prefix)}
        except FileNotFoundError:
            present = set()
        missing = sorted(shas - present)
        for i in range(0, len(missing), _UPLOAD_BATCH):
            chunk = missing[i : i + _UPLOAD_BATCH]
            self.fs.pipe({self._object_key(s): source.get(s) for s in chunk})
        return len(missing)

    # -- index ---------------------------------------------------------------------
    def _parse_index(self, raw: bytes) -> dict[str, Any]:
        try:
            index = json.loads(raw)
        except ValueError as exc:
            raise RegistryError(
                f"registry index {self._location('registry.json')} is not valid JSON ({exc}); "
                "expected a file written by playment_datasets. Run verify()."
            ) from None
        return check_index(index, self._location("registry.json"))

    def _read_index_tagged(self) -> tuple[dict[str, Any], str | None]:
        got = self._writes.read(self._key("registry.json"))
        if got is None:
            return {"format": INDEX_FORMAT, "batches": {}}, None
        return self._parse_index(got[0]), got[1]

    def _read_index(self) -> dict[str, Any]:
        return self._read_index_tagged()[0]

    def _write_index(self, index: dict[str, Any]) -> None:
        raise RuntimeError("a remote index is only changed through _update_index")

    def _update_index(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Compare-and-swap ``registry.json``: re-read and re-apply ``change`` on conflict."""
        key = self._key("registry.json")
        for attempt in range(_CAS_ATTEMPTS):
            index, etag = self._read_index_tagged()
            result = change(index)
            data = (json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
            done = (
                self._writes.create(key, data)
                if etag is None
                else self._writes.replace(key, data, etag)
            )
            if done:
                return result
            logger.debug("registry.json changed under us (attempt %d); retrying", attempt + 1)
            time.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))
        raise RegistryLockError(
            f"could not update {self._location('registry.json')} after {_CAS_ATTEMPTS} "
            "attempts: other writers kept changing it. Try again."
        )

    # -- reading ---------------------------------------------------------------------
    def load(self, batch_id: str, version: int | str = "latest") -> Dataset:
        _, n, info = self._version_info(batch_id, version)
        ds = RemoteDataset(self.fs, self._key(info["path"]), objects=self.get_object)
        if ds.content_id != info["content_id"] or ds.version != n:
            raise CorruptDatasetError(
                f"manifest of {batch_id} v{n} ({ds.url}) does not match registry.json "
                f"(content {ds.content_id[:12]} vs {info['content_id'][:12]}); run verify()."
            )
        return ds

    # -- publishing ------------------------------------------------------------------
    def _claimed(self, batch_id: str) -> list[int]:
        prefix = self._key(f"claims/{batch_id}")
        self.fs.invalidate_cache(prefix)
        try:
            names = [PurePosixPath(p).name for p in self.fs.ls(prefix, detail=False)]
        except FileNotFoundError:
            return []
        return [int(m.group(1)) for n in names if (m := _CLAIM_RE.fullmatch(n))]

    def _claim(self, batch_id: str, start: int, content_id: str) -> int:
        n = max([start - 1, *self._claimed(batch_id)]) + 1
        note = json.dumps({"content_id": content_id, "claimed_at": _utc_now()}).encode()
        while not self._writes.create(self._key(f"claims/{batch_id}/v{n}"), note):
            n += 1
        return n

    def publish(self, dataset: Dataset) -> Dataset:
        """Upload a version committed in a local registry; return it as a remote Dataset.

        When the remote's latest version of the batch has the same content id, nothing
        is uploaded and that version is returned. Otherwise the version gets the next
        free number of the remote (which may differ from its local number) and appears
        atomically: readers see it complete or not at all.

        Example:
            >>> local = pds.pull("PROJECT", "BATCH", registry="/tmp/reg")  # doctest: +SKIP
            >>> RemoteRegistry("s3://bucket/reg").publish(local).version    # doctest: +SKIP
            1
        """
        if isinstance(dataset, RemoteDataset):
            raise ConfigurationError(
                "publish() uploads a version from a local registry; this one is already "
                f"remote ({dataset.url})."
            )
        project_id, batch_id, cid = dataset.project_id, dataset.batch_id, dataset.content_id
        index = self._read_index()
        entry = index["batches"].get(batch_id)
        latest: int | None = None
        if entry and entry.get("versions"):
            self._check_project(entry, project_id, batch_id)
            latest = max(int(v) for v in entry["versions"])
            if entry["versions"][str(latest)]["content_id"] == cid:
                logger.info("batch %s unchanged on %s: keeping v%d", batch_id, self.url, latest)
                return self.load(batch_id, latest)
        jobs = dataset.manifest["jobs"].values()
        shas = {s for j in jobs for s in job_objects(j)}
        raw = dataset.arrow("errors", columns=["raw_sha256"]).column(0).to_pylist()
        shas |= {s for s in raw if s}
        # The version lives at <root>/datasets/<p>/<b>/v<N>: its raw objects at <root>/objects.
        uploaded = self._upload_objects(shas, ObjectStore(dataset.path.parents[3] / "objects"))
        known = [int(v) for v in entry["versions"]] if entry else []
        n = self._claim(batch_id, max(known, default=0) + 1, cid)
        rel = f"datasets/{project_id}/{batch_id}/v{n}"
        manifest = dict(dataset.manifest, version=n, parent=latest, created_at=_utc_now())
        for name in sorted(dataset.manifest["files"]):
            self.fs.put_file(str(dataset.path / name), self._key(f"{rel}/{name}"))
        self.fs.pipe_file(
            self._key(f"{rel}/manifest.json"),
            (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(),
        )

        def add(index: dict[str, Any]) -> int:
            entry = index["batches"].setdefault(
                batch_id, {"project_id": project_id, "versions": {}, "tags": {}}
            )
            self._check_project(entry, project_id, batch_id)
            entry["versions"][str(n)] = {
                "content_id": cid,
                "created_at": manifest["created_at"],
                "parent": latest,
                "n_jobs": manifest["n_jobs"],
                "counts": manifest["counts"],
                "path": rel,
            }
            return n

        self._update_index(add)
        logger.info(
            "published %s v%d to %s (%d new objects, content %s)",
            batch_id,
            n,
            self.url,
            uploaded,
            cid[:12],
        )
        return self.load(batch_id, n)

    @staticmethod
    def _check_project(entry: Mapping[str, Any], project_id: str, batch_id: str) -> None:
        if entry["project_id"] != project_id:
            raise RegistryError(
                f"batch {batch_id!r} is registered under project {entry['project_id']!r}, "
                f"not {project_id!r}; batch ids are unique across projects. Check the project id."
            )

    def _pull_target(self) -> Registry:
        return self.local

    def _publish_pulled(self, dataset: Dataset) -> Dataset:
        return self.publish(dataset)

    # -- changes ---------------------------------------------------------------------
    def remove(self, batch_id: str, version: int | str) -> None:
        """Drop a version from ``registry.json``, then delete its files (and claim)."""

        def drop(index: dict[str, Any]) -> tuple[int, str]:
            entry = self._entry(index, batch_id)
            n = self._version_in(entry, batch_id, version)
            info = entry["versions"].pop(str(n))
            entry["tags"] = {t: v for t, v in entry.get("tags", {}).items() if int(v) != n}
            if not entry["versions"]:
                del index["batches"][batch_id]
            return n, str(info["path"])

        n, rel = self._update_index(drop)
        try:
            self.fs.rm(self._key(rel), recursive=True)
        except FileNotFoundError:
            pass
        logger.info("removed %s v%d from %s", batch_id, n, self.url)

    def open_staging(
        self, project_id: str, batch_id: str, *, lock_timeout: float | None = None
    ) -> Staging:
        raise ConfigurationError(
            f"a remote registry ({self.url}) has no staging area: pull with "
            "pds.pull(..., registry=<this registry>) or publish() a local version."
        )

    def commit_shards(self, project_id: str, batch_id: str, count: int) -> Dataset:
        raise ConfigurationError(
            f"a remote registry ({self.url}) has no staging area: commit_shards() in the "
            "shared local registry the shards were pulled into, then publish() the version."
        )

    def gc(self, **options: Any) -> Any:  # type: ignore[override]
        raise ConfigurationError(
            f"gc() is not available on a remote registry ({self.url}); use the object "
            "store's lifecycle rules, or gc() the local working registry (.local)."
        )

    def repair(self) -> Any:  # type: ignore[override]
        raise ConfigurationError(
            f"repair() is not available on a remote registry ({self.url}): its index is "
            "written only by publish(); repair() the local working registry (.local)."
        )

    def renormalize(self, batch_id: str, version: int | str = "latest") -> Dataset:
        raise ConfigurationError(
            f"renormalize() is not available on a remote registry ({self.url}): renormalize "
            "in a local registry and publish() the result."
        )

    # -- verify ----------------------------------------------------------------------
    def _hash(self, key: str) -> str | None:
        h = hashlib.sha256()
        try:
            with self.fs.open(key, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
        except FileNotFoundError:
            return None
        return h.hexdigest()

    def verify(self, batch_id: str | None = None, version: int | str | None = None) -> VerifyReport:
        """Re-hash every file of the selected versions and the raw objects they use.

        Problems are reported, never raised; ``orphans`` lists claimed version numbers
        absent from the index (a publish that died, or one still running).
        """
        report = VerifyReport()
        seen: dict[str, str | None] = {}
        for b, entry, ns in select_versions(
            self._read_index, self._entry, batch_id, version, report
        ):
            for n in ns:
                self._verify_version(report, b, n, entry["versions"][str(n)], seen)
            report.orphans += [
                f"datasets/{entry['project_id']}/{b}/v{n}"
                for n in sorted(set(self._claimed(b)) - {int(v) for v in entry["versions"]})
            ]
        return report

    def _verify_version(
        self,
        report: VerifyReport,
        b: str,
        n: int,
        info: Mapping[str, Any],
        seen: dict[str, str | None],
    ) -> None:
        rel = str(info["path"])
        report.versions_checked.append((b, n))
        report.files_checked += 1

        def problem(path: str, kind: str, expected: str | None, got: str | None) -> None:
            report.problems.append(VerifyProblem(path, kind, expected, got, b, n))

        try:
            manifest = json.loads(self.fs.cat_file(self._key(f"{rel}/manifest.json")))
        except FileNotFoundError:
            problem(f"{rel}/manifest.json", "missing", "manifest.json", None)
            return
        except ValueError as exc:
            problem(f"{rel}/manifest.json", "unreadable", "JSON manifest", type(exc).__name__)
            return
        if manifest.get("content_id") != info["content_id"]:
            problem(
                f"{rel}/manifest.json",
                "mismatch",
                info["content_id"],
                str(manifest.get("content_id")),
            )
        jobs = manifest.get("jobs", {})
        if content_id_of(jobs) != manifest.get("content_id"):
            problem(
                f"{rel}/manifest.json",
                "mismatch",
                str(manifest.get("content_id")),
                content_id_of(jobs),
            )
        for fname, finfo in sorted(manifest.get("files", {}).items()):
            report.files_checked += 1
            got = self._hash(self._key(f"{rel}/{fname}"))
            if got != finfo["sha256"]:
                problem(
                    f"{rel}/{fname}", "missing" if got is None else "mismatch", finfo["sha256"], got
                )
        for sha in (s for job in jobs.values() for s in job_objects(job)):
            if sha not in seen:
                report.objects_checked += 1
                seen[sha] = self._hash(self._object_key(sha))
            if seen[sha] != sha:
                problem(
                    f"objects/{sha[:2]}/{sha[2:]}",
                    "missing" if seen[sha] is None else "mismatch",
                    sha,
                    seen[sha],
                )
