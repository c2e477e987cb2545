"""Property tests: generated batches in every format normalize to their ground truth."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from playment_datasets.emulator.batch import GroundTruth
from playment_datasets.emulator.generator import GENERATED_KINDS, generate_batch
from playment_datasets.normalize import normalize_result
from playment_datasets.schema import TABLE_NAMES, TABLES

SEEDS = range(24)


def _vertices(value: Any, out: Counter[tuple[float, float]]) -> None:
    """Every 2D vertex of a result, read straight from its JSON (independent walker)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "coordinates" and isinstance(child, list):
                for c in child:
                    if isinstance(c, dict):
                        out[(float(c["x"]), float(c["y"]))] += 1
            elif key == "points" and isinstance(child, dict):
                for p in child.values():
                    out[(float(p["x"]), float(p["y"]))] += 1
            else:
                _vertices(child, out)
    elif isinstance(value, list):
        for child in value:
            _vertices(child, out)


def _concat(parts: list[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    return {name: pa.concat_tables([p[name] for p in parts]) for name in TABLE_NAMES}


@pytest.fixture(scope="module")
def normalized() -> list[tuple[Any, dict[str, pa.Table]]]:
    out = []
    for seed in SEEDS:
        batch = generate_batch(16, seed=seed, annotations_per_job=6, completed_fraction=0.9)
        for job in batch.jobs:
            record = {"job_id": job.job_id, "status": job.status, "frames": job.n_frames,
                      "annotations": job.n_annotations}
            out.append((job, normalize_result(job.result_bytes, record, strict=True)))
    return out


def test_every_kind_is_generated(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    kinds = {job.kind for job, _ in normalized}
    assert kinds == set(GENERATED_KINDS) | {"none"}


def test_tables_match_schemas(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for _, tables in normalized:
        assert list(tables) == list(TABLE_NAMES)
        for name, table in tables.items():
            assert table.schema.equals(TABLES[name]), name
        assert tables["jobs"].num_rows == 1
        assert tables["errors"].num_rows == 0


def test_counts_equal_ground_truth(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for job, t in normalized:
        truth: GroundTruth = job.truth
        ann = t["annotations"].to_pydict()
        assert Counter(ann["type"]) == truth.annotations_by_type, job.kind
        labels = Counter((ty, lab) for ty, lab in zip(ann["type"], ann["label"], strict=True)
                         if lab is not None)
        assert labels == truth.annotations_by_label, job.kind
        attrs = t["attributes"].to_pydict()
        pairs = zip(attrs["name"], attrs["value"], strict=True)
        assert Counter(pairs) == truth.attributes, job.kind
        assert t["points"].num_rows == truth.points, job.kind
        assert t["edges"].num_rows == truth.edges, job.kind
        assert t["cuboids_3d"].num_rows == truth.cuboids_3d, job.kind
        assert t["frames"].num_rows == truth.frames, job.kind
        assert t["segments"].num_rows == truth.segments, job.kind
        jobs = t["jobs"].to_pylist()[0]
        assert jobs["result_kind"] == job.kind
        assert jobs["status"] == job.status
        assert len(ann["type"]) == job.n_annotations


def test_batch_totals_equal_batch_truth() -> None:
    batch = generate_batch(40, seed=99, annotations_per_job=5)
    tables = _concat([normalize_result(j.result_bytes, {"job_id": j.job_id, "status": j.status})
                      for j in batch.jobs])
    truth = batch.truth
    df = tables["annotations"].to_pandas()
    assert Counter(df["type"]) == truth.annotations_by_type
    assert Counter(tables["jobs"].column("result_kind").to_pylist()) == truth.jobs_by_kind
    assert Counter(tables["jobs"].column("status").to_pylist()) == truth.jobs_by_status
    assert df["annotation_key"].is_unique


def test_vertices_round_trip_exactly(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for job, t in normalized:
        expected: Counter[tuple[float, float]] = Counter()
        _vertices(job.result, expected)
        pts = t["points"].to_pydict()
        assert Counter(zip(pts["x"], pts["y"], strict=True)) == expected, job.kind


def test_bbox_and_n_points_agree_with_points(
        normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for _, t in normalized:
        pts = t["points"].to_pandas()
        if pts.empty:
            continue
        by = pts.groupby("annotation_key").agg(x_min=("x", "min"), x_max=("x", "max"),
                                               y_min=("y", "min"), y_max=("y", "max"),
                                               n=("x", "size"))
        ann = t["annotations"].to_pandas().set_index("annotation_key")
        ann = ann[ann["n_points"].notna() & (ann["n_points"] > 0)]
        joined = ann.join(by.add_suffix("_p"), how="left")
        assert (joined["n_points"] == joined["n_p"]).all()
        for col in ("x_min", "x_max", "y_min", "y_max"):
            assert (joined[col] == joined[f"{col}_p"]).all()


def test_point_order_follows_integer_suffix(
        normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for _, t in normalized:
        pts = t["points"].to_pandas()
        named = pts[pts["point_key"].notna()]
        for _, group in named.groupby("annotation_key", sort=False):
            idx = group["point_index"].tolist()
            assert idx == sorted(idx)
            assert all(f"p{i}" == k for i, k in zip(idx, group["point_key"], strict=True))


def test_keys_unique_and_stable(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    all_keys: list[str] = []
    for job, t in normalized[:60]:
        keys = t["annotations"].column("annotation_key").to_pylist()
        again = normalize_result(job.result_bytes, {"job_id": job.job_id, "status": job.status})
        assert again["annotations"].column("annotation_key").to_pylist() == keys
        assert all(k.startswith(f"{job.job_id}/") for k in keys)
        all_keys.extend(keys)
    assert len(all_keys) == len(set(all_keys))
    for _, t in normalized:
        for name in ("points", "edges", "attributes", "cuboids_3d", "segments"):
            child = set(t[name].column("annotation_key").to_pylist())
            assert child <= set(t["annotations"].column("annotation_key").to_pylist()), name


def test_cuboid_centres_match_result(normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for job, t in normalized:
        if job.kind != "sensor_fusion":
            continue
        body = job.result["data"]
        expected = sorted((a["position"]["x"], a["position"]["y"], a["position"]["z"])
                          for a in body["annotation_data"]["annotations"] if "position" in a)
        c = t["cuboids_3d"].to_pydict()
        assert sorted(zip(c["center_x"], c["center_y"], c["center_z"], strict=True)) == expected


def test_parsed_dict_gives_same_rows_as_bytes(
        normalized: list[tuple[Any, dict[str, pa.Table]]]) -> None:
    for job, t in normalized[:40]:
        if job.result is None:
            continue
        record = {"job_id": job.job_id, "status": job.status, "frames": job.n_frames,
                  "annotations": job.n_annotations}
        again = normalize_result(job.result, record)
        for name in TABLE_NAMES:
            if name != "jobs":
                assert again[name].equals(t[name]), name
