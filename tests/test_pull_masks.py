"""Masks in the pull and in the Dataset, end to end against the emulator.

Expected values come from the emulator's ground truth (``MaskTruth``: counted from the
arrays the mask files were encoded from) and its request counters, never from the code
under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from pycocotools import mask as mask_util

import playment_datasets as pds
from playment_datasets.api.client import RetryPolicy
from playment_datasets.emulator import Emulator, GeneratedBatch, GeneratedJob, generate_batch
from playment_datasets.errors import DatasetNotFoundError
from playment_datasets.normalize import mask_urls
from playment_datasets.registry.registry import Registry

SEG_KINDS = ["image_segmentation", "video_segmentation", "point_cloud_segmentation"]
QUICK_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)


def do_pull(emu: Emulator, registry: Path, **options: Any) -> Any:
    options.setdefault("progress", False)
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, **options)


def storage_path(url: str) -> str:
    return unquote(urlsplit(url).path)


def cli_pull(emu: Emulator, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "playment_datasets", "pull", emu.project_id, emu.batch_id,
            "--base-url", emu.base_url, "--registry", str(root), "--no-progress", *extra]


def cli_env(emu: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    return {**env, "PLAYMENT_API_KEY": emu.api_key}


def records(df: Any) -> list[Any]:
    """Rows as namedtuples with missing values as None (as the ground truth has them)."""
    clean = df.astype(object).where(df.notna(), None)
    return list(clean.itertuples(index=False))


def mask_jobs(batch: GeneratedBatch) -> dict[str, GeneratedJob]:
    """Mask URL → the job that references it."""
    return {url: job for job in batch.jobs for url in job.truth.masks}


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=24, seed=21, kinds=SEG_KINDS, page_size=10) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def pulled(emu: Emulator, tmp_path_factory: pytest.TempPathFactory):
    """The batch pulled once, with masks: (registry root, dataset, what was served)."""
    root = tmp_path_factory.mktemp("registry")
    emu.reset_stats()
    return root, do_pull(emu, root, workers=4), emu.stats


def test_every_mask_is_fetched_once_and_stored(emu: Emulator, pulled) -> None:
    _, ds, stats = pulled
    truth = emu.truth.masks
    assert {m.kind for m in truth.values()} == {"png", "pcd", "labels"}
    for url in truth:
        assert stats.storage_requests[storage_path(url)] == 1, url
    masks = ds.masks
    assert sorted(masks["url"]) == sorted(truth)
    assert set(masks["decode_status"]) == {"ok"}
    assert ds.pull_stats["masks_fetched"] == len(truth)
    assert ds.pull_stats["masks_failed"] == ds.pull_stats["masks_not_modified"] == 0
    assert len(ds.errors) == 0 and len(ds.warnings) == 0
    for row in records(masks):
        t = truth[row.url]
        assert (row.kind, row.width, row.height, row.n_points) == (
            t.kind, t.width, t.height, t.n_points)


def test_segment_statistics_equal_the_ground_truth(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    segments = ds.segments
    for url, t in emu.truth.masks.items():
        rows = segments[segments["mask_url"] == url]
        assert len(rows), url
        if t.kind == "png":
            got = {r.color: (r.n_pixels, r.x_min, r.y_min, r.x_max, r.y_max)
                   for r in records(rows) if r.n_pixels}
            assert got == t.pixels, url
            assert set(rows[rows["label"].isna()]["color"]) == t.unknown
        else:
            got = {r.label_key: r.n_pixels for r in records(rows) if r.n_pixels}
            assert got == t.points, url
            assert set(rows[rows["label"].isna()]["label_key"]) == t.unknown


def test_point_labels_count_every_point_of_every_cloud(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    frames = {(r.job_id, r.frame_id): r.url for r in records(ds.masks)}
    counts: dict[str, Counter[int]] = {}
    labels = ds.point_labels
    for row in records(labels[["job_id", "frame_id"]].drop_duplicates()):
        group = labels[(labels["job_id"] == row.job_id) & (
            labels["frame_id"].isna() if row.frame_id is None
            else labels["frame_id"] == row.frame_id)]
        url = frames[(row.job_id, row.frame_id)]
        counts[url] = Counter(group["label_key"].tolist())
        assert group["point_index"].tolist() == list(range(len(group)))
    clouds = {u: t for u, t in emu.truth.masks.items() if t.kind != "png"}
    assert set(counts) == set(clouds)
    for url, t in clouds.items():
        assert dict(counts[url]) == t.points, url


def test_ds_mask_decodes_the_stored_files(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    owner = mask_jobs(emu.batch)
    for row in records(ds.masks):
        t = emu.truth.masks[row.url]
        assert owner[row.url].job_id == row.job_id
        m = ds.mask(row.job_id, row.frame_id)
        assert m.url == row.url
        if t.kind == "png":
            assert m.array.shape == (t.height, t.width)
            assert int((m.array == 0).sum()) == t.width * t.height - sum(
                p[0] for p in t.pixels.values())
            for entry in records(m.ids):
                ys, xs = np.nonzero(m.array == entry.id)
                box = (xs.min() / t.width, ys.min() / t.height,
                       (xs.max() + 1) / t.width, (ys.max() + 1) / t.height)
                assert (len(xs), *box) == t.pixels[entry.color]
                assert entry.n_pixels == len(xs)
                assert (entry.label is None) == (entry.color in t.unknown)
        else:
            assert m.array.shape == (t.n_points,)
            assert dict(Counter(m.array.tolist())) == t.points
            assert dict(zip(m.ids["label_key"], m.ids["n_points"], strict=True)) == t.points


def test_ds_mask_errors_say_what_to_do(emu: Emulator, pulled) -> None:
    _, ds, _ = pulled
    with pytest.raises(DatasetNotFoundError, match="not in"):
        ds.mask("no-such-job")
    video = next(j for j in emu.batch.jobs if j.kind == "video_segmentation"
                 and len(j.truth.masks) > 1)
    with pytest.raises(pds.ConfigurationError, match="frame_id"):
        ds.mask(video.job_id)
    with pytest.raises(DatasetNotFoundError, match="no mask for frame"):
        ds.mask(video.job_id, "no-such-frame")


def test_coco_rle_decodes_to_the_mask(emu: Emulator, pulled, tmp_path: Path) -> None:
    _, ds, _ = pulled
    doc = json.loads(ds.to_coco(tmp_path).read_text())
    images = {i["id"]: i for i in doc["images"]}
    categories = {c["id"]: c["name"] for c in doc["categories"]}
    pngs = {(r.job_id, r.frame_id): r.url for r in records(ds.masks)
            if emu.truth.masks[r.url].kind == "png"}
    seen = set()
    for ann in doc["annotations"]:
        image = images[ann["image_id"]]
        key = (image["playment_job_id"], image.get("playment_frame_id"))
        t = emu.truth.masks[pngs[key]]
        assert (image["width"], image["height"]) == (t.width, t.height)
        rle = mask_util.frPyObjects(ann["segmentation"], image["height"], image["width"])
        decoded = mask_util.decode(rle)
        m = ds.mask(*key)
        (wanted,) = m.ids[m.ids["color"] == ann["playment_color"]]["id"]
        assert np.array_equal(decoded.astype(bool), m.array == wanted)
        n, x0, y0, x1, y1 = t.pixels[ann["playment_color"]]
        assert ann["area"] == n == int(mask_util.area(rle))
        assert ann["bbox"] == [round(x0 * t.width), round(y0 * t.height),
                               round((x1 - x0) * t.width), round((y1 - y0) * t.height)]
        assert ann["playment_color"] not in t.unknown  # unlabelled colours are not exported
        assert " # " not in categories[ann["category_id"]]  # the class, not the instance
        seen.add(key)
    assert seen == set(pngs)


def test_unchanged_repull_downloads_no_mask_body(emu: Emulator, pulled) -> None:
    root, first, _ = pulled
    emu.reset_stats()
    again = do_pull(emu, root, workers=4)
    served = emu.stats
    assert (again.version, served.bytes_served) == (first.version, 0)
    per_mask = {url: served.storage_requests[storage_path(url)] for url in emu.truth.masks}
    assert per_mask == dict.fromkeys(emu.truth.masks, 1)  # one request each, answered 304
    assert served.not_modified >= len(emu.truth.masks)


def test_renormalize_decodes_the_stored_masks_again(emu: Emulator, pulled) -> None:
    root, first, _ = pulled
    emu.reset_stats()
    again = Registry(root).renormalize(emu.batch_id, first.version)
    assert sum(emu.stats.requests.values()) == 0  # from the object store only
    assert again.version == first.version + 1
    assert set(again.masks["decode_status"]) == {"ok"}
    cols = ["job_id", "annotation_key", "n_pixels", "x_min", "y_min", "x_max", "y_max"]
    key = ["job_id", "annotation_key"]
    assert again.segments[cols].sort_values(key).reset_index(drop=True).equals(
        first.segments[cols].sort_values(key).reset_index(drop=True))
    assert len(again.point_labels) == len(first.point_labels)


def test_gc_and_verify_know_the_mask_objects(emu: Emulator, pulled) -> None:
    root, first, _ = pulled
    registry = Registry(root)
    report = registry.verify()
    assert report.ok
    completed = sum(1 for job in emu.batch.jobs if job.result_bytes is not None)
    assert report.objects_checked == completed + len(emu.truth.masks)
    assert registry.gc(dry_run=True, grace_seconds=0).objects_removed == []
    sha = first.masks["sha256"].iloc[0]
    registry.gc(grace_seconds=0)
    assert registry.has_object(sha)


def test_no_masks_on_the_command_line(emu: Emulator, tmp_path: Path) -> None:
    emu.reset_stats()
    done = subprocess.run(cli_pull(emu, tmp_path, "--no-masks", "--json"), env=cli_env(emu),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pull"]["masks_fetched"] == 0
    stats = emu.stats
    assert not any(stats.storage_requests[storage_path(u)] for u in emu.truth.masks)
    ds = Registry(tmp_path).load(emu.batch_id)
    assert set(ds.masks["decode_status"]) == {"not_fetched"}
    assert ds.segments["n_pixels"].isna().all()
    job_id = ds.masks["job_id"].iloc[0]
    with pytest.raises(DatasetNotFoundError, match="pull the batch again with masks"):
        ds.mask(job_id, ds.masks["frame_id"].iloc[0])
    # pulling again with masks fetches them, into a new version
    with_masks = do_pull(emu, tmp_path)
    assert with_masks.version == 2
    assert set(with_masks.masks["decode_status"]) == {"ok"}


def test_a_mask_that_cannot_be_fetched_costs_only_itself(tmp_path: Path) -> None:
    with Emulator(jobs=3, seed=5, kinds=["image_segmentation"]) as emu:
        done = [j for j in emu.batch.jobs if j.result_bytes is not None]
        victim = done[0]
        (url,) = victim.truth.masks
        emu.fail_next(QUICK_RETRY.attempts, "503", url=url)  # every attempt of one pull
        ds = do_pull(emu, tmp_path, retry=QUICK_RETRY)
        assert len(ds.errors) == 0
        assert sorted(ds.jobs["job_id"]) == sorted(j.job_id for j in emu.batch.jobs)
        row = ds.masks.set_index("url").loc[url]
        assert row["decode_status"] == "fetch_failed" and "503" in row["decode_error"]
        (warning,) = ds.warnings.itertuples()
        assert warning.job_id == victim.job_id and url in warning.message
        assert ds.pull_stats["masks_failed"] == 1
        assert ds.pull_stats["mask_failures"] == {"ServerError": 1}
        legend = ds.segments[ds.segments["job_id"] == victim.job_id]
        assert legend["label"].notna().all() and legend["n_pixels"].isna().all()
        # the fault is used up: the next pull fetches the mask and makes a new version
        again = do_pull(emu, tmp_path, retry=QUICK_RETRY)
        assert again.version == 2
        assert set(again.masks["decode_status"]) == {"ok"} and len(again.warnings) == 0


@pytest.mark.slow
def test_sigkill_during_mask_fetching_resumes_without_refetching(tmp_path: Path) -> None:
    with Emulator(jobs=30, seed=8, kinds=SEG_KINDS, latency_ms=15) as emu:
        paths = {storage_path(u) for u in emu.truth.masks}
        proc = subprocess.Popen(cli_pull(emu, tmp_path, "--workers", "2"), env=cli_env(emu),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        try:  # kill once a third of the masks were served: well inside mask fetching
            while sum(emu.stats.storage_requests[p] for p in paths) < len(paths) // 3:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        at_kill = emu.stats.storage_requests
        (journal,) = tmp_path.glob("staging/*/*/journal.jsonl")
        entries = [json.loads(line) for line in journal.read_text().splitlines() if line]
        journaled = [m for e in entries for m in e.get("masks") or []]
        assert journaled and all(m["sha256"] for m in journaled)
        assert len(journaled) < len(paths)  # killed before the end

        ds = do_pull(emu, tmp_path, workers=4)
        final = emu.stats.storage_requests
        for m in journaled:
            path = storage_path(m["url"])
            assert at_kill[path] == final[path] == 1, m["url"]  # not fetched again
        assert ds.pull_stats["resumed"] == len({e["job_id"] for e in entries})
        assert sorted(ds.masks["url"]) == sorted(emu.truth.masks)
        assert set(ds.masks["decode_status"]) == {"ok"}
        assert Registry(tmp_path).verify().ok


def _lenient_batch() -> GeneratedBatch:
    uuid = "5b0c1c9e-8f1d-4a8e-9d55-2f1f9a3c0e11"

    def rect(ident: str, x0: Any = 0.1) -> dict[str, Any]:
        return {"_id": ident, "label": "car",
                "coordinates": [{"x": x0, "y": 0.2}, {"x": 0.5, "y": 0.2},
                                {"x": 0.5, "y": 0.6}, {"x": 0.1, "y": 0.6}]}

    results = {
        "uuid": {"data": {"annotation_data": {"annotations": [
            {"_id": "s1", "class_id": uuid, "label_key": 3, "label": "car # 2",
             "frame_id": "0", "color": "rgb(1,2,3)"},
            {"_id": "s2", "class_id": uuid, "label_key": "4", "label": "road",
             "frame_id": "0", "color": "rgb(4,5,6)"}]}}},
        "bad-rect": {"annotations": {"rectangles": [rect("a"), rect("b", "0.1"), rect("c")]}},
        "bad-polygon": {"annotations": {
            "rectangles": [rect("d")],
            "polygons": [{"_id": "p", "label": "car", "points": [1, 2]}]}},
    }
    jobs = [GeneratedJob(job_id=name, reference_id=f"ref-{name}", status="completed",
                         kind="image", result=result) for name, result in results.items()]
    return GeneratedBatch("proj-lenient", "batch-lenient", "Lenient", jobs)


def test_odd_and_malformed_results_land_through_a_real_pull(tmp_path: Path) -> None:
    with Emulator(_lenient_batch()) as emu:
        ds = do_pull(emu, tmp_path)
    assert len(ds.errors) == 0
    assert Counter(ds.warnings["job_id"]) == {"uuid": 1, "bad-rect": 1, "bad-polygon": 1}
    segs = ds.segments
    assert sorted(segs[segs["job_id"] == "uuid"]["label"]) == ["car # 2", "road"]
    ann = ds.annotations
    assert sorted(ann[ann["job_id"] == "bad-rect"]["annotation_id"]) == ["a", "c"]
    assert list(ann[ann["job_id"] == "bad-polygon"]["annotation_id"]) == ["d"]
    paths = dict(zip(ds.warnings["job_id"], ds.warnings["json_path"], strict=True))
    # a UUID class_id beside its integer label_key is a valid shape; the key given as
    # text is the one oddity of that job
    assert paths["uuid"].endswith("annotations[1].label_key")
    assert json.loads(segs[segs["label"] == "road"]["extra"].iloc[0]) == {
        "class_id": "5b0c1c9e-8f1d-4a8e-9d55-2f1f9a3c0e11", "label_key": "4"}
    assert paths["bad-rect"].endswith("rectangles[1].coordinates[0].x")
    assert paths["bad-polygon"].endswith("polygons[0].points")


def test_a_resumed_job_fetches_only_the_masks_it_lacks(tmp_path: Path) -> None:
    with Emulator(jobs=4, seed=9, kinds=["video_segmentation"]) as emu:
        job = next(j for j in emu.batch.jobs if len(j.truth.masks) >= 2)
        registry = Registry(tmp_path)
        urls = sorted(job.truth.masks)
        bodies = {u: next(b for p, b in job.assets.items() if u.endswith(p)) for u in urls}
        frames = {ref.url: ref.frame_id for ref in mask_urls(job.result_bytes)}
        entries = [{"url": u, "frame_id": frames[u], "kind": "png", "sha256": None,
                    "etag": None, "error": "ServerError: HTTP 503"} for u in urls[:1]]
        entries += [{"url": u, "frame_id": frames[u], "kind": "png",
                     "sha256": registry.put_object(bodies[u]), "etag": None} for u in urls[1:]]
        record = {"id": job.job_id, "job_id": job.job_id, "status": "completed",
                  "result": emu.result_url(job.job_id)}
        # the journal an interrupted pull leaves: the result stored, one mask failed
        with registry.open_staging(emu.project_id, emu.batch_id) as staging:
            staging.record(job.job_id, record, registry.put_object(job.result_bytes), None,
                           extra={"masks": entries})
        emu.reset_stats()
        ds = do_pull(emu, tmp_path)
        served = emu.stats.storage_requests
    assert ds.pull_stats["resumed"] == 1
    assert served[storage_path(urls[0])] == 1
    assert [served[storage_path(u)] for u in urls[1:]] == [0] * (len(urls) - 1)
    assert served[storage_path(emu.result_url(job.job_id))] == 0
    mine = ds.masks[ds.masks["job_id"] == job.job_id]
    assert sorted(mine["url"]) == urls and set(mine["decode_status"]) == {"ok"}


def test_a_jobs_masks_download_side_by_side(tmp_path: Path) -> None:
    # One job, a video with a mask per frame: only its masks downloading beside each
    # other can put two mask requests at the storage host at once.
    batch = generate_batch(1, seed=4, kinds=["video_segmentation"], completed_fraction=1.0)
    with Emulator(batch, latency_ms=40) as emu:
        (job,) = emu.batch.jobs
        assert len(job.truth.masks) >= 2
        ds = do_pull(emu, tmp_path, workers=2)
        assert set(ds.masks["decode_status"]) == {"ok"}
        assert emu.stats.max_in_flight["storage"] >= 2
        assert emu.stats.max_in_flight["api"] >= 2  # the attachment requests overlap too


@pytest.mark.parametrize("workers", [1, 3])
def test_masks_download_in_the_pulls_pool_beside_the_next_jobs(tmp_path: Path,
                                                                workers: int) -> None:
    # A worker queues its job's masks in the pull's pool and goes on to the next job, so
    # no thread waits for a mask; and `workers` bounds every request in flight, results,
    # masks and job records together (seen from the server: both hosts at once).
    batch = generate_batch(16, seed=3, kinds=["image_segmentation"], completed_fraction=1.0)
    jobs_asked_at_first_mask: list[int] = []
    with Emulator(batch, latency_ms=25) as emu:
        names = tuple(storage_path(url).rsplit("/", 1)[-1] for url in emu.truth.masks)
        stop = threading.Event()

        def watch() -> None:  # the first mask request is 25 ms long: time enough to see
            while not stop.is_set():
                stats = emu.stats
                if any(path.endswith(names) for path in stats.storage_requests):
                    jobs_asked_at_first_mask.append(stats.requests["job"])
                    return
                time.sleep(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            ds = do_pull(emu, tmp_path, workers=workers, processes=0)
        finally:
            stop.set()
            watcher.join()
        peak = emu.stats.max_in_flight
    assert sorted(ds.masks["url"]) == sorted(emu.truth.masks)
    assert set(ds.masks["decode_status"]) == {"ok"}
    assert peak["all"] <= workers
    if workers > 1:
        assert peak["all"] == workers
    # Workers that waited for their job's masks would have asked for `workers` jobs when
    # the first mask is asked for; queued behind the jobs already in the pool, it comes
    # after more.
    assert jobs_asked_at_first_mask and jobs_asked_at_first_mask[0] > workers


def test_masks_of_a_job_running_when_the_pool_shuts_down_download_in_its_thread(
        tmp_path: Path) -> None:
    # A pull that stops (Ctrl-C, an outage) shuts its pool down and lets the jobs in its
    # threads finish. Such a job's masks cannot be queued any more: they download in the
    # job's own thread, so the job is journalled whole instead of fetched again.
    from concurrent.futures import ThreadPoolExecutor

    from playment_datasets.api.client import PlaymentClient
    from playment_datasets.pull.masks import fetch_job_masks

    batch = generate_batch(1, seed=8, kinds=["video_segmentation"], completed_fraction=1.0)
    (job,) = batch.jobs
    served = {hashlib.sha256(body).hexdigest() for body in job.assets.values()}
    registry = Registry(tmp_path)
    pool = ThreadPoolExecutor(2)
    pool.shutdown()
    with Emulator(batch) as emu:
        client = PlaymentClient(api_key=emu.api_key, base_url=emu.base_url)
        got = fetch_job_masks(client, registry, job.result_bytes, None, None, False,
                              pool=pool).result(timeout=60)
        client.close()
    shas = [entry["sha256"] for entry in got.entries]
    assert len(shas) >= 2 and set(shas) <= served  # a mask per frame, each one served
    assert all(registry.get_object(sha) for sha in shas)
    assert got.fetched == len(set(e["url"] for e in got.entries)) and not got.failures


def test_a_key_refused_while_a_mask_downloads_stops_the_pull(tmp_path: Path) -> None:
    # The key is revoked while the result's body is on its way: the mask's attachment
    # request, made in a mask thread, is refused. The pull must stop with that error
    # (not hang waiting for the job), and the job must not be journalled as done.
    import threading

    from playment_datasets.errors import AuthenticationError

    batch = generate_batch(1, seed=4, kinds=["image_segmentation"], completed_fraction=1.0)
    (job,) = batch.jobs
    with Emulator(batch, latency_ms=200) as emu:
        result_path = storage_path(emu.result_url(job.job_id))

        def revoke_once_the_result_is_asked_for() -> None:
            deadline = time.monotonic() + 30
            while emu.stats.storage_requests[result_path] == 0 and time.monotonic() < deadline:
                time.sleep(0.002)
            emu.revoke_api_key(emu.api_key)  # the answer is still 200 ms away

        watcher = threading.Thread(target=revoke_once_the_result_is_asked_for)
        watcher.start()
        got: list[BaseException] = []

        def run() -> None:
            try:
                do_pull(emu, tmp_path, workers=2, retry=QUICK_RETRY)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                got.append(exc)

        puller = threading.Thread(target=run, daemon=True)
        puller.start()
        puller.join(60)
        watcher.join()
        assert not puller.is_alive(), "the pull hung after the key was refused"
        served = emu.stats
    assert len(got) == 1 and isinstance(got[0], AuthenticationError), got
    assert served.requests["attachment"] == 2  # the result's, then the mask's (refused)
    assert served.storage_requests[result_path] == 1
    assert not any(served.storage_requests[storage_path(u)] for u in job.truth.masks)
    journals = list(tmp_path.glob("staging/*/*/journal.jsonl"))
    lines = [line for j in journals for line in j.read_text().splitlines() if line.strip()]
    assert not [json.loads(line) for line in lines if json.loads(line).get("job_id")]
