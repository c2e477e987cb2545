"""A stored segmentation mask, decoded into a NumPy array with its id mapping.

:meth:`Dataset.mask` is the entry point; the bytes come from the registry's object
store through the reader the registry handed the Dataset, and are decoded by
:mod:`playment_datasets.normalize.masks`.

Example:
    >>> m = ds.mask("JOB_ID")                      # doctest: +SKIP
    >>> (m.array == 3).sum() == m.ids.set_index("id").loc[3, "n_pixels"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from playment_datasets.errors import ConfigurationError, DatasetNotFoundError, ResultFormatError
from playment_datasets.normalize.masks import DecodedMask, decode_mask, png_ids

__all__ = ["MaskArray", "read_mask"]

#: Columns of :attr:`MaskArray.ids` taken from the job's ``segments`` rows.
_SEGMENT_COLUMNS = ["label", "class_name", "instance_id", "track_id", "annotation_key"]


@dataclass(frozen=True)
class MaskArray:
    """A decoded mask and what its values mean.

    ``array``: for a ``png`` mask an H × W ``int32`` array of ids — 0 is unlabelled,
    ``i >= 1`` a colour of the mask; for a ``pcd`` / ``labels`` mask a 1-D ``int64``
    array with the label key of each point, in file order.

    ``ids``: one row per value found — for ``png`` the columns ``id``, ``color``,
    ``n_pixels``; for point clouds ``label_key``, ``n_points``; then ``label``,
    ``class_name``, ``instance_id``, ``track_id`` and ``annotation_key`` from the job's
    ``segments`` rows (null for a colour or key the legend does not list).
    """

    array: np.ndarray[Any, Any]
    ids: pd.DataFrame
    kind: str
    job_id: str
    frame_id: str | None
    url: str


class Dataset(Protocol):
    """What reading a mask needs of a :class:`~playment_datasets.dataset.dataset.Dataset`."""

    path: Any

    @property
    def batch_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    def arrow(self, name: str, columns: Any = None, filters: Any = None) -> pa.Table: ...

    def object(self, sha256: str) -> bytes: ...


def _frames(rows: list[dict[str, Any]]) -> str:
    return ", ".join(repr(r["frame_id"]) for r in rows)


def _mask_row(ds: Dataset, job_id: str, frame_id: str | None) -> dict[str, Any]:
    rows = ds.arrow("masks", filters=[("job_id", "==", job_id)]).to_pylist()
    where = f"{ds.batch_id} v{ds.version}"
    if not rows:
        jobs = ds.arrow("jobs", columns=["job_id", "result_kind"],
                        filters=[("job_id", "==", job_id)]).to_pylist()
        if not jobs:
            raise DatasetNotFoundError(
                f"job {job_id!r} is not in {where}; expected one of the ids of ds.jobs.job_id")
        raise DatasetNotFoundError(
            f"job {job_id!r} of {where} has no mask: its result kind is "
            f"{jobs[0]['result_kind']!r}; only image, video and point-cloud segmentation "
            "results reference masks")
    if frame_id is not None:
        chosen = [r for r in rows if r["frame_id"] == frame_id]
        if not chosen:
            raise DatasetNotFoundError(
                f"job {job_id!r} of {where} has no mask for frame {frame_id!r}; its masks "
                f"are for frames {_frames(rows)}")
        rows = chosen
    elif len(rows) > 1:
        raise ConfigurationError(
            f"job {job_id!r} of {where} has {len(rows)} masks (frames {_frames(rows)}); "
            "pass frame_id= to choose one")
    row = rows[0]
    status = row["decode_status"]
    if status in ("not_fetched", "fetch_failed"):
        why = f" ({row['decode_error']})" if row.get("decode_error") else ""
        raise DatasetNotFoundError(
            f"the mask of job {job_id!r} in {where} was not fetched{why}; pull the batch "
            "again with masks (pull(..., masks=True), or the pull command without "
            "--no-masks) to fetch it")
    if status != "ok":
        raise ResultFormatError(
            f"the mask file {row['url']} of job {job_id!r} cannot be decoded ({status}: "
            f"{row['decode_error']}); the file Playment served is damaged, nothing can be "
            "read from it", job_id=job_id, path=row["url"])
    return row


def _segments(ds: Dataset, row: dict[str, Any]) -> list[dict[str, Any]]:
    filters = [("job_id", "==", row["job_id"]), ("mask_url", "==", row["url"])]
    segs = ds.arrow("segments", filters=filters).to_pylist()
    if row["frame_id"] is not None:
        segs = [s for s in segs if s["frame_id"] == row["frame_id"]]
    return segs


def _frame(values: dict[str, list[Any]], segs: dict[Any, dict[str, Any]],
           keys: list[Any]) -> pd.DataFrame:
    for col in _SEGMENT_COLUMNS:
        values[col] = [segs.get(k, {}).get(col) for k in keys]
    return pa.table(values).to_pandas(types_mapper=pd.ArrowDtype)


def read_mask(ds: Dataset, job_id: str, frame_id: str | None) -> MaskArray:
    """See :meth:`Dataset.mask`."""
    if frame_id is not None and not isinstance(frame_id, str) and pd.isna(frame_id):
        frame_id = None  # a null taken from a DataFrame (pd.NA): the job's only mask
    row = _mask_row(ds, job_id, frame_id)
    data = ds.object(str(row["sha256"]))
    segs = _segments(ds, row)
    kind = str(row["kind"])
    if kind == "png":
        got = png_ids(data)
        if isinstance(got, DecodedMask):
            raise ResultFormatError(f"the stored mask {row['url']} cannot be decoded: "
                                    f"{got.error}", job_id=job_id, path=row["url"])
        array, colors = got
        counts = np.bincount(array.ravel(), minlength=len(colors) + 1)[1:]
        ids = _frame({"id": list(range(1, len(colors) + 1)), "color": colors,
                      "n_pixels": counts.tolist()},
                     {s["color"]: s for s in reversed(segs) if s["color"]}, colors)
    else:
        decoded = decode_mask(kind, data)
        if not decoded.ok or decoded.labels is None:
            raise ResultFormatError(f"the stored mask {row['url']} cannot be decoded: "
                                    f"{decoded.error}", job_id=job_id, path=row["url"])
        array = decoded.labels
        keys = sorted(decoded.label_counts)
        ids = _frame({"label_key": keys, "n_points": [decoded.label_counts[k] for k in keys]},
                     {s["label_key"]: s for s in reversed(segs) if s["label_key"] is not None},
                     keys)
    return MaskArray(array, ids, kind, job_id, row["frame_id"], str(row["url"]))
