"""Dataset: manifest-only opening, lazy Arrow-backed tables, load()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_registry import commit_batch

from playment_datasets.dataset.dataset import CATEGORICAL_COLUMNS, Dataset
from playment_datasets.errors import CorruptDatasetError, DatasetNotFoundError
from playment_datasets.registry.registry import Registry, load
from playment_datasets.schema import TABLE_NAMES, TABLES

ANNS = [
    {"job_id": "j1", "annotation_key": "j1:0", "type": "rectangle", "label": "car",
     "x_min": 0.1, "y_min": 0.2, "x_max": 0.3, "y_max": 0.4, "n_points": 4, "frame_index": None},
    {"job_id": "j2", "annotation_key": "j2:0", "type": "polygon", "label": "person",
     "x_min": 0.5, "y_min": 0.5, "x_max": 0.9, "y_max": 0.8, "n_points": None, "frame_index": 3},
]  # fmt: skip


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(tmp_path / "reg")
    commit_batch(r, {"j1": b"1", "j2": b"2"}, ANNS)
    return r


def test_identity_and_repr(reg: Registry) -> None:
    ds = reg.load("batch1")
    assert (ds.version, ds.project_id, ds.batch_id) == (1, "proj", "batch1")
    assert ds.content_id == ds.manifest["content_id"]
    assert ds.path == reg.root / "datasets" / "proj" / "batch1" / "v1"
    assert ds.tables() == list(TABLE_NAMES)
    assert repr(ds) == "<Dataset batch=batch1 v1 jobs=2 annotations=2 errors=0>"


def test_tables_have_float_category_and_arrow_dtypes(reg: Registry) -> None:
    ds = reg.load("batch1")
    ann = ds.annotations
    assert list(ann.columns) == TABLES["annotations"].names
    floats = ["x_min", "y_min", "x_max", "y_max"]
    assert all(str(ann[c].dtype) == "float64" for c in floats)
    boxes = ann[floats].to_numpy()
    assert boxes.dtype == np.float64 and boxes.shape == (2, 4)
    assert ann[["x_min"]].to_numpy()[0, 0] == pytest.approx(0.1)
    for table, column in (("annotations", "type"), ("annotations", "label"),
                          ("jobs", "status"), ("jobs", "result_kind")):
        assert isinstance(ds.table(table)[column].dtype, pd.CategoricalDtype), column
    others = [c for c in ann.columns if c not in floats and c not in CATEGORICAL_COLUMNS]
    assert all(isinstance(ann[c].dtype, pd.ArrowDtype) for c in others)
    assert str(ann["n_points"].dtype) == "int32[pyarrow]"
    assert ann["label"].tolist() == ["car", "person"]
    assert ann["n_points"].isna().tolist() == [False, True]  # nullable ints stay ints
    assert ann.query("label == 'car'")["x_max"].tolist() == [0.3]
    for name in TABLE_NAMES:
        assert list(ds.table(name).columns) == TABLES[name].names
    # the tables of schema 1 also as properties (masks, point_labels, warnings: ds.table)
    for name in ("jobs", "annotations", "points", "edges", "attributes", "cuboids_3d",
                 "frames", "segments", "errors"):
        assert list(getattr(ds, name).columns) == TABLES[name].names


def test_columns_and_filters(reg: Registry) -> None:
    ds = reg.load("batch1")
    df = ds.table("annotations", columns=["job_id", "label"], filters=[("label", "==", "person")])
    assert df.to_dict("list") == {"job_id": ["j2"], "label": ["person"]}
    assert ds.arrow("jobs").num_rows == 2
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        ds.table("nope")


def test_reading_is_lazy_and_cached(reg: Registry) -> None:
    ds = reg.load("batch1")
    (ds.path / "points.parquet").unlink()  # load() did not read it, and neither does jobs
    assert len(ds.jobs) == 2
    with pytest.raises(CorruptDatasetError, match="points.parquet is missing"):
        _ = ds.points
    first = ds.annotations
    (ds.path / "annotations.parquet").unlink()
    again = ds.annotations  # served from the cache
    assert again["label"].tolist() == ["car", "person"]
    first["label"] = "changed"  # callers' edits do not leak into the cache
    assert ds.annotations["label"].tolist() == ["car", "person"]


def test_load_function_accepts_a_path_or_a_registry(reg: Registry, monkeypatch) -> None:
    assert load("batch1", registry=reg).version == 1
    assert load("batch1", 1, registry=str(reg.root)).version == 1
    assert load("batch1", "v1", registry=reg.root).version == 1
    monkeypatch.setenv("PLAYMENT_DATASETS_HOME", str(reg.root))
    assert load("batch1").version == 1
    with pytest.raises(DatasetNotFoundError, match="versions 1 and no tags"):
        load("batch1", 7)


def test_missing_or_mismatched_manifest(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(CorruptDatasetError, match="manifest.json is missing"):
        Dataset(tmp_path / "nowhere")
    ds = reg.load("batch1")
    text = (ds.path / "manifest.json").read_text()
    (ds.path / "manifest.json").write_text(text.replace(ds.content_id, "0" * 64))
    with pytest.raises(CorruptDatasetError, match="does not match registry.json"):
        reg.load("batch1")


def test_job_metadata_is_kept_for_renormalization(reg: Registry) -> None:
    meta = reg.load("batch1").job_metadata()
    assert meta == {
        "j1": {"id": "j1", "status": "completed"},
        "j2": {"id": "j2", "status": "completed"},
    }
