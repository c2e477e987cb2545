"""Exclusive inter-process file locks with a timeout.

``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. The lock belongs to an open
file description, so the operating system releases it when the holder dies — a crashed
pull never leaves a stale lock behind. Lock files may be deleted by their holder (gc does
this for abandoned staging areas): after taking the lock we check that the path still
names the file we locked and retry otherwise, so two processes never both believe they
hold the lock.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import TracebackType

from playment_datasets.errors import RegistryLockError

if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt
else:
    import fcntl

__all__ = ["FileLock"]

_POLL = 0.05  # seconds between attempts


class FileLock:
    """An exclusive lock on ``path``, taken on ``__enter__`` (or :meth:`acquire`).

    ``timeout`` is how long to wait for another holder; ``what`` names the lock in the
    error message. ``timeout=0`` tries once.
    """

    def __init__(self, path: Path, *, timeout: float, what: str) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _try_lock(self, fd: int) -> bool:
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def acquire(self) -> FileLock:
        """Take the lock, waiting up to ``timeout`` seconds; raise RegistryLockError."""
        if self._fd is not None:
            raise RuntimeError(f"{self.what} is already held by this object")
        deadline = time.monotonic() + max(self.timeout, 0.0)
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:  # its directory was just removed by a former holder
                continue
            if self._try_lock(fd):
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    self._fd = fd
                    return self
            os.close(fd)
            if time.monotonic() >= deadline:
                raise RegistryLockError(
                    f"could not take the {self.what} ({self.path}) within {self.timeout:g} s: "
                    "another process (a pull, commit or gc) holds it. Wait for it to finish, "
                    "or pass a larger lock_timeout."
                )
            time.sleep(_POLL)

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
