"""Three CLI pulls of one batch at once: one version; the two that waited for the batch
lock are incremental re-pulls of what the first committed and download no result body.
A pull that waits longer than ``--lock-timeout`` fails saying who holds the lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import bodies, cli_pull, report
from reliability_helpers import WORKTREE, child_env

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry


@pytest.mark.slow
def test_three_pulls_at_once_make_one_version_and_download_each_body_once(
    tmp_path: Path,
) -> None:
    batch = generate_batch(400, seed=33)
    results = sum(1 for job in batch.jobs if job.result_bytes is not None)
    root = tmp_path / "registry"
    with Emulator(batch, page_size=100, latency_ms=10) as emu:
        # Without masks every storage request is a result body.
        procs = [cli_pull(emu, root, tmp_path / f"pull{i}.log", "--no-masks") for i in range(3)]
        codes = [proc.wait(timeout=180) for proc in procs]
        stats, served = emu.stats, bodies(emu)
    logs = [(tmp_path / f"pull{i}.log").read_text() for i in range(3)]
    assert codes == [0, 0, 0], logs
    registry = Registry(root)
    assert registry.versions(batch.batch_id) == [1]
    assert registry.verify().ok
    report(f"three pulls: {served} bodies downloaded for {results} results, "
          f"{stats.not_modified} answered 304 Not Modified")
    assert served == results  # not 3 x: the waiting pulls re-used the winner's objects
    assert stats.not_modified == 2 * results


def test_a_pull_waiting_past_its_lock_timeout_names_the_holder(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Emulator(generate_batch(5, seed=1)) as emu:
        with Registry(root).open_staging(emu.project_id, emu.batch_id):
            done = subprocess.run(
                [sys.executable, "-m", "playment_datasets", "pull", emu.project_id,
                 emu.batch_id, "--registry", str(root), "--base-url", emu.base_url,
                 "--no-progress", "--lock-timeout", "0.5"],
                env=child_env(emu.api_key), cwd=str(WORKTREE), capture_output=True,
                text=True, timeout=60,
            )
        assert emu.stats.requests["storage"] == 0
    assert done.returncode == 1, done.stderr
    message = done.stderr.strip()
    assert "Traceback" not in message
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
    assert "within 0.5 s" in message and "--lock-timeout" in message
    assert emu.api_key not in message


def test_lock_timeout_must_be_seconds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "playment_datasets", "pull", "p1", "b1", "--registry",
         str(tmp_path), "--lock-timeout", "-3"],
        env=child_env("unused-key"), cwd=str(WORKTREE), capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "expected a number of seconds >= 0, got '-3'" in done.stderr
