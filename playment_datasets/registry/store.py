"""Low-level durable file operations and the content-addressed object store.

Everything that must survive a crash is written the same way: to a temporary file in the
target directory, flushed and fsynced, then renamed over the target, then the directory
is fsynced so the rename itself is durable. Files are created with the user's umask.
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


def atomic_write_bytes(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or chunks of bytes) to ``path`` atomically and durably.

    tmp file + fsync + rename + directory fsync.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_tmp(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                for chunk in data:
                    f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
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


class ObjectStore:
    """Raw bytes stored by sha256 under ``root/ab/cdef…``; writes are idempotent.

    Example:
        >>> import secrets
        >>> store = ObjectStore(Path(tempfile.mkdtemp()))
        >>> sha = store.put(b"{}")
        >>> store.get(sha)
        b'{}'
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"expected a 64-character lowercase hex sha256, got {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists():
            # Refresh the mtime: gc spares recent objects, so an object that a pull is
            # about to reference cannot be collected between this call and its journal entry.
            try:
                os.utime(target)
                return sha
            except FileNotFoundError:  # removed by gc just now: write it again
                pass
        atomic_write_bytes(target, data)
        return sha

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

