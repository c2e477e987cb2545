"""Quality checks on hand-made bad results served by the emulator, and on tables by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import playment_datasets as pds
from playment_datasets.dataset.quality import CHECKS, quality_findings
from playment_datasets.emulator import Emulator
from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob
from playment_datasets.schema import TABLES


def rect(rid: str, label: str, box: tuple[float, float, float, float],
         occlusion: bool = True) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    out: dict[str, Any] = {"_id": rid, "label": label,
                           "coordinates": [{"x": x0, "y": y0}, {"x": x1, "y": y0},
                                           {"x": x1, "y": y1}, {"x": x0, "y": y1}]}
    if occlusion:
        out["attributes"] = {"occlusion": {"value": "25%"}}
    return out


def polygon(pid: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    keys = [f"p{i + 1}" for i in range(len(points))]
    return {"_id": pid, "label": "road",
            "points": {k: {"x": x, "y": y} for k, (x, y) in zip(keys, points, strict=True)},
            "edges": {f"e{i + 1}": [keys[i], keys[(i + 1) % len(keys)]]
                      for i in range(len(keys))}}


def bad_batch() -> GeneratedBatch:
    image = {"data": {"annotations": {
        "rectangles": [
            rect("r1", "car", (0.1, 0.1, 0.3, 0.3)),
            rect("r2", "car", (0.1, 0.1, 0.3, 0.3)),             # duplicate of r1
            rect("r3", "car", (0.5, 0.5, 1.2, 0.9)),             # outside the image
            rect("r4", "car", (0.4, 0.2, 0.4, 0.6), occlusion=False),  # flat, no attribute
        ],
        "polygons": [
            polygon("g1", [(0.1, 0.1), (0.2, 0.5)]),              # 2 points
            polygon("g2", [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]),  # on one line
            polygon("g3", [(0.1, 0.1), (0.5, 0.1), (0.3, 0.4)]),  # fine
        ],
        "lines": [], "cuboids": [], "landmarks": []},
        "image_url": "https://images.example/a.jpg"}}
    box = {"coordinates": [{"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.1},
                           {"x": 0.2, "y": 0.2}, {"x": 0.1, "y": 0.2}]}
    video = {"data": {
        "annotation_data": {"annotations": [
            {"_id": "t1", "type": "rectangle", "label": "bus",
             "frames": {"f1": dict(box), "f3": dict(box)}}]},    # gap at f2
        "video_data": {"frames": [{"frame_id": f, "src": f"https://v.example/{f}.jpg"}
                                  for f in ("f1", "f2", "f3", "f4")]}}}  # f2, f4 empty
    jobs = [
        GeneratedJob("job-img", "ref-1", "completed", "image", image, n_annotations=7),
        GeneratedJob("job-vid", "ref-2", "completed", "video", video, n_frames=4,
                     n_annotations=2),
        GeneratedJob("job-wip", "ref-3", "in_progress", "none", None),
    ]
    return GeneratedBatch("proj-q", "batch-q", "Bad batch", jobs)


EXPECTED = {
    "box_out_of_bounds": 1, "box_degenerate": 1, "polygon_few_points": 1,
    "polygon_zero_area": 1, "duplicate_shape": 1, "track_gap": 1,
    "frame_without_annotations": 2, "segment_missing_from_mask": 0,
    "job_not_completed": 1, "attribute_missing": 1,
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("registry")
    with Emulator(bad_batch()) as emu:
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=root, progress=False)
    return root, ds


def test_every_check_finds_its_planted_problem(bad) -> None:
    _, ds = bad
    q = ds.quality()
    assert list(q.columns) == ["check", "severity", "job_id", "annotation_key", "frame_id",
                               "message"]
    assert {c: n for c, n in Counter(q["check"]).items()} == {
        c: n for c, n in EXPECTED.items() if n}
    by = {c: q[q["check"] == c] for c in EXPECTED}
    keys = {c: {str(k).rsplit("/", 1)[-1] for k in by[c]["annotation_key"]} for c in by}
    assert any("r3" in k for k in keys["box_out_of_bounds"])
    assert any("r4" in k for k in keys["box_degenerate"])
    assert any("r4" in k for k in keys["attribute_missing"])
    assert any("r2" in k for k in keys["duplicate_shape"])
    assert any("g1" in k for k in keys["polygon_few_points"])
    assert any("g2" in k for k in keys["polygon_zero_area"])
    assert set(by["frame_without_annotations"]["frame_id"]) == {"f2", "f4"}
    assert set(by["job_not_completed"]["job_id"]) == {"job-wip"}
    assert "1 frame" in by["track_gap"]["message"].iloc[0]
    assert set(q.loc[q["check"] == "box_degenerate", "severity"]) == {"error"}


def test_counts_are_stored_in_the_manifest_at_commit(bad) -> None:
    _, ds = bad
    assert ds.manifest["extra"]["quality"] == EXPECTED
    assert ds.quality_counts == EXPECTED
    view = ds.select(job_ids=["job-vid"])
    assert view.quality_counts["track_gap"] == 1
    assert view.quality_counts["box_out_of_bounds"] == 0


@pytest.mark.slow
def test_check_command_prints_counts_per_check(bad) -> None:
    root, ds = bad
    cmd = [sys.executable, "-m", "playment_datasets", "check", ds.batch_id,
           "--registry", str(root)]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    for check, count in EXPECTED.items():
        assert any(line.split()[:1] == [check] and line.split()[-1] == str(count)
                   for line in text.stdout.splitlines()), (check, text.stdout)
    data = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True,
                                     timeout=120).stdout)
    assert data["counts"] == EXPECTED
    assert len(data["findings"]) == sum(EXPECTED.values())


def reader(tables: dict[str, list[dict[str, Any]]]):
    def read(name: str, columns) -> pa.Table:
        rows = tables.get(name, [])
        table = pa.Table.from_pylist(rows, schema=TABLES[name]) if rows else (
            TABLES[name].empty_table())
        return table.select(list(columns))
    return read


def test_segments_missing_from_decoded_masks_only() -> None:
    read = reader({
        "segments": [
            {"job_id": "j", "annotation_key": "j/a", "label": "car", "color": "#ff0000",
             "n_pixels": 0},
            {"job_id": "j", "annotation_key": "j/b", "label": "bus", "color": "#00ff00",
             "n_pixels": None},
            {"job_id": "k", "annotation_key": "k/a", "label": "car", "color": "#ff0000",
             "n_pixels": None},  # mask not fetched: not a finding
            {"job_id": "j", "annotation_key": "j/c", "label": "sky", "color": "#0000ff",
             "n_pixels": 12},
        ],
        "masks": [{"job_id": "j", "decode_status": "ok"},
                  {"job_id": "k", "decode_status": "not_fetched"}],
    })
    q = quality_findings(read)
    assert sorted(q.loc[q["check"] == "segment_missing_from_mask", "annotation_key"]) == [
        "j/a", "j/b"]


def test_a_clean_table_has_no_findings() -> None:
    q = quality_findings(reader({}))
    assert len(q) == 0 and list(q.columns)[0] == "check"
    assert set(CHECKS) == set(EXPECTED)


def test_check_is_documented(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "quality.md").read_text()
    for check in CHECKS:
        assert f"`{check}`" in text


def _keys(q: Any, check: str) -> list[str]:
    return list(q.loc[q["check"] == check, "annotation_key"])


def test_polygon_points_are_matched_by_frame_and_a_missing_frame_matches_none() -> None:
    def pts(key: str, frame: str | None, xy: list[tuple[float, float]]) -> list[dict[str, Any]]:
        return [{"job_id": "j", "annotation_key": key, "frame_id": frame, "point_index": i,
                 "x": x, "y": y} for i, (x, y) in enumerate(xy)]

    read = reader({
        "annotations": [
            {"job_id": "j", "annotation_key": "j/p", "type": "polygon"},  # an image: no frame
            {"job_id": "j", "annotation_key": "j/v", "frame_id": "f1", "type": "polygon"},
            {"job_id": "j", "annotation_key": "j/w", "frame_id": "f2", "type": "polygon"},
        ],
        "points": (pts("j/p", None, [(0.1, 0.1), (0.5, 0.1), (0.3, 0.4)])
                   + pts("j/p", "f9", [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)])  # another frame
                   + pts("j/v", "f1", [(0.1, 0.1), (0.2, 0.5)])
                   + pts("j/w", "f2", [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)])),
    })
    q = quality_findings(read)
    assert _keys(q, "polygon_few_points") == ["j/v"]
    assert "with 2 point(s)" in q.loc[q["check"] == "polygon_few_points", "message"].iloc[0]
    assert _keys(q, "polygon_zero_area") == ["j/w"]
    assert list(q.loc[q["check"] == "polygon_zero_area", "frame_id"]) == ["f2"]


def test_duplicates_ignore_the_sign_of_zero_and_differences_below_a_millionth() -> None:
    def box(key: str, label: str, x0: float, y1: float) -> dict[str, Any]:
        return {"job_id": "j", "annotation_key": key, "type": "rectangle", "label": label,
                "x_min": x0, "y_min": 0.0, "x_max": 0.5, "y_max": y1}

    read = reader({"annotations": [box("j/a", "car", -0.0, 0.5),
                                   box("j/b", "car", 0.0, 0.5 + 1e-9),  # the same box
                                   box("j/c", "bus", 0.0, 0.5),  # another label
                                   box("j/d", "car", 0.0, 0.5001)]})  # another box
    assert _keys(quality_findings(read), "duplicate_shape") == ["j/b"]


def test_an_attribute_is_expected_only_when_more_than_half_of_a_label_has_it() -> None:
    ann = [{"job_id": "j", "annotation_key": f"j/{k}", "type": "rectangle", "label": label}
           for k, label in (("c1", "car"), ("c2", "car"), ("c3", "car"), ("b1", "bus"),
                            ("b2", "bus"))]
    attrs = [{"job_id": "j", "annotation_key": f"j/{k}", "name": name, "value": "x"}
             for k, name in (("c1", "occluded"), ("c2", "occluded"), ("c2", "occluded"),
                             ("b1", "color"))]  # c2 twice: one annotation, counted once
    q = quality_findings(reader({"annotations": ann, "attributes": attrs}))
    assert _keys(q, "attribute_missing") == ["j/c3"]  # bus: 1 of 2 is not "most"
    assert "'occluded'" in q.loc[q["check"] == "attribute_missing", "message"].iloc[0]


def test_track_gaps_are_per_job() -> None:
    ann = [{"job_id": job, "annotation_key": f"{job}/t1@f{i}", "track_id": "t1",
            "frame_id": f"f{i}", "frame_index": i, "type": "rectangle", "label": "car"}
           for job, frames in (("a", (0, 2, 5)), ("b", (0, 1))) for i in frames]
    q = quality_findings(reader({"annotations": ann}))
    gaps = q[q["check"] == "track_gap"]
    assert list(gaps["job_id"]) == ["a"] and list(gaps["annotation_key"]) == ["a/t1@f0"]
    assert "missing from 3 frame(s) between frames 0 and 5 (frame indexes 1, 3, 4)" in (
        gaps["message"].iloc[0])


def test_points_with_tied_indexes_keep_their_stored_order_in_a_large_table() -> None:
    # Point names without a number ("a", "b") have a null index; a square p1, p2, a, b
    # read as p1, p2, b, a is a bow-tie of zero area. 40,000 squares make tables large
    # enough for the join to emit its rows out of order.
    n = 40_000
    keys = [f"j/g{i:06d}" for i in range(n)]
    corners = [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5)]
    read = reader({
        "annotations": [{"job_id": "j", "annotation_key": k, "type": "polygon"} for k in keys],
        "points": [{"job_id": "j", "annotation_key": k, "point_index": index, "x": x, "y": y}
                   for k in keys for index, (x, y) in zip((1, 2, None, None), corners,
                                                           strict=True)],
    })
    q = quality_findings(read)
    assert _keys(q, "polygon_zero_area") == [] and _keys(q, "polygon_few_points") == []
