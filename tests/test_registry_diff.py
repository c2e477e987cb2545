"""diff(): jobs and annotations between two versions, on hand-built tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_registry import commit_batch

from playment_datasets.dataset.diff import DatasetDiff
from playment_datasets.registry.registry import Registry


def _ann(job: str, key: str, label: str | None, box: tuple[float, float, float, float] | None):
    x0, y0, x1, y1 = box if box else (None, None, None, None)
    return {"job_id": job, "annotation_key": key, "annotation_id": key.split(":")[1],
            "type": "rectangle", "label": label, "x_min": x0, "y_min": y0, "x_max": x1,
            "y_max": y1}  # fmt: skip


V1 = [
    _ann("j1", "j1:a", "car", (0.1, 0.1, 0.2, 0.2)),
    _ann("j1", "j1:b", "person", (0.3, 0.3, 0.4, 0.4)),
    _ann("j1", "j1:c", "tree", (0.5, 0.5, 0.6, 0.6)),
    _ann("j1", "j1:e", "sign", (0.7, 0.7, 0.8, 0.8)),
    _ann("j1", "j1:f", "cat", None),
    _ann("j2", "j2:x", "dog", (0.1, 0.1, 0.2, 0.2)),
    _ann("j3", "j3:y", "bird", (0.1, 0.1, 0.2, 0.2)),
]
V2 = [
    _ann("j1", "j1:a", "truck", (0.1, 0.1, 0.2, 0.2)),  # relabelled
    _ann("j1", "j1:b", "person", (0.3, 0.3, 0.45, 0.4)),  # moved
    _ann("j1", "j1:c", "tree", (0.5, 0.5, 0.6 + 1e-12, 0.6)),  # within tolerance
    _ann("j1", "j1:d", "bike", (0.0, 0.0, 0.1, 0.1)),  # added
    _ann("j1", "j1:f", "dog", (0.1, 0.1, 0.2, 0.2)),  # relabelled and moved (box appeared)
    _ann("j2", "j2:x", "wolf", (0.9, 0.9, 1.0, 1.0)),  # j2's raw result is unchanged: ignored
    _ann("j4", "j4:z", "fish", (0.1, 0.1, 0.2, 0.2)),  # job added
]


@pytest.fixture
def diff(tmp_path: Path) -> DatasetDiff:
    reg = Registry(tmp_path)
    commit_batch(reg, {"j1": b"j1-old", "j2": b"j2", "j3": b"j3"}, V1)
    commit_batch(reg, {"j1": b"j1-new", "j2": b"j2", "j4": b"j4"}, V2)
    return reg.diff("batch1", 1, "latest")


def test_jobs(diff: DatasetDiff) -> None:
    assert diff.jobs_added["job_id"].tolist() == ["j4"]
    assert diff.jobs_removed["job_id"].tolist() == ["j3"]
    assert diff.jobs_changed["job_id"].tolist() == ["j1"]
    assert diff.jobs_changed.columns.tolist() == [
        "job_id", "status_a", "status_b", "result_sha256_a", "result_sha256_b",
    ]  # fmt: skip


def test_annotations(diff: DatasetDiff) -> None:
    assert diff.annotations_added["annotation_key"].tolist() == ["j1:d"]
    assert diff.annotations_added["label"].tolist() == ["bike"]
    assert diff.annotations_removed["annotation_key"].tolist() == ["j1:e"]
    relabelled = diff.annotations_relabelled.sort_values("annotation_key")
    assert relabelled[["annotation_key", "label_a", "label_b"]].values.tolist() == [
        ["j1:a", "car", "truck"],
        ["j1:f", "cat", "dog"],
    ]
    moved = diff.annotations_moved.sort_values("annotation_key")
    assert moved["annotation_key"].tolist() == ["j1:b", "j1:f"]
    b = moved.iloc[0]
    assert (b["x_max_a"], b["x_max_b"], b["label"]) == (0.4, 0.45, "person")


def test_summary_and_repr(diff: DatasetDiff) -> None:
    assert diff.summary() == {
        "jobs_added": 1, "jobs_removed": 1, "jobs_changed": 1, "annotations_added": 1,
        "annotations_removed": 1, "annotations_relabelled": 2, "annotations_moved": 2,
    }  # fmt: skip
    assert repr(diff) == (
        "<DatasetDiff batch=batch1 v1→v2: jobs +1 -1 ~1; annotations +1 -1 relabelled 2 moved 2>"
    )
    assert not diff.is_empty


def test_identical_versions_have_an_empty_diff(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    commit_batch(reg, {"j1": b"1"}, V1[:2])
    commit_batch(reg, {"j1": b"1"}, V1[:2], force=True)
    d = reg.diff("batch1", 1, 2)
    assert d.is_empty and all(v == 0 for v in d.summary().values())
