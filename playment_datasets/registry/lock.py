"""Exclusive inter-process file locks with a timeout, over :mod:`filelock`.

``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows (filelock picks). The lock
belongs to an open file description, so the operating system releases it when the holder
dies — a crashed pull never leaves a stale lock behind. Lock files may be deleted by
their holder (a committed staging area, gc of an abandoned one): filelock retries when
the file it locked was unlinked meanwhile, and we retry when its directory went away, so
two processes never both believe they hold the lock.

Each :class:`FileLock` object opens its own descriptor (no per-path singleton), so two
objects on one path exclude each other even within one process, and its state is shared
by all threads (a staging area may be closed by another thread than the one that opened it).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

import filelock

from playment_datasets.errors import RegistryLockError

__all__ = ["FileLock"]


class FileLock:
    """An exclusive lock on ``path``, taken on ``__enter__`` (or :meth:`acquire`).

    ``timeout`` is how long to wait for another holder; ``what`` names the lock in the
    error message. ``timeout=0`` tries once. Not reentrant: a second :meth:`acquire`
    on the same object raises RuntimeError.

    Example:
        >>> import tempfile
        >>> with FileLock(Path(tempfile.mkdtemp()) / "lock", timeout=1, what="demo lock") as lk:
        ...     lk.held
        True
    """

    def __init__(self, path: Path, *, timeout: float, what: str) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self._lock = filelock.FileLock(str(self.path), thread_local=False)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)

    def _timed_out(self) -> RegistryLockError:
        return RegistryLockError(
            f"could not take the {self.what} ({self.path}) within {self.timeout:g} s: "
            "another process (a pull, commit or gc) holds it. Wait for it to finish, "
            "or pass a larger lock_timeout."
        )

    def acquire(self) -> FileLock:
        """Take the lock, waiting up to ``timeout`` seconds; raise RegistryLockError."""
        if self.held:
            raise RuntimeError(f"{self.what} is already held by this object")
        deadline = time.monotonic() + max(self.timeout, 0.0)
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._lock.acquire(timeout=max(deadline - time.monotonic(), 0.0))
                return self
            except filelock.Timeout:
                raise self._timed_out() from None
            except FileNotFoundError:  # its directory was just removed by a former holder
                if time.monotonic() >= deadline:
                    raise self._timed_out() from None

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        if self.held:
            self._lock.release(force=True)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
