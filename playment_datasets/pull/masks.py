"""Mask files of segmentation results, fetched during a pull.

A segmentation result holds only a legend and mask URLs; the masks are the annotations.
Once a pull worker has a job's result it queues the job's masks as tasks of the pull's
thread pool (so ``workers`` bounds its requests in flight too) and goes on to the next job.
Each task fetches one mask through the same attachment endpoint (so with the same retries
and timeouts), stores it in the content-addressed object store and describes it in one
entry per mask::

    {"url": …, "frame_id": …, "kind": "png" | "pcd" | "labels",
     "sha256": … or None, "etag": … or None, "error": … (only when the fetch failed)}

Those entries travel in the journal (resume: a job whose masks are all stored is not
fetched again) and in the manifest's per-job entry (a re-pull sends each mask's ETag, so
an unchanged mask costs a 304 and no body). A mask that cannot be fetched after all
retries does not cost its job: the normalizer writes it as ``fetch_failed`` with a
``warnings`` row, and the next pull tries it again.

Example:
    >>> refs_of(b'{"legend": {"#ff0000": "car"}, "url": "https://s/m.png"}', None)
    [MaskRef(url='https://s/m.png', frame_id=None, kind='png')]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from playment_datasets.api.client import PlaymentClient
from playment_datasets.errors import APIError, AuthenticationError, TransportError
from playment_datasets.normalize import (
    DecodedBytes,
    MaskMissing,
    MaskRef,
    mask_urls,
    stored_masks,
)
from playment_datasets.normalize.masks import DecodedMask, decode_mask

__all__ = [
    "FetchedMasks",
    "all_stored",
    "count",
    "fetch_job_masks",
    "fetch_masks",
    "mask_shas",
    "resume_job_masks",
    "mask_source",
    "mask_values",
    "progress_text",
    "refs_of",
]

log = logging.getLogger(__name__)

#: Keys of a mask entry in the journal and the manifest.
_ENTRY_KEYS = ("url", "frame_id", "kind", "sha256", "etag")


@dataclass
class FetchedMasks:
    """The masks of one job after a worker fetched them, and what that cost."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    #: url → bytes downloaded this time (saves reading them back for normalizing)
    contents: dict[str, bytes] = field(default_factory=dict)
    #: url → the PNG masks among them, decoded by the worker (see fetch_masks)
    decoded: dict[str, DecodedMask] = field(default_factory=dict)
    fetched: int = 0
    not_modified: int = 0
    bytes_downloaded: int = 0
    failures: dict[str, int] = field(default_factory=dict)


def refs_of(raw: bytes | None, previous: Sequence[Mapping[str, Any]] | None) -> list[MaskRef]:
    """The masks of a result: from its bytes, else from the previous version's entries.

    A quick byte test skips parsing results that cannot reference a mask (every mask
    URL sits under a ``"url"`` or ``"label_url"`` key).
    """
    if raw is not None:
        if b'"url"' not in raw and b'"label_url"' not in raw:
            return []
        return mask_urls(raw)
    return [MaskRef(str(m["url"]), m.get("frame_id"), str(m.get("kind")))
            for m in previous or () if m.get("url")]


def all_stored(entries: Any, has_object: Callable[[str], bool]) -> bool:
    """Whether every mask of a journal entry is in the object store (resumable as is)."""
    if not isinstance(entries, list):
        return False
    return all(isinstance(m, Mapping) and m.get("sha256") and has_object(str(m["sha256"]))
               for m in entries)


def fetch_masks(
    client: PlaymentClient,
    refs: Sequence[MaskRef],
    previous: Sequence[Mapping[str, Any]] | None,
    *,
    put_object: Callable[[bytes], str],
    has_object: Callable[[str], bool],
    keep_stored: bool = False,
    decode: bool = True,
    pool: Executor | None = None,
) -> Future[FetchedMasks]:
    """Fetch every mask of ``refs``; send the ETag of a previous entry still stored.

    With ``keep_stored`` (resuming a journalled job) a previous entry still stored is
    kept as it is, without a request. With ``decode``, PNG masks are decoded here (when
    the pull normalizes in its own process; its worker processes decode them otherwise).
    With ``pool``, each mask downloads in one of its threads and the returned future
    completes when the last one ends, so the calling thread can go on to its next job;
    without, they download here, one after another, and the future is done on return.
    A failure costs only its mask (the entry gets ``error``); a refused API key still
    stops the pull (the future raises it).
    """
    plan = _Plan(client, put_object, decode)
    downloads = plan.add(refs, previous, has_object, keep_stored)
    done: Future[FetchedMasks] = Future()
    if pool is None or not downloads:
        try:
            done.set_result(plan.finish([plan.download(item) for item in downloads]))
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits
            done.set_exception(exc)
        return done
    futures = [_submit(pool, plan.download, item) for item in downloads]
    left = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future[_Download]) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        try:  # the last download of the job ended: in its thread, assemble the entries
            done.set_result(plan.finish([f.result() for f in futures]))
        except Exception as exc:  # noqa: BLE001 - a refused key, or cancelled
            done.set_exception(exc)

    for future in futures:
        future.add_done_callback(one_done)
    return done


_Item = tuple[dict[str, Any], MaskRef, "Mapping[str, Any] | None", "str | None"]


def _submit(pool: Executor, download: Callable[[_Item], _Download],
            item: _Item) -> Future[_Download]:
    """``download(item)`` in the pool; here and now when the pool is shut down (a pull
    that stops lets the jobs in its threads finish: their masks download in the same
    thread, so those jobs are journalled whole rather than fetched again)."""
    try:
        return pool.submit(download, item)
    except RuntimeError:  # "cannot schedule new futures after shutdown"
        done: Future[_Download] = Future()
        try:
            done.set_result(download(item))
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits
            done.set_exception(exc)
        return done


class _Plan:
    """The masks of one job: which to download (with which ETag), then their entries."""

    def __init__(self, client: PlaymentClient, put_object: Callable[[bytes], str],
                 decode: bool) -> None:
        self.client = client
        self.put_object = put_object
        self.decode = decode
        self.out = FetchedMasks()
        self.downloads: list[_Item] = []
        self.copies: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def add(self, refs: Sequence[MaskRef], previous: Sequence[Mapping[str, Any]] | None,
            has_object: Callable[[str], bool], keep_stored: bool) -> list[_Item]:
        before = {m.get("url"): m for m in previous or () if isinstance(m, Mapping)}
        by_url: dict[str, dict[str, Any]] = {}  # a URL listed for two frames is fetched once
        for ref in refs:
            entry: dict[str, Any] = {"url": ref.url, "frame_id": ref.frame_id,
                                     "kind": ref.kind, "sha256": None, "etag": None}
            self.out.entries.append(entry)
            if ref.url in by_url:
                self.copies.append((entry, by_url[ref.url]))
                continue
            by_url[ref.url] = entry
            old = before.get(ref.url)  # the URL names the file, whatever frame lists it
            stored = bool(old and old.get("sha256") and has_object(str(old["sha256"])))
            if stored and keep_stored:
                assert old is not None
                entry.update(sha256=old["sha256"], etag=old.get("etag"))
                continue
            etag = str(old["etag"]) if stored and old and old.get("etag") else None
            self.downloads.append((entry, ref, old, etag))
        return self.downloads

    def download(self, item: _Item) -> _Download:
        _, ref, old, etag = item
        try:
            got = self.client.fetch_result(ref.url, etag=etag)
        except AuthenticationError:
            raise  # the key is refused: no job can succeed
        except (APIError, TransportError) as exc:
            log.warning("mask %s not fetched: %s", ref.url, exc)
            return _Download(error=exc)
        if got.not_modified:  # only when an etag, and so a stored copy, was sent
            assert old is not None
            return _Download(sha256=old["sha256"], etag=etag, not_modified=True)
        assert got.content is not None
        # Decoding a raster is the costly part of a mask: when this process decodes, it
        # does it here, beside the downloads, not in the thread that normalizes (Pillow and
        # NumPy release the GIL for much of it; libspng holds it while it inflates, 0.4 ms
        # for a 1024×768 mask and in proportion for larger ones). Point-cloud files keep
        # their per-point arrays, so they are decoded only when normalized.
        decoded = decode_mask("png", got.content) if self.decode and ref.kind == "png" else None
        return _Download(sha256=self.put_object(got.content), etag=got.etag,
                         content=got.content, decoded=decoded)

    def finish(self, results: Sequence[_Download]) -> FetchedMasks:
        out = self.out
        for (entry, ref, _, _), got in zip(self.downloads, results, strict=True):
            if got.error is not None:
                kind = type(got.error).__name__
                out.failures[kind] = out.failures.get(kind, 0) + 1
                entry.update(error=f"{kind}: {got.error}", error_type=kind)
                continue
            entry.update(sha256=got.sha256, etag=got.etag)
            if got.not_modified:
                out.not_modified += 1
                continue
            assert got.content is not None
            out.contents[ref.url] = got.content
            if got.decoded is not None:
                out.decoded[ref.url] = got.decoded
            out.fetched += 1
            out.bytes_downloaded += len(got.content)
        for entry, first in self.copies:
            entry.update({k: v for k, v in first.items() if k not in _ENTRY_KEYS[:3]})
        return out


@dataclass
class _Download:
    """What fetching one mask gave."""

    sha256: str | None = None
    etag: str | None = None
    content: bytes | None = None
    decoded: DecodedMask | None = None
    not_modified: bool = False
    error: Exception | None = None


def fetch_job_masks(
    client: PlaymentClient,
    registry: Any,
    raw: bytes | None,
    result_sha256: str | None,
    before: Mapping[str, Any] | None,
    before_has_masks: bool,
    *,
    decode: bool = True,
    pool: Executor | None = None,
) -> Future[FetchedMasks]:
    """Fetch the masks of one job whose result the worker just had (or found unchanged);
    see :func:`fetch_masks` for ``pool`` and the future.

    ``raw`` is the result downloaded now (``None`` when the server said 304); ``before``
    the job's entry in the previous version, ``before_has_masks`` whether that version
    was pulled with masks — then an entry without ``masks`` means the job has none, and
    an unchanged result need not be read back to find out.
    """
    previous = before.get("masks") if before else None
    if raw is None and previous is None and not before_has_masks and result_sha256:
        raw = registry.get_object(result_sha256)
    return fetch_masks(client, refs_of(raw, previous), previous,
                       put_object=registry.put_object, has_object=registry.has_object,
                       decode=decode, pool=pool)


def resume_job_masks(client: PlaymentClient, registry: Any, result_sha256: str | None,
                     stored: Any, *, decode: bool = True,
                     pool: Executor | None = None) -> Future[FetchedMasks]:
    """The masks of a journalled job whose result is stored but not every mask.

    ``stored`` is the journal's mask entries (``None`` when that run did not fetch
    masks: the stored result says which masks there are). Stored masks are kept
    without a request; the others are fetched.
    """
    previous = stored if isinstance(stored, list) else None
    raw = registry.get_object(result_sha256) if previous is None and result_sha256 else None
    return fetch_masks(client, refs_of(raw, previous), previous,
                       put_object=registry.put_object, has_object=registry.has_object,
                       keep_stored=True, decode=decode, pool=pool)


def count(stats: Any, fetched: FetchedMasks) -> None:
    """Add one job's mask downloads to the pull's :class:`PullStats`."""
    stats.masks_fetched += fetched.fetched
    stats.masks_not_modified += fetched.not_modified
    stats.mask_bytes_downloaded += fetched.bytes_downloaded
    for kind, n in fetched.failures.items():
        stats.masks_failed += n
        stats.mask_failures[kind] = stats.mask_failures.get(kind, 0) + n


def progress_text(stats: Any) -> str:
    """The progress bar's note on masks."""
    text = f"masks {stats.masks_fetched} new, {stats.masks_not_modified} unchanged"
    return text + (f", {stats.masks_failed} failed" if stats.masks_failed else "")


def mask_shas(entries: Any) -> list[str] | None:
    """What identifies a job's masks when deciding whether the job changed."""
    if not entries:
        return None
    return sorted(f"{m.get('sha256') or ''} {m.get('url')}" for m in entries)


def mask_source(
    entries: Sequence[Mapping[str, Any]] | None,
    fetched: FetchedMasks | None,
    get_object: Callable[[str], bytes],
) -> Callable[[str], bytes | DecodedBytes | MaskMissing | None] | None:
    """The normalizer's mask source for one job: what the worker fetched (and decoded),
    else the object store. ``None`` entries (masks not fetched): rows say ``not_fetched``.
    """
    ready: dict[str, bytes | DecodedBytes | MaskMissing] = {}
    if fetched is not None:
        ready.update(fetched.contents)
        ready.update({url: DecodedBytes(fetched.contents[url], decoded)
                      for url, decoded in fetched.decoded.items()})
    return stored_masks(entries, get_object, ready)


def mask_values(
    entries: Sequence[Mapping[str, Any]] | None,
    fetched: FetchedMasks | None,
    get_object: Callable[[str], bytes],
) -> dict[str, bytes | DecodedBytes | MaskMissing] | None:
    """What :func:`mask_source` gives for each mask of a job, read now: a mapping that
    can travel to a normalizer process. ``None`` when masks were not fetched."""
    source = mask_source(entries, fetched, get_object)
    if source is None or entries is None:
        return None
    values = {}
    for entry in entries:
        url = str(entry.get("url"))
        value = source(url)
        if value is not None:
            values[url] = value
    return values
