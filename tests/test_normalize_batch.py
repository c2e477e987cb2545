"""BatchNormalizer: many jobs at once give exactly the tables of one job at a time."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from playment_datasets.emulator.generator import generate_batch
from playment_datasets.errors import ResultFormatError
from playment_datasets.normalize import BatchNormalizer, normalize_result
from playment_datasets.schema import TABLE_NAMES, TABLES


def one_at_a_time(jobs) -> dict[str, pa.Table]:
    parts = [normalize_result(job.result_bytes, {"job_id": job.job_id, "status": job.status})
             for job in jobs]
    return {name: pa.concat_tables([p[name] for p in parts]) for name in TABLE_NAMES}


def test_a_batch_equals_the_jobs_one_at_a_time() -> None:
    jobs = generate_batch(40, seed=5).jobs
    batch = BatchNormalizer()
    for job in jobs:
        batch.add(job.result_bytes, {"job_id": job.job_id, "status": job.status})
    assert batch.rows > len(jobs)
    tables = batch.flush()
    expected = one_at_a_time(jobs)
    for name in TABLE_NAMES:
        assert tables[name].schema.equals(TABLES[name])
        assert tables[name].to_pylist() == expected[name].to_pylist(), name
    assert batch.rows == 0 and batch.flush()["jobs"].num_rows == 0


def test_a_string_that_cannot_be_stored_costs_only_its_own_job() -> None:
    good = generate_batch(3, seed=2, kinds=["image"], completed_fraction=1.0).jobs
    lone_surrogate = json.dumps({"data": {"annotations": {"rectangles": [
        {"_id": "a", "label": "\ud800", "coordinates": []}]}}}).encode()
    batch = BatchNormalizer()
    batch.add(good[0].result_bytes, {"job_id": good[0].job_id})
    batch.add(lone_surrogate, {"job_id": "bad"})
    batch.add(good[1].result_bytes, {"job_id": good[1].job_id})
    tables = batch.flush()
    assert tables["jobs"].column("job_id").to_pylist() == [good[0].job_id, "bad", good[1].job_id]
    assert tables["errors"].column("job_id").to_pylist() == ["bad"]
    assert tables["errors"].column("error_type").to_pylist() == ["invalid_string"]
    assert set(tables["annotations"].column("job_id").to_pylist()) == {
        good[0].job_id, good[1].job_id}


def test_strict_batches_raise_for_the_bad_job() -> None:
    batch = BatchNormalizer(strict=True)
    with pytest.raises(ResultFormatError, match="'j1'"):
        batch.add(b"[1, 2]", {"job_id": "j1"})


def test_failures_are_jobs_with_an_error_row() -> None:
    batch = BatchNormalizer()
    batch.add_failure({"job_id": "j9", "status": "completed", "reference_id": "r9"},
                      stage="fetch", error_type="TransportError", message="reset", http_status=None)
    tables = batch.flush()
    assert tables["jobs"].to_pylist()[0]["reference_id"] == "r9"
    assert tables["jobs"].to_pylist()[0]["result_kind"] == "none"
    assert tables["errors"].to_pylist() == [{
        "job_id": "j9", "stage": "fetch", "error_type": "TransportError", "message": "reset",
        "http_status": None, "code": None, "raw_sha256": None}]


def test_a_bad_point_key_costs_only_its_own_job_and_the_points_of_others_stay() -> None:
    # points are held a column at a time: the fallback must cut each job's rows exactly
    def polygon(point_names: list[str]) -> bytes:
        points = {name: {"x": 0.1 * (i + 1), "y": 0.5} for i, name in enumerate(point_names)}
        return json.dumps({"data": {"annotations": {"polygons": [
            {"_id": "s", "label": "lane", "points": points}]}}}).encode()

    batch = BatchNormalizer()
    batch.add(polygon(["p1", "p2"]), {"job_id": "g1"})
    batch.add(polygon(["p1", "p\ud800"]), {"job_id": "bad"})
    batch.add(polygon(["p2", "p1", "p10"]), {"job_id": "g2"})
    tables = batch.flush()
    points = tables["points"].select(["job_id", "annotation_key", "point_key", "point_index",
                                      "x"]).to_pylist()
    assert points == [
        {"job_id": "g1", "annotation_key": "g1/s", "point_key": "p1", "point_index": 1,
         "x": 0.1},
        {"job_id": "g1", "annotation_key": "g1/s", "point_key": "p2", "point_index": 2,
         "x": 0.2},
        {"job_id": "g2", "annotation_key": "g2/s", "point_key": "p1", "point_index": 1,
         "x": 0.2},
        {"job_id": "g2", "annotation_key": "g2/s", "point_key": "p2", "point_index": 2,
         "x": 0.1},
        {"job_id": "g2", "annotation_key": "g2/s", "point_key": "p10", "point_index": 10,
         "x": 0.30000000000000004},
    ]
    assert tables["errors"].select(["job_id", "error_type"]).to_pylist() == [
        {"job_id": "bad", "error_type": "invalid_string"}]
    assert tables["jobs"].column("job_id").to_pylist() == ["g1", "bad", "g2"]
