"""Mask files of a segmentation result: which ones it references, and their rows.

:func:`mask_refs` lists the mask files of a parsed result; :func:`add_masks` decodes
the bytes the caller fetched (see :mod:`playment_datasets.normalize.masks`) into
``masks`` and ``point_labels`` rows and fills the pixel / point statistics of the
job's ``segments`` rows. Pure: the bytes come in through a mapping or a callable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from playment_datasets.normalize._base import Out
from playment_datasets.normalize._formats import mask_url_of
from playment_datasets.normalize.masks import DecodedMask, decode_mask
from playment_datasets.schema import TABLES

__all__ = ["DecodedBytes", "MaskMissing", "MaskRef", "MaskSource", "add_masks",
           "iter_point_labels", "mask_refs", "stored_masks"]


@dataclass(frozen=True)
class DecodedBytes:
    """Mask bytes that the caller already decoded with :func:`decode_mask` (a pull
    decodes PNG masks in its worker threads, in parallel with the downloads).

    Example:
        >>> from playment_datasets.normalize.masks import decode_mask
        >>> DecodedBytes(b"0\\n", decode_mask("labels", b"0\\n")).decoded.label_counts
        {0: 1}
    """

    data: bytes
    decoded: DecodedMask


@dataclass(frozen=True)
class MaskMissing:
    """What a mask source gives for a mask it has no bytes of, and why.

    ``status`` is a ``masks.decode_status`` (``not_fetched`` or ``fetch_failed``);
    ``error`` the reason, kept in ``masks.decode_error`` (a ``fetch_failed`` mask also
    gets a ``warnings`` row).

    Example:
        >>> MaskMissing("fetch_failed", "HTTP 503 six times").status
        'fetch_failed'
    """

    status: str
    error: str | None = None


#: Where the normalizer gets mask bytes: ``{url: bytes}``, or ``url -> bytes | None``
#: (or a :class:`MaskMissing`, or :class:`DecodedBytes`); ``None`` (or a missing URL)
#: means not fetched.
MaskValue = bytes | DecodedBytes | MaskMissing
MaskSource = Mapping[str, MaskValue] | Callable[[str], MaskValue | None] | None

#: Rows per ``point_labels`` chunk.
POINT_LABEL_CHUNK = 1 << 16

_SEGMENT_KINDS = frozenset({"image_segmentation", "video_segmentation",
                            "point_cloud_segmentation"})
# positions in a segments row (see schema.TABLES["segments"])
_FRAME, _COLOR, _LABEL_KEY, _MASK_URL, _STATS, _EXTRA = 2, 4, 5, 9, 10, 16


@dataclass(frozen=True)
class MaskRef:
    """One mask file a result references: its URL, frame and kind (png/pcd/labels)."""

    url: str
    frame_id: str | None
    kind: str


def mask_refs(body: Any, kind: str) -> list[MaskRef]:
    """The mask files of an unwrapped result body of ``kind``, in file order, deduplicated.

    Never raises: values of the wrong type are skipped (the normalizer reports them).
    """
    if kind not in _SEGMENT_KINDS or type(body) is not dict:
        return []
    refs: dict[tuple[str, str | None], MaskRef] = {}

    def add(url: Any, frame_id: Any, mask_kind: str) -> None:
        if type(url) is str and url and (frame_id is None or type(frame_id) is str):
            refs.setdefault((url, frame_id), MaskRef(url, frame_id, mask_kind))

    legend = body.get("legend")
    if type(legend) is dict:
        add(body.get("url"), None, "png")
    elif type(legend) is list:
        add(body.get("url"), None, "pcd")
    data = body.get("annotation_data", body.get("annotations_data"))
    entries = data.get("annotations") if type(data) is dict else None
    if kind == "video_segmentation" and type(entries) is list:
        for entry in entries:
            if type(entry) is dict:
                add(entry.get("url"), entry.get("frame_id"), "png")
    masks = body.get("masks", body.get("Masks"))
    if kind == "point_cloud_segmentation" and type(masks) is dict:
        for frame_id in masks:
            add(mask_url_of(masks, frame_id), frame_id, "labels")
    return list(refs.values())


def stored_masks(
    entries: Any,
    get_object: Callable[[str], bytes],
    ready: Mapping[str, MaskValue] | None = None,
) -> Callable[[str], MaskValue | None] | None:
    """The mask source of one job from its stored mask entries.

    ``entries`` is the ``masks`` list of a manifest or journal job entry
    (``{"url", "sha256", "error"…}``); ``None`` (masks not fetched) gives ``None``.
    Bytes come from ``ready`` (url → bytes already in memory) or ``get_object(sha256)``;
    an entry without a sha256 gives ``MaskMissing("fetch_failed", its error)``, and so
    does a stored copy that has gone missing.

    Example:
        >>> source = stored_masks([{"url": "u", "sha256": None, "error": "HTTP 503"}], bytes)
        >>> source("u")
        MaskMissing(status='fetch_failed', error='HTTP 503')
    """
    if entries is None:
        return None
    by_url = {str(m.get("url")): m for m in entries if isinstance(m, Mapping)}
    ready = ready or {}

    def source(url: str) -> MaskValue | None:
        if url in ready:
            return ready[url]
        entry = by_url.get(url)
        if entry is None:
            return None
        if entry.get("sha256"):
            try:
                return get_object(str(entry["sha256"]))
            except KeyError as exc:  # removed from the store since (DatasetNotFoundError)
                return MaskMissing("fetch_failed", str(exc))
        return MaskMissing("fetch_failed", str(entry.get("error") or "not fetched"))

    return source


def _bytes_of(source: MaskSource, url: str) -> MaskValue | None:
    if source is None:
        return None
    if callable(source):
        return source(url)
    return source.get(url)


def iter_point_labels(job_id: str | None, frame_id: str | None, labels: np.ndarray,
                      chunk_rows: int = POINT_LABEL_CHUNK) -> Iterator[pa.Table]:
    """``point_labels`` tables of one label array, ``chunk_rows`` rows at a time.

    Example:
        >>> import numpy as np
        >>> [t.num_rows for t in iter_point_labels("j1", "f1", np.zeros(5, "int64"), 2)]
        [2, 2, 1]
    """
    schema = TABLES["point_labels"]
    for start in range(0, len(labels), chunk_rows):
        part = labels[start:start + chunk_rows]
        n = len(part)
        yield pa.Table.from_arrays([
            pa.repeat(pa.scalar(job_id, pa.string()), n),
            pa.repeat(pa.scalar(frame_id, pa.string()), n),
            pa.array(np.arange(start, start + n, dtype=np.int64)),
            pa.array(part, type=pa.int64()),
        ], schema=schema)


def _stats(decoded: DecodedMask, row: tuple[Any, ...]) -> tuple[Any, ...]:
    if not decoded.ok:
        return (None,) * 5
    if decoded.kind == "png":
        color = row[_COLOR]
        found = decoded.colors.get(color) if color is not None else None
        if found is None:
            return (0, None, None, None, None)
        return (found.n_pixels, found.x_min, found.y_min, found.x_max, found.y_max)
    key = row[_LABEL_KEY]
    return (decoded.label_counts.get(key, 0) if key is not None else None,
            None, None, None, None)


def add_masks(out: Out, refs: list[MaskRef], source: MaskSource) -> None:
    """Decode every referenced mask; fill ``masks``, ``point_labels`` and segment stats.

    Colours or label keys found in a mask but absent from its legend become segments
    rows with a null label (key ``mask:{colour or key}``, plus ``@frame``).
    """
    job_id = out.job_id
    segments = out.segments
    for ref in refs:
        got = _bytes_of(source, ref.url)
        mine = [i for i, row in enumerate(segments) if row[_MASK_URL] == ref.url
                and (ref.frame_id is None or row[_FRAME] == ref.frame_id)]
        if got is None or isinstance(got, MaskMissing):
            missing = got or MaskMissing("not_fetched")
            out.masks.append((job_id, ref.frame_id, ref.kind, ref.url, None, None, None, None,
                              None, missing.status, missing.error))
            if missing.status == "fetch_failed":
                what = f"the {ref.kind} mask {ref.url}" + (
                    f" of frame {ref.frame_id}" if ref.frame_id is not None else "")
                out.warnings.append((
                    job_id, None, "$", "a mask file", "a fetch error",
                    f"{what} could not be fetched ({missing.error}); its segments have no "
                    "pixel statistics. Pull again to retry it."))
            continue
        if isinstance(got, DecodedBytes):
            data = got.data
            decoded = (got.decoded if got.decoded.kind == ref.kind
                       else decode_mask(ref.kind, data))
        else:
            data = bytes(got)
            decoded = decode_mask(ref.kind, data)
        sha = hashlib.sha256(data).hexdigest()
        out.masks.append((job_id, ref.frame_id, ref.kind, ref.url, sha, decoded.width,
                          decoded.height, decoded.n_points, len(data), decoded.status,
                          decoded.error))
        for i in mine:
            row = segments[i]
            segments[i] = (*row[:_STATS], *_stats(decoded, row), sha, *row[_EXTRA:])
        if not decoded.ok:
            continue
        if decoded.kind == "png":
            known = {segments[i][_COLOR] for i in mine}
            for color, found in decoded.colors.items():
                if color not in known:
                    key = out.key(f"mask:{color}", ref.frame_id)
                    segments.append((job_id, key, ref.frame_id, None, color, None, None, None,
                                     None, ref.url, found.n_pixels, found.x_min, found.y_min,
                                     found.x_max, found.y_max, sha, None))
        else:
            known_keys = {segments[i][_LABEL_KEY] for i in mine}
            for label_key, n in decoded.label_counts.items():
                if label_key not in known_keys:
                    key = out.key(f"mask:{label_key}", ref.frame_id)
                    segments.append((job_id, key, ref.frame_id, None, None, label_key, None,
                                     None, None, ref.url, n, None, None, None, None, sha, None))
            assert decoded.labels is not None
            out.point_labels.extend(iter_point_labels(job_id, ref.frame_id, decoded.labels))
