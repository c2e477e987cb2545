"""Scenario 8: the API key in no exception text or log record of failing pulls, and
registry files created with the user's umask. (The key in no registry file and no DEBUG
record of a pull under faults is checked in test_fault_matrix.py.)"""

from __future__ import annotations

import json
import logging
import socket
import stat
import sys
import traceback
from pathlib import Path

import pytest
from reliability_helpers import SHORT_RETRY, check_visible_versions, child_env, spawn

import playment_datasets as pds
from playment_datasets.api.client import PlaymentClient
from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.registry.registry import Registry

KEY = "rel-secret-key-93f0a1b7"


def _texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_exception_or_log_record_of_a_failing_pull_holds_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []
    with Emulator(generate_batch(30, seed=3), api_key="the-right-key") as emu:
        emu.set_faults("503=0.3,reset=0.1;seed=5")
        for kwargs in (
            {"api_key": KEY, "base_url": emu.base_url},  # refused key
            {"api_key": KEY, "base_url": f"http://127.0.0.1:{_closed_port()}"},  # no server
            {"api_key": KEY, "base_url": f"http://127.0.0.1:{_closed_port()}?k={KEY}"},
        ):
            with pytest.raises(pds.PlaymentDatasetsError) as info:
                pds.pull(emu.project_id, emu.batch_id, registry=tmp_path, progress=False,
                         retry=SHORT_RETRY, **kwargs)
            failures.append(info.value)
        emu.set_faults(None)
        emu.set_down(True)
        emu.add_api_key(KEY, [emu.project_id])
        with pytest.raises(pds.PlaymentDatasetsError) as info:
            pds.pull(emu.project_id, emu.batch_id, api_key=KEY, base_url=emu.base_url,
                     registry=tmp_path, progress=False, retry=SHORT_RETRY)
        failures.append(info.value)
        assert emu.stats.leaks == 0
    assert [type(f).__name__ for f in failures] == [
        "AuthenticationError", "TransportError", "ConfigurationError", "ServerError"]
    for failure in failures:
        assert KEY not in _texts(failure), type(failure).__name__
    assert KEY not in repr(PlaymentClient(KEY, base_url="http://127.0.0.1:1"))
    records = [r.getMessage() + repr(r.args) for r in caplog.records]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert not [text for text in records if KEY in text]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


UMASK_CHILD = """
import os, sys
os.umask(0o027)
import playment_datasets as pds
pds.pull(sys.argv[1], sys.argv[2], base_url=sys.argv[3], registry=sys.argv[4], workers=4,
         progress=False)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_registry_files_follow_the_umask(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Emulator(generate_batch(20, seed=8), api_key=KEY) as emu:
        proc = spawn(UMASK_CHILD, [emu.project_id, emu.batch_id, emu.base_url, str(root)],
                     child_env(KEY))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert check_visible_versions(Registry(root), emu.batch_id) == [1]
    modes: dict[str, set[str]] = {"file": set(), "dir": set()}
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        kind = "dir" if stat.S_ISDIR(mode) else "file"
        modes[kind].add(oct(stat.S_IMODE(mode)))
        if stat.S_IMODE(mode) != (0o750 if kind == "dir" else 0o640):
            raise AssertionError(f"{path.relative_to(root)}: {oct(stat.S_IMODE(mode))}")
    assert modes == {"file": {"0o640"}, "dir": {"0o750"}}, json.dumps(
        {k: sorted(v) for k, v in modes.items()})
    assert len(list(root.rglob("*.parquet"))) >= 9 and any((root / "objects").rglob("*"))
