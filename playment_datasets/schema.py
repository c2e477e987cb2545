"""Arrow schemas of every normalized table, and the schema version.

The tables are the product: these schemas are the contract between the normalizer,
the Parquet files in the registry and the DataFrames users get back. Every column is
documented in ``docs/schema.md``; a test keeps the two in step.

Coordinates stay as Playment gives them: 2D values normalized to 0..1 with the origin at
the top-left, 3D values in the point cloud's own frame (metres). Strings are plain
``string`` columns: Parquet dictionary-encodes repeated values (labels, types) on disk
by itself, and plain strings keep pandas filtering (``df.query("label == 'car'")``)
simple.

Example:
    >>> from playment_datasets.schema import TABLES, empty_table
    >>> sorted(TABLES)[:3]
    ['annotations', 'attributes', 'cuboids_3d']
    >>> empty_table("points").num_rows
    0
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "ANNOTATION_TYPES",
    "RESULT_KINDS",
    "SCHEMA_VERSION",
    "TABLES",
    "TABLE_NAMES",
    "empty_table",
    "empty_tables",
]

#: Bumped whenever a column is added, removed, renamed or changes meaning. Stored in
#: the metadata of every Parquet file and in every manifest.
SCHEMA_VERSION = "1"

#: The values of ``annotations.type``.
ANNOTATION_TYPES = (
    "rectangle",
    "polygon",
    "line",
    "landmark",
    "cuboid",
    "cuboid_3d",
    "segment",
    "classification",
)

#: The values of ``jobs.result_kind``.
RESULT_KINDS = (
    "image",
    "video",
    "image_segmentation",
    "video_segmentation",
    "point_cloud_segmentation",
    "sensor_fusion",
    "classification",
    "unknown",
    "none",  # no result (job not completed)
)

_s = pa.string()
_f = pa.float64()
_i32 = pa.int32()
_i64 = pa.int64()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in fields])


def _xyz(prefix: str) -> list[tuple[str, pa.DataType]]:
    return [(f"{prefix}_{axis}", _f) for axis in ("x", "y", "z")]


def _wxyz(prefix: str) -> list[tuple[str, pa.DataType]]:
    return [(f"{prefix}_{axis}", _f) for axis in ("w", "x", "y", "z")]


TABLES: dict[str, pa.Schema] = {
    "jobs": _schema(
        ("job_id", _s),
        ("reference_id", _s),
        ("project_id", _s),
        ("batch_id", _s),
        ("status", _s),
        ("work_flow_id", _s),
        ("tag", _s),
        ("priority_weight", _i64),
        ("n_frames", _i64),
        ("n_annotations", _i64),
        ("result_kind", _s),
        ("source_url", _s),
        ("image_url", _s),
        ("result_sha256", _s),
        ("etag", _s),
        ("extra", _s),
    ),
    "annotations": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("annotation_id", _s),
        ("track_id", _s),
        ("track_label", _s),
        ("frame_id", _s),
        ("frame_index", _i32),
        ("sensor_id", _s),
        ("type", _s),
        ("label", _s),
        ("x_min", _f),
        ("y_min", _f),
        ("x_max", _f),
        ("y_max", _f),
        ("n_points", _i32),
        ("state", _s),
        ("extra", _s),
    ),
    "points": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("frame_id", _s),
        ("point_key", _s),
        ("point_index", _i32),
        ("x", _f),
        ("y", _f),
        ("keypoint_label", _i64),
        ("face", _s),
    ),
    "edges": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("frame_id", _s),
        ("edge_key", _s),
        ("edge_index", _i32),
        ("from_point", _s),
        ("to_point", _s),
    ),
    "attributes": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("frame_id", _s),
        ("name", _s),
        ("value", _s),
        ("value_index", _i32),
        ("state", _s),
    ),
    "cuboids_3d": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("annotation_id", _s),
        ("track_id", _s),
        ("frame_id", _s),
        ("sensor_id", _s),
        ("label", _s),
        *_xyz("center"),
        ("length", _f),
        ("width", _f),
        ("height", _f),
        *_xyz("rotation"),
        *_wxyz("quaternion"),
        ("keyframe", pa.bool_()),
        ("extra", _s),
    ),
    "frames": _schema(
        ("job_id", _s),
        ("frame_id", _s),
        ("frame_index", _i32),
        ("sensor_id", _s),
        ("src", _s),
        *_xyz("ego_position"),
        *_wxyz("ego_heading"),
        *_xyz("sensor_position"),
        *_wxyz("sensor_heading"),
        ("extra", _s),
    ),
    "segments": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("frame_id", _s),
        ("track_id", _s),
        ("color", _s),
        ("label_key", _i64),
        ("label", _s),
        ("class_name", _s),
        ("instance_id", _i64),
        ("mask_url", _s),
        ("extra", _s),
    ),
    "errors": _schema(
        ("job_id", _s),
        ("stage", _s),
        ("error_type", _s),
        ("message", _s),
        ("http_status", _i32),
        ("code", _s),
        ("raw_sha256", _s),
    ),
}

#: Table names in their canonical order.
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def empty_table(name: str) -> pa.Table:
    """Return a table with no rows and the schema of table ``name``.

    Example:
        >>> empty_table("jobs").column_names[:2]
        ['job_id', 'reference_id']
    """
    try:
        return TABLES[name].empty_table()
    except KeyError:
        raise KeyError(
            f"unknown table {name!r}; expected one of {', '.join(TABLE_NAMES)}"
        ) from None


def empty_tables() -> dict[str, pa.Table]:
    """Return one empty table per table name, in canonical order."""
    return {name: schema.empty_table() for name, schema in TABLES.items()}
