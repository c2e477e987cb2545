"""The per-batch media index: source URL → stored object and what is known of it.

``datasets/<project_id>/<batch_id>/media.json`` (beside the version directories, which
never change after commit) maps every fetched URL to a record ``{sha256, bytes,
content_type, width, height, status, error}``; the bytes live in the registry's object
store like raw results, so a file referenced by several versions (or URLs) is stored
once, and gc keeps every object an index names. Writers merge their records into the
file under a per-batch lock, so two fetches of one batch lose nothing.

Example:
    >>> ds = Registry(root).load("BATCH")        # doctest: +SKIP
    >>> ds._media_source.records()               # doctest: +SKIP
    {'http://…/a.jpg': {'sha256': '…', 'width': 640, …}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playment_datasets.registry.lock import FileLock
from playment_datasets.registry.store import ObjectStore, atomic_write_json, is_sha256

__all__ = ["MEDIA_INDEX", "MediaIndex", "media_refs"]

logger = logging.getLogger(__name__)

MEDIA_INDEX = "media.json"
_FORMAT = 1
_FIELDS = ("sha256", "bytes", "content_type", "width", "height", "status", "error")


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("media index %s is unreadable (%s); treating it as empty, a fetch "
                       "rewrites it", path, exc)
        return {}
    media = doc.get("media") if isinstance(doc, dict) else None
    if not isinstance(media, dict):
        return {}
    return {str(url): dict(rec) for url, rec in media.items() if isinstance(rec, dict)}


def media_refs(path: Path) -> set[str]:
    """The object ids a media index references (for gc)."""
    return {str(rec["sha256"]) for rec in _read(path).values() if is_sha256(rec.get("sha256"))}


class MediaIndex:
    """The media index of one batch, and the object store its records point into."""

    def __init__(self, batch_dir: Path, objects: ObjectStore, lock_timeout: float) -> None:
        self.path = batch_dir / MEDIA_INDEX
        self.objects = objects
        self.lock_timeout = lock_timeout
        self._cached: tuple[float, dict[str, dict[str, Any]]] | None = None

    def __repr__(self) -> str:
        return f"MediaIndex({str(self.path)!r})"

    def records(self) -> Mapping[str, Mapping[str, Any]]:
        """url → record, as last written (re-read when the file changed)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cached is None or self._cached[0] != mtime:
            self._cached = (mtime, _read(self.path))
        return self._cached[1]

    def file(self, sha256: str) -> Path | None:
        """The stored file of ``sha256``, or ``None`` when it is not (or no longer) stored."""
        if not is_sha256(sha256):
            return None
        path = self.objects.path(sha256)
        return path if path.is_file() else None

    def store(self, data: bytes) -> str:
        """Put ``data`` into the object store; returns its sha256."""
        return self.objects.put(data)

    def merge(self, updates: Mapping[str, Mapping[str, Any]]) -> None:
        """Write ``updates`` (url → record) into the index under the batch's media lock.

        A failed record never replaces an ``ok`` one whose object is still stored: a
        transient failure must not forget a good file.
        """
        if not updates:
            return
        self.objects.sync()  # the records name stored files: make them durable first
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_suffix(".lock"), timeout=self.lock_timeout,
                      what="media index lock"):
            current = _read(self.path)
            for url, rec in updates.items():
                old = current.get(url)
                if (rec.get("status") != "ok" and old and old.get("status") == "ok"
                        and self.file(str(old.get("sha256")))):
                    continue
                current[url] = {k: rec.get(k) for k in _FIELDS}
            atomic_write_json(self.path, {"format": _FORMAT,
                                          "media": dict(sorted(current.items()))})
        self._cached = None
