"""Registries on object storage, against a real S3-compatible server on loopback (moto)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_registry import commit_batch

import playment_datasets as pds
from playment_datasets.dataset.dataset import Dataset
from playment_datasets.emulator import Emulator
from playment_datasets.errors import ConfigurationError, DatasetNotFoundError
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.remote import RemoteDataset, RemoteRegistry

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

BUCKET = "playment-test"


@pytest.fixture(scope="module")
def s3() -> Any:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    client.endpoint = endpoint
    yield client
    server.stop()


def options(s3: Any) -> dict[str, Any]:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
    }


@pytest.fixture
def url() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def remote(s3: Any, url: str, work: Path) -> RemoteRegistry:
    return RemoteRegistry(url, storage_options=options(s3), work_dir=work)


def keys(s3: Any, url: str) -> list[str]:
    prefix = url.split(f"{BUCKET}/", 1)[1] + "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=16, seed=3) as emulator:
        yield emulator


def pull(emu: Emulator, registry: Any) -> Dataset:
    return pds.pull(
        emu.project_id,
        emu.batch_id,
        api_key=emu.api_key,
        base_url=emu.base_url,
        registry=registry,
        progress=False,
    )


def same_tables(a: Dataset, b: Dataset) -> None:
    for name in a.tables():
        assert a.arrow(name).equals(b.arrow(name)), name


@pytest.mark.slow
def test_pull_into_s3_lands_one_version_with_the_local_tables(s3, url, emu, tmp_path) -> None:
    reg = remote(s3, url, tmp_path / "work")
    ds = pull(emu, reg)
    assert isinstance(ds, RemoteDataset) and ds.version == 1
    local = pull(emu, tmp_path / "plain")
    assert ds.content_id == local.content_id
    same_tables(ds, local)
    stored = keys(s3, url)
    assert "registry.json" in stored and "claims/" + emu.batch_id + "/v1" in stored
    base = f"datasets/{emu.project_id}/{emu.batch_id}/v1/"
    assert {f"{base}{f}" for f in [*local.manifest["files"], "manifest.json"]} <= set(stored)
    shas = {j["result_sha256"] for j in local.manifest["jobs"].values() if j["result_sha256"]}
    assert {f"objects/{s[:2]}/{s[2:]}" for s in shas} <= set(stored)
    rows = reg.datasets()
    assert rows["version"].tolist() == [1]
    assert rows["path"].tolist() == [f"{url}/{base[:-1]}"]
    assert ds.table_path("jobs") == f"{url}/{base}jobs.parquet"
    # Unchanged content: no new version, nothing claimed.
    assert pull(emu, reg).version == 1
    assert reg.versions(emu.batch_id) == [1]
    assert not any(k.endswith("/v2") for k in keys(s3, url))


@pytest.mark.slow
def test_another_machine_reads_tags_and_verifies(s3, url, emu, tmp_path) -> None:
    pull(emu, remote(s3, url, tmp_path / "a"))
    other = remote(s3, url, tmp_path / "b")  # an empty working registry: nothing local
    ds = other.load(emu.batch_id)
    assert not (tmp_path / "b" / "datasets").exists()
    assert len(ds.annotations) == ds.counts["annotations"] > 0
    assert len(ds.job_metadata()) == ds.counts["jobs"]
    con = ds.to_duckdb()
    assert con.execute("SELECT count(*) FROM annotations").fetchone()[0] == len(ds.annotations)
    other.tag(emu.batch_id, 1, "gold")
    assert remote(s3, url, tmp_path / "c").resolve(emu.batch_id, "gold")[1] == 1
    sha = next(j["result_sha256"] for j in ds.manifest["jobs"].values() if j["result_sha256"])
    assert other.get_object(sha) == Registry(tmp_path / "a").get_object(sha)
    report = other.verify()
    assert report.ok, str(report)
    assert report.objects_checked > 0 and report.files_checked == len(ds.manifest["files"]) + 1
    # Damage one table file on the server: verify names it.
    prefix = url.split(f"{BUCKET}/", 1)[1]
    key = f"{prefix}/datasets/{emu.project_id}/{emu.batch_id}/v1/points.parquet"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not parquet")
    bad = other.verify(emu.batch_id)
    assert [(p.path.rsplit("/", 1)[-1], p.kind) for p in bad.problems] == [
        ("points.parquet", "mismatch")
    ]
    other.untag(emu.batch_id, "gold")
    with pytest.raises(DatasetNotFoundError, match="no version 'gold'"):
        other.load(emu.batch_id, "gold")


def test_conditional_writes_are_enforced_by_the_server(s3, url, tmp_path) -> None:
    reg = remote(s3, url, tmp_path / "w")
    key = reg._key("claims/b/v1")
    assert reg._writes.create(key, b"first") is True
    assert reg._writes.create(key, b"second") is False
    data, etag = reg._writes.read(key)
    assert data == b"first"
    assert reg._writes.replace(key, b"third", etag) is True
    assert reg._writes.replace(key, b"fourth", etag) is False  # etag is stale now
    assert reg._writes.read(key)[0] == b"third"


@pytest.mark.slow
def test_concurrent_publishers_all_land_with_distinct_numbers(s3, url, tmp_path) -> None:
    sources = []
    for i in range(4):
        local = Registry(tmp_path / f"local{i}")
        commit_batch(local, {"j1": f"result {i}".encode(), "j2": b"shared"})
        sources.append(local.load("batch1"))
    results: list[Dataset] = []
    errors: list[BaseException] = []

    def publish(ds: Dataset, i: int) -> None:
        try:
            results.append(remote(s3, url, tmp_path / f"w{i}").publish(ds))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(ds, i)) for i, ds in enumerate(sources)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    reg = remote(s3, url, tmp_path / "reader")
    assert sorted(r.version for r in results) == reg.versions("batch1") == [1, 2, 3, 4]
    assert {reg.load("batch1", r.version).content_id for r in results} == {
        ds.content_id for ds in sources
    }
    assert reg.verify().ok


def test_a_publish_that_dies_before_the_index_leaves_nothing_visible(
    s3, url, tmp_path, monkeypatch
) -> None:
    local = Registry(tmp_path / "local")
    commit_batch(local, {"j1": b"one"})
    commit_batch(local, {"j1": b"two"})
    reg = remote(s3, url, tmp_path / "w")
    reg.publish(local.load("batch1", 1))

    def die(change: Any) -> None:
        raise KeyboardInterrupt  # the process stops between the uploads and the index

    monkeypatch.setattr(reg, "_update_index", die)
    with pytest.raises(KeyboardInterrupt):
        reg.publish(local.load("batch1", 2))
    monkeypatch.undo()
    assert any(k.startswith("datasets/proj/batch1/v2/") for k in keys(s3, url))
    reader = remote(s3, url, tmp_path / "r")
    assert reader.versions("batch1") == [1]
    report = reader.verify()
    assert report.ok and report.orphans == ["datasets/proj/batch1/v2"]
    # The next publish takes the next free number, never the orphan's.
    again = reader.publish(local.load("batch1", 2))
    assert again.version == 3 and again.manifest["parent"] == 1
    assert reader.versions("batch1") == [1, 3]


def test_remove_drops_the_version_then_its_files(s3, url, tmp_path) -> None:
    local = Registry(tmp_path / "local")
    commit_batch(local, {"j1": b"one"})
    reg = remote(s3, url, tmp_path / "w")
    reg.publish(local.load("batch1"))
    reg.remove("batch1", 1)
    assert reg.datasets().empty
    assert not any(k.startswith("datasets/") for k in keys(s3, url))


def test_registry_url_with_environment_credentials(s3, url, emu, tmp_path, monkeypatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PLAYMENT_DATASETS_HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(name, value)
    reg = Registry(url)
    assert isinstance(reg, RemoteRegistry) and repr(reg) == f"RemoteRegistry({url!r})"
    assert reg.root.is_relative_to(tmp_path / "home" / "remote")
    ds = pull(emu, url)
    loaded = pds.load(emu.batch_id, registry=url)
    assert isinstance(loaded, RemoteDataset) and loaded.content_id == ds.content_id


def test_engines_read_remote_tables_with_storage_options(s3, url, emu, tmp_path) -> None:
    ds = pull(emu, remote(s3, url, tmp_path / "w"))
    want = ds.arrow("annotations")
    import dask.dataframe as dd
    import polars as pl

    got = dd.read_parquet(ds.table_path("annotations"), storage_options=options(s3))
    got_df = got.compute(scheduler="synchronous")
    assert pa.Table.from_pandas(got_df, preserve_index=False).num_rows == want.num_rows
    polars_options = {
        "aws_endpoint_url": s3.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    frame = pl.read_parquet(ds.table_path("annotations"), storage_options=polars_options)
    assert frame.to_arrow().select(want.column_names).to_pylist() == want.to_pylist()


def test_memory_and_file_urls(emu, tmp_path) -> None:
    mem = Registry(f"memory://{uuid.uuid4().hex[:8]}/reg")
    assert isinstance(mem, RemoteRegistry)
    mem_ds = RemoteRegistry(mem.url, work_dir=tmp_path / "w").publish(pull(emu, tmp_path / "l"))
    assert mem.load(emu.batch_id).content_id == mem_ds.content_id
    local = Registry((tmp_path / "l").as_uri())
    assert type(local) is Registry and local.root == tmp_path / "l"
    assert local.versions(emu.batch_id) == [1]


def test_unsupported_urls_say_what_works(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"s3://"):
        Registry("ftp://example.invalid/reg")
    with pytest.raises(ConfigurationError, match="expects a URL"):
        RemoteRegistry(str(tmp_path))
    with pytest.raises(ConfigurationError, match="remote registry"):
        Registry("memory://x/y").gc()
