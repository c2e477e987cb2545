"""Dataset: one immutable version of a batch, with its tables as lazy DataFrames.

Opening a Dataset reads only ``manifest.json``; each table's Parquet file is read the
first time it is asked for, into pandas with Arrow-backed dtypes (``pd.ArrowDtype``), so
strings stay compact and nullable integers stay integers. Full reads are cached.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.load("BATCH_ID")                      # doctest: +SKIP
    >>> ds.annotations.query("type == 'rectangle'")    # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from playment_datasets._optional import import_optional
from playment_datasets.dataset.mask_array import MaskArray, read_mask
from playment_datasets.errors import ConfigurationError, CorruptDatasetError, RegistryError
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES, upgrade_table

__all__ = ["Dataset", "MaskArray", "read_json"]

#: What a Dataset reads raw objects (masks) with: sha256 → bytes.
ObjectReader = Callable[[str], bytes]

_JOB_META_FILE = "job_meta.jsonl.gz"


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning a parse error into a RegistryError that names the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"{what} {path} is not valid JSON ({exc}); expected a file written by "
            "playment_datasets. Run verify() to see what else is damaged."
        ) from None


class Dataset:
    """A committed version of a batch: manifest plus lazily read tables.

    Attributes:
        path: the version directory ``datasets/<project_id>/<batch_id>/v<N>``.
        manifest: the parsed ``manifest.json``.

    ``objects`` reads the raw objects (mask files) of the registry holding the version,
    by sha256; :meth:`Registry.load` passes it. Without it, :meth:`mask` cannot decode.

    Example:
        >>> ds = Dataset("registry/datasets/p/b/v1")    # doctest: +SKIP
        >>> ds.tables()                                 # doctest: +SKIP
        ['jobs', 'annotations', 'points', ...]
    """

    _objects: ObjectReader | None = None

    def __init__(self, path: str | os.PathLike[str], *,
                 objects: ObjectReader | None = None) -> None:
        self.path = Path(path)
        self._objects = objects
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise CorruptDatasetError(
                f"{manifest_path} is missing; expected every version directory to hold a "
                "manifest.json. Run verify() and remove or re-pull that version."
            )
        self.manifest: dict[str, Any] = read_json(manifest_path, "manifest")
        self._cache: dict[str, pd.DataFrame] = {}

    # -- identity ------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @property
    def project_id(self) -> str:
        return str(self.manifest["project_id"])

    @property
    def batch_id(self) -> str:
        return str(self.manifest["batch_id"])

    @property
    def content_id(self) -> str:
        return str(self.manifest["content_id"])

    @property
    def counts(self) -> dict[str, int]:
        """Row count per table, from the manifest (no file is read)."""
        return {k: int(v) for k, v in self.manifest.get("counts", {}).items()}

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"<Dataset batch={self.batch_id} v{self.version} jobs={c.get('jobs', 0)} "
            f"annotations={c.get('annotations', 0)} errors={c.get('errors', 0)}>"
        )

    # -- tables --------------------------------------------------------------------
    def tables(self) -> list[str]:
        """Names of the tables of this version, in canonical order."""
        return list(self.manifest.get("tables", []))

    def _file(self, name: str) -> Path:
        if name not in self.tables():
            raise ValueError(f"unknown table {name!r}; expected one of {', '.join(self.tables())}")
        return self.path / f"{name}.parquet"

    def arrow(
        self, name: str, columns: Sequence[str] | None = None, filters: Any = None
    ) -> pa.Table:
        """Table ``name`` as a pyarrow Table (optionally only some columns / rows).

        ``filters`` uses the pyarrow.parquet syntax, e.g. ``[("label", "==", "car")]``.
        A version written under an older schema reads with the current one: tables it
        did not have are empty, columns it did not have are null (:func:`upgrade_table`).
        """
        if name in TABLE_NAMES and name not in self.tables():
            table = upgrade_table(name, None)
            return table.select(list(columns)) if columns else table
        if str(self.manifest.get("schema_version")) == SCHEMA_VERSION:
            return self._read(name, columns, filters)
        # an older version: read its columns, then add the new ones as nulls
        table = upgrade_table(name, self._read(name, None, filters))
        return table.select(list(columns)) if columns else table

    def _read(
        self, name: str, columns: Sequence[str] | None, filters: Any
    ) -> pa.Table:
        path = self._file(name)
        try:
            return pq.read_table(path, columns=list(columns) if columns else None, filters=filters)
        except FileNotFoundError:
            raise CorruptDatasetError(
                f"{path} is missing from {self.batch_id} v{self.version}; run verify() and "
                "remove or re-pull that version."
            ) from None

    def table(
        self, name: str, columns: Sequence[str] | None = None, filters: Any = None
    ) -> pd.DataFrame:
        """Table ``name`` as a DataFrame with Arrow-backed dtypes; full reads are cached.

        Example:
            >>> ds.table("annotations", columns=["job_id", "label"])   # doctest: +SKIP
        """
        full = columns is None and filters is None
        if full and name in self._cache:
            return self._cache[name].copy(deep=False)
        df = self.arrow(name, columns, filters).to_pandas(types_mapper=pd.ArrowDtype)
        if full:
            self._cache[name] = df
            return df.copy(deep=False)
        return df

    # -- engines (see docs/scale-out.md) ----------------------------------------------
    def table_path(self, name: str) -> str:
        """Where table ``name``'s Parquet file is, for DuckDB, Polars, Dask or Spark.

        A local path for a local registry; a URL (``s3://…``) for a remote one.

        Example:
            >>> import polars as pl                                   # doctest: +SKIP
            >>> pl.read_parquet(ds.table_path("annotations"))          # doctest: +SKIP
        """
        return str(self._file(name))

    def table_paths(self) -> dict[str, str]:
        """Table name → its Parquet file (see :meth:`table_path`), in canonical order.

        Example:
            >>> import dask.dataframe as dd                           # doctest: +SKIP
            >>> dd.read_parquet(ds.table_paths()["points"])            # doctest: +SKIP
        """
        return {name: self.table_path(name) for name in self.tables()}

    def to_duckdb(self, connection: Any = None) -> Any:
        """A DuckDB connection with every table of this version as a view.

        Views read the Parquet files when queried; nothing is loaded up front. Pass
        ``connection`` to add the views to an existing connection (existing views of the
        same names are replaced). Needs ``pip install 'playment-datasets[duckdb]'``.

        Example:
            >>> con = ds.to_duckdb()                                                # doctest: +SKIP
            >>> con.sql("SELECT label, count(*) FROM annotations GROUP BY 1").df()  # doctest: +SKIP
        """
        duckdb = import_optional("duckdb", extra="duckdb")
        con = connection if connection is not None else duckdb.connect()
        for name in self.tables():
            self._register_duckdb(con, name)
        return con

    def _register_duckdb(self, con: Any, name: str) -> None:
        path = self.table_path(name).replace("'", "''")
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet(\'{path}\')')

    def job_metadata(self) -> dict[str, dict[str, Any]]:
        """Job id → the job metadata recorded at pull time (used to re-normalize)."""
        path = self.path / _JOB_META_FILE
        if not path.exists():
            return {}
        out: dict[str, dict[str, Any]] = {}
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                out[rec["job_id"]] = rec["job"]
        return out

    @property
    def jobs(self) -> pd.DataFrame:
        return self.table("jobs")

    @property
    def annotations(self) -> pd.DataFrame:
        return self.table("annotations")

    @property
    def points(self) -> pd.DataFrame:
        return self.table("points")

    @property
    def edges(self) -> pd.DataFrame:
        return self.table("edges")

    @property
    def attributes(self) -> pd.DataFrame:
        return self.table("attributes")

    @property
    def cuboids_3d(self) -> pd.DataFrame:
        return self.table("cuboids_3d")

    @property
    def frames(self) -> pd.DataFrame:
        return self.table("frames")

    @property
    def segments(self) -> pd.DataFrame:
        return self.table("segments")

    @property
    def masks(self) -> pd.DataFrame:
        """One row per mask file of a segmentation job (see docs/schema.md)."""
        return self.table("masks")

    @property
    def point_labels(self) -> pd.DataFrame:
        """One row per labelled point of a point-cloud segmentation mask."""
        return self.table("point_labels")

    @property
    def warnings(self) -> pd.DataFrame:
        """Fields of an unexpected type that were kept, and annotations that were dropped."""
        return self.table("warnings")

    @property
    def errors(self) -> pd.DataFrame:
        return self.table("errors")

    def mask(self, job_id: str, frame_id: str | None = None) -> MaskArray:
        """The decoded mask of a segmentation job (of one frame for video and point clouds).

        Returns a :class:`MaskArray`: ``array`` is H × W of ids for a PNG mask (0
        unlabelled, ``ids`` maps each id to its colour, label, class and instance), or a
        1-D array of label keys per point for a point-cloud mask (``ids`` maps each key).

        Raises:
            DatasetNotFoundError: no such job, the job has no mask (or not that frame),
                or the mask was not fetched (re-pull with masks).
            ConfigurationError: the job has masks for several frames and ``frame_id``
                was not given.

        Example:
            >>> m = ds.mask("JOB_ID")                       # doctest: +SKIP
            >>> m.array.shape, m.ids[["id", "label"]].head(2)  # doctest: +SKIP
        """
        return read_mask(self, job_id, frame_id)

    def object(self, sha256: str) -> bytes:
        """A raw object of this version by sha256: a result file (``jobs.result_sha256``)
        or a mask file (``masks.sha256``), from the registry's object store.

        Example:
            >>> sha = ds.jobs.result_sha256.iloc[0]          # doctest: +SKIP
            >>> json.loads(ds.object(sha))                    # doctest: +SKIP
        """
        if self._objects is None:
            raise ConfigurationError(
                f"this Dataset ({self.path}) was opened without its registry's object store, "
                "where raw results and mask files are kept; open it with Registry(...).load() "
                "or playment_datasets.load()")
        return self._objects(sha256)

    @property
    def pull_stats(self) -> dict[str, Any]:
        """What the pull that made this version did: jobs listed, downloaded, unchanged,
        resumed and failed, bytes and seconds (empty for versions not made by a pull).

        Example:
            >>> ds.pull_stats["fetched"]  # doctest: +SKIP
            45
        """
        return dict((self.manifest.get("extra") or {}).get("pull") or {})

    # -- exports (see docs/exports.md) ------------------------------------------------

    def to_coco(self, out_dir: str | os.PathLike[str], **options: Any) -> Path:
        """Write COCO instances JSON (boxes and polygons); see :func:`exports.to_coco`.

        Example:
            >>> ds.to_coco("coco/", image_size=(1920, 1080))  # doctest: +SKIP
            PosixPath('coco/instances.json')
        """
        from playment_datasets.dataset.exports import to_coco

        return to_coco(self, out_dir, **options)

    def to_yolo(self, out_dir: str | os.PathLike[str], **options: Any) -> Path:
        """Write YOLO label files and ``classes.txt``; see :func:`exports.to_yolo`.

        Example:
            >>> ds.to_yolo("yolo/")  # doctest: +SKIP
        """
        from playment_datasets.dataset.exports import to_yolo

        return to_yolo(self, out_dir, **options)

    def to_csv(self, out_dir: str | os.PathLike[str], **options: Any) -> Path:
        """Write one CSV file per table; see :func:`exports.to_csv`.

        Example:
            >>> ds.to_csv("csv/", tables=["annotations"])  # doctest: +SKIP
        """
        from playment_datasets.dataset.exports import to_csv

        return to_csv(self, out_dir, **options)

