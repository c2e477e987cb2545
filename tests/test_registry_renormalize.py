"""renormalize(): rebuild a version's tables from stored raw results, without the network."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_registry import commit_batch, make_table, snapshot

from playment_datasets.registry.registry import Registry
from playment_datasets.schema import empty_tables

RAW = {
    "data": {
        "annotations": {
            "rectangles": [
                {"_id": "r1", "label": "Car",
                 "coordinates": [{"x": 0.10, "y": 0.20}, {"x": 0.30, "y": 0.20},
                                 {"x": 0.30, "y": 0.45}, {"x": 0.10, "y": 0.45}]}
            ],
            "polygons": [], "lines": [], "cuboids": [], "landmarks": [],
        },
        "image_url": "https://example.invalid/a.jpg",
    }
}  # fmt: skip


def _stale_version(reg: Registry) -> None:
    """v1 as an older normalizer left it: a wrong label, j2 without a result."""
    raw = json.dumps(RAW).encode()
    commit_batch(
        reg,
        {"j1": raw, "j2": None},
        [{"job_id": "j1", "annotation_key": "old", "label": "STALE"},
         {"job_id": "j2", "annotation_key": "j2-kept", "label": "kept"}],
    )  # fmt: skip
    with reg.open_staging("proj", "batch1") as st:  # a pull that was interrupted
        st.record("j1", {"id": "j1"}, None, None)


def test_renormalize_mechanics_with_a_stand_in_normalizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, Any]] = []

    def normalize_result(raw: bytes, job: Any = None, strict: bool = False) -> dict[str, pa.Table]:
        calls.append((raw, job))
        rect = json.loads(raw)["data"]["annotations"]["rectangles"][0]
        tables = empty_tables()
        tables["jobs"] = make_table("jobs", [{"job_id": job["id"]}])
        tables["annotations"] = make_table(
            "annotations", [{"job_id": job["id"], "annotation_key": "new", "label": rect["label"]}]
        )
        return tables

    stand_in = types.ModuleType("playment_datasets.normalize")
    stand_in.normalize_result = normalize_result  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "playment_datasets.normalize", stand_in)

    reg = Registry(tmp_path)
    _stale_version(reg)
    v1 = reg.load("batch1", 1)
    before = snapshot(v1.path)
    ds = reg.renormalize("batch1", 1)

    assert ds.version == 2 and ds.manifest["parent"] == 1
    assert ds.content_id == v1.content_id  # same raw results, new version anyway
    assert ds.manifest["extra"]["renormalized_from"] == 1
    assert calls == [(json.dumps(RAW).encode(), {"id": "j1", "status": "completed"})]
    ann = ds.annotations.sort_values("annotation_key")
    assert ann[["job_id", "annotation_key", "label"]].values.tolist() == [
        ["j2", "j2-kept", "kept"],  # no raw result: carried over unchanged
        ["j1", "new", "Car"],
    ]
    jobs = ds.jobs.set_index("job_id")
    assert jobs.loc["j1", "result_sha256"] == v1.manifest["jobs"]["j1"]["result_sha256"]
    assert snapshot(v1.path) == before
    with reg.open_staging("proj", "batch1") as st:  # the interrupted pull can still resume
        assert list(st.journal()) == ["j1"]
    assert reg.verify().ok


@pytest.mark.skipif(
    importlib.util.find_spec("playment_datasets.normalize") is None,
    reason="playment_datasets.normalize is not part of this checkout yet",
)
def test_renormalize_with_the_real_normalizer(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    _stale_version(reg)
    ds = reg.renormalize("batch1")
    assert ds.version == 2 and ds.manifest["parent"] == 1
    ann = ds.annotations
    rect = ann[ann["job_id"] == "j1"]
    assert rect["label"].tolist() == ["Car"]
    assert rect["type"].tolist() == ["rectangle"]
    box = rect[["x_min", "y_min", "x_max", "y_max"]].iloc[0].tolist()
    assert box == pytest.approx([0.10, 0.20, 0.30, 0.45])
    assert ann[ann["job_id"] == "j2"]["label"].tolist() == ["kept"]
