"""Shared pieces of the reliability scenarios: pulls, child processes, invariants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import playment_datasets as pds
from playment_datasets.api.client import RetryPolicy, Timeouts
from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry

#: Retries that survive heavy fault rates without slowing the suite down.
FAST_RETRY = RetryPolicy(attempts=10, backoff_base=0.01, backoff_max=0.1, retry_after_max=0.05)
#: Few attempts, no waiting: an outage exhausts the budget quickly.
SHORT_RETRY = RetryPolicy(attempts=3, backoff_base=0.005, backoff_max=0.02, retry_after_max=0.02)
#: The read timeout the "slow" fault (1 s) runs past.
SHORT_TIMEOUTS = Timeouts(connect=2.0, read=0.3)

WORKTREE = Path(__file__).resolve().parents[2]


def do_pull(emu: Emulator, registry: Path | Registry, **options: Any) -> pds.Dataset:
    options.setdefault("progress", False)
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, **options)


def child_env(api_key: str, **extra: str) -> dict[str, str]:
    """The environment of a child process: this worktree first on sys.path, the key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(WORKTREE), env.get("PYTHONPATH")) if p)
    env["PLAYMENT_API_KEY"] = api_key
    env.update(extra)
    return env


def spawn(script: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=str(WORKTREE),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check_visible_versions(registry: Registry, batch_id: str) -> list[int]:
    """Every version the index shows is complete: all tables readable, counts as manifest.

    Returns the visible version numbers.
    """
    versions = registry.versions(batch_id)
    for version in versions:
        ds = registry.load(batch_id, version)
        for name in ds.tables():
            table = pq.read_table(ds.path / f"{name}.parquet")
            assert table.num_rows == ds.manifest["counts"][name], (version, name)
    return versions
