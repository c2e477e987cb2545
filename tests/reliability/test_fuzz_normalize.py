"""Scenario 6 (fuzzing): ``normalize_result`` in its lenient mode never raises, always
returns every table with its exact schema and one ``jobs`` row, and turns a result it
cannot read into exactly one ``errors`` row that points at the raw bytes.

``CI=true`` selects the thorough profile (2,000+ examples per test); locally fewer run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playment_datasets.normalize import normalize_result
from playment_datasets.schema import TABLE_NAMES, TABLES

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("reliability-ci", max_examples=1000, deadline=None,
                          derandomize=True, suppress_health_check=_QUIET)
settings.register_profile("reliability-dev", max_examples=100, deadline=None,
                          suppress_health_check=_QUIET)
PROFILE = settings.get_profile(
    "reliability-ci" if os.environ.get("CI", "").lower() == "true" else "reliability-dev")
# The three tests share the budget: 700 + 800 + 500 = 2,000 examples in CI.
SHARE = {"documents": 0.7, "bytes": 0.8, "parsed": 0.5}


def budget(share: str) -> settings:
    return settings(PROFILE, max_examples=max(1, int(PROFILE.max_examples * SHARE[share])))


# Keys of the Playment result formats, so generated documents reach deep into each reader.
KEYS = [
    "data", "annotations", "rectangles", "polygons", "lines", "cuboids", "landmarks",
    "annotation_data", "annotations_data", "legend", "video_data", "sensor_data", "frames",
    "masks", "url", "label", "attributes", "value", "values", "coordinates", "points", "_id",
    "track_id", "frame_id", "sensor_id", "x", "y", "z", "position", "rotation", "size",
    "center", "color", "class_id", "instance_id", "image_url", "src", "state", "edges",
    "front", "back", "category", "type", "name", "visible",
]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(KEYS))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=20,
)
point = st.fixed_dictionaries({"x": scalars, "y": scalars})
shape = st.fixed_dictionaries(
    {"_id": scalars, "label": scalars, "coordinates": st.lists(point, max_size=5)},
    optional={"attributes": json_values, "points": json_values, "track_id": scalars,
              "edges": json_values},
)
image_results = st.fixed_dictionaries({"data": st.fixed_dictionaries({
    "annotations": st.dictionaries(
        st.sampled_from(["rectangles", "polygons", "lines", "cuboids", "landmarks"]),
        st.lists(shape, max_size=4) | json_values, max_size=5),
}, optional={"image_url": scalars})})
other_results = st.fixed_dictionaries({"data": st.dictionaries(
    st.sampled_from(KEYS), json_values | st.lists(json_values, max_size=3), max_size=5)})
documents = image_results | other_results | json_values


def _encode(doc: Any, as_text: bool) -> bytes | str:
    text = json.dumps(doc, allow_nan=True)  # NaN / Infinity literals included on purpose
    return text if as_text else text.encode("utf-8")


def _check(tables: dict[str, pa.Table], job_id: str) -> pa.Table:
    assert list(tables) == list(TABLE_NAMES)
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name], check_metadata=False), name
    assert tables["jobs"].column("job_id").to_pylist() == [job_id]
    errors = tables["errors"]
    assert errors.num_rows <= 1
    if errors.num_rows:
        assert errors.column("job_id").to_pylist() == [job_id]
        assert errors.column("message")[0].as_py()
        for name in TABLE_NAMES:  # a result that cannot be read adds no partial rows
            if name not in ("jobs", "errors"):
                assert tables[name].num_rows == 0, name
    return errors


def _finite_or_null(table: pa.Table, column: str) -> None:
    for value in table.column(column).to_pylist():
        assert value is None or math.isfinite(value)


@pytest.mark.slow
@budget("documents")
@given(doc=documents, as_text=st.booleans())
def test_any_json_document_normalizes_without_raising(doc: Any, as_text: bool) -> None:
    raw = _encode(doc, as_text)
    tables = normalize_result(raw, {"job_id": "job-1", "status": "completed"})
    errors = _check(tables, "job-1")
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if errors.num_rows:
        assert errors.column("raw_sha256")[0].as_py() == hashlib.sha256(data).hexdigest()
    else:
        for column in ("x_min", "y_min", "x_max", "y_max"):
            _finite_or_null(tables["annotations"], column)
        _finite_or_null(tables["points"], "x")


@pytest.mark.slow
@budget("bytes")
@given(raw=st.binary(max_size=300) | documents.map(lambda d: _encode(d, False)[:-1]))
def test_arbitrary_bytes_normalize_without_raising(raw: bytes) -> None:
    tables = normalize_result(raw, {"job_id": "job-2"})
    errors = _check(tables, "job-2")
    if errors.num_rows:
        assert errors.column("raw_sha256")[0].as_py() == hashlib.sha256(raw).hexdigest()


@budget("parsed")
@given(doc=documents, job=st.dictionaries(st.sampled_from(
    ["job_id", "status", "reference_id", "priority_weight", "frames", "tag", "result"]),
    scalars, max_size=7))
@pytest.mark.slow
def test_parsed_documents_and_odd_job_records_never_raise(doc: Any, job: dict[str, Any]) -> None:
    tables = normalize_result(doc if doc is not None else {}, job)
    assert list(tables) == list(TABLE_NAMES)
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name], check_metadata=False), name
    assert tables["jobs"].num_rows == 1
