"""What changed between two versions of a batch.

Jobs are compared by the sha256 of their raw result: a job is *added*, *removed* or
*changed*. For changed jobs, annotations are matched on ``(job_id, annotation_key)``:
*added*, *removed*, *relabelled* (same key, different label) and *moved* (same key, a
bounding-box coordinate differs by more than 1e-9, or is null on one side only). An
annotation both relabelled and moved appears in both tables.

Example:
    >>> import playment_datasets as pds
    >>> d = pds.Registry().diff("BATCH_ID", 1, 2)     # doctest: +SKIP
    >>> d.summary()                                   # doctest: +SKIP
    {'jobs_added': 0, 'jobs_removed': 0, 'jobs_changed': 3, 'annotations_added': 5, ...}
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from playment_datasets.dataset.dataset import Dataset

__all__ = ["BBOX_TOLERANCE", "DatasetDiff", "diff_datasets"]

#: Largest coordinate change that does not count as a move.
BBOX_TOLERANCE = 1e-9

_KEYS = ["job_id", "annotation_key"]
_BBOX = ["x_min", "y_min", "x_max", "y_max"]
_ANN_COLS = [*_KEYS, "annotation_id", "type", "label", *_BBOX]


@dataclass
class DatasetDiff:
    """Differences from version ``a`` to version ``b`` of one batch, as DataFrames."""

    batch_id: str
    a: int
    b: int
    jobs_added: pd.DataFrame
    jobs_removed: pd.DataFrame
    jobs_changed: pd.DataFrame
    annotations_added: pd.DataFrame
    annotations_removed: pd.DataFrame
    annotations_relabelled: pd.DataFrame
    annotations_moved: pd.DataFrame

    def summary(self) -> dict[str, int]:
        """Row count of every difference table."""
        return {
            f.name: len(getattr(self, f.name))
            for f in fields(self)
            if f.name.startswith(("jobs_", "annotations_"))
        }

    @property
    def is_empty(self) -> bool:
        return not any(self.summary().values())

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<DatasetDiff batch={self.batch_id} v{self.a}→v{self.b}: jobs +{s['jobs_added']} "
            f"-{s['jobs_removed']} ~{s['jobs_changed']}; annotations +{s['annotations_added']} "
            f"-{s['annotations_removed']} relabelled {s['annotations_relabelled']} "
            f"moved {s['annotations_moved']}>"
        )


def _job_frame(jobs: dict[str, Any], ids: list[str]) -> pd.DataFrame:
    rows = [
        {
            "job_id": j,
            "status": jobs[j].get("status"),
            "result_sha256": jobs[j].get("result_sha256"),
        }
        for j in ids
    ]
    return pd.DataFrame(rows, columns=["job_id", "status", "result_sha256"])


def _annotations(ds: Dataset, job_ids: list[str]) -> pd.DataFrame:
    if not job_ids:
        return ds.table("annotations", filters=[("job_id", "in", [""])]).iloc[0:0]
    return ds.table("annotations", filters=[("job_id", "in", job_ids)])


def _objects(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype=object, na_value=None)


def _floats(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype="float64", na_value=np.nan)


def diff_datasets(a: Dataset, b: Dataset) -> DatasetDiff:
    """Compare two Datasets of the same batch (``a`` older, ``b`` newer)."""
    if a.batch_id != b.batch_id:
        raise ValueError(f"cannot diff different batches {a.batch_id!r} and {b.batch_id!r}")
    ja, jb = a.manifest["jobs"], b.manifest["jobs"]
    added = sorted(set(jb) - set(ja))
    removed = sorted(set(ja) - set(jb))
    changed = sorted(
        j for j in set(ja) & set(jb) if ja[j].get("result_sha256") != jb[j].get("result_sha256")
    )
    jobs_changed = pd.DataFrame(
        [
            {
                "job_id": j,
                "status_a": ja[j].get("status"),
                "status_b": jb[j].get("status"),
                "result_sha256_a": ja[j].get("result_sha256"),
                "result_sha256_b": jb[j].get("result_sha256"),
            }
            for j in changed
        ],
        columns=["job_id", "status_a", "status_b", "result_sha256_a", "result_sha256_b"],
    )

    da, db = _annotations(a, changed), _annotations(b, changed)
    presence = da[_KEYS].merge(db[_KEYS], how="outer", on=_KEYS, indicator=True)
    only_b = presence.loc[presence["_merge"] == "right_only", _KEYS]
    only_a = presence.loc[presence["_merge"] == "left_only", _KEYS]
    ann_added = db.merge(only_b, on=_KEYS, how="inner").reset_index(drop=True)
    ann_removed = da.merge(only_a, on=_KEYS, how="inner").reset_index(drop=True)

    both = da[_ANN_COLS].merge(db[_ANN_COLS], on=_KEYS, how="inner", suffixes=("_a", "_b"))
    la, lb = _objects(both["label_a"]), _objects(both["label_b"])
    relabel_mask = np.array([x != y for x, y in zip(la, lb, strict=True)], dtype=bool)
    move_mask = np.zeros(len(both), dtype=bool)
    for c in _BBOX:
        va, vb = _floats(both[f"{c}_a"]), _floats(both[f"{c}_b"])
        with np.errstate(invalid="ignore"):
            move_mask |= (np.isnan(va) != np.isnan(vb)) | (np.abs(va - vb) > BBOX_TOLERANCE)
    both = both.rename(columns={"annotation_id_b": "annotation_id", "type_b": "type"})
    relabelled = both.loc[relabel_mask, [*_KEYS, "annotation_id", "type", "label_a", "label_b"]]
    moved = both.loc[
        move_mask,
        [*_KEYS, "annotation_id", "type", "label_b", *(f"{c}_a" for c in _BBOX),
         *(f"{c}_b" for c in _BBOX)],
    ].rename(columns={"label_b": "label"})  # fmt: skip

    return DatasetDiff(
        batch_id=a.batch_id,
        a=a.version,
        b=b.version,
        jobs_added=_job_frame(jb, added),
        jobs_removed=_job_frame(ja, removed),
        jobs_changed=jobs_changed,
        annotations_added=ann_added,
        annotations_removed=ann_removed,
        annotations_relabelled=relabelled.reset_index(drop=True),
        annotations_moved=moved.reset_index(drop=True),
    )
