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
and ``show`` answer without reading the tables. The checks work on Arrow tables and
NumPy arrays; only :func:`quality_findings` builds a DataFrame, so a commit counts the
findings without importing pandas.

Example:
    >>> ds.quality().groupby("check").size()         # doctest: +SKIP
    >>> ds.manifest["extra"]["quality"]              # doctest: +SKIP
    {'box_out_of_bounds': 3, 'duplicate_shape': 1, ...}
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playment_datasets.schema import TABLES

if TYPE_CHECKING:
    import pandas as pd

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
_KEYS = ["job_id", "annotation_key", "frame_id"]
#: The frame id of an annotation without a frame, in joins and groupings (ids never
#: hold a NUL character, so it matches no real frame).
_NO_FRAME = "\x00"

#: One finding without its check and severity: job id, annotation key, frame id, message.
_Row = tuple[Any, Any, Any, str]


def _table(read: Reader, name: str, columns: Sequence[str]) -> pa.Table:
    """The ``columns`` of a table; a column an older version lacks reads as nulls."""
    table = read(name, list(columns))
    schema = TABLES[name]
    for col in columns:
        if col not in table.column_names:
            typ = schema.field(col).type if col in schema.names else pa.string()
            table = table.append_column(col, pa.nulls(len(table), typ))
    return table.select(list(columns))


def _floats(table: pa.Table, col: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN."""
    return np.asarray(table.column(col).cast(pa.float64()).to_numpy(), dtype="float64")


def _is(table: pa.Table, col: str, value: str) -> np.ndarray:
    """``table[col] == value`` as booleans (null: False)."""
    return np.asarray(pc.fill_null(pc.equal(table.column(col), value), False))


def _rows(table: pa.Table, message: str | Callable[[dict[str, Any]], str]) -> list[_Row]:
    """A finding for every row of ``table``; ``message`` is one text for all, or made
    from each row (a dict of its columns)."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    none = [None] * table.num_rows
    keys = [cols.get(name, none) for name in _KEYS]
    if isinstance(message, str):
        texts: Iterable[str] = [message] * table.num_rows
    else:
        records = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(),
                                                                          strict=True)]
        texts = map(message, records)
    return list(zip(*keys, texts, strict=True))


def _where(table: pa.Table, mask: np.ndarray) -> pa.Table:
    return table.filter(pa.array(mask))


def _with_frame_key(table: pa.Table) -> pa.Table:
    """``frame_id`` with nulls as :data:`_NO_FRAME`, so joins and groups match them."""
    i = table.column_names.index("frame_id")
    return table.set_column(i, "frame_id", pc.fill_null(table.column("frame_id"), _NO_FRAME))


def _frame_of(value: Any) -> Any:
    return None if value == _NO_FRAME else value


def _box(ann: pa.Table) -> np.ndarray:
    """The box columns as an n × 4 float array, nulls as NaN."""
    return np.column_stack([_floats(ann, c) for c in _BOX])


def _boxes(ann: pa.Table, box: np.ndarray) -> tuple[list[_Row], list[_Row]]:
    has_box = ~np.isnan(box).any(axis=1)
    outside = has_box & ((box < -_EPS) | (box > 1 + _EPS)).any(axis=1)
    x0, y0, x1, y1 = box.T
    flat = _is(ann, "type", "rectangle") & has_box & (
        (np.abs(x1 - x0) <= _EPS) | (np.abs(y1 - y0) <= _EPS))
    return (
        _rows(_where(ann, outside), lambda r: (
            f"{r['type']} {r['label']!s} box ({r['x_min']:.4g}, {r['y_min']:.4g}, "
            f"{r['x_max']:.4g}, {r['y_max']:.4g}) reaches outside [0, 1]")),
        _rows(_where(ann, flat), "rectangle of zero width or height"),
    )


def _polygons(ann: pa.Table, points: pa.Table) -> tuple[list[_Row], list[_Row]]:
    poly = _with_frame_key(_where(ann, _is(ann, "type", "polygon")).select(_KEYS))
    if not poly.num_rows:
        return [], []
    # "row" keeps the stored order of points whose indexes tie (names without a number
    # have a null index): the join emits its rows in no set order
    points = points.append_column("row", pa.array(np.arange(points.num_rows)))
    pts = _with_frame_key(points).join(poly, keys=_KEYS, join_type="inner")
    pts = pts.sort_by([(k, "ascending") for k in [*_KEYS, "point_index", "row"]])
    n = pts.num_rows
    change = np.zeros(n, dtype=bool)  # where a ring starts (pts is sorted)
    if n:
        change[0] = True
        for k in _KEYS:
            col = pts.column(k)
            change[1:] |= np.asarray(pc.fill_null(
                pc.not_equal(col.slice(1), col.slice(0, n - 1)), True))
    starts = np.flatnonzero(change)
    sizes = np.diff(np.r_[starts, n]).astype("int64")
    firsts = pts.take(pa.array(starts)).select(_KEYS)
    keys = zip(*(firsts.column(k).to_pylist() for k in _KEYS), strict=True)
    counts = Counter(dict(zip(keys, sizes.tolist(), strict=True)))
    few = []
    for key in zip(*(poly.column(k).to_pylist() for k in _KEYS), strict=True):
        if counts[key] < 3:
            few.append((key[0], key[1], _frame_of(key[2]),
                        f"polygon with {counts[key]} point(s); expected >= 3"))
    if not n:
        return few, []
    # shoelace per ring: the next vertex within the ring, the first after the last
    x, y = _floats(pts, "x"), _floats(pts, "y")
    group = np.cumsum(change) - 1
    last = np.r_[change[1:], True]
    nxt = np.arange(1, n + 1)
    nxt[last] = starts
    cross = x * y[nxt] - x[nxt] * y
    area = np.abs(np.bincount(group, weights=cross)) / 2
    zero = starts[(sizes >= 3) & (area <= 1e-12)]
    flat = [(job, key, _frame_of(frame), message) for job, key, frame, message in
            _rows(pts.take(pa.array(zero)), "polygon of zero area (its points are on one line)")]
    return few, flat


def _duplicates(ann: pa.Table, box: np.ndarray) -> list[_Row]:
    shaped = np.flatnonzero(~np.isnan(box).any(axis=1))
    if not len(shaped):
        return []
    picked = ann.take(pa.array(shaped))
    keys = {c: pc.fill_null(picked.column(c).cast(pa.string()), "")
            for c in ("job_id", "frame_id", "sensor_id", "type", "label")}
    rounded = np.round(box[shaped], 6) + 0.0  # + 0.0: -0.0 and 0.0 are one value
    for i, c in enumerate(_BOX):
        keys[c] = pa.array(rounded[:, i])
    keys["row"] = pa.array(np.arange(len(shaped)))
    grouped = pa.table(keys).group_by(list(keys)[:-1]).aggregate(
        [("row", "min")])
    first = np.zeros(len(shaped), dtype=bool)
    first[np.asarray(grouped.column("row_min"))] = True
    return _rows(_where(picked, ~first), lambda r: (
        f"a second {r['type']} {r['label']!s} with the same box in this image"))


def _track_gaps(ann: pa.Table) -> list[_Row]:
    tracked = ann.filter(pc.and_(pc.and_(pc.is_valid(ann.column("track_id")),
                                         pc.is_valid(ann.column("frame_index"))),
                                 pc.is_valid(ann.column("job_id"))))
    if not tracked.num_rows:
        return []
    tracked = tracked.select(["job_id", "track_id", "frame_index", "annotation_key"])
    tracked = tracked.append_column("row", pa.array(np.arange(tracked.num_rows)))
    spans = tracked.group_by(["job_id", "track_id"]).aggregate([
        ("frame_index", "min"), ("frame_index", "max"), ("frame_index", "count_distinct"),
        ("row", "min")])
    lo, hi = spans.column("frame_index_min"), spans.column("frame_index_max")
    width = pc.add(pc.subtract(hi, lo), 1)
    gappy = spans.filter(pc.less(pc.cast(spans.column("frame_index_count_distinct"),
                                         pa.int64()), pc.cast(width, pa.int64())))
    if not gappy.num_rows:
        return []
    firsts = tracked.column("annotation_key").take(gappy.column("row_min")).to_pylist()
    tracks = list(zip(gappy.column("job_id").to_pylist(), gappy.column("track_id").to_pylist(),
                      strict=True))
    indexes: dict[tuple[Any, Any], set[int]] = {t: set() for t in tracks}
    among = tracked.filter(pc.is_in(tracked.column("track_id"), gappy.column("track_id")))
    for job_id, track, index in zip(*(among.column(c).to_pylist() for c in (
            "job_id", "track_id", "frame_index")), strict=True):
        if (job_id, track) in indexes:
            indexes[job_id, track].add(int(index))
    rows = []
    for (job_id, track), key in sorted(zip(tracks, firsts, strict=True), key=lambda t: t[0]):
        seen = sorted(indexes[job_id, track])
        missing = sorted(set(range(seen[0], seen[-1] + 1)) - indexes[job_id, track])
        rows.append((job_id, key, None, f"track {track} is missing from {len(missing)} "
                     f"frame(s) between frames {seen[0]} and {seen[-1]} (frame indexes "
                     f"{', '.join(map(str, missing[:5]))}{', …' if len(missing) > 5 else ''})"))
    return rows


def _empty_frames(ann: pa.Table, frames: pa.Table, jobs: pa.Table) -> list[_Row]:
    kinds = pc.is_in(jobs.column("result_kind"), pa.array(["video", "video_segmentation"]))
    video_jobs = jobs.column("job_id").filter(pc.fill_null(kinds, False)).unique()
    if not len(video_jobs):
        return []
    vf = frames.filter(pc.and_(pc.is_in(frames.column("job_id"), video_jobs),
                               pc.is_null(frames.column("sensor_id"))))
    in_video = ann.filter(pc.is_in(ann.column("job_id"), video_jobs))
    covered = set(zip(in_video.column("job_id").to_pylist(),
                      in_video.column("frame_id").to_pylist(), strict=True))
    uncovered = [(j, f) not in covered for j, f in zip(
        vf.column("job_id").to_pylist(), vf.column("frame_id").to_pylist(), strict=True)]
    return _rows(_where(vf, np.array(uncovered, dtype=bool)), "video frame without any annotation")


def _segments(segments: pa.Table, masks: pa.Table) -> list[_Row]:
    ok = _where(masks, _is(masks, "decode_status", "ok"))
    decoded = set(zip(ok.column("job_id").to_pylist(), ok.column("frame_id").to_pylist(),
                      strict=True))
    # a null count means "not measured" unless that mask was decoded
    missing = [pixels == 0 or (pixels is None and (job, frame) in decoded)
               for job, frame, pixels in zip(*(segments.column(c).to_pylist() for c in (
                   "job_id", "frame_id", "n_pixels")), strict=True)]
    return _rows(_where(segments, np.array(missing, dtype=bool)), lambda r: (
        f"legend entry {r['label']!s} ({r['color']!s}) has no pixels in the mask"))


def _not_completed(jobs: pa.Table) -> list[_Row]:
    return _rows(_where(jobs, ~_is(jobs, "status", "completed")), lambda r: (
        f"job status is {r['status']!r}, not 'completed'; it has no annotations"))


def _attributes(ann: pa.Table, attrs: pa.Table) -> list[_Row]:
    labelled = ann.filter(pc.and_(
        pc.is_valid(ann.column("label")),
        pc.fill_null(pc.not_equal(ann.column("type"), "classification"), True)))
    attrs = attrs.filter(pc.is_valid(attrs.column("name")))  # a nameless one says nothing
    if not labelled.num_rows or not attrs.num_rows:
        return []
    labelled = labelled.select([*_KEYS, "label"])
    labelled = labelled.append_column("row", pa.array(np.arange(labelled.num_rows)))
    present = attrs.group_by(["job_id", "annotation_key", "name"]).aggregate([])
    have = labelled.join(present, keys=["job_id", "annotation_key"], join_type="inner")
    # an annotation counts once per attribute name, under the label of its first row
    once = have.group_by([*_KEYS, "name"]).aggregate([("row", "min")])
    pairs = pa.table({"label": labelled.column("label").take(once.column("row_min")),
                      "name": once.column("name")})
    share = pairs.group_by(["label", "name"]).aggregate(
        [("name", "count", pc.CountOptions(mode="all"))])
    per_label = labelled.group_by("label").aggregate(
        [("row", "count", pc.CountOptions(mode="all"))])
    totals = dict(zip(per_label.column("label").to_pylist(),
                      per_label.column("row_count").to_pylist(), strict=True))
    wanted = sorted((label, name) for label, name, n in zip(
        *(share.column(c).to_pylist() for c in ("label", "name", "name_count")), strict=True)
        if n / totals[label] > MOSTLY)
    if not wanted:
        return []
    labels, names = zip(*wanted, strict=True)
    expected = labelled.join(pa.table({"label": list(labels), "name": list(names),
                                       "pair": list(range(len(wanted)))}), keys="label",
                              join_type="inner")
    lacking = expected.join(present, keys=["job_id", "annotation_key", "name"],
                            join_type="left anti").sort_by([("pair", "ascending"),
                                                            ("row", "ascending")])
    return _rows(lacking, lambda r: (
        f"no {r['name']!r} attribute, which most {r['label']!s} annotations have"))


#: Check name → severity, in report order.
CHECKS = {
    "box_out_of_bounds": "warning", "box_degenerate": "error",
    "polygon_few_points": "error", "polygon_zero_area": "error",
    "duplicate_shape": "warning", "track_gap": "warning",
    "frame_without_annotations": "info", "segment_missing_from_mask": "warning",
    "job_not_completed": "info", "attribute_missing": "warning",
}


def _findings(read: Reader) -> list[tuple[Any, ...]]:
    """Every finding as ``(check, severity, job_id, annotation_key, frame_id, message)``,
    in report order: by check, then job id and annotation key (stable)."""
    ann = _table(read, "annotations", ["job_id", "annotation_key", "track_id", "frame_id",
                                       "frame_index", "sensor_id", "type", "label", *_BOX])
    jobs = _table(read, "jobs", ["job_id", "status", "result_kind"])
    points = _table(read, "points", ["job_id", "annotation_key", "frame_id", "point_index",
                                     "x", "y"])
    frames = _table(read, "frames", ["job_id", "frame_id", "frame_index", "sensor_id"])
    segments = _table(read, "segments", ["job_id", "annotation_key", "frame_id", "label",
                                         "color", "n_pixels"])
    masks = _table(read, "masks", ["job_id", "frame_id", "decode_status"])
    attrs = _table(read, "attributes", ["job_id", "annotation_key", "frame_id", "name"])
    box = _box(ann)
    outside, flat = _boxes(ann, box)
    few, zero_area = _polygons(ann, points)
    found = {
        "box_out_of_bounds": outside, "box_degenerate": flat, "polygon_few_points": few,
        "polygon_zero_area": zero_area, "duplicate_shape": _duplicates(ann, box),
        "track_gap": _track_gaps(ann), "frame_without_annotations":
        _empty_frames(ann, frames, jobs), "segment_missing_from_mask":
        _segments(segments, masks), "job_not_completed": _not_completed(jobs),
        "attribute_missing": _attributes(ann, attrs),
    }
    order = {name: i for i, name in enumerate(CHECKS)}
    out = [(check, CHECKS[check], *row) for check in CHECKS for row in found[check]]
    out.sort(key=lambda r: (order[r[0]], r[2] is None, str(r[2]), r[3] is None, str(r[3])))
    return out


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
    import pandas as pd

    rows = _findings(read)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS})
    columns = list(zip(*rows, strict=True))
    data: dict[str, Any] = dict(zip(FINDING_COLUMNS, map(list, columns), strict=True))
    for name in ("annotation_key", "frame_id"):  # None where a finding has none
        data[name] = pd.Series(data[name], dtype=object)
    return pd.DataFrame(data)


def quality_counts(read: Reader) -> dict[str, int]:
    """Findings per check (every check listed, zero included), for the manifest.

    Example:
        >>> from playment_datasets.schema import TABLES
        >>> quality_counts(lambda n, c: TABLES[n].empty_table().select(list(c)))["box_degenerate"]
        0
    """
    counts = Counter(row[0] for row in _findings(read))
    return {name: counts[name] for name in CHECKS}


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
