"""The Parquet layout read directly by DuckDB, Polars and Dask (and Spark when present).

Each engine reads the files of a pulled version as they are; its rows must equal what
pyarrow / pandas read from the same files.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import playment_datasets as pds
from playment_datasets.dataset.dataset import Dataset
from playment_datasets.emulator import Emulator

TABLES_COMPARED = ["annotations", "points", "attributes"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("registry")
    with Emulator(jobs=24, seed=1) as emu:
        return pds.pull(
            emu.project_id,
            emu.batch_id,
            api_key=emu.api_key,
            base_url=emu.base_url,
            registry=root,
            progress=False,
        )


def rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples in a fixed column order, sorted; NaN made comparable."""

    def plain(v: Any) -> Any:
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    data = table.select(columns).to_pylist()
    return sorted((tuple(plain(r[c]) for c in columns) for r in data), key=repr)


def reference(ds: Dataset, name: str) -> list[tuple[Any, ...]]:
    df = ds.table(name)  # pandas, Arrow-backed
    return rows(pa.Table.from_pandas(df, preserve_index=False), list(df.columns))


def test_the_pulled_tables_are_not_empty(ds: Dataset) -> None:
    for name in TABLES_COMPARED:
        assert ds.counts[name] > 0, name


def test_table_paths_name_every_table_file(ds: Dataset) -> None:
    paths = ds.table_paths()
    assert list(paths) == ds.tables()
    for name, path in paths.items():
        assert Path(path) == ds.path / f"{name}.parquet"
        assert Path(path).is_file()
        assert ds.table_path(name) == path
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        ds.table_path("nope")


@pytest.mark.parametrize("name", TABLES_COMPARED)
def test_duckdb_reads_the_same_rows(ds: Dataset, name: str) -> None:
    con = ds.to_duckdb()
    columns = list(ds.table(name).columns)
    rel = con.sql(f"SELECT * FROM {name}")
    # to_arrow_table() is the newer name of fetch_arrow_table(); accept either.
    got = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    got = got()
    assert got.column_names == columns
    assert rows(got, columns) == reference(ds, name)


def test_duckdb_sql_agrees_with_pandas(ds: Dataset) -> None:
    con = ds.to_duckdb()
    got = dict(con.execute("SELECT label, count(*) FROM annotations GROUP BY label").fetchall())
    want = ds.annotations.groupby("label").size().to_dict()
    assert got == {k: int(v) for k, v in want.items()}
    # Views of every table exist, joins work across them.
    sql = "SELECT view_name FROM duckdb_views() WHERE NOT internal"
    views = {r[0] for r in con.execute(sql).fetchall()}
    assert views == set(ds.tables())
    n = con.execute(
        "SELECT count(*) FROM points JOIN annotations USING (job_id, annotation_key)"
    ).fetchone()[0]
    assert n == len(ds.points.merge(ds.annotations, on=["job_id", "annotation_key"]))


def test_duckdb_views_go_into_a_given_connection(ds: Dataset) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE mine AS SELECT 1 AS x")
    assert ds.to_duckdb(con) is con
    assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == len(ds.jobs)
    assert con.execute("SELECT x FROM mine").fetchone()[0] == 1
    ds.to_duckdb(con)  # registering again replaces the views


def test_a_missing_duckdb_names_the_extra(ds: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # makes `import duckdb` fail
    with pytest.raises(ImportError, match=r"pip install 'playment-datasets\[duckdb\]'"):
        ds.to_duckdb()


@pytest.mark.parametrize("name", TABLES_COMPARED)
def test_polars_reads_the_same_rows(ds: Dataset, name: str) -> None:
    import polars as pl

    columns = list(ds.table(name).columns)
    got = pl.read_parquet(ds.table_path(name))
    assert got.columns == columns
    assert rows(got.to_arrow(), columns) == reference(ds, name)
    lazy = pl.scan_parquet(ds.table_path(name)).select(pl.len()).collect().item()
    assert lazy == ds.counts[name]


@pytest.mark.parametrize("name", TABLES_COMPARED)
def test_dask_reads_the_same_rows(ds: Dataset, name: str) -> None:
    import dask.dataframe as dd

    columns = list(ds.table(name).columns)
    ddf = dd.read_parquet(ds.table_path(name))
    assert list(ddf.columns) == columns
    got = ddf.compute(scheduler="synchronous")
    assert rows(pa.Table.from_pandas(got, preserve_index=False), columns) == reference(ds, name)


def test_dask_reads_every_table_at_once(ds: Dataset) -> None:
    import dask.dataframe as dd

    frames = {n: dd.read_parquet(p) for n, p in ds.table_paths().items()}
    counts = {n: int(f.shape[0].compute(scheduler="synchronous")) for n, f in frames.items()}
    assert counts == ds.counts


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
def test_spark_reads_the_same_rows(ds: Dataset) -> None:
    pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (optional)")
    spark = (
        pyspark.sql.SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        columns = list(ds.table("annotations").columns)
        got = spark.read.parquet(ds.table_path("annotations")).toPandas()
        assert rows(pa.Table.from_pandas(got, preserve_index=False), columns) == reference(
            ds, "annotations"
        )
    finally:
        spark.stop()
