"""Subsets (ds.select) and splits (ds.split) of real pulled versions."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from emulator_helpers import make_batch, make_job

import playment_datasets as pds
from playment_datasets.dataset.dataset import DatasetView
from playment_datasets.emulator import Emulator
from playment_datasets.errors import ConfigurationError

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def do_pull(emu: Emulator, root: Path) -> pds.Dataset:
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=root, progress=False)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> pds.Dataset:
    """A generated batch with every result kind."""
    with Emulator(jobs=40, seed=3) as emu:
        return do_pull(emu, tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[pds.Dataset, pds.Dataset]:
    """v1 with 30 image jobs; v2 of the same batch with 25 more jobs."""
    root = tmp_path_factory.mktemp("registry")
    with Emulator(make_batch(30)) as emu:
        first = do_pull(emu, root)
        for i in range(30, 55):
            emu.add_job(make_job(i, n_rects=1 + i % 3))
        second = do_pull(emu, root)
    assert (first.version, second.version) == (1, 2)
    return first, second


def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["job_id"].astype(str), frame["annotation_key"].astype(str),
                   strict=True))


def test_select_by_label_and_type_filters_every_table_consistently(mixed: pds.Dataset) -> None:
    view = mixed.select(labels=["car", "person"], types="rectangle")
    assert isinstance(view, DatasetView) and isinstance(view, pds.Dataset)
    ann = view.annotations
    full = mixed.annotations
    expected = full[full["label"].isin(["car", "person"]) & (full["type"] == "rectangle")]
    assert len(ann) == len(expected) > 0
    assert set(ann["label"]) <= {"car", "person"} and set(ann["type"]) == {"rectangle"}
    kept = pairs(ann)
    assert set(view.jobs["job_id"]) == {j for j, _ in kept}
    for name in ("points", "attributes", "edges", "cuboids_3d", "segments"):
        rows = view.table(name)
        keyed = rows[rows["annotation_key"].notna()]
        assert pairs(keyed) <= kept, name
        base = mixed.table(name)
        base = base[base["annotation_key"].notna()]
        # nothing of a kept annotation is lost
        assert len(keyed) == sum(p in kept for p in pairs_list(base)), name
    assert set(view.frames["job_id"]) <= set(view.jobs["job_id"])
    assert view.counts["annotations"] == len(ann)


def pairs_list(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["job_id"].astype(str), frame["annotation_key"].astype(str),
                    strict=True))


def test_select_by_job_ids_and_query(mixed: pds.Dataset) -> None:
    some = mixed.jobs["job_id"].tolist()[:5]
    view = mixed.select(job_ids=some)
    assert sorted(view.jobs["job_id"]) == sorted(some)
    assert set(view.annotations["job_id"]) <= set(some)
    full = mixed.annotations
    assert len(view.annotations) == int(full["job_id"].isin(some).sum())
    wide = mixed.select(query="x_max - x_min > 0.2")
    widths = wide.annotations["x_max"] - wide.annotations["x_min"]
    assert len(widths) and bool((widths > 0.2).all())
    # a view of a view narrows further
    narrow = wide.select(labels="car")
    assert set(narrow.annotations["label"]) == {"car"}
    assert pairs(narrow.annotations) <= pairs(wide.annotations)


def test_select_refuses_bad_input_clearly(mixed: pds.Dataset) -> None:
    with pytest.raises(ConfigurationError, match="not in"):
        mixed.select(job_ids=["no-such-job"])
    with pytest.raises(ConfigurationError, match="query"):
        mixed.select(query="no_such_column > 1")
    with pytest.raises(ConfigurationError, match="no Parquet files"):
        mixed.select(labels="car").table_path("annotations")


def test_views_export_like_datasets(mixed: pds.Dataset, tmp_path: Path) -> None:
    view = mixed.select(labels="car", types="rectangle")
    out = view.to_yolo(tmp_path / "yolo")
    assert (out / "classes.txt").read_text() == "car\n"
    n_lines = sum(len(p.read_text().splitlines()) for p in (out / "labels").rglob("*.txt"))
    assert n_lines == len(view.annotations)


def test_split_partitions_jobs_with_a_balance_report(mixed: pds.Dataset) -> None:
    parts = mixed.split(FRACTIONS, seed=5)
    assert list(parts) == ["train", "val", "test"]
    ids = [set(v.jobs["job_id"]) for v in parts.values()]
    assert set().union(*ids) == set(mixed.jobs["job_id"])
    assert sum(map(len, ids)) == len(mixed.jobs)  # disjoint
    report = parts.report
    assert list(report.index) == ["train", "val", "test"]
    for name, view in parts.items():
        labels = Counter(view.annotations["label"].dropna().tolist())
        row = report.loc[name]
        assert row["jobs"] == len(view.jobs)
        assert row["annotations"] == len(view.annotations)
        for label, count in labels.items():
            assert row[label] == count
    totals = Counter(mixed.annotations["label"].dropna().tolist())
    for label, count in totals.items():
        assert report[label].sum() == count
    assert report["share"].sum() == pytest.approx(1.0)
    assert report["jobs"].dtype == "int64"


def test_split_is_the_documented_hash(two_versions) -> None:
    first, _ = two_versions
    parts = first.split(FRACTIONS, seed="s1")
    for job_id in first.jobs["job_id"]:
        digest = hashlib.sha256(f"s1\x00{job_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        expected = "train" if u < 0.6 else ("val" if u < 0.8 else "test")
        assert job_id in set(parts[expected].jobs["job_id"])


def test_split_is_stable_when_a_later_version_adds_jobs(two_versions) -> None:
    first, second = two_versions
    assert len(second.jobs) == len(first.jobs) + 25
    old = {name: set(v.jobs["job_id"]) for name, v in first.split(FRACTIONS, seed=9).items()}
    new = {name: set(v.jobs["job_id"]) for name, v in second.split(FRACTIONS, seed=9).items()}
    for name in FRACTIONS:
        assert old[name] <= new[name], name
    added = set(second.jobs["job_id"]) - set(first.jobs["job_id"])
    assert sum(len(new[n] & added) for n in FRACTIONS) == 25
    # another seed is another split
    other = {name: set(v.jobs["job_id"]) for name, v in second.split(FRACTIONS, seed=10).items()}
    assert other != new


def test_split_by_reference_id_keeps_references_together(mixed: pds.Dataset) -> None:
    parts = mixed.split({"a": 0.5, "b": 0.5}, by="reference_id", seed=1)
    refs = [set(v.jobs["reference_id"].dropna()) for v in parts.values()]
    assert not refs[0] & refs[1]
    with pytest.raises(ConfigurationError, match="sum to 1"):
        mixed.split({"train": 0.8, "val": 0.8})
    with pytest.raises(ConfigurationError, match="by must be"):
        mixed.split(FRACTIONS, by="label")
    with pytest.raises(ConfigurationError, match="split names"):
        mixed.split({"../x": 1.0})
