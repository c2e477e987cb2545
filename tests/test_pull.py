"""pull() end to end against the emulator, into real registries on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import playment_datasets as pds
from playment_datasets.api.client import RetryPolicy
from playment_datasets.emulator import Emulator
from playment_datasets.errors import AuthenticationError, PullError
from playment_datasets.registry.registry import Registry


def do_pull(emu: Emulator, registry: Path | Registry, **options):
    options.setdefault("progress", False)
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, **options)


def plain(series) -> list:
    """Values as Python objects, with missing values as None (as the generator counts them)."""
    return [None if value is pd.NA or value is None else value for value in series.tolist()]


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=120, seed=11, page_size=25) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def pulled(emu: Emulator, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("registry")
    emu.reset_stats()
    ds = do_pull(emu, root, workers=8)
    return root, ds, emu.stats


def test_tables_match_the_generators_ground_truth(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    truth = emu.truth
    ann = ds.annotations
    assert Counter(ann["type"].tolist()) == truth.annotations_by_type
    labelled = ann[ann["label"].notna()]
    pairs = zip(labelled["type"], labelled["label"], strict=True)
    assert Counter(pairs) == truth.annotations_by_label
    attrs = ds.attributes
    pairs = zip(plain(attrs["name"]), plain(attrs["value"]), strict=True)
    assert Counter(pairs) == truth.attributes
    assert len(ds.points) == truth.points and len(ds.edges) == truth.edges
    # with masks fetched, every colour / label key a legend does not list is a segment too
    unlisted = sum(len(mask.unknown) for mask in truth.masks.values())
    assert len(ds.cuboids_3d) == truth.cuboids_3d
    assert len(ds.segments) == truth.segments + unlisted and unlisted > 0
    assert len(ds.frames) == truth.frames
    assert Counter(ds.jobs["status"].tolist()) == truth.jobs_by_status
    assert Counter(ds.jobs["result_kind"].tolist()) == truth.jobs_by_kind
    assert len(ds.errors) == 0


def test_jobs_keep_listing_order_and_metadata(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    jobs = ds.jobs
    assert jobs["job_id"].tolist() == [job.job_id for job in emu.batch.jobs]
    first = emu.batch.jobs[0]
    row = jobs.iloc[0]
    assert row["reference_id"] == first.reference_id
    assert row["work_flow_id"] == first.work_flow_id
    assert row["priority_weight"] == first.priority_weight


def test_unfinished_jobs_are_listed_without_annotations(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    pending = {job.job_id for job in emu.batch.jobs if job.result_bytes is None}
    assert pending
    jobs = ds.jobs.set_index("job_id")
    assert set(jobs.loc[sorted(pending), "status"]) != {"completed"}
    assert not set(ds.annotations["job_id"]) & pending


def test_raw_results_are_kept_in_the_object_store(emu: Emulator, pulled) -> None:
    root, ds, _ = pulled
    registry = Registry(root)
    for job in emu.batch.jobs[:10]:
        if job.result_bytes is None:
            continue
        sha = ds.manifest["jobs"][job.job_id]["result_sha256"]
        assert registry.get_object(sha) == job.result_bytes


def test_the_key_is_nowhere_in_the_registry(emu: Emulator, pulled) -> None:
    root, _, stats = pulled
    assert stats.leaks == 0
    needle = emu.api_key.encode()
    for path in root.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path


def test_unchanged_repull_makes_no_version_and_downloads_no_body(emu: Emulator, pulled) -> None:
    root, first, _ = pulled
    emu.reset_stats()
    again = do_pull(emu, root, workers=8)
    stats = emu.stats
    assert again.version == first.version
    assert Registry(root).versions(emu.batch_id) == [first.version]
    assert stats.bytes_served == 0
    completed = sum(1 for job in emu.batch.jobs if job.result_bytes is not None)
    assert stats.not_modified == completed + len(emu.truth.masks)  # results and masks
    assert stats.requests["job"] == 0  # the listing showed every job unchanged
    assert first.pull_stats["fetched"] == completed and first.pull_stats["not_modified"] == 0


def test_changed_jobs_make_a_new_version_with_an_exact_diff(tmp_path: Path) -> None:
    with Emulator(jobs=30, seed=4, kinds=["image"]) as emu:
        v1 = do_pull(emu, tmp_path)
        done = [job for job in emu.batch.jobs if job.result_bytes is not None]
        changed = done[0]
        result = json.loads(changed.result_bytes)
        body = result.get("data", result)
        rect = {"_id": "new-box", "label": "zebra", "coordinates": [
            {"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.1}, {"x": 0.2, "y": 0.2}, {"x": 0.1, "y": 0.2}]}
        body.setdefault("annotations", {}).setdefault("rectangles", []).append(rect)
        emu.set_result(changed.job_id, result)
        emu.remove_job(done[1].job_id)
        emu.reset_stats()
        v2 = do_pull(emu, tmp_path)
        # the listing shows every status unchanged, so no job record is re-read
        assert emu.stats.requests["job"] == 0
    assert (v1.version, v2.version) == (1, 2)
    assert v2.manifest["parent"] == 1
    diff = Registry(tmp_path).diff(emu.batch_id, 1, 2)
    assert set(diff.jobs_changed["job_id"]) == {changed.job_id}
    assert set(diff.jobs_removed["job_id"]) == {done[1].job_id}
    assert len(diff.jobs_added) == 0
    added = diff.annotations_added
    assert added["label"].tolist() == ["zebra"]
    assert len(diff.annotations_removed) == 0
    # unchanged raw objects are shared by both versions
    shas1 = {k: v["result_sha256"] for k, v in v1.manifest["jobs"].items()}
    shas2 = {k: v["result_sha256"] for k, v in v2.manifest["jobs"].items()}
    same = [k for k in shas2 if k != changed.job_id]
    assert all(shas1[k] == shas2[k] for k in same)


def test_a_malformed_result_is_quarantined_and_the_rest_lands(tmp_path: Path) -> None:
    with Emulator(jobs=12, seed=8, kinds=["image"]) as emu:
        bad = next(job for job in emu.batch.jobs if job.result_bytes is not None)
        emu.set_result(bad.job_id, b"<html>502 Bad Gateway</html>")
        ds = do_pull(emu, tmp_path)
    errors = ds.errors
    assert errors["job_id"].tolist() == [bad.job_id]
    assert errors["stage"].tolist() == ["normalize"]
    sha = ds.manifest["jobs"][bad.job_id]["result_sha256"]
    assert Registry(tmp_path).get_object(sha) == b"<html>502 Bad Gateway</html>"
    good = {job.job_id for job in emu.batch.jobs if job.result_bytes is not None} - {bad.job_id}
    assert good <= set(ds.annotations["job_id"])


def test_a_job_failing_every_retry_is_in_errors_and_the_version_commits(tmp_path: Path) -> None:
    with Emulator(jobs=6, seed=8, kinds=["image"]) as emu:
        emu.fail_next(2, "500", "storage")
        ds = do_pull(emu, tmp_path, workers=1, retry=RetryPolicy(attempts=2, backoff_base=0))
    errors = ds.errors
    assert len(errors) == 1 and errors["stage"].iloc[0] == "fetch"
    assert errors["error_type"].iloc[0] == "ServerError"
    assert ds.version == 1 and ds.manifest["counts"]["errors"] == 1


def test_a_wrong_key_stops_the_pull_with_a_clear_error(tmp_path: Path) -> None:
    with Emulator(jobs=3) as emu:
        with pytest.raises(AuthenticationError, match="PLAYMENT_API_KEY"):
            pds.pull(emu.project_id, emu.batch_id, api_key="wrong", base_url=emu.base_url,
                     registry=tmp_path, progress=False)
    assert Registry(tmp_path).datasets().empty


def test_an_outage_stops_the_pull_and_the_rerun_resumes(tmp_path: Path) -> None:
    with Emulator(jobs=100, seed=2, kinds=["image"], latency_ms=10) as emu:
        outage = threading.Timer(0.4, emu.set_down, args=(True,))
        outage.start()
        with pytest.raises(PullError, match="run the same pull again") as info:
            do_pull(emu, tmp_path, workers=2, retry=RetryPolicy(attempts=2, backoff_base=0))
        outage.join()
        assert "jobs listed so far are stored" in str(info.value)
        assert Registry(tmp_path).datasets().empty  # no partial version
        with Registry(tmp_path).open_staging(emu.project_id, emu.batch_id) as staging:
            stored = {k for k, e in staging.journal().items()
                      if e.error is None and e.result_sha256}
        assert stored, "some jobs landed before the outage"
        emu.set_down(False)
        emu.reset_stats()
        ds = do_pull(emu, tmp_path)
        completed = {job.job_id for job in emu.batch.jobs if job.result_bytes is not None}
        assert emu.stats.requests["storage"] == len(completed - stored)
    assert len(ds.errors) == 0 and ds.version == 1


def test_load_works_with_the_api_gone(tmp_path: Path) -> None:
    with Emulator(jobs=10, seed=5) as emu:
        first = do_pull(emu, tmp_path)
    loaded = pds.load(emu.batch_id, registry=tmp_path)
    assert loaded.version == first.version
    assert loaded.annotations.equals(first.annotations)


def test_ids_from_the_user_are_validated(tmp_path: Path) -> None:
    with pytest.raises(pds.InvalidIdError):
        pds.pull("../etc", "b", api_key="k", registry=tmp_path, progress=False)
    assert not any(tmp_path.iterdir()) or not (tmp_path / "etc").exists()


# -- crashes and concurrency (subprocesses) ------------------------------------------

PULL_SCRIPT = """
import os, sys
import playment_datasets as pds
pds.pull(sys.argv[1], sys.argv[2], base_url=sys.argv[3], registry=sys.argv[4],
         workers=4, progress=False)
"""


def spawn_pull(emu: Emulator, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLAYMENT_API_KEY": emu.api_key}
    return subprocess.Popen(
        [sys.executable, "-c", PULL_SCRIPT, emu.project_id, emu.batch_id, emu.base_url, str(root)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_at_any_point_then_rerun_gives_the_same_content(tmp_path: Path) -> None:
    with Emulator(jobs=80, seed=13, latency_ms=4) as emu:
        reference = do_pull(emu, tmp_path / "reference").manifest["content_id"]
        root = tmp_path / "crashy"
        for delay in (0.3, 0.8, 1.3, 2.0):
            proc = spawn_pull(emu, root)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            registry = Registry(root)
            assert registry.verify().ok
            for version in registry.versions(emu.batch_id):  # never a partial version
                assert registry.manifest(emu.batch_id, version)["content_id"] == reference
        emu.reset_stats()
        ds = do_pull(emu, root)
    assert ds.manifest["content_id"] == reference
    assert Registry(root).verify().ok


def test_two_concurrent_pulls_leave_one_valid_version(tmp_path: Path) -> None:
    with Emulator(jobs=40, seed=6, latency_ms=2) as emu:
        procs = [spawn_pull(emu, tmp_path) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
    registry = Registry(tmp_path)
    assert registry.versions(emu.batch_id) == [1]
    assert registry.verify().ok
