"""Shared pieces of the registry-trust scenarios: CLI pulls in child processes, the
emulator's count of result bodies, journals read from outside."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reliability_helpers import WORKTREE, child_env

from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry


def bodies(emu: Emulator) -> int:
    """Result bodies the storage host has answered (or begun answering) so far: storage
    requests minus 304s (the scenarios inject no faults)."""
    stats = emu.stats
    return stats.requests["storage"] - stats.not_modified


def cli_pull(emu: Emulator, root: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """``playment-datasets pull`` of the emulator's batch into ``root``, in a child process
    (default workers unless ``options`` say otherwise); stderr goes to ``log``."""
    args = [sys.executable, "-m", "playment_datasets", "pull", emu.project_id, emu.batch_id,
            "--registry", str(root), "--base-url", emu.base_url, "--no-progress", "--json",
            *options]
    with open(log, "ab") as err:
        return subprocess.Popen(args, env=child_env(emu.api_key), cwd=str(WORKTREE),
                                stdout=subprocess.DEVNULL, stderr=err)


def kill_when(proc: subprocess.Popen[bytes], trigger: Callable[[], bool],
              timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` as soon as ``trigger()`` is true; False when it ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if trigger():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.001)
    proc.wait(timeout=30)
    return False


def stored_in_journal(root: Path, emu: Emulator) -> set[str]:
    """Job ids the staging journal of the emulator's batch holds a stored result for."""
    with Registry(root).open_staging(emu.project_id, emu.batch_id, lock_timeout=30) as st:
        return {job_id for job_id, e in st.journal().items()
                if e.error is None and e.result_sha256}


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition of the scenario")
        time.sleep(0.002)


def report(line: str) -> None:
    """A figure of the scenario, shown with ``pytest -s`` (for the closing note)."""
    print(f"\n  {line}")  # noqa: T201 (figures for -s)
