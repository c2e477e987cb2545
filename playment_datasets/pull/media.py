"""Fetch the source media of a version into the registry: images, video frames, sensor files.

Every URL a version references (``ds.media``) is downloaded once into the registry's
object store and recorded in the batch's media index (``registry/media.py``):

- Playment-hosted URLs are private: they go through the attachment endpoint
  (``PlaymentClient.fetch_result``: the API key to the API host, then the signed
  storage URL without it). A URL is Playment-hosted when its host is the host of the
  version's result files (``jobs.source_url``), contains ``playment``, or is listed
  in ``private_hosts``.
- Any other URL is downloaded directly, never with the API key
  (``PlaymentClient.download``).

Downloads run on a thread pool with the client's retries, timeouts and a size limit;
a URL already stored is skipped (so a second call, or one after an interruption,
fetches only what is missing); records are written to the index as they complete.
Image width and height come from the file's header (Pillow).

``Dataset.fetch_media`` calls :func:`fetch_media`: the package hands this function to
:class:`~playment_datasets.dataset.dataset.Dataset` (``Dataset.media_fetcher``),
because the dataset stage sits below the pull stage and cannot import it.

Example:
    >>> ds = pds.load("BATCH")                                 # doctest: +SKIP
    >>> media = ds.fetch_media(workers=16)                     # doctest: +SKIP
    >>> media.groupby("status").size()                         # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from playment_datasets.api.client import PlaymentClient, RetryPolicy, Timeouts
from playment_datasets.errors import ConfigurationError, PlaymentDatasetsError
from playment_datasets.pull.progress import make_progress

__all__ = ["DEFAULT_MAX_BYTES", "fetch_media"]

logger = logging.getLogger(__name__)

#: Largest media file fetched by default (a 4K PNG is ~25 MB; a point cloud ~100 MB).
DEFAULT_MAX_BYTES = 512 << 20
_FLUSH_EVERY = 64  # records written to the index per batch of completions


def _host(url: str) -> str:
    parts = urlsplit(url)
    return (parts.netloc or "").lower()


def _private_hosts(ds: Any, extra: Iterable[str] | None) -> set[str]:
    jobs = ds.table("jobs", columns=["source_url"])
    hosts = {_host(str(u)) for u in jobs["source_url"].dropna() if str(u)}
    hosts |= {h.lower() for h in extra or ()}
    hosts.discard("")
    return hosts


def _is_private(url: str, hosts: set[str]) -> bool:
    host = _host(url)
    return host in hosts or "playment" in host


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return int(image.size[0]), int(image.size[1])
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None


def _fetch_one(client: PlaymentClient, source: Any, url: str, private: bool,
               max_bytes: int) -> dict[str, Any]:
    try:
        if private:
            got = client.fetch_result(url, max_bytes=max_bytes)
        else:
            got = client.download(url, max_bytes=max_bytes)
    except PlaymentDatasetsError as exc:  # messages carry no key or signature
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    data = got.content or b""
    sha = source.store(data)
    content_type = (got.content_type or "").split(";")[0].strip() or None
    width, height = _image_size(data) if (content_type or "").startswith("image/") or (
        content_type in (None, "application/octet-stream")) else (None, None)
    return {"sha256": sha, "bytes": len(data), "content_type": content_type,
            "width": width, "height": height, "status": "ok", "error": None}


def fetch_media(
    ds: Any,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    workers: int = 16,
    progress: bool | None = None,
    retry: RetryPolicy | None = None,
    timeout: Timeouts | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    private_hosts: Iterable[str] | None = None,
    refetch: bool = False,
) -> pd.DataFrame:
    """Download every source file ``ds`` references that is not stored yet; return ``ds.media``.

    Args:
        ds: a version (or view) loaded through a registry.
        api_key, base_url: as for :func:`~playment_datasets.pull.orchestrate.pull`
            (the key is sent to the API host only).
        workers: downloads in flight at once.
        progress: show a progress bar; ``None`` shows it in a terminal or notebook.
        retry, timeout: see :class:`RetryPolicy` and :class:`Timeouts`.
        max_bytes: refuse a file larger than this (its row gets ``status="failed"``).
        private_hosts: more hosts whose URLs go through the attachment endpoint.
        refetch: download again URLs already stored.

    A file that cannot be fetched gets ``status="failed"`` and the ``error``; run the
    call again to retry only those.

    Example:
        >>> media = fetch_media(ds, workers=8, progress=False)   # doctest: +SKIP
        >>> (media["status"] == "ok").all()                      # doctest: +SKIP
        True
    """
    source = getattr(ds, "_media_source", None)
    if source is None:
        raise ConfigurationError(
            f"{ds!r} has no media store; expected a version loaded through a Registry "
            "(pds.load, Registry.load or pull)"
        )
    if workers < 1:
        raise ConfigurationError(f"workers must be a whole number >= 1; got {workers!r}")
    if max_bytes < 1:
        raise ConfigurationError(f"max_bytes must be >= 1; got {max_bytes!r}")
    records = source.records()
    urls = [str(u) for u in ds.media["url"]]
    todo = [u for u in urls if refetch or not _stored(source, records.get(u))]
    skipped = len(urls) - len(todo)
    if not todo:
        logger.info("media of %s v%s: all %d file(s) already stored", ds.batch_id, ds.version,
                    len(urls))
        return ds.media
    hosts = _private_hosts(ds, private_hosts)
    client = PlaymentClient(api_key, base_url=base_url, retry=retry, timeout=timeout,
                            pool_size=workers)
    pending: dict[str, dict[str, Any]] = {}
    counts = {"ok": 0, "failed": 0}
    with client, make_progress(progress, desc="media", unit="file", total=len(todo)) as bar, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media") as pool:
        futures: dict[Future[dict[str, Any]], str] = {
            pool.submit(_fetch_one, client, source, url, _is_private(url, hosts), max_bytes): url
            for url in todo
        }
        remaining = set(futures)
        try:
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    record = future.result()
                    pending[futures[future]] = record
                    counts[record["status"]] += 1
                    bar.update(1)
                if len(pending) >= _FLUSH_EVERY:
                    source.merge(pending)
                    pending = {}
        finally:
            for future in remaining:
                future.cancel()
            source.merge(pending)  # what completed is kept, even when interrupted
    logger.info("media of %s v%s: %d fetched, %d failed, %d already stored", ds.batch_id,
                ds.version, counts["ok"], counts["failed"], skipped)
    return ds.media


def _stored(source: Any, record: Any) -> bool:
    return bool(record and record.get("status") == "ok" and record.get("sha256")
                and source.file(str(record["sha256"])) is not None)
