"""Scenario 4: two processes pull the same two batches at once (in opposite orders)
while a third loads them over and over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_helpers import check_visible_versions, child_env, spawn

import playment_datasets as pds
from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry

PULLER = """
import sys
import playment_datasets as pds
for batch_id in sys.argv[4:]:
    pds.pull(sys.argv[1], batch_id, base_url=sys.argv[2], registry=sys.argv[3], workers=4,
             progress=False)
"""

# Loads every batch until the stop file appears (then once more); prints what it saw.
READER = """
import json, os, sys, time
import pyarrow.parquet as pq
from playment_datasets.errors import DatasetNotFoundError
from playment_datasets.registry.registry import Registry

root, stop, batches = sys.argv[1], sys.argv[2], sys.argv[3:]
seen = {"nothing": 0, "complete": 0, "failures": []}
def look():
    reg = Registry(root)
    for batch_id in batches:
        try:
            ds = reg.load(batch_id)
        except DatasetNotFoundError:
            seen["nothing"] += 1
            continue
        try:
            for name in ds.tables():
                rows = pq.read_table(ds.path / f"{name}.parquet").num_rows
                if rows != ds.manifest["counts"][name]:
                    raise AssertionError(f"{name}: {rows} rows, manifest says "
                                         f"{ds.manifest['counts'][name]}")
            seen["complete"] += 1
        except Exception as exc:
            seen["failures"].append(f"{batch_id} v{ds.version}: {type(exc).__name__}: {exc}")
while not os.path.exists(stop):
    try:
        look()
    except Exception as exc:
        seen["failures"].append(f"{type(exc).__name__}: {exc}")
    time.sleep(0.005)
look()
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_two_pullers_and_a_reader_never_see_or_leave_anything_partial(tmp_path: Path) -> None:
    first = generate_batch(120, seed=31, project_id="proj-rel", batch_id="batch-a")
    second = generate_batch(120, seed=32, project_id="proj-rel", batch_id="batch-b")
    with Emulator(first, latency_ms=3) as emu:
        emu.add_batch(second)
        references = {
            batch.batch_id: pds.pull(
                "proj-rel", batch.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                registry=tmp_path / f"reference-{batch.batch_id}", progress=False,
            ).manifest["content_id"]
            for batch in (first, second)
        }

        root = tmp_path / "shared"
        stop = tmp_path / "stop"
        env = child_env(emu.api_key)
        reader = spawn(READER, [str(root), str(stop), "batch-a", "batch-b"], env)
        pullers = [
            spawn(PULLER, ["proj-rel", emu.base_url, str(root), *order], env)
            for order in (["batch-a", "batch-b"], ["batch-b", "batch-a"])
        ]
        for proc in pullers:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
        stop.touch()
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err.decode()

    seen = json.loads(out)
    assert seen["failures"] == []
    assert seen["complete"] >= 2  # the last look saw both batches
    registry = Registry(root)
    # No lost update of registry.json: both batches are there, each exactly once, with the
    # content of an uninterrupted pull.
    for batch_id, reference in references.items():
        assert check_visible_versions(registry, batch_id) == [1]
        assert registry.manifest(batch_id)["content_id"] == reference
    assert sorted(registry.datasets()["batch_id"]) == ["batch-a", "batch-b"]
    assert registry.verify().ok
