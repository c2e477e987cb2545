"""Whatever a server sends, a pull's memory stays bounded: huge, endless and
compression-bomb bodies stop at the Limits (the defaults, in a child process whose peak
RSS is measured), and an endless listing stops when it brings nothing new."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest
from network_helpers import API_KEY, BATCH, PROJECT, envelope, gzip_bomb, pull_in_child, stream

import playment_datasets as pds

RSS_BOUND = 500 * 2**20
MiB = 2**20


def _check(report: dict, job: str, message: str) -> None:
    assert report["peak_rss"] < RSS_BOUND, f"peak RSS {report['peak_rss'] / MiB:.0f} MiB"
    assert [(e["job_id"], e["error_type"]) for e in report["errors"]] == [
        (job, "ResponseTooLargeError")]
    assert message in report["errors"][0]["message"]
    assert report["jobs"] == 2  # the fine job is kept


@pytest.mark.slow
def test_huge_body_stops_at_max_bytes(fake_api, tmp_path: Path) -> None:
    block = b"y" * MiB
    api = fake_api(["fine", "huge"])  # 500 MB, no Content-Length: only counting can stop it
    api.storage["huge"] = stream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                                 itertools.repeat(block, 500))
    _check(pull_in_child(api.base_url, tmp_path), "huge", "more than max_bytes=134,217,728")


@pytest.mark.slow
def test_endless_chunked_body_stops_at_max_bytes(fake_api, tmp_path: Path) -> None:
    chunk = b"%x\r\n%s\r\n" % (MiB, b"z" * MiB)
    api = fake_api(["fine", "endless"])
    api.storage["endless"] = stream(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                    itertools.repeat(chunk))
    _check(pull_in_child(api.base_url, tmp_path), "endless", "max_bytes")


@pytest.mark.slow
def test_gzip_bomb_stops_at_max_decoded_bytes(fake_api, tmp_path: Path) -> None:
    bomb = gzip_bomb(1024 * MiB)  # about 1 MB on the wire, 1 GiB decoded
    assert len(bomb) < 2 * MiB
    api = fake_api(["fine", "bomb"])
    api.storage["bomb"] = stream(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb),
        iter([bomb]))
    _check(pull_in_child(api.base_url, tmp_path), "bomb", "max_decoded_bytes=268,435,456")


def test_declared_oversize_is_refused_before_reading(fake_api, tmp_path: Path) -> None:
    api = fake_api(["fine", "big"])  # announces 10 MB, sends nothing: no wait for it
    api.storage["big"] = stream(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n", iter([]))
    ds = pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url, registry=tmp_path,
                  progress=False, limits=pds.Limits(max_bytes=MiB))
    assert list(ds.errors["error_type"]) == ["ResponseTooLargeError"]
    assert "declares 10,000,000 bytes" in ds.errors["message"][0]
    assert api.storage_requests("big") == 1  # not retried


def test_endless_page_tokens_with_the_same_jobs_end(fake_api, tmp_path: Path, caplog) -> None:
    pages = itertools.count()
    api = fake_api(["a", "b", "c"], listing=lambda token: envelope({
        "jobs": [{"id": j, "status": "completed"} for j in "abc"],
        "next_page_token": f"token-{next(pages)}"}))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "playment_datasets"):
        ds = pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url,
                      registry=tmp_path, progress=False)
    print(f"\n  listing ended after {time.monotonic() - started:.2f} s")  # noqa: T201 (figures for -s)
    assert sorted(ds.jobs["job_id"]) == ["a", "b", "c"]
    listings = [r for r in api.api.requests if "/batch/" in r.target]
    assert len(listings) == 2  # the second page brought no new id
    assert any("brought no job not listed before" in r.getMessage() for r in caplog.records)


def test_listing_stops_at_max_pages(fake_api, tmp_path: Path, caplog) -> None:
    pages = itertools.count()

    def page(token: str) -> object:
        n = next(pages)  # a new id on every page, for ever
        return envelope({"jobs": [{"id": f"j{n}", "status": "created"}],
                         "next_page_token": f"t{n}"})

    api = fake_api([], listing=page)
    with caplog.at_level(logging.WARNING, "playment_datasets"):
        ds = pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url,
                      registry=tmp_path, progress=False, limits=pds.Limits(max_pages=7))
    assert len(ds.jobs) == 7
    assert any("max_pages=7" in r.getMessage() for r in caplog.records)
