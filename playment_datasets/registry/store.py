"""Low-level durable file operations and the content-addressed object store.

Everything that must survive a crash is written the same way: to a temporary file in the
target directory, flushed and fsynced, then renamed over the target, then the directory
is fsynced so the rename itself is durable. Files are created with the user's umask.

Raw objects are the exception: :meth:`ObjectStore.put` writes and renames without an
fsync, and :meth:`ObjectStore.sync` makes every object written since the last sync
durable at once (one ``syncfs`` on Linux, else an fsync per file and directory). Whoever
records an object durably elsewhere (a journal fsync, a commit, the media index) calls
``sync()`` first; see docs/registry.md, "Durability of raw objects".
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from playment_datasets.errors import DatasetNotFoundError, RegistryError

logger = logging.getLogger(__name__)

__all__ = [
    "ObjectStore",
    "registry_write_error",
    "atomic_write_bytes",
    "atomic_write_json",
    "fsync_dir",
    "sha256_file",
    "syncfs",
]

_SHA_RE = re.compile(r"[0-9a-f]{64}")
TMP_PREFIX = ".tmp-"
_O_BINARY = getattr(os, "O_BINARY", 0)


_FULL = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def registry_write_error(exc: OSError, root: Path) -> RegistryError:
    """A RegistryError that says which path failed, why, and what to do about it.

    Example:
        >>> err = registry_write_error(OSError(errno.ENOSPC, "No space left"), Path("/r"))
        >>> "free some disk space" in str(err)
        True
    """
    where = exc.filename if exc.filename else root
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _FULL:
        advice = (f"free some disk space (or raise the quota / file size limit) for {root}, "
                  "or point registry= / PLAYMENT_DATASETS_HOME at a larger disk")
    elif exc.errno in _READ_ONLY:
        advice = (f"make {root} writable for this user, or point registry= / "
                  "PLAYMENT_DATASETS_HOME at a writable directory")
    else:
        advice = f"check that {root} is a writable directory of the expected layout"
    return RegistryError(
        f"cannot write to the registry at {root}: {reason} (errno {exc.errno}) at {where}. "
        f"Committed versions are untouched. To go on, {advice}, then run the same "
        "pull again: it resumes where it stopped."
    )


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable; no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


def _open_tmp(directory: Path) -> tuple[int, Path]:
    """Create a new temporary file in ``directory``; mode 0666 minus the umask.

    (``tempfile.mkstemp`` would force 0600, and changing the process umask to undo that
    is not thread-safe.)
    """
    while True:
        tmp = directory / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def atomic_write_bytes(path: Path, data: bytes | Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``data`` (bytes, or chunks of bytes) to ``path`` atomically and durably.

    tmp file + fsync + rename + directory fsync; with ``durable=False`` the two fsyncs
    are left to the caller (the object store syncs many files at once).
    """
    try:
        fd, tmp = _open_tmp(path.parent)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _open_tmp(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                for chunk in data:
                    f.write(chunk)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted UTF-8 JSON atomically."""
    # Streamed in chunks: a manifest of a 50,000-job batch is tens of MB as one string.
    encoder = json.JSONEncoder(indent=2, sort_keys=True, ensure_ascii=False)
    chunks = (chunk.encode("utf-8") for chunk in encoder.iterencode(obj))
    atomic_write_bytes(path, itertools.chain(chunks, [b"\n"]))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA_RE.fullmatch(value) is not None


def _load_syncfs() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # pragma: no cover - a libc without syncfs
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def syncfs(path: Path) -> bool:
    """Flush every dirty file of the filesystem holding ``path`` to disk (Linux ``syncfs``).

    Returns False when the platform has no ``syncfs`` or it failed; the caller then
    fsyncs file by file.

    Example:
        >>> import tempfile
        >>> syncfs(Path(tempfile.gettempdir())) in (True, False)
        True
    """
    if _SYNCFS is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return bool(_SYNCFS(fd) == 0)
    finally:
        os.close(fd)


class ObjectStore:
    """Raw bytes stored by sha256 under ``root/ab/cdef…``; writes are idempotent.

    :meth:`put` is cheap (no fsync); objects become durable on :meth:`sync`, which the
    staging journal, commits and the media index call before they record an object.

    Example:
        >>> import tempfile
        >>> store = ObjectStore(Path(tempfile.mkdtemp()))
        >>> sha = store.put(b"{}")
        >>> store.sync()
        >>> store.get(sha)
        b'{}'
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pending: set[str] = set()  # written since the last sync()
        self._pending_lock = threading.Lock()
        self._sync_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"expected a 64-character lowercase hex sha256, got {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256. Durable after the next :meth:`sync`.

        An object already stored with these exact bytes is kept (its mtime refreshed, so
        gc spares it); a stored file with other bytes (torn by a power cut before it was
        synced) is replaced.
        """
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if self._same_bytes(target, data):
            # Refresh the mtime: gc spares recent objects, so an object that a pull is
            # about to reference cannot be collected between this call and its journal entry.
            try:
                os.utime(target)
                return sha
            except FileNotFoundError:  # removed by gc just now: write it again
                pass
        self._write(target, data)
        with self._pending_lock:
            self._pending.add(sha)
        return sha

    @staticmethod
    def _same_bytes(target: Path, data: bytes) -> bool:
        try:
            with open(target, "rb") as f:
                return f.read(len(data) + 1) == data
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        """tmp file + write + rename, no fsync (see :meth:`sync`)."""
        atomic_write_bytes(target, data, durable=False)

    def sync(self) -> None:
        """Make every object this store wrote since the last sync durable.

        Thread-safe; a no-op when nothing was written. On Linux one ``syncfs`` of the
        store's filesystem, elsewhere an fsync of each new file and of its directory.
        """
        with self._sync_lock:
            with self._pending_lock:
                pending, self._pending = self._pending, set()
            if not pending or syncfs(self.root):
                return
            try:
                self._fsync_each(pending)
            except BaseException:
                with self._pending_lock:  # not durable yet: the next sync tries again
                    self._pending |= pending
                raise

    def _fsync_each(self, pending: set[str]) -> None:
        dirs: set[Path] = set()
        for sha in sorted(pending):
            target = self.path(sha)
            try:
                fd = os.open(target, os.O_RDONLY | _O_BINARY)
            except FileNotFoundError:
                continue  # collected meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dirs.add(target.parent)
        for d in sorted(dirs):
            fsync_dir(d)

    def confirm(self, sha256: str) -> bool:
        """Whether the stored object hashes to ``sha256``; a damaged file is removed.

        Used for objects that may not have been synced before a crash. A confirmed
        object is synced again by this store's next :meth:`sync`, so a later durable
        record of it is safe even when it was written by a process that died.

        Example:
            >>> import tempfile
            >>> store = ObjectStore(Path(tempfile.mkdtemp()))
            >>> store.confirm(store.put(b"x")), store.confirm("0" * 64)
            (True, False)
        """
        target = self.path(sha256)
        try:
            f = open(target, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        with f:
            h = hashlib.sha256()
            while block := f.read(1 << 20):
                h.update(block)
            if h.hexdigest() == sha256:
                with self._pending_lock:
                    self._pending.add(sha256)
                return True
            ino = os.fstat(f.fileno()).st_ino
        try:
            if os.lstat(target).st_ino == ino:  # not replaced by a good copy meanwhile
                logger.warning("object %s does not match its sha256 (torn by a crash?); "
                               "removed so that it is fetched again", sha256)
                os.unlink(target)
        except FileNotFoundError:
            pass
        return False

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"object {sha256} is not in the object store {self.root}; expected a raw "
                "result stored by a pull. Run a pull of its batch again to fetch it, or "
                "verify() the registry."
            ) from None

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def iter_all(self) -> Iterator[tuple[str, Path]]:
        """Every stored object as (sha256, path); temporary files are skipped."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sorted(sub.iterdir()):
                sha = sub.name + f.name
                if is_sha256(sha):
                    yield sha, f

    def iter_tmp(self) -> Iterator[Path]:
        """Temporary files left behind by interrupted writes."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.is_dir():
                yield from (f for f in sub.iterdir() if f.name.startswith(TMP_PREFIX))

