"""Golden tests: one fixture per result format, expected rows written by hand from the
format descriptions (not produced by the normalizer)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from playment_datasets.normalize import normalize_result
from playment_datasets.schema import TABLE_NAMES, TABLES

FIXTURES = Path(__file__).parent / "fixtures"
JOB = {"job_id": "job-1", "status": "completed"}


def load(name: str, job: dict[str, Any] | None = None) -> tuple[dict[str, pa.Table], bytes]:
    raw = (FIXTURES / name).read_bytes()
    tables = normalize_result(raw, job or JOB, strict=True)
    assert list(tables) == list(TABLE_NAMES)
    for tname, table in tables.items():
        assert table.schema.equals(TABLES[tname]), tname
    assert tables["errors"].num_rows == 0
    return tables, raw


def rows(table: pa.Table, *cols: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in cols) for r in table.to_pylist()]


def extra(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def test_image_shapes_quirks() -> None:
    t, raw = load("image.json", {"job_id": "job-1", "status": "completed",
                                 "reference_id": "001", "frames": 1, "annotations": 5})
    rid = "fde5ert6-eb32-481a-807a-03a0428ca836"  # not a UUID, and used twice
    assert rows(t["annotations"], "annotation_key", "annotation_id", "type", "label",
                "x_min", "y_min", "x_max", "y_max", "n_points", "state") == [
        (f"job-1/{rid}", rid, "rectangle", "Car", 0.1, 0.2, 0.3, 0.45, 4, None),
        (f"job-1/{rid}#2", rid, "rectangle", "car", 0.4, 0.1, 0.7, 0.4, 4, "non_editable"),
        ("job-1/poly-1", "poly-1", "polygon", "road", 0.1, 0.1, 0.9, 0.9, 10, None),
        ("job-1/lines[0]", None, "line", "lane", 0.0, 0.0, 1.0, 1.0, 2, None),
        ("job-1/lm-1", "lm-1", "landmark", "face", 0.27, 0.63, 0.28, 0.64, 2, None),
    ]
    extras = [extra(e) for e in t["annotations"].column("extra").to_pylist()]
    assert extras == [None, {"color": "rgb(1, 2, 3)"}, None, None,
                      {"points": {"p2": {"visible": False}}}]
    # tilted quad: all four corners kept in order
    assert rows(t["points"], "annotation_key", "point_key", "point_index", "x", "y")[4:8] == [
        (f"job-1/{rid}#2", None, 1, 0.5, 0.1), (f"job-1/{rid}#2", None, 2, 0.7, 0.2),
        (f"job-1/{rid}#2", None, 3, 0.6, 0.4), (f"job-1/{rid}#2", None, 4, 0.4, 0.3),
    ]
    poly = [r for r in rows(t["points"], "annotation_key", "point_key", "point_index", "x")
            if r[0] == "job-1/poly-1"]
    assert [r[1] for r in poly] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"]
    assert [r[2] for r in poly] == list(range(1, 11))
    assert poly[-1][3] == 0.9
    assert rows(t["edges"], "edge_key", "edge_index", "from_point", "to_point") == [
        ("e1", 1, "p1", "p2"), ("e2", 2, "p2", "p3"), ("e3", 3, "p3", "p4"),
        ("e4", 4, "p4", "p4"), ("e10", 10, "p10", "p1"),
    ]
    landmarks = [r for r in rows(t["points"], "annotation_key", "keypoint_label")
                 if r[0] == "job-1/lm-1"]
    assert landmarks == [("job-1/lm-1", 1), ("job-1/lm-1", 2)]
    assert rows(t["attributes"], "annotation_key", "name", "value", "value_index", "state") == [
        (f"job-1/{rid}", "occlusion", "25%", None, None),
        (f"job-1/{rid}", "faces_visible", "front", 0, "editable"),
        (f"job-1/{rid}", "faces_visible", "left", 1, "editable"),
        (f"job-1/{rid}", "Truncation", "3", None, None),
    ]
    job = t["jobs"].to_pylist()[0]
    assert job["result_kind"] == "image"
    assert job["image_url"].endswith("/img/0001.jpg")
    assert job["result_sha256"] == hashlib.sha256(raw).hexdigest()
    assert (job["reference_id"], job["n_frames"], job["n_annotations"]) == ("001", 1, 5)
    assert (job["tag"], job["priority_weight"], job["work_flow_id"]) == (None, None, None)
    assert job["extra"] is None
    for name in ("cuboids_3d", "frames", "segments"):
        assert t[name].num_rows == 0


def test_cuboid_faces_under_faces_or_top_level() -> None:
    t, _ = load("cuboid_2d.json")
    assert rows(t["annotations"], "annotation_key", "type", "x_min", "y_min", "x_max",
                "y_max", "n_points") == [
        ("job-1/cub-1", "cuboid", 0.1, 0.05, 0.25, 0.2, 8),
        ("job-1/cub-2", "cuboid", 0.5, 0.5, 0.6, 0.5, 2),
    ]
    assert rows(t["points"], "point_key", "face") == [
        ("p1", "front"), ("p2", "front,side"), ("p3", "front,side"), ("p4", "front"),
        ("p5", "back,side"), ("p6", "back,side"), ("p7", "back"), ("p8", "back"),
        ("p1", "front"), ("p2", "front"),
    ]
    e1, e2 = (extra(e) for e in t["annotations"].column("extra").to_pylist())
    assert e1 == {"faces": {"front": {"coordinates": ["p1", "p2", "p3", "p4"]},
                            "side": {"coordinates": ["p2", "p3", "p5", "p6"]},
                            "back": {"coordinates": ["p7", "p8", "p5", "p6"]}}}
    assert e2 == {"front": {"coordinates": ["p1", "p2"]}}
    assert t["jobs"].column("result_kind").to_pylist() == ["image"]


def test_video_trackers_one_row_per_frame() -> None:
    t, _ = load("video.json")
    assert rows(t["annotations"], "annotation_key", "annotation_id", "track_id", "track_label",
                "frame_id", "frame_index", "type", "label", "x_min", "y_max") == [
        ("job-1/trk-1@frame002", "obj-b", "trk-1", "car", "frame002", 1, "rectangle",
         "car_parked", 0.2, 0.4),
        ("job-1/trk-1@frame001", "obj-a", "trk-1", "car", "frame001", 0, "rectangle",
         "car", 0.1, 0.3),
        ("job-1/trk-2@frame001", None, "trk-2", "lane", "frame001", 0, "line", "lane",
         0.5, 0.7),
    ]
    assert extra(t["annotations"].column("extra")[2].as_py()) == {"tracker": {"speed": 3}}
    assert rows(t["attributes"], "annotation_key", "frame_id", "name", "value") == [
        ("job-1/trk-1@frame001", "frame001", "moving", "yes")]
    assert rows(t["edges"], "annotation_key", "frame_id", "from_point", "to_point") == [
        ("job-1/trk-2@frame001", "frame001", "p1", "p2")]
    assert rows(t["frames"], "frame_id", "frame_index", "sensor_id", "src") == [
        ("frame001", 0, None, "https://cdn.example/v/1.jpg"),
        ("frame002", 1, None, "https://cdn.example/v/2.jpg"),
    ]
    assert t["points"].num_rows == 10
    assert t["jobs"].column("result_kind").to_pylist() == ["video"]


def test_image_segmentation_legend() -> None:
    t, _ = load("image_segmentation.json")
    url = "https://playment-data-uploads.s3.ap-south-1.amazonaws.com/masks/source.png"
    assert rows(t["segments"], "annotation_key", "frame_id", "color", "label_key", "label",
                "class_name", "instance_id", "mask_url") == [
        ("job-1/legend:#fdffd3", None, "#fdffd3", None, "Car", "Car", None, url),
        ("job-1/legend:#F23334", None, "#f23334", None, "Sky", "Sky", None, url),
        ("job-1/legend:#fdffd34", None, "#fdffd34", None, "Tree ", "Tree", None, url),
        ("job-1/legend:#0a0b0c", None, "#0a0b0c", None, "car # 4", "car", 4, url),
    ]
    assert [extra(e) for e in t["segments"].column("extra").to_pylist()] == [
        None, None, {"raw_key": "#fdffd34"}, None]
    assert rows(t["annotations"], "annotation_key", "type", "label", "x_min") == [
        ("job-1/legend:#fdffd3", "segment", "Car", None),
        ("job-1/legend:#F23334", "segment", "Sky", None),
        ("job-1/legend:#fdffd34", "segment", "Tree", None),
        ("job-1/legend:#0a0b0c", "segment", "car", None),
    ]
    assert t["jobs"].column("result_kind").to_pylist() == ["image_segmentation"]


def test_video_segmentation_attributes_empty_list() -> None:
    t, _ = load("video_segmentation.json")
    assert rows(t["segments"], "annotation_key", "frame_id", "track_id", "color", "label",
                "class_name", "instance_id", "mask_url") == [
        ("job-1/c2d1b627-aaaa@frame1", "frame1", "3f05676e-bbbb", "#aabbcc", "car # 4", "car", 4,
         "https://storage.example/m/frame1.png"),
        ("job-1/c2d1b627-cccc@frame2", "frame2", "3f05676e-bbbb", "#aabbcc", "car # 4", "car", 4,
         "https://storage.example/m/frame2.png"),
    ]
    assert rows(t["annotations"], "annotation_id", "track_id", "frame_index", "type", "label",
                "extra") == [
        ("c2d1b627-aaaa", "3f05676e-bbbb", 0, "segment", "car", None),
        ("c2d1b627-cccc", "3f05676e-bbbb", 1, "segment", "car", None),
    ]
    assert rows(t["attributes"], "annotation_key", "name", "value") == [
        ("job-1/c2d1b627-cccc@frame2", "moving", "no")]
    assert t["frames"].num_rows == 2
    assert t["jobs"].column("result_kind").to_pylist() == ["video_segmentation"]


def test_point_cloud_legacy_list_legend() -> None:
    t, _ = load("point_cloud_legacy.json")
    url = "https://playment-uploads.s3.example/cloud_data.pcd"
    assert rows(t["segments"], "annotation_key", "color", "label_key", "label", "class_name",
                "instance_id", "mask_url") == [
        ("job-1/70d3-1", "#f423f2", 0, "crosswalk", "crosswalk", None, url),
        ("job-1/70d3-2", "#0000ff", 1, "MINIVAN #1", "MINIVAN", 1, url),
    ]
    assert [extra(e) for e in t["segments"].column("extra").to_pylist()] == [
        None, {"text": "MINIVAN # 1"}]
    assert rows(t["annotations"], "annotation_id", "type", "label") == [
        ("70d3-1", "segment", "crosswalk"), ("70d3-2", "segment", "MINIVAN")]
    assert t["jobs"].column("result_kind").to_pylist() == ["point_cloud_segmentation"]


def test_point_cloud_annotation_data_form() -> None:
    t, _ = load("point_cloud_new.json")
    assert rows(t["segments"], "annotation_key", "frame_id", "color", "label_key", "label",
                "class_name", "instance_id", "mask_url") == [
        ("job-1/pc-1@0", "0", "#0a141e", 2, "car # 2", "car", 2,
         "https://storage.example/0_labels.txt")]
    assert extra(t["annotations"].column("extra")[0].as_py()) == {
        "_isStationary": True, "grouping_config": None}
    assert rows(t["attributes"], "name", "value") == [("kind", "parked")]
    assert rows(t["frames"], "frame_id", "frame_index", "sensor_id", "src") == [
        ("0", 0, "lidar", "https://storage.example/0.pcd")]
    assert t["jobs"].column("result_kind").to_pylist() == ["point_cloud_segmentation"]


def test_sensor_fusion_cuboids_boxes_and_frames() -> None:
    t, _ = load("sensor_fusion.json")
    assert rows(t["cuboids_3d"], "annotation_key", "track_id", "frame_id", "label",
                "center_x", "center_y", "center_z", "length", "width", "height",
                "rotation_x", "rotation_y", "rotation_z", "quaternion_w", "quaternion_x",
                "quaternion_y", "quaternion_z", "keyframe", "extra") == [
        ("job-1/box3d-1@0001", "t-1", "0001", "car", 1.5, -2.0, 0.75, 4.2, 1.8, 1.5,
         0.0, 0.0, 1.57, None, None, None, None, True, None),
        ("job-1/box3d-2@0002", "t-2", "0002", "truck", 10.0, 5.0, 1.0, 8.0, 2.5, 3.0,
         None, None, None, 1.0, 0.0, 0.0, 0.0, None, None),
    ]
    assert rows(t["annotations"], "annotation_key", "type", "label", "frame_index",
                "sensor_id", "x_min", "y_min", "x_max", "y_max") == [
        ("job-1/box3d-1@0001", "cuboid_3d", "car", 0, None, None, None, None, None),
        ("job-1/box3d-2@0002", "cuboid_3d", "truck", 1, None, None, None, None, None),
        ("job-1/box2d-1@0001", "rectangle", "car", 0, "camera_0", 0.4, 0.5, 0.6, 0.7),
    ]
    assert extra(t["annotations"].column("extra")[0].as_py()) == {"color": "rgb(151,22,15)"}
    assert rows(t["frames"], "frame_id", "frame_index", "sensor_id", "ego_position_z",
                "ego_heading_w", "sensor_position_z", "sensor_heading_w") == [
        ("0001", 0, "lidar", 3.0, 1.0, 1.8, 1.0),
        ("0001", 0, "camera_0", 3.0, 1.0, None, None),
        ("0002", 1, "lidar", None, None, None, None),
    ]
    assert t["frames"].column("src").to_pylist()[1] == "https://storage.example/cam/0001.jpg"
    assert t["jobs"].column("result_kind").to_pylist() == ["sensor_fusion"]


def test_classification_modern_and_legacy() -> None:
    t, _ = load("classification.json")
    assert rows(t["annotations"], "annotation_key", "annotation_id", "type", "label") == [
        ("job-1/cls-1", "cls-1", "classification", "cat")]
    assert rows(t["attributes"], "name", "value", "value_index") == [
        ("indoor", "yes", None), ("tags", "blurry", 0), ("tags", "dark", 1)]
    t, _ = load("classification_legacy.json")
    assert rows(t["annotations"], "annotation_key", "type", "label") == [
        ("job-1/classification", "classification", None)]
    assert rows(t["attributes"], "name", "value") == [
        ("category", "cat"), ("is_blurry", "false")]
    assert extra(t["jobs"].column("extra")[0].as_py()) == {"meta": {"reviewer": "x"}}
    assert t["jobs"].column("result_kind").to_pylist() == ["classification"]


def test_job_record_fields_and_non_uuid_ids() -> None:
    job = {"id": "fdda8970-dr3d-4e5f-9a0b-1c2d3e4f5a6b", "status": "completed",
           "reference_id": "007", "project_id": "p", "batch_id": "b",
           "work_flow_id": "51bb440c-f0ed-4286-8984-ea399cbc1f9w", "tag": "sample_project",
           "priority_weight": 5, "result": "https://cdn.example/r.json", "etag": '"abc"'}
    t = normalize_result({"annotations": {}}, job)
    assert t["jobs"].to_pylist() == [{
        "job_id": "fdda8970-dr3d-4e5f-9a0b-1c2d3e4f5a6b", "reference_id": "007",
        "project_id": "p", "batch_id": "b", "status": "completed",
        "work_flow_id": "51bb440c-f0ed-4286-8984-ea399cbc1f9w", "tag": "sample_project",
        "priority_weight": 5, "n_frames": None, "n_annotations": None,
        "result_kind": "image", "source_url": "https://cdn.example/r.json", "image_url": None,
        "result_sha256": None, "etag": '"abc"', "extra": None,
    }]


def test_job_without_result() -> None:
    t = normalize_result(None, {"job_id": "j9", "status": "in_progress"})
    assert rows(t["jobs"], "job_id", "status", "result_kind", "result_sha256") == [
        ("j9", "in_progress", "none", None)]
    assert all(t[name].num_rows == 0 for name in TABLE_NAMES if name != "jobs")


@pytest.mark.parametrize("text", [
    '{"annotations": {"rectangles": [], "polygons": [], "lines": [], "cuboids": [],'
    ' "landmarks": []}}',
    '{"data": {"annotations": {}}}',
    '{"annotations": {"rectangles": null}, "image_url": "u"}',
])
def test_empty_or_missing_shape_lists(text: str) -> None:
    t = normalize_result(text, JOB, strict=True)
    assert t["jobs"].column("result_kind").to_pylist() == ["image"]
    assert t["annotations"].num_rows == 0


def test_unknown_keys_are_kept() -> None:
    t = normalize_result({"success": True, "data": {"annotations": {"ellipses": [1]},
                                                    "reviewed": "yes!"}}, JOB, strict=True)
    assert extra(t["jobs"].column("extra")[0].as_py()) == {
        "annotations": {"ellipses": [1]}, "reviewed": "yes!", "$outer": {"success": True}}


def test_sensor_data_nested_inside_annotation_data() -> None:
    body = {"annotation_data": {"annotations": [], "sensor_data": {"frames": [
        {"frame_id": "f1"}]}}}
    t = normalize_result(body, JOB, strict=True)
    assert t["jobs"].column("result_kind").to_pylist() == ["sensor_fusion"]
    assert rows(t["frames"], "frame_id", "frame_index", "sensor_id") == [("f1", 0, None)]


def test_unchanged_result_gives_same_keys() -> None:
    raw = (FIXTURES / "image.json").read_bytes()
    a = normalize_result(raw, JOB)["annotations"].column("annotation_key").to_pylist()
    b = normalize_result(raw, JOB)["annotations"].column("annotation_key").to_pylist()
    assert a == b and len(set(a)) == len(a)


def test_many_repeated_ids_get_distinct_keys() -> None:
    rect = {"_id": "same", "coordinates": [{"x": 0, "y": 0}]}
    t = normalize_result({"annotations": {"rectangles": [rect] * 3000}}, JOB, strict=True)
    keys = t["annotations"].column("annotation_key").to_pylist()
    assert keys[:3] == ["job-1/same", "job-1/same#2", "job-1/same#3"]
    assert keys[-1] == "job-1/same#3000"
    assert len(set(keys)) == 3000


def test_docs_document_every_column() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "schema.md").read_text()
    for table, schema in TABLES.items():
        assert f"## {table}" in doc, table
        section = doc.split(f"## {table}", 1)[1].split("\n## ", 1)[0]
        for name in schema.names:
            assert f"| `{name}` |" in section, f"{table}.{name}"


def test_parsed_input_is_not_modified() -> None:
    body = {"annotation_data": {"annotations": [], "sensor_data": {"frames": [
        {"frame_id": "f1"}]}}}
    before = json.dumps(body)
    normalize_result(body, JOB, strict=True)
    assert json.dumps(body) == before
