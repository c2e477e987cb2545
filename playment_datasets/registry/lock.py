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

With ``record_holder=True`` the holder writes ``<lock>.holder.json`` (pid, host, start
time) right after acquiring and removes it before releasing, so a process that waits — or
gives up waiting — can say who holds the lock. The sidecar is only informative: a holder
killed with SIGKILL leaves it behind, and the next holder overwrites it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from playment_datasets.errors import RegistryLockError

__all__ = ["FileLock", "describe_holder", "read_holder"]

logger = logging.getLogger(__name__)


def _holder_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder.json")


def read_holder(lock_path: Path) -> dict[str, Any] | None:
    """What the holder of ``lock_path`` wrote about itself, or None (absent or unreadable).

    Example:
        >>> import tempfile
        >>> read_holder(Path(tempfile.mkdtemp()) / "lock") is None
        True
    """
    try:
        info = json.loads(_holder_path(lock_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe_holder(info: dict[str, Any] | None) -> str:
    """``"pid 123 on host h since 2026-…"`` or a neutral phrase when nothing is known."""
    if not info:
        return "another process (a pull, commit or gc)"
    return (
        f"pid {info.get('pid', '?')} on host {info.get('host', '?')} "
        f"since {info.get('started_at', '?')}"
    )


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

    def __init__(
        self, path: Path, *, timeout: float, what: str, record_holder: bool = False
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self.record_holder = record_holder
        import filelock  # when a lock is made: reading a registry takes none

        self._lock = filelock.FileLock(str(self.path), thread_local=False)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)

    def _timed_out(self) -> RegistryLockError:
        holder = describe_holder(read_holder(self.path) if self.record_holder else None)
        return RegistryLockError(
            f"could not take the {self.what} ({self.path}) within {self.timeout:g} s: "
            f"{holder} holds it. Wait for it to finish, or pass a larger lock_timeout "
            "(--lock-timeout on the command line)."
        )

    def acquire(self) -> FileLock:
        """Take the lock, waiting up to ``timeout`` seconds; raise RegistryLockError."""
        import filelock

        if self.held:
            raise RuntimeError(f"{self.what} is already held by this object")
        deadline = time.monotonic() + max(self.timeout, 0.0)
        first = True
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # One quick try first, so a wait can be logged with the holder's name.
                wait = 0.0 if first else max(deadline - time.monotonic(), 0.0)
                self._lock.acquire(timeout=wait)
                break
            except filelock.Timeout:
                if not first or self.timeout <= 0:
                    raise self._timed_out() from None
                first = False
                if self.record_holder:
                    logger.info("waiting up to %g s for the %s, held by %s", self.timeout,
                                self.what, describe_holder(read_holder(self.path)))
            except FileNotFoundError:  # its directory was just removed by a former holder
                if time.monotonic() >= deadline:
                    raise self._timed_out() from None
        if self.record_holder:
            self._write_holder()
        return self

    def _write_holder(self) -> None:
        import socket

        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            _holder_path(self.path).write_text(json.dumps(info), encoding="utf-8")
        except OSError:  # only informative: never fail a lock for it
            logger.debug("could not write %s", _holder_path(self.path), exc_info=True)

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        if self.held:
            self.clear_holder()  # before releasing: never delete the next holder's
            self._lock.release(force=True)

    def clear_holder(self) -> None:
        """Remove the holder sidecar (only while held; :meth:`release` does it too)."""
        if self.record_holder and self.held:
            _holder_path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
