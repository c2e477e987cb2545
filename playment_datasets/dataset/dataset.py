"""Dataset: one immutable version of a batch, with its tables as lazy DataFrames.

Opening a Dataset reads only ``manifest.json``; each table's Parquet file is read the
first time it is asked for, into pandas: floats as NumPy ``float64`` (so
``df[["x_min", "y_min"]].to_numpy()`` is a float array), low-cardinality strings
(:data:`CATEGORICAL_COLUMNS`: ``type``, ``label``, ``status``, …) as ``category``, and
every other column with its Arrow type (``pd.ArrowDtype``), so strings stay compact and
nullable integers stay integers. Full reads are cached.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.load("BATCH_ID")                      # doctest: +SKIP
    >>> ds.annotations.query("type == 'rectangle'")    # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playment_datasets._optional import import_optional
from playment_datasets._public import public
from playment_datasets.dataset.jsonfile import read_json
from playment_datasets.errors import ConfigurationError, CorruptDatasetError
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES, TABLES, upgrade_table

if TYPE_CHECKING:
    # pandas (and the modules below, which need it) are imported when a DataFrame is
    # first asked for: opening a version, or pulling one, does not import pandas.
    import pandas as pd

    from playment_datasets.dataset import media as _media
    from playment_datasets.dataset import views
    from playment_datasets.dataset.mask_array import MaskArray

__all__ = ["CATEGORICAL_COLUMNS", "Dataset", "DatasetView", "MaskArray", "arrow_to_pandas",
           "read_json"]

#: What a Dataset reads raw objects (masks) with: sha256 → bytes.
ObjectReader = Callable[[str], bytes]

_JOB_META_FILE = "job_meta.jsonl.gz"

#: String columns with few distinct values, read as pandas ``category`` (from an Arrow
#: dictionary): a label repeated a million times is one small code, and groupby is fast.
CATEGORICAL_COLUMNS = frozenset({
    "type", "label", "track_label", "status", "result_kind", "state", "name", "class_name",
    "kind", "decode_status", "stage", "error_type", "face",
})


def _types_mapper(typ: pa.DataType) -> Any:
    # Floats become NumPy float64 (nulls as NaN), so df[[…]].to_numpy() is a float
    # array, not objects; dictionaries become pandas categories; everything else keeps
    # its Arrow type (nullable integers stay integers, strings stay compact).
    if pa.types.is_floating(typ) or pa.types.is_dictionary(typ):
        return None
    import pandas as pd

    return pd.ArrowDtype(typ)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` as the DataFrame a Dataset gives: float64, categories, Arrow dtypes.

    Example:
        >>> df = arrow_to_pandas(pa.table({"label": ["car", "car"], "x": [0.5, None]}))
        >>> [str(t) for t in df.dtypes]
        ['category', 'float64']
    """
    for i, field in enumerate(table.schema):
        if field.name in CATEGORICAL_COLUMNS and pa.types.is_string(field.type):
            table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
    return table.to_pandas(types_mapper=_types_mapper)


#: Manifest keys a Dataset relies on, and their JSON types.
_MANIFEST_KEYS = {"version": int, "project_id": str, "batch_id": str, "content_id": str,
                  "tables": list, "counts": dict, "jobs": dict}  # fmt: skip


_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    if isinstance(manifest, dict):
        bad = [k for k, t in _MANIFEST_KEYS.items()
               if not isinstance(manifest.get(k), t) or isinstance(manifest.get(k), bool)]
        if not bad and not all(isinstance(t, str) and _TABLE_NAME.fullmatch(t)
                               for t in manifest["tables"]):  # names become file names
            bad = ["'tables' to hold plain table names"]
    else:
        bad = [f"an object (got a JSON {type(manifest).__name__})"]
    if bad:
        raise CorruptDatasetError(
            f"manifest {path} is damaged: expected {', '.join(bad)}. Run verify(), then "
            "remove or re-pull that version."
        )
    return manifest


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
        self.manifest: dict[str, Any] = _check_manifest(
            read_json(manifest_path, "manifest"), manifest_path
        )
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
        wanted = list(columns) if columns else None
        try:
            if filters is None:
                # ParquetFile, not read_table: read_table goes through pyarrow.dataset,
                # whose import imports pandas, and ``show`` has no use for pandas.
                with pq.ParquetFile(path) as file:
                    if wanted is None or set(wanted) <= set(file.schema_arrow.names):
                        return file.read(columns=wanted)
            # filters, or a column the file lacks (read_table raises ArrowInvalid for it)
            return pq.read_table(path, columns=wanted, filters=filters)
        except FileNotFoundError:
            raise CorruptDatasetError(
                f"{path} is missing from {self.batch_id} v{self.version}; run verify() and "
                "remove or re-pull that version."
            ) from None
        except (pa.ArrowException, OSError) as exc:
            raise CorruptDatasetError(
                f"{path} of {self.batch_id} v{self.version} is unreadable ({exc}); run "
                "verify(), then remove or re-pull that version."
            ) from None

    def table(
        self, name: str, columns: Sequence[str] | None = None, filters: Any = None
    ) -> pd.DataFrame:
        """Table ``name`` as a DataFrame (see the module docstring for the dtypes); full
        reads are cached.

        Example:
            >>> ds.table("annotations", columns=["job_id", "label"])   # doctest: +SKIP
        """
        full = columns is None and filters is None
        if full and name in self._cache:
            return self._cache[name].copy(deep=False)
        df = arrow_to_pandas(self.arrow(name, columns, filters))
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
        from playment_datasets.dataset.mask_array import read_mask

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

    # -- quality (see dataset/quality.py) --------------------------------------------
    def _read_columns(self, name: str, columns: Sequence[str]) -> pa.Table:
        if name not in self.tables():  # a table older versions do not have
            return TABLES[name].empty_table().select(list(columns))
        return self.arrow(name, columns=columns)

    def quality(self) -> pd.DataFrame:
        """Findings of the quality checks: check, severity, job_id, annotation_key,
        frame_id, message (see :mod:`playment_datasets.dataset.quality`).

        Example:
            >>> ds.quality().groupby(["severity", "check"]).size()   # doctest: +SKIP
        """
        from playment_datasets.dataset.quality import quality_findings

        return quality_findings(self._read_columns)

    @property
    def quality_counts(self) -> dict[str, int]:
        """Findings per check as counted at commit (empty for older versions; a view
        recounts its own).

        Example:
            >>> ds.quality_counts["box_out_of_bounds"]   # doctest: +SKIP
            3
        """
        return {k: int(v) for k, v in
                ((self.manifest.get("extra") or {}).get("quality") or {}).items()}

    # -- subsets and splits (see dataset/views.py) ----------------------------------
    def select(
        self,
        *,
        job_ids: Any = None,
        labels: Any = None,
        types: Any = None,
        query: str | None = None,
    ) -> Dataset:
        """A view with the chosen jobs and annotations; see :func:`views.select`.

        Example:
            >>> cars = ds.select(labels=["car"], types="rectangle")  # doctest: +SKIP
            >>> cars.to_yolo("yolo-cars/")                            # doctest: +SKIP
        """
        from playment_datasets.dataset import views

        ids, keys = views.select_members(self, job_ids=job_ids, labels=labels, types=types,
                                         query=query)
        return DatasetView(self._full(), ids, keys)

    def split(
        self, fractions: Any, *, by: str = "job_id", seed: int | str = 0
    ) -> views.Split:
        """Views per split, assigned by a hash of ``(seed, key)``; see :func:`views.split`.

        Example:
            >>> parts = ds.split({"train": .8, "val": .1, "test": .1}, seed=7)  # doctest: +SKIP
            >>> parts.report                                                     # doctest: +SKIP
        """
        from playment_datasets.dataset import views

        wanted, members = views.split_members(self, fractions, by=by, seed=seed)
        parts = {name: DatasetView(self._full(), ids, self.annotation_keys)
                 for name, ids in members.items()}
        return views.Split(parts, wanted, by, seed)

    #: ``(job_id, annotation_key)`` pairs a view keeps; ``None``: every annotation.
    annotation_keys: frozenset[tuple[str, str]] | None = None

    def _full(self) -> Dataset:
        """The whole version (``self``; a view's base)."""
        return self

    # -- media (see dataset/media.py and docs/media.md) ------------------------------
    #: The batch's media index, handed over by the registry that loaded the version.
    _media_source: _media.MediaSource | None = None
    #: ``fetch(dataset, **options)``; None means the package's ``fetch_media``
    #: (``pull/media.py``): a Dataset cannot import the pull stage, which sits above it.
    media_fetcher: Callable[..., pd.DataFrame] | None = None

    def attach_media(self, source: _media.MediaSource | None) -> None:
        """Give this version its batch's media index (called by the registry)."""
        self._media_source = source

    @property
    def media(self) -> pd.DataFrame:
        """One row per source file the version references: url, kind (image, frame,
        sensor), sha256, bytes, content_type, width, height, status, error.

        ``status`` is ``missing`` until :meth:`fetch_media` has stored the file.

        Example:
            >>> ds.media.groupby("status").size()   # doctest: +SKIP
        """
        from playment_datasets.dataset import media as _media

        return _media.media_table(self, self._media_source)

    def media_files(self) -> dict[str, tuple[str | None, Path | None]]:
        """url → (content type, stored file) for every fetched source file."""
        from playment_datasets.dataset import media as _media

        return _media.media_files(self, self._media_source)

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """job_id → (width, height) in pixels, from the fetched images (exports use it).

        Example:
            >>> ds.image_sizes()["job-0001"]   # doctest: +SKIP
            (640, 480)
        """
        from playment_datasets.dataset import media as _media

        return _media.image_sizes(self, self._media_source)

    def to_pixels(self, frame: pd.DataFrame | str = "annotations") -> pd.DataFrame:
        """``frame`` (a table name or a DataFrame with ``job_id``) in pixel coordinates,
        scaled by the fetched image size of each row's job (``image_width`` and
        ``image_height`` columns added; NaN where the size is unknown).

        Example:
            >>> ds.fetch_media()                                   # doctest: +SKIP
            >>> ds.to_pixels("annotations")[["x_min", "x_max"]]    # doctest: +SKIP
        """
        from playment_datasets.normalize import to_pixels

        df = self.table(frame) if isinstance(frame, str) else frame
        sizes = self.image_sizes()
        jobs = df["job_id"].astype(object)
        df = df.assign(
            image_width=jobs.map(lambda j: sizes[j][0] if j in sizes else None).astype("float64"),
            image_height=jobs.map(lambda j: sizes[j][1] if j in sizes else None).astype("float64"))
        return to_pixels(df, "image_width", "image_height")

    def fetch_media(self, **options: Any) -> pd.DataFrame:
        """Download every source file of this version into the registry; see
        :func:`playment_datasets.pull.media.fetch_media` for the options.

        Example:
            >>> ds.fetch_media(workers=16)   # doctest: +SKIP
        """
        fetcher = type(self).media_fetcher or public("fetch_media")
        if self._media_source is None:
            raise ConfigurationError(
                f"{self!r} has no media store: expected a version loaded through a Registry "
                "(pds.load, Registry.load or pull) with playment_datasets imported; load it "
                "that way, then call fetch_media()"
            )
        return fetcher(self, **options)

    def show(self, job_id: str, frame_id: str | None = None, **options: Any) -> Any:
        """Draw a job's image (or a video frame) with its annotations and masks; returns
        the matplotlib Axes. See :func:`playment_datasets.dataset.show.show`; needs
        ``pip install 'playment-datasets[plot]'``.

        Example:
            >>> ds.show(ds.jobs["job_id"][0])   # doctest: +SKIP
        """
        from playment_datasets.dataset.show import show

        return show(self, job_id, frame_id, **options)

    # -- exports (see docs/exports.md) ------------------------------------------------
    def export(
        self,
        out_dir: str | os.PathLike[str],
        *,
        format: str,  # noqa: A002 - the word of the CLI
        split: Any = None,
        seed: int | str = 0,
        by: str = "job_id",
        images: str = "none",
        classes: Sequence[str] | None = None,
        image_size: Any = None,
    ) -> Path:
        """One export as the ``export`` command makes it (see docs/exports.md).

        ``format`` is ``coco``, ``yolo`` or ``csv``. With ``split`` (fractions, as for
        :meth:`split`) or ``images`` (``copy`` / ``link``), COCO and YOLO write the
        training layout of :mod:`training` (one split ``all`` without ``split``);
        otherwise the plain single-file layouts of :mod:`exports`.

        Example:
            >>> ds.export("out", format="yolo", split={"train": .8, "val": .2},
            ...           images="copy")   # doctest: +SKIP
        """
        from playment_datasets.dataset import exports, training

        if format == "csv":
            return exports.to_csv(self, out_dir)
        if format not in training.FORMATS:
            raise ConfigurationError(
                f"format must be coco, yolo or csv; got {format!r}"
            )
        if split is None and images == "none":
            if format == "coco":
                return exports.to_coco(self, out_dir, image_size=image_size or self._sizes(),
                                       categories=classes)
            return exports.to_yolo(self, out_dir, classes=classes)
        parts = self.training_splits(format, split, by=by, seed=seed)
        return training.export_splits(parts, out_dir, format=format, images=images,
                                      classes=classes, image_size=image_size)

    def training_splits(self, format: str, split: Any = None, *,  # noqa: A002
                        by: str = "job_id", seed: int | str = 0) -> views.Split:
        """The views a training export of ``format`` writes: the annotations of its
        types, split by ``split`` (one split ``all`` when ``None``); ``.report`` is the
        class balance of exactly what is exported.

        Example:
            >>> ds.training_splits("yolo", {"train": .8, "val": .2}).report  # doctest: +SKIP
        """
        from playment_datasets.dataset import training

        chosen = self.select(types=training.export_types(format))
        return chosen.split(split if split is not None else {"all": 1.0}, by=by, seed=seed)

    def _sizes(self) -> dict[str, tuple[int, int]] | None:
        return self.image_sizes() or None


    def to_coco(self, out_dir: str | os.PathLike[str], **options: Any) -> Path:
        """Write COCO instances JSON (boxes and polygons); see :func:`exports.to_coco`.

        Example:
            >>> ds.to_coco("coco/", image_size=(1920, 1080))  # doctest: +SKIP
            PosixPath('coco/instances.json')
        """
        from playment_datasets.dataset.exports import to_coco

        if options.get("image_size") is None:  # the fetched images' sizes, when known
            options["image_size"] = self._sizes()
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



class DatasetView(Dataset):
    """A :class:`Dataset` restricted to some jobs (and annotations); see ``views.py``.

    Made by :meth:`Dataset.select` and :meth:`Dataset.split`, never by hand. Its tables
    are filtered when read; it has no files of its own, so :meth:`table_path` refuses
    and :meth:`to_duckdb` registers the filtered tables instead of Parquet views.

    Attributes:
        base: the full version the view reads.
        job_ids: the jobs of the view.
        annotation_keys: ``(job_id, annotation_key)`` pairs kept, or ``None`` for all
            annotations of the kept jobs.
    """

    def __init__(self, base: Dataset, job_ids: frozenset[str],
                 annotation_keys: frozenset[tuple[str, str]] | None = None) -> None:
        # No super().__init__: the manifest is the base's, already read.
        self.base = base
        self.path = base.path
        self.manifest = base.manifest
        self.job_ids = job_ids
        self.annotation_keys = annotation_keys  # type: ignore[misc]
        self._cache = {}
        self._media_source = base._media_source
        self._objects = base._objects

    @property
    def counts(self) -> dict[str, int]:
        """Row count per table of the view (reads the tables' key columns)."""
        return {name: self.arrow(name, columns=["job_id"]).num_rows for name in self.tables()}

    def __repr__(self) -> str:
        return (f"<DatasetView batch={self.batch_id} v{self.version} jobs={len(self.job_ids)}"
                f"{'' if self.annotation_keys is None else ' annotations=' + str(len(self.annotation_keys))}>")  # noqa: E501

    def arrow(
        self, name: str, columns: Sequence[str] | None = None, filters: Any = None
    ) -> pa.Table:
        wanted = list(columns) if columns else None
        read = wanted
        if wanted is not None:
            read = list(dict.fromkeys([*wanted, "job_id", "annotation_key"]))
            known = set(TABLES[name].names) if name in TABLES else set()
            read = [c for c in read if c in known or c in wanted]
        from playment_datasets.dataset import views

        table = self.base.arrow(name, read, filters)
        table = views.filter_table(name, table, self.job_ids, self.annotation_keys)
        return table.select(wanted) if wanted is not None else table

    def _full(self) -> Dataset:
        return self.base

    @property
    def quality_counts(self) -> dict[str, int]:
        from playment_datasets.dataset.quality import quality_counts

        return quality_counts(self._read_columns)

    def table_path(self, name: str) -> str:
        raise ConfigurationError(
            f"a view ({self!r}) has no Parquet files of its own; expected a full version. "
            "Use view.table(name) or view.arrow(name), or ds.base.table_path(name) for the "
            "whole version"
        )

    def _register_duckdb(self, con: Any, name: str) -> None:
        con.register(name, self.arrow(name))


def __getattr__(name: str) -> Any:
    # MaskArray is re-exported from mask_array.py (NumPy, pandas) on first use.
    if name == "MaskArray":
        from playment_datasets.dataset.mask_array import MaskArray

        return MaskArray
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
