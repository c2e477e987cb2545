"""The lenient policy: unreadable geometry costs one annotation, odd fields cost nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playment_datasets.emulator import generate_batch
from playment_datasets.errors import ResultFormatError
from playment_datasets.normalize import normalize_result
from playment_datasets.schema import TABLES, upgrade_table

JOB = {"job_id": "j"}


def rect(ident: str, x0: Any = 0.1) -> dict[str, Any]:
    return {"_id": ident, "label": "car",
            "coordinates": [{"x": x0, "y": 0.2}, {"x": 0.5, "y": 0.2},
                            {"x": 0.5, "y": 0.6}, {"x": 0.1, "y": 0.6}]}


def test_uuid_class_id_with_integer_label_key_is_a_valid_shape() -> None:
    uuid = "5b0c1c9e-8f1d-4a8e-9d55-2f1f9a3c0e11"
    result = {"data": {"annotation_data": {"annotations": [
        {"_id": "a1", "class_id": uuid, "label_key": 3, "label": "car # 2", "frame_id": "0",
         "color": "rgb(1,2,3)"}]},
        "masks": {"0": {"label_url": "https://s/0.labels"}}}}
    t = normalize_result(json.dumps(result), JOB, strict=True)
    assert t["errors"].num_rows == 0 and t["warnings"].num_rows == 0
    (seg,) = t["segments"].to_pylist()
    assert (seg["label_key"], seg["label"], seg["mask_url"]) == (3, "car # 2",
                                                                 "https://s/0.labels")
    assert json.loads(seg["extra"]) == {"class_id": uuid}
    labels = b"3\n3\n7\n"
    t = normalize_result(json.dumps(result), JOB, masks={"https://s/0.labels": labels})
    assert [(s["label_key"], s["n_pixels"]) for s in t["segments"].to_pylist()] == [
        (3, 2), (7, 1)]


def test_one_malformed_annotation_among_good_ones() -> None:
    result = {"annotations": {"rectangles": [rect("a"), rect("b", "0.1"), rect("c")],
                              "polygons": [{"_id": "p", "points": [1, 2]}]}}
    t = normalize_result(json.dumps(result), JOB)
    assert t["errors"].num_rows == 0
    assert t["annotations"].column("annotation_id").to_pylist() == ["a", "c"]
    assert t["points"].num_rows == 8  # the bad rectangle's first corners were taken back
    warnings = t["warnings"].to_pylist()
    assert [w["json_path"] for w in warnings] == [
        "$.annotations.rectangles[1].coordinates[0].x", "$.annotations.polygons[0].points"]
    assert warnings[0]["expected"] == "a finite number"
    assert warnings[0]["got"] == "string '0.1'"
    assert all(w["annotation_key"] is None for w in warnings)
    with pytest.raises(ResultFormatError) as info:
        normalize_result(json.dumps(result), JOB, strict=True)
    assert info.value.path == "$.annotations.rectangles[1].coordinates[0].x"


def test_a_bad_tracker_frame_costs_only_that_frame() -> None:
    result = {"annotation_data": {"annotations": [{"_id": "t", "type": "rectangle", "frames": {
        "f1": rect("x"), "f2": rect("y", None)}}]}, "video_data": {"frames": [
            {"frame_id": "f1"}, {"frame_id": "f2", "ego_pose": {"position": [1]}}]}}
    t = normalize_result(json.dumps(result), JOB)
    assert t["annotations"].column("frame_id").to_pylist() == ["f1"]
    assert t["frames"].column("frame_id").to_pylist() == ["f1"]
    assert len(t["warnings"].to_pylist()) == 2


def test_odd_non_geometric_fields_keep_their_annotation_and_key() -> None:
    bad = dict(rect("a"), label=7, state=["x"])
    t = normalize_result(json.dumps({"annotations": {"rectangles": [bad, rect("b")]}}), JOB)
    assert t["annotations"].column("label").to_pylist() == ["7", "car"]
    assert t["annotations"].column("state").to_pylist() == ['["x"]', None]
    assert [(w["annotation_key"], w["json_path"]) for w in t["warnings"].to_pylist()] == [
        ("j/a", "$.annotations.rectangles[0].label"),
        ("j/a", "$.annotations.rectangles[0].state")]


def test_a_job_goes_to_errors_only_when_nothing_can_be_read() -> None:
    result = {"annotations": {"rectangles": [rect("a", "0.1")]}}
    t = normalize_result(json.dumps(result), JOB)
    assert t["errors"].num_rows == 1 and t["annotations"].num_rows == 0


def test_generated_results_raise_no_warnings() -> None:
    batch = generate_batch(40, seed=8, completed_fraction=1.0, annotations_per_job=4)
    for job in batch.jobs:
        t = normalize_result(job.result_bytes, {"job_id": job.job_id}, strict=True)
        assert t["warnings"].num_rows == 0, job.kind


def test_a_version_written_under_schema_1_loads_with_null_new_columns(tmp_path: Path) -> None:
    old = pa.schema([f for f in TABLES["segments"] if f.name not in (
        "n_pixels", "x_min", "y_min", "x_max", "y_max", "mask_sha256")])
    path = tmp_path / "segments.parquet"
    table = pa.table({"job_id": ["j"], "annotation_key": ["j/legend:#ff0000"],
                      "frame_id": [None], "track_id": [None], "color": ["#ff0000"],
                      "label_key": [None], "label": ["car"], "class_name": ["car"],
                      "instance_id": [None], "mask_url": ["u"], "extra": [None]}, schema=old)
    pq.write_table(table.replace_schema_metadata(
        {b"playment_datasets.schema_version": b"1"}), path)
    upgraded = upgrade_table("segments", pq.read_table(path))
    assert upgraded.schema.equals(TABLES["segments"], check_metadata=False)
    row = upgraded.to_pylist()[0]
    assert (row["label"], row["n_pixels"], row["mask_sha256"]) == ("car", None, None)
    for name in ("masks", "point_labels", "warnings"):
        assert upgrade_table(name, None).schema.equals(TABLES[name])
    with pytest.raises(KeyError):
        upgrade_table("nope", None)
