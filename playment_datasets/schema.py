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
    "MASK_DECODE_STATUSES",
    "MASK_KINDS",
    "SCHEMA_HISTORY",
    "SCHEMA_VERSION",
    "TABLES",
    "TABLE_NAMES",
    "empty_table",
    "empty_tables",
    "upgrade_table",
]

#: Bumped whenever a column is added, removed, renamed or changes meaning. Stored in
#: the metadata of every Parquet file and in every manifest.
SCHEMA_VERSION = "2"

#: What each schema version added, so a reader knows which columns an older file lacks
#: (:func:`upgrade_table` fills them with nulls).
SCHEMA_HISTORY = {
    "1": "the nine tables jobs … errors",
    "2": "tables masks, point_labels, warnings; segments.n_pixels, x_min, y_min, x_max, "
         "y_max, mask_sha256",
}

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

#: The values of ``masks.kind``: a PNG raster, an ASCII PCD with a ``label_key`` field,
#: or a plain label file (one label key per point).
MASK_KINDS = ("png", "pcd", "labels")

#: The values of ``masks.decode_status``.
MASK_DECODE_STATUSES = (
    "ok",
    "not_fetched",  # the pull did not fetch masks (masks=False), or the bytes are missing
    "fetch_failed",  # the pull could not fetch it after all retries (decode_error says why)
    "not_png",
    "not_pcd",
    "truncated",
    "too_large",
    "bad_fields",
    "bad_labels",
    "bad_header",
    "unsupported",
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
        ("n_pixels", _i64),
        ("x_min", _f),
        ("y_min", _f),
        ("x_max", _f),
        ("y_max", _f),
        ("mask_sha256", _s),
        ("extra", _s),
    ),
    "masks": _schema(
        ("job_id", _s),
        ("frame_id", _s),
        ("kind", _s),
        ("url", _s),
        ("sha256", _s),
        ("width", _i32),
        ("height", _i32),
        ("n_points", _i64),
        ("bytes", _i64),
        ("decode_status", _s),
        ("decode_error", _s),
    ),
    "point_labels": _schema(
        ("job_id", _s),
        ("frame_id", _s),
        ("point_index", _i64),
        ("label_key", _i64),
    ),
    "warnings": _schema(
        ("job_id", _s),
        ("annotation_key", _s),
        ("json_path", _s),
        ("expected", _s),
        ("got", _s),
        ("message", _s),
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


def upgrade_table(name: str, table: pa.Table | None) -> pa.Table:
    """Bring a table written under an older :data:`SCHEMA_VERSION` to the current schema.

    Columns added since are filled with nulls, columns are put in canonical order and
    cast to their current types; ``None`` (a table the older version did not have)
    becomes an empty table. Columns unknown to the current schema are dropped.

    Example:
        >>> import pyarrow as pa
        >>> old = pa.table({"job_id": ["j1"], "annotation_key": ["j1/a"], "color": ["#ff0000"]})
        >>> new = upgrade_table("segments", old)
        >>> new.column("n_pixels").to_pylist(), new.column("color").to_pylist()
        ([None], ['#ff0000'])
        >>> upgrade_table("masks", None).num_rows
        0
    """
    if table is None:
        return empty_table(name)  # also the error for an unknown name
    schema = TABLES[name]
    if table.schema.equals(schema, check_metadata=False):
        return table
    n = table.num_rows
    columns = [
        table.column(field.name).cast(field.type) if field.name in table.column_names
        else pa.nulls(n, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
