"""Quality checks of a version: findings a reviewer should look at before training.

Every check reads only the columns it needs (as Arrow tables, through a ``read``
callable) and returns findings with the columns of :data:`FINDING_COLUMNS`:

=========================  ========  ===============================================
check                      severity  finding
=========================  ========  ===============================================
``box_out_of_bounds``      warning   a box reaches outside the image ([0, 1])
``box_degenerate``         error     a rectangle with zero (or negative) width/height
``polygon_few_points``     error     a polygon with fewer than 3 points
``polygon_zero_area``      error     a polygon whose area is zero
``duplicate_shape``        warning   the same type, label and box twice in one image
``track_gap``              warning   a video track missing from frames between its
                                     first and last
``frame_without_annotations`` info   a video frame that no annotation covers
``segment_missing_from_mask`` warning a legend entry whose colour the decoded mask
                                     does not contain (zero or null pixel count)
``job_not_completed``      info      a job without a result (still in progress)
``attribute_missing``      warning   an attribute most annotations of a label have,
                                     missing on this one
=========================  ========  ===============================================

``Dataset.quality()`` returns every finding; at commit, :func:`quality_counts` stores
the count per check in the manifest (``manifest["extra"]["quality"]``) so ``check``
and ``show`` answer without reading the tables.

Example:
    >>> ds.quality().groupby("check").size()         # doctest: +SKIP
    >>> ds.manifest["extra"]["quality"]              # doctest: +SKIP
    {'box_out_of_bounds': 3, 'duplicate_shape': 1, ...}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets.schema import TABLES

__all__ = ["CHECKS", "FINDING_COLUMNS", "quality_counts", "quality_counts_of_dir",
           "quality_findings"]

logger = logging.getLogger(__name__)

#: ``read(table, columns) -> pa.Table`` (a missing table reads as empty).
Reader = Callable[[str, Sequence[str]], pa.Table]

FINDING_COLUMNS = ("check", "severity", "job_id", "annotation_key", "frame_id", "message")
#: Share of a label's annotations that must carry an attribute for its absence to count.
MOSTLY = 0.5
_EPS = 1e-12
_BOX = ["x_min", "y_min", "x_max", "y_max"]


def _frame(read: Reader, name: str, columns: Sequence[str]) -> pd.DataFrame:
    table = read(name, list(columns))
    df = table.to_pandas()
    for col in columns:
        if col not in df.columns:
            df[col] = None
    return df


def _findings(check: str, severity: str, rows: pd.DataFrame, message: pd.Series | str
              ) -> pd.DataFrame:
    out = pd.DataFrame({
        "check": check, "severity": severity,
        "job_id": rows["job_id"].astype(object).values if "job_id" in rows else None,
        "annotation_key": (rows["annotation_key"].astype(object).values
                           if "annotation_key" in rows else None),
        "frame_id": rows["frame_id"].astype(object).values if "frame_id" in rows else None,
        "message": message.values if isinstance(message, pd.Series) else message,
    }, index=range(len(rows)))
    return out


def _boxes(ann: pd.DataFrame) -> list[pd.DataFrame]:
    box = ann[_BOX].astype("float64")
    has_box = box.notna().all(axis=1)
    out = []
    outside = has_box & ((box < -_EPS) | (box > 1 + _EPS)).any(axis=1)
    rows = ann[outside]
    out.append(_findings("box_out_of_bounds", "warning", rows, rows.apply(
        lambda r: f"{r['type']} {r['label']!s} box ({r['x_min']:.4g}, {r['y_min']:.4g}, "
                  f"{r['x_max']:.4g}, {r['y_max']:.4g}) reaches outside [0, 1]", axis=1)
        if len(rows) else ""))
    rect = (ann["type"] == "rectangle") & has_box
    flat = rect & (((box["x_max"] - box["x_min"]).abs() <= _EPS)
                   | ((box["y_max"] - box["y_min"]).abs() <= _EPS))
    rows = ann[flat]
    out.append(_findings("box_degenerate", "error", rows,
                         "rectangle of zero width or height"))
    return out


def _polygons(ann: pd.DataFrame, points: pd.DataFrame) -> list[pd.DataFrame]:
    poly = ann[ann["type"] == "polygon"][["job_id", "annotation_key", "frame_id"]]
    if poly.empty:
        return []
    pts = points.merge(poly, on=["job_id", "annotation_key", "frame_id"])
    pts = pts.sort_values(["job_id", "annotation_key", "frame_id", "point_index"])
    counts = pts.groupby(["job_id", "annotation_key", "frame_id"], dropna=False).size()
    keyed = poly.set_index(["job_id", "annotation_key", "frame_id"])
    n = counts.reindex(keyed.index).fillna(0).astype(int)
    few = n[n < 3]
    few_rows = few.reset_index()
    out = [_findings("polygon_few_points", "error", few_rows,
                     few_rows[0].map(lambda k: f"polygon with {k} point(s); expected >= 3")
                     if len(few_rows) else "")]
    x = pts["x"].to_numpy(dtype="float64")
    y = pts["y"].to_numpy(dtype="float64")
    group = pts.groupby(["job_id", "annotation_key", "frame_id"], dropna=False,
                        sort=False).ngroup().to_numpy()
    if len(x):
        # shoelace per ring: the next vertex within the ring, the first after the last
        nxt = np.arange(1, len(x) + 1)
        last = np.r_[group[1:] != group[:-1], True]
        starts = np.r_[0, np.flatnonzero(last[:-1]) + 1]
        nxt[last] = starts
        cross = x * y[nxt] - x[nxt] * y
        area = np.abs(np.bincount(group, weights=cross)) / 2
        keys = pts.drop_duplicates(["job_id", "annotation_key", "frame_id"])
        keys = keys.assign(area=area[: len(keys)], n=np.bincount(group))
        zero = keys[(keys["n"] >= 3) & (keys["area"] <= 1e-12)]
        out.append(_findings("polygon_zero_area", "error", zero,
                             "polygon of zero area (its points are on one line)"))
    return out


def _duplicates(ann: pd.DataFrame) -> pd.DataFrame:
    shaped = ann[ann[_BOX].notna().all(axis=1)]
    key = shaped[["job_id", "frame_id", "sensor_id", "type", "label"]].astype(object).fillna("")
    key = key.assign(**{c: shaped[c].astype("float64").round(6) for c in _BOX})
    dup = key.duplicated(keep="first")
    rows = shaped[dup]
    return _findings("duplicate_shape", "warning", rows, rows.apply(
        lambda r: f"a second {r['type']} {r['label']!s} with the same box in this image",
        axis=1) if len(rows) else "")


def _track_gaps(ann: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    tracked = ann[ann["track_id"].notna() & ann["frame_index"].notna()]
    if tracked.empty:
        return _findings("track_gap", "warning", tracked, "")
    rows = []
    for (job_id, track), group in tracked.groupby(["job_id", "track_id"], sort=True):
        seen = sorted({int(i) for i in group["frame_index"]})
        missing = sorted(set(range(seen[0], seen[-1] + 1)) - set(seen))
        if missing:
            rows.append({"job_id": job_id, "annotation_key": group["annotation_key"].iloc[0],
                         "frame_id": None, "message": f"track {track} is missing from "
                         f"{len(missing)} frame(s) between frames {seen[0]} and {seen[-1]} "
                         f"(frame indexes {', '.join(map(str, missing[:5]))}"
                         f"{', …' if len(missing) > 5 else ''})"})
    df = pd.DataFrame(rows, columns=["job_id", "annotation_key", "frame_id", "message"])
    return _findings("track_gap", "warning", df, df["message"])


def _empty_frames(ann: pd.DataFrame, frames: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    video_jobs = set(jobs.loc[jobs["result_kind"].isin(["video", "video_segmentation"]),
                              "job_id"])
    vf = frames[frames["job_id"].isin(video_jobs) & frames["sensor_id"].isna()]
    covered = set(zip(ann["job_id"], ann["frame_id"], strict=True))
    mask = [(j, f) not in covered for j, f in zip(vf["job_id"], vf["frame_id"], strict=True)]
    rows = vf[mask]
    return _findings("frame_without_annotations", "info", rows,
                     "video frame without any annotation")


def _segments(segments: pd.DataFrame, masks: pd.DataFrame) -> pd.DataFrame:
    decoded = set(zip(masks.loc[masks["decode_status"] == "ok", "job_id"],
                      masks.loc[masks["decode_status"] == "ok", "frame_id"].astype(object)
                      .where(lambda s: s.notna(), None), strict=True))
    pixels = pd.to_numeric(segments["n_pixels"], errors="coerce")
    frame_ids = segments["frame_id"].astype(object).where(segments["frame_id"].notna(), None)
    in_decoded = [(j, f) in decoded for j, f in zip(segments["job_id"], frame_ids,
                                                    strict=True)]
    # a null count means "not measured" unless that mask was decoded
    missing = (pixels == 0) | (pixels.isna() & pd.Series(in_decoded, index=segments.index))
    rows = segments[missing]
    return _findings("segment_missing_from_mask", "warning", rows, rows.apply(
        lambda r: f"legend entry {r['label']!s} ({r['color']!s}) has no pixels in the mask",
        axis=1) if len(rows) else "")


def _not_completed(jobs: pd.DataFrame) -> pd.DataFrame:
    rows = jobs[jobs["status"].astype(object).fillna("") != "completed"]
    return _findings("job_not_completed", "info", rows, rows["status"].map(
        lambda s: f"job status is {s!r}, not 'completed'; it has no annotations")
        if len(rows) else "")


def _attributes(ann: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    labelled = ann[ann["label"].notna() & (ann["type"] != "classification")]
    keys = ["job_id", "annotation_key", "frame_id"]
    labelled = labelled[[*keys, "label"]].astype(object)
    labelled["frame_id"] = labelled["frame_id"].where(labelled["frame_id"].notna(), None)
    if labelled.empty or attrs.empty:
        return _findings("attribute_missing", "warning", labelled.iloc[:0], "")
    # attributes of an annotation: on the annotation itself (frame_id null) or its frame
    present = attrs[["job_id", "annotation_key", "name"]].drop_duplicates().astype(object)
    have = labelled.merge(present, on=["job_id", "annotation_key"], how="inner")
    per_label = labelled.groupby("label").size()
    share = have.drop_duplicates([*keys, "name"]).groupby(["label", "name"]).size()
    wanted = share[share / per_label.reindex(share.index.get_level_values(0)).values > MOSTLY]
    rows = []
    have_set = set(zip(have["job_id"], have["annotation_key"], have["name"], strict=True))
    for (label, name), _count in wanted.items():
        group = labelled[labelled["label"] == label]
        for job_id, key, frame_id in zip(group["job_id"], group["annotation_key"],
                                         group["frame_id"], strict=True):
            if (job_id, key, name) not in have_set:
                rows.append({"job_id": job_id, "annotation_key": key, "frame_id": frame_id,
                             "message": f"no {name!r} attribute, which most {label!s} "
                                        "annotations have"})
    df = pd.DataFrame(rows, columns=[*keys, "message"])
    return _findings("attribute_missing", "warning", df, df["message"])


#: Check name → severity, in report order.
CHECKS = {
    "box_out_of_bounds": "warning", "box_degenerate": "error",
    "polygon_few_points": "error", "polygon_zero_area": "error",
    "duplicate_shape": "warning", "track_gap": "warning",
    "frame_without_annotations": "info", "segment_missing_from_mask": "warning",
    "job_not_completed": "info", "attribute_missing": "warning",
}


def quality_findings(read: Reader) -> pd.DataFrame:
    """Every finding of every check, with the columns of :data:`FINDING_COLUMNS`.

    Example:
        >>> import pyarrow as pa
        >>> from playment_datasets.schema import TABLES
        >>> def read(name, columns):
        ...     empty = TABLES[name].empty_table().select(list(columns))
        ...     if name != "jobs":
        ...         return empty
        ...     return pa.table({"job_id": ["j1"], "status": ["in_progress"],
        ...                      "result_kind": ["none"]}).select(list(columns))
        >>> quality_findings(read)[["check", "job_id"]].values.tolist()
        [['job_not_completed', 'j1']]
    """
    ann = _frame(read, "annotations", ["job_id", "annotation_key", "track_id", "frame_id",
                                       "frame_index", "sensor_id", "type", "label", *_BOX])
    jobs = _frame(read, "jobs", ["job_id", "status", "result_kind"])
    points = _frame(read, "points", ["job_id", "annotation_key", "frame_id", "point_index",
                                     "x", "y"])
    frames = _frame(read, "frames", ["job_id", "frame_id", "frame_index", "sensor_id"])
    segments = _frame(read, "segments", ["job_id", "annotation_key", "frame_id", "label",
                                         "color", "n_pixels"])
    masks = _frame(read, "masks", ["job_id", "frame_id", "decode_status"])
    attrs = _frame(read, "attributes", ["job_id", "annotation_key", "frame_id", "name"])
    parts = [*_boxes(ann), *_polygons(ann, points), _duplicates(ann),
             _track_gaps(ann, frames), _empty_frames(ann, frames, jobs),
             _segments(segments, masks), _not_completed(jobs), _attributes(ann, attrs)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    order = {name: i for i, name in enumerate(CHECKS)}
    out = out.sort_values(by=["check", "job_id", "annotation_key"],
                          key=lambda s: s.map(order) if s.name == "check" else s.astype(str),
                          kind="stable", ignore_index=True)
    return out[list(FINDING_COLUMNS)]


def quality_counts(read: Reader) -> dict[str, int]:
    """Findings per check (every check listed, zero included), for the manifest.

    Example:
        >>> from playment_datasets.schema import TABLES
        >>> quality_counts(lambda n, c: TABLES[n].empty_table().select(list(c)))["box_degenerate"]
        0
    """
    findings = quality_findings(read)
    counts = findings["check"].value_counts()
    return {name: int(counts.get(name, 0)) for name in CHECKS}


def quality_counts_of_dir(tables_dir: Path) -> dict[str, int]:
    """:func:`quality_counts` of the ``<table>.parquet`` files in ``tables_dir``.

    Called at commit on the staged tables. A failure costs only the counts (``{}``,
    logged), never the commit: they are a summary, the data matter more.
    """

    def read(name: str, columns: Sequence[str]) -> pa.Table:
        path = tables_dir / f"{name}.parquet"
        if not path.exists():
            return TABLES[name].empty_table().select(list(columns))
        return pq.read_table(path, columns=list(columns))

    try:
        return quality_counts(read)
    except Exception:  # noqa: BLE001
        logger.warning("could not count the quality findings of %s", tables_dir, exc_info=True)
        return {}
