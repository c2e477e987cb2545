"""The batch generator: deterministic, every format, consistent ground truth."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from playment_datasets.emulator.generator import GENERATED_KINDS, generate_batch, generate_job
from playment_datasets.schema import RESULT_KINDS

UUIDISH = re.compile(r"^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$")


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    a = generate_batch(30, seed=11)
    b = generate_batch(30, seed=11)
    c = generate_batch(30, seed=12)
    assert [j.result_bytes for j in a.jobs] == [j.result_bytes for j in b.jobs]
    assert [j.job_id for j in a.jobs] == [j.job_id for j in b.jobs]
    assert (a.project_id, a.batch_id) == (b.project_id, b.batch_id)
    assert [j.job_id for j in a.jobs] != [j.job_id for j in c.jobs]


def test_no_global_random_state_is_used() -> None:
    random.seed(1)
    first = generate_batch(5, seed=3).jobs[2].result_bytes
    random.seed(2)
    random.random()
    assert generate_batch(5, seed=3).jobs[2].result_bytes == first


def test_generated_kinds_are_the_result_kinds_with_results() -> None:
    assert set(GENERATED_KINDS) == set(RESULT_KINDS) - {"unknown", "none"}


def test_kinds_are_cycled_and_restricted() -> None:
    batch = generate_batch(len(GENERATED_KINDS) * 3, seed=1, completed_fraction=1.0)
    assert Counter(j.kind for j in batch.jobs) == {k: 3 for k in GENERATED_KINDS}
    only = generate_batch(10, seed=1, kinds=["video"], completed_fraction=1.0)
    assert {j.kind for j in only.jobs} == {"video"}


def test_not_completed_share_and_shape() -> None:
    batch = generate_batch(400, seed=4, kinds=["image"], annotations_per_job=1,
                           completed_fraction=0.8)
    pending = [j for j in batch.jobs if j.status != "completed"]
    assert 40 <= len(pending) <= 120
    for job in pending:
        assert job.result is None and job.result_bytes is None
        assert job.kind == "none" and job.truth.jobs_by_kind == {"none": 1}
    assert all(j.status == "completed"
               for j in generate_batch(50, seed=4, completed_fraction=1.0).jobs)


def test_ids_and_job_fields() -> None:
    batch = generate_batch(60, seed=8, project_id="proj-1")
    assert batch.project_id == "proj-1"
    assert UUIDISH.match(batch.batch_id)
    for i, job in enumerate(batch.jobs):
        assert UUIDISH.match(job.job_id)
        assert job.reference_id == f"{i + 1:06d}"
        assert 1 <= job.priority_weight <= 10
    assert len({j.job_id for j in batch.jobs}) == 60


def test_results_are_plain_json_and_truth_adds_up() -> None:
    batch = generate_batch(35, seed=6)
    total = Counter()
    for job in batch.jobs:
        if job.result is not None:
            assert json.loads(job.result_bytes or b"") == job.result
        assert sum(job.truth.annotations_by_type.values()) == job.n_annotations
        total.update(job.truth.annotations_by_type)
    assert batch.truth.annotations_by_type == total
    assert sum(batch.truth.jobs_by_status.values()) == 35


def test_every_documented_shape_appears() -> None:
    text = "".join((j.result_bytes or b"").decode()
                   for j in generate_batch(70, seed=2, annotations_per_job=12).jobs)
    for needle in ('"rectangles"', '"polygons"', '"lines"', '"cuboids"', '"landmarks"',
                   '"p10"', '"e4":["p4","p4"]', '"faces"', '"front":{"coordinates"',
                   '"attributes":[]', '"state"', '"frames":{', '"video_data"',
                   '"legend":{', '"legend":[', '"label_key"', '"Tree "', '"MINIVAN # 1"',
                   '"class_id"', '"masks"', '"ego_pose"', '"keyFrame"', '"sensor_id"',
                   '"category"', '"rotation":{"w"'):
        assert needle in text, needle
    assert re.search(r'"#[0-9A-F]{6}"', text), "upper-case legend key"
    assert re.search(r'"#[0-9a-f]{7}"', text), "7-digit legend key"


def test_mask_assets_live_under_the_asset_url() -> None:
    base = "http://127.0.0.2:9999/store"
    batch = generate_batch(14, seed=3, kinds=["image_segmentation", "point_cloud_segmentation"],
                           asset_base_url=base, completed_fraction=1.0)
    for job in batch.jobs:
        assert job.assets
        body = job.result.get("data", job.result)
        urls = re.findall(r'"(http[^"]+)"', json.dumps(body))
        for path in job.assets:
            assert f"{base}/{path}" in urls
    png = next(iter(batch.jobs[0].assets.values()))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_generate_job_directly_and_bad_arguments() -> None:
    job = generate_job("sensor_fusion", job_id="j", rng=random.Random(1),
                       asset_base_url="https://s.example", annotations=5)
    assert job.kind == "sensor_fusion" and job.truth.cuboids_3d > 0
    with pytest.raises(ValueError, match="unknown result kind"):
        generate_job("lidar", job_id="j", rng=random.Random(1), asset_base_url="x",
                     annotations=1)
    with pytest.raises(ValueError, match="unknown result kind"):
        generate_batch(3, kinds=["image", "none"])
    with pytest.raises(ValueError, match="completed_fraction"):
        generate_batch(3, completed_fraction=1.5)

