"""A server trickling a byte a second cannot hold a pull past Timeouts.total, and Ctrl-C
ends a pull whose workers are stuck in downloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from network_helpers import API_KEY, BATCH, PROJECT, RESULT, answer, stuck, trickle

import playment_datasets as pds

FAST = pds.RetryPolicy(attempts=3, backoff_base=0.05)
TOTAL = 3.0
MARGIN = 5.0  # behavioural bound: the pull ended, not how fast


def _pull(api, tmp_path: Path) -> tuple[pds.Dataset, float]:
    started = time.monotonic()
    ds = pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url, registry=tmp_path,
                  workers=2, progress=False, retry=FAST, timeout=pds.Timeouts(total=TOTAL))
    elapsed = time.monotonic() - started
    print(f"\n  pull ended after {elapsed:.2f} s (total={TOTAL} s)")  # noqa: T201 (figures for -s)
    return ds, elapsed


def _errors(ds: pds.Dataset) -> dict[str, str]:
    return dict(zip(ds.errors["job_id"], ds.errors["error_type"], strict=True))


def test_slow_body_ends_at_the_deadline(fake_api, tmp_path: Path) -> None:
    api = fake_api(["fine", "slow"])
    api.storage["slow"] = trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", b"x" * 500)
    ds, elapsed = _pull(api, tmp_path)
    assert elapsed < TOTAL + MARGIN
    assert _errors(ds) == {"slow": "DeadlineExceededError"}
    assert len(ds.annotations) == 1  # the fine job is kept


def test_slow_headers_end_at_the_deadline(fake_api, tmp_path: Path) -> None:
    api = fake_api(["fine", "slow"])
    api.storage["slow"] = trickle(b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"a" * 500)
    ds, elapsed = _pull(api, tmp_path)
    assert elapsed < TOTAL + MARGIN
    assert _errors(ds) == {"slow": "DeadlineExceededError"}
    assert api.storage_requests("slow") == 1  # a deadline is not retried


def test_slow_listing_ends_at_the_deadline(fake_api, tmp_path: Path) -> None:
    page = json.dumps({"success": True, "data": {"jobs": [{"id": "a"}]}}).encode()
    api = fake_api(["a"], listing=lambda token: trickle(
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(page)}\r\n\r\n".encode(), page))
    started = time.monotonic()
    with pytest.raises(pds.DeadlineExceededError, match="Timeouts.total=3"):
        _pull(api, tmp_path)
    assert time.monotonic() - started < TOTAL + MARGIN


@pytest.mark.slow
def test_ctrl_c_stops_a_pull_stuck_in_downloads_and_keeps_what_finished(
        fake_api, tmp_path: Path) -> None:
    done = [f"done{i}" for i in range(3)]
    api = fake_api([*done, "stuck1", "stuck2"])
    api.storage["stuck1"] = api.storage["stuck2"] = stuck
    child = subprocess.Popen(
        [sys.executable, "-m", "playment_datasets", "pull", PROJECT, BATCH, "--base-url",
         api.base_url, "--registry", str(tmp_path), "--workers", "5", "--no-progress"],
        env={**os.environ, "PLAYMENT_API_KEY": API_KEY}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        journal: list[str] = []
        until = time.monotonic() + 60
        while len(journal) < len(done) and time.monotonic() < until:
            time.sleep(0.1)
            journal = [line for path in tmp_path.rglob("journal.jsonl")
                       for line in path.read_text().splitlines()]
        assert len(journal) == len(done), "the finished jobs never reached the journal"
        assert api.storage_requests("stuck1") and api.storage_requests("stuck2")
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = child.communicate(timeout=30)
        stopped = time.monotonic() - sent
    finally:
        child.kill()
    print(f"\n  exited {stopped:.2f} s after SIGINT")  # noqa: T201 (figures for -s)
    assert child.returncode == 130, err
    assert stopped < 5.0, f"still running {stopped:.1f} s after Ctrl-C"
    # The rerun reuses the journal: the finished jobs are not downloaded again.
    api.storage["stuck1"] = api.storage["stuck2"] = answer(200, RESULT)
    ds = pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url, registry=tmp_path,
                  progress=False)
    assert ds.pull_stats["resumed"] == len(done)
    assert [api.storage_requests(j) for j in done] == [1, 1, 1]
    assert len(ds.errors) == 0 and len(ds.annotations) == 5
