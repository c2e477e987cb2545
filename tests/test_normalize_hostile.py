"""Hostile input: the lenient path never raises and always yields one errors row;
``strict=True`` raises ResultFormatError naming the job and the JSON path."""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playment_datasets.emulator.generator import generate_batch
from playment_datasets.errors import ConfigurationError, ResultFormatError
from playment_datasets.normalize import normalize_result, to_pixels
from playment_datasets.schema import TABLE_NAMES, TABLES

FIXTURES = Path(__file__).parent / "fixtures"
JOB = {"job_id": "job-x", "status": "completed"}
#: Examples per fuzz test; CI raises it (e.g. PDS_FUZZ_EXAMPLES=2000).
FUZZ = settings(max_examples=int(os.environ.get("PDS_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_shape(tables: dict[str, Any]) -> None:
    assert list(tables) == list(TABLE_NAMES)
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name]), name
    assert tables["jobs"].num_rows == 1


def assert_error(raw: Any, error_type: str, path_part: str = "$") -> str:
    tables = normalize_result(raw, JOB)
    check_shape(tables)
    errors = tables["errors"].to_pylist()
    assert len(errors) == 1, errors
    err = errors[0]
    assert (err["job_id"], err["stage"], err["error_type"]) == ("job-x", "normalize", error_type)
    assert path_part in err["message"], err["message"]
    for name in TABLE_NAMES:
        if name not in ("jobs", "errors"):
            assert tables[name].num_rows == 0, name
    if isinstance(raw, (bytes, str)):
        assert err["raw_sha256"] == tables["jobs"].column("result_sha256")[0].as_py()
        assert err["raw_sha256"] is not None
    with pytest.raises(ResultFormatError) as info:
        normalize_result(raw, JOB, strict=True)
    assert info.value.job_id == "job-x"
    assert "job-x" in str(info.value)
    assert info.value.path.split(" ")[0] in err["message"]
    return str(err["message"])


def image(rect: Any) -> dict[str, Any]:
    return {"data": {"annotations": {"rectangles": [rect]}}}


RECT = {"_id": "r", "label": "car", "coordinates": [{"x": 0.1, "y": 0.2}, {"x": 0.5, "y": 0.2},
                                                     {"x": 0.5, "y": 0.6}, {"x": 0.1, "y": 0.6}]}
GOOD = json.dumps(image(RECT)).encode()


@pytest.mark.parametrize(("raw", "error_type", "path"), [
    (b"", "empty", "$"),
    (b"   \n", "empty", "$"),
    (GOOD[: len(GOOD) // 2], "invalid_json", "$ (line 1"),
    (b"<html><body>502 Bad Gateway</body></html>", "invalid_json", "HTML"),
    (b"\xff\xfe\x00{}", "invalid_encoding", "offset 0"),
    (b'{"a": "\xe9t\xe9"}', "invalid_encoding", "offset"),
    (b"[1, 2, 3]", "wrong_type", "$: expected a JSON object"),
    (b"null", "wrong_type", "$"),
    (b'"' + b"a" * 10_000_000 + b'"', "wrong_type", "$"),
    (b"[" * 10_000 + b"]" * 10_000, "too_deep", "$"),
    (b'{"data": {"annotations": {"rectangles": [{"coordinates": [{"x": NaN, "y": 0}]}]}}}',
     "non_finite_number", "NaN"),
    (b'{"annotations": {"rectangles": [{"coordinates": [{"x": Infinity, "y": 0}]}]}}',
     "non_finite_number", "Infinity"),
    (b'{"annotations": {"rectangles": [{"coordinates": [{"x": 1e400, "y": 0}]}]}}',
     "non_finite_number", "$.annotations.rectangles[0].coordinates[0].x"),
    (b'{"annotations": {"lines": [{"points": {}, "note": 1e400}]}}',
     "non_finite_number", "$.annotations.lines[0]"),
    (b'{"annotations": {"rectangles": [{"label": "\\ud800", "coordinates": []}]}}',
     "invalid_string", "$.annotations.rectangles[0].label"),
    (b'{"data": []}', "wrong_type", "$.data"),
], ids=["empty", "blank", "truncated", "html", "utf16-bom", "latin1", "array", "null",
        "10mb-string", "10k-deep", "nan", "infinity", "1e400", "1e400-in-extra",
        "lone-surrogate", "data-array"])
def test_hostile_corpus(raw: bytes, error_type: str, path: str) -> None:
    assert_error(raw, error_type, path)


@pytest.mark.parametrize(("mutate", "path"), [  # ids: the expected path
    (lambda r: r["coordinates"][1].__setitem__("x", "0.5"),
     "$.data.annotations.rectangles[0].coordinates[1].x: expected a finite number, got string"),
    (lambda r: r.__setitem__("coordinates", {"x": 1}), "rectangles[0].coordinates"),
    (lambda r: r["coordinates"].__setitem__(0, [0.1, 0.2]), "rectangles[0].coordinates[0]"),
    (lambda r: r["coordinates"][2].__setitem__("y", True), "coordinates[2].y"),
])
def test_wrong_types_in_an_annotation(mutate: Any, path: str) -> None:
    # unreadable geometry: the only annotation is dropped, so nothing of the job is read
    rect = copy.deepcopy(RECT)
    mutate(rect)
    assert_error(json.dumps(image(rect)).encode(), "wrong_type", path)


def assert_warned(raw: Any, path_part: str) -> dict[str, Any]:
    """The lenient policy: the job lands, one warnings row names the field; strict raises."""
    tables = normalize_result(raw, JOB)
    check_shape(tables)
    assert tables["errors"].num_rows == 0
    assert tables["annotations"].num_rows >= 1
    warnings = tables["warnings"].to_pylist()
    assert len(warnings) == 1, warnings
    assert path_part in warnings[0]["json_path"], warnings[0]
    assert warnings[0]["job_id"] == "job-x" and warnings[0]["expected"] and warnings[0]["got"]
    with pytest.raises(ResultFormatError) as info:
        normalize_result(raw, JOB, strict=True)
    assert path_part in info.value.path
    return tables


@pytest.mark.parametrize(("mutate", "path"), [  # non-geometric fields: kept as given
    (lambda r: r.__setitem__("label", 5), "rectangles[0].label"),
    (lambda r: r.__setitem__("_id", {"a": 1}), "rectangles[0]._id"),
    (lambda r: r.__setitem__("attributes", "yes"), "rectangles[0].attributes"),
    (lambda r: r.__setitem__("attributes", {"occ": {"value": {"a": 1}}}),
     "rectangles[0].attributes.occ.value"),
    (lambda r: r.__setitem__("attributes", {"occ": {"value": "x", "state": 3}}),
     "rectangles[0].attributes.occ.state"),
    (lambda r: r.__setitem__("state", True), "rectangles[0].state"),
])
def test_odd_non_geometric_fields_are_kept_and_warned(mutate: Any, path: str) -> None:
    rect = copy.deepcopy(RECT)
    mutate(rect)
    tables = assert_warned(json.dumps(image(rect)).encode(), path)
    assert tables["annotations"].column("x_max").to_pylist() == [0.5]
    assert tables["warnings"].column("annotation_key").to_pylist() == ["job-x/" + (
        "r" if "_id" not in path else '{"a":1}')]


@pytest.mark.parametrize(("body", "path"), [
    ({"annotations": {"polygons": [{"points": [{"x": 0, "y": 0}]}]}}, "polygons[0].points"),
    ({"annotations": {"polygons": [{"points": {"p1": {"x": 0, "y": 0}},
                                    "edges": {"e1": "p1-p2"}}]}}, "polygons[0].edges.e1"),
    ({"annotations": {"rectangles": {"a": 1}}}, "$.annotations.rectangles"),
    ({"annotations": {"cuboids": [{"points": {}, "faces": {"front": {"coordinates": [1]}}}]}},
     "faces.front.coordinates[0]"),
    ({"annotation_data": {"annotations": [{"_id": "t", "type": "rectangle", "frames": []}]},
      "video_data": {"frames": []}}, "annotations[0].frames"),
    ({"annotation_data": {"annotations": [{"_id": "t", "type": "hexagon", "frames": {
        "f": {"coordinates": []}}}]}}, "frames.f.type"),
    ({"annotation_data": {"annotations": {"a": 1}}}, "$.annotation_data.annotations"),
    ({"annotation_data": {"annotations": []}, "video_data": {"frames": {"f1": {}}}},
     "$.video_data.frames"),
    ({"annotation_data": {"annotations": [{"position": {"x": "1"}}]}},
     "annotations[0].position.x"),
    ({"annotation_data": {"annotations": []}, "sensor_data": {"frames": [
        {"frame_id": "f", "ego_pose": {"position": [1, 2, 3]}}]}},
     "$.sensor_data.frames[0].ego_pose.position"),
])
def test_wrong_types_at_every_level(body: dict[str, Any], path: str) -> None:
    assert_error(json.dumps(body), "wrong_type", path)


@pytest.mark.parametrize(("body", "path"), [  # formerly whole-job errors, now lenient
    ({"legend": {"#aabbcc": 5}, "url": "u"}, "$.legend.#aabbcc"),
    ({"legend": {"#aabbcc": "car"}, "url": 5}, "$.url"),
    ({"legend": [{"color": [1, 2, 3]}]}, "$.legend[0].color"),
    ({"legend": [{"label_key": 100000000000000000000000}]}, "$.legend[0].label_key"),
    ({"annotation_data": {"annotations": [{"position": {}, "keyFrame": "yes"}]}},
     "annotations[0].keyFrame"),
    ({"label": ["cat"]}, "$.label"),
])
def test_odd_fields_at_every_level_are_kept_and_warned(body: dict[str, Any], path: str) -> None:
    assert_warned(json.dumps(body), path)


def test_large_but_valid_string_is_kept() -> None:
    rect = dict(RECT, label="x" * 10_000_000)
    tables = normalize_result(json.dumps(image(rect)), JOB, strict=True)
    assert len(tables["annotations"].column("label")[0].as_py()) == 10_000_000


def test_unknown_shape_is_kept_not_an_error() -> None:
    tables = normalize_result(b'{"weird": {"nested": [1, {"a": null}]}}', JOB, strict=True)
    assert tables["jobs"].column("result_kind").to_pylist() == ["unknown"]
    assert json.loads(tables["jobs"].column("extra")[0].as_py()) == {
        "weird": {"nested": [1, {"a": None}]}}
    assert tables["errors"].num_rows == 0


# -- fuzzing ---------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["x", "y", "_id", "label", "points", "coordinates",
                                       "edges", "attributes", "value", "frames", "legend",
                                       "annotations", "annotation_data", "data", "p1", "e1",
                                       "frame_id", "position", "sensor_data", "url"])
                      | st.text(max_size=5), children, max_size=5),
    max_leaves=25,
)


def _never_raises(raw: Any) -> None:
    tables = normalize_result(raw, JOB)
    check_shape(tables)
    assert tables["errors"].num_rows <= 1
    if tables["errors"].num_rows:
        assert tables["annotations"].num_rows == 0
        assert tables["errors"].column("error_type")[0].as_py() != "internal"


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    _never_raises(value)
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        return
    _never_raises(text.encode())


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(raw: bytes) -> None:
    _never_raises(raw)


_SAMPLES = [j.result for j in generate_batch(21, seed=5, annotations_per_job=3,
                                             completed_fraction=1.0).jobs]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_paths(v, (*prefix, i)))
    return found


@FUZZ
@given(st.integers(0, len(_SAMPLES) - 1), st.integers(0, 10**6), json_values)
def test_fuzz_mutated_generated_results(which: int, where: int, value: Any) -> None:
    doc = copy.deepcopy(_SAMPLES[which])
    paths = _paths(doc)[1:]
    path = paths[where % len(paths)]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    _never_raises(doc)
    try:
        _never_raises(json.dumps(doc).encode())
    except (ValueError, RecursionError):
        pass


def test_truncations_of_every_format() -> None:
    rng = random.Random(3)
    for result in _SAMPLES:
        raw = json.dumps(result).encode()
        for _ in range(5):
            cut = raw[: rng.randrange(len(raw))]
            tables = normalize_result(cut, JOB)
            check_shape(tables)
            assert tables["errors"].column("error_type").to_pylist() in (
                ["invalid_json"], ["empty"])


# -- to_pixels ---------------------------------------------------------------------

def test_to_pixels_with_scalars_and_columns() -> None:
    df = pd.DataFrame({"x_min": [0.5, 0.25], "y_max": [0.5, 1.0], "x": [1.0, 0.0],
                       "w": [640, 100], "h": [480, 50], "label": ["a", "b"]})
    out = to_pixels(df, 200, 100)
    assert out["x_min"].tolist() == [100.0, 50.0]
    assert out["y_max"].tolist() == [50.0, 100.0]
    assert out["x"].tolist() == [200.0, 0.0]
    assert df["x_min"].tolist() == [0.5, 0.25]  # input untouched
    out = to_pixels(df, "w", "h")
    assert out["x_min"].tolist() == [320.0, 25.0]
    assert out["y_max"].tolist() == [240.0, 50.0]
    with pytest.raises(ConfigurationError, match="names no column"):
        to_pixels(df, "width", 10)
    with pytest.raises(ConfigurationError, match="positive number"):
        to_pixels(df, 0, 10)
