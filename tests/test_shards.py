"""Sharded pulls: worker processes (a Dask LocalCluster) pull 1/n each; one commit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import playment_datasets as pds
from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.errors import ConfigurationError, PlaymentDatasetsError, RegistryError
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.shards import parse_shard, shard_of

N_SHARDS = 3


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=36, seed=21) as emulator:
        yield emulator


def pull_shard(
    project_id: str, batch_id: str, api_key: str, base_url: str, root: str, index: int, count: int
) -> dict[str, Any]:
    """Runs in a worker process: pull one shard over HTTP into the shared registry."""
    ds = pds.pull(
        project_id,
        batch_id,
        api_key=api_key,
        base_url=base_url,
        registry=root,
        progress=False,
        workers=4,
        shard=(index, count),
    )
    return {"jobs": sorted(ds.manifest["jobs"]), "version": ds.version}


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def single_pull(emu: Emulator, root: Path):
    return pds.pull(
        emu.project_id,
        emu.batch_id,
        api_key=emu.api_key,
        base_url=emu.base_url,
        registry=root,
        progress=False,
    )


@pytest.mark.slow
def test_dask_workers_pull_shards_and_one_commit_equals_a_single_pull(emu, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    shared = tmp_path / "shared"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = [
            client.submit(
                pull_shard,
                emu.project_id,
                emu.batch_id,
                emu.api_key,
                emu.base_url,
                str(shared),
                i,
                N_SHARDS,
                pure=False,
            )
            for i in range(N_SHARDS)
        ]
        shards = client.gather(futures)
    assert all(s["version"] == 0 for s in shards)
    owned = [job for s in shards for job in s["jobs"]]
    assert len(owned) == len(set(owned))  # every job in one shard only
    reg = Registry(shared)
    assert reg.versions(emu.batch_id) == []  # nothing is visible before the commit
    ds = reg.commit_shards(emu.project_id, emu.batch_id, N_SHARDS)
    single = single_pull(emu, tmp_path / "single")
    assert ds.version == 1
    assert ds.content_id == single.content_id
    assert sorted(owned) == sorted(single.manifest["jobs"])
    assert ds.counts == single.counts
    for name in ds.tables():  # the same rows; only their order (grouped by shard) differs
        assert sorted_rows(ds.arrow(name)) == sorted_rows(single.arrow(name)), name
    assert ds.manifest["extra"]["shards"] == N_SHARDS
    assert len(ds.job_metadata()) == len(single.job_metadata())
    assert reg.verify().ok
    assert not (shared / "staging" / emu.project_id / emu.batch_id).exists()


def test_commit_refuses_until_every_shard_is_there(emu, tmp_path) -> None:
    root = tmp_path / "reg"
    for i in (0, 2):
        pull_shard(emu.project_id, emu.batch_id, emu.api_key, emu.base_url, str(root), i, 4)
    reg = Registry(root)
    with pytest.raises(RegistryError, match=r"2 of them are not finished \(1/4, 3/4\)") as err:
        reg.commit_shards(emu.project_id, emu.batch_id, 4)
    assert "--shard i/4" in str(err.value)
    assert reg.versions(emu.batch_id) == []
    for i in (1, 3):
        pull_shard(emu.project_id, emu.batch_id, emu.api_key, emu.base_url, str(root), i, 4)
    assert reg.commit_shards(emu.project_id, emu.batch_id, 4).version == 1
    # The same content again: no new version.
    for i in range(2):
        pull_shard(emu.project_id, emu.batch_id, emu.api_key, emu.base_url, str(root), i, 2)
    again = reg.commit_shards(emu.project_id, emu.batch_id, 2)
    assert again.version == 1 and reg.versions(emu.batch_id) == [1]


def test_shards_of_different_listings_are_refused(emu, tmp_path) -> None:
    root = tmp_path / "reg"
    pull_shard(emu.project_id, emu.batch_id, emu.api_key, emu.base_url, str(root), 0, 2)
    batch = generate_batch(5, seed=99, project_id=emu.project_id, batch_id=emu.batch_id)
    with Emulator(batch) as other:
        pull_shard(other.project_id, other.batch_id, other.api_key, other.base_url, str(root), 1, 2)
    with pytest.raises(RegistryError, match="different job listings"):
        Registry(root).commit_shards(emu.project_id, emu.batch_id, 2)


def test_shard_assignment_is_a_stable_hash_of_the_job_id() -> None:
    ids = [f"job-{i}" for i in range(200)]
    for n in (1, 2, 7):
        got = [shard_of(j, n) for j in ids]
        want = [int(hashlib.sha256(j.encode()).hexdigest()[:16], 16) % n for j in ids]
        assert got == want
    assert len({shard_of(j, 4) for j in ids}) == 4


def test_bad_shard_specs_say_what_is_expected(emu, tmp_path) -> None:
    assert parse_shard(" 2/5 ") == (2, 5)
    for text in ("5/5", "1-4", "/3", "-1/3"):
        with pytest.raises(ConfigurationError, match="INDEX/COUNT|index < count"):
            parse_shard(text)
    for shard in ((3, 3), (0, 0), (1,), ("0", 2), (True, 2)):
        with pytest.raises(ConfigurationError, match=r"0 <= index < count"):
            pds.pull(
                emu.project_id,
                emu.batch_id,
                api_key=emu.api_key,
                base_url=emu.base_url,
                registry=tmp_path,
                progress=False,
                shard=shard,
            )
    with pytest.raises(PlaymentDatasetsError, match="every worker shares"):
        pds.pull(
            emu.project_id,
            emu.batch_id,
            api_key=emu.api_key,
            base_url=emu.base_url,
            registry="memory://b/r",
            progress=False,
            shard=(0, 2),
        )


def test_cli_pull_shard_then_commit_shards(emu, tmp_path, monkeypatch, capsys) -> None:
    from playment_datasets.cli import main

    monkeypatch.setenv("PLAYMENT_API_KEY", emu.api_key)
    monkeypatch.setenv("PLAYMENT_BASE_URL", emu.base_url)
    reg = ["--registry", str(tmp_path / "reg")]
    assert main(["pull", emu.project_id, emu.batch_id, "--shard", "0/2", "--json", *reg]) == 0
    assert main(["commit-shards", emu.project_id, emu.batch_id, "2", *reg]) == 1
    assert "(1/2)" in capsys.readouterr().err
    assert main(["pull", emu.project_id, emu.batch_id, "--shard", "1/2", "--json", *reg]) == 0
    capsys.readouterr()
    assert main(["commit-shards", emu.project_id, emu.batch_id, "2", "--json", *reg]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["counts"]["jobs"] == len(emu.batch.jobs)
    with pytest.raises(SystemExit) as usage:
        main(["pull", emu.project_id, emu.batch_id, "--shard", "2/2", *reg])
    assert usage.value.code == 2 and "0 <= index < count" in capsys.readouterr().err
