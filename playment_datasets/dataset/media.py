"""The source media a version references, and what is known of them once fetched.

A version references media by URL: ``jobs.image_url`` (the image of an image job),
``frames.src`` (a video frame, a point cloud, or a sensor file when ``sensor_id`` is
set). Fetched files live in the registry's content-addressed object store, and a
per-batch media index maps each URL to its ``sha256``, size, content type and, for
images, width and height. The index sits beside the versions, not inside them: a
version directory never changes after commit, and media fetched later (or again) is
shared by every version of the batch that references the same URL.

The Dataset does not know where the index is: the registry hands it a *media source*
(:class:`MediaSource`) when it loads a version (``Dataset.attach_media``), and the
fetching itself (HTTP, a thread pool) belongs to ``pull/media.py``, which the package
hands to :class:`Dataset` as a hook.

Example:
    >>> ds.fetch_media()                                             # doctest: +SKIP
    >>> ds.media[["url", "width", "height", "status"]].head()        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

__all__ = ["MEDIA_SCHEMA", "MediaSource", "media_table", "media_urls"]

#: Columns of ``ds.media``: one row per distinct URL the version references.
MEDIA_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("kind", pa.string()),  # image, frame, sensor
    ("sha256", pa.string()),
    ("bytes", pa.int64()),
    ("content_type", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("status", pa.string()),  # ok, failed, missing (never fetched)
    ("error", pa.string()),
])


class MediaSource(Protocol):
    """What a registry hands a Dataset: the batch's media index and its files."""

    def records(self) -> Mapping[str, Mapping[str, Any]]:
        """url → {sha256, bytes, content_type, width, height, status, error}."""
        ...

    def file(self, sha256: str) -> Path | None:
        """The stored file of an object, or ``None`` when it is not stored."""
        ...


def media_urls(ds: Any) -> pd.DataFrame:
    """Every media reference of ``ds``: job_id, frame_id, sensor_id, kind, url.

    Example:
        >>> media_urls(ds).groupby("kind").size()   # doctest: +SKIP
    """
    jobs = ds.table("jobs", columns=["job_id", "image_url"])
    jobs = jobs[jobs["image_url"].notna() & (jobs["image_url"].astype(str) != "")]
    images = pd.DataFrame({"job_id": jobs["job_id"].astype(object), "frame_id": None,
                           "sensor_id": None, "kind": "image",
                           "url": jobs["image_url"].astype(object)})
    frames = ds.table("frames", columns=["job_id", "frame_id", "sensor_id", "src"])
    frames = frames[frames["src"].notna() & (frames["src"].astype(str) != "")]
    sensor = frames["sensor_id"].notna()
    framed = pd.DataFrame({"job_id": frames["job_id"].astype(object),
                           "frame_id": frames["frame_id"].astype(object),
                           "sensor_id": frames["sensor_id"].astype(object),
                           "kind": sensor.map({True: "sensor", False: "frame"}).astype(object),
                           "url": frames["src"].astype(object)})
    out = pd.concat([images, framed], ignore_index=True)
    return out.astype(object).where(out.notna(), None)


def media_table(ds: Any, source: MediaSource | None) -> pd.DataFrame:
    """``ds.media``: the columns of :data:`MEDIA_SCHEMA`, one row per distinct URL."""
    refs = media_urls(ds).drop_duplicates("url")
    records = source.records() if source is not None else {}
    rows = []
    for url, kind in zip(refs["url"], refs["kind"], strict=True):
        rec = records.get(url) or {}
        rows.append({"url": url, "kind": kind, "sha256": rec.get("sha256"),
                     "bytes": rec.get("bytes"), "content_type": rec.get("content_type"),
                     "width": rec.get("width"), "height": rec.get("height"),
                     "status": rec.get("status", "missing"), "error": rec.get("error")})
    table = pa.Table.from_pylist(rows, schema=MEDIA_SCHEMA)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def media_files(ds: Any, source: MediaSource | None) -> dict[str, tuple[str | None, Path | None]]:
    """url → (content type, stored file or ``None``) for every fetched URL."""
    if source is None:
        return {}
    out: dict[str, tuple[str | None, Path | None]] = {}
    for url, rec in source.records().items():
        sha = rec.get("sha256")
        if rec.get("status") == "ok" and sha:
            out[url] = (rec.get("content_type"), source.file(str(sha)))
    return out


def image_sizes(ds: Any, source: MediaSource | None) -> dict[str, tuple[int, int]]:
    """job_id → (width, height) of its image, or of its first sized frame / camera file."""
    if source is None:
        return {}
    records = source.records()
    sizes: dict[str, tuple[int, int]] = {}
    refs = media_urls(ds)
    for job_id, url in zip(refs["job_id"], refs["url"], strict=True):
        rec = records.get(url) or {}
        w, h = rec.get("width"), rec.get("height")
        if job_id not in sizes and w and h:
            sizes[str(job_id)] = (int(w), int(h))
    return sizes
