"""Normalizing in worker processes: the same output, and nothing lost when one dies.

The reference for every comparison is the same batch pulled with ``processes=0`` (all
in the pull's own process), whose tables the golden, property and ground-truth tests
check. Worker processes are found the way an operator would: as children of the
pull's process in ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import playment_datasets as pds
from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.errors import ConfigurationError
from playment_datasets.pull.normalizing import CHUNK_JOBS
from playment_datasets.registry.registry import Registry
from playment_datasets.schema import TABLE_NAMES

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="finds worker processes through /proc (Linux)")

WORKER_MARK = b"playment_datasets.pull.normalizing"


def hostile_batch(n_jobs: int, seed: int) -> Any:
    """Every result format, with masks, plus results the lenient policy must handle:
    one not JSON at all, one with an unreadable annotation among good ones."""
    batch = generate_batch(n_jobs, seed=seed, mask_size=(64, 48), mask_points=300)
    completed = [job for job in batch.jobs if job.result is not None]
    completed[3].raw_result = b"<html>502 Bad Gateway</html>"
    image = next(job for job in completed[10:] if job.kind == "image")
    shapes = image.result["data"]["annotations"]
    shapes["rectangles"] = [*shapes.get("rectangles", []), {"_id": "bad", "label": "car",
                                                            "coordinates": "nowhere"}]
    return batch


def pull(emu: Emulator, registry: Path, **options: Any) -> Any:
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, progress=False, **options)


def tables_of(ds: Any) -> dict[str, Any]:
    return {name: ds.table(name) for name in TABLE_NAMES}


def assert_same_tables(got: Any, expected: Any) -> None:
    a, b = tables_of(got), tables_of(expected)
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), f"table {name} differs"


def workers_of(pid: int) -> list[int]:
    """Live normalizer worker processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if ppid == pid and WORKER_MARK in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def cli_pull(emu: Emulator, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PLAYMENT_API_KEY"] = emu.api_key
    cmd = [sys.executable, "-m", "playment_datasets", "pull", emu.project_id, emu.batch_id,
           "--base-url", emu.base_url, "--registry", str(root), "--no-progress", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(what: str, condition: Any, proc: subprocess.Popen[bytes], seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not (got := condition()):
        assert proc.poll() is None, f"the pull ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return got


@pytest.fixture(scope="module")
def emu():
    with Emulator(hostile_batch(3 * CHUNK_JOBS + 20, seed=31), page_size=50) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def inline(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return pull(emu, tmp_path_factory.mktemp("inline"), processes=0)


def test_the_reference_pull_kept_every_job(emu: Emulator, inline: Any) -> None:
    assert len(inline.jobs) == len(emu.batch.jobs)
    assert inline.pull_stats["processes"] == 0
    assert list(inline.errors["error_type"]) == ["invalid_json"]
    assert len(inline.warnings) >= 1 and (inline.masks["decode_status"] == "ok").all()


@pytest.mark.parametrize("processes", [1, 2])
def test_worker_processes_give_the_same_tables(emu: Emulator, inline: Any, tmp_path: Path,
                                               processes: int) -> None:
    ds = pull(emu, tmp_path, processes=processes)
    assert ds.pull_stats["processes"] == processes
    assert_same_tables(ds, inline)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_close_takes_back_the_chunks_no_worker_started_and_keeps_the_order() -> None:
    # Six chunks handed over at once, each larger than a pipe holds: the worker is still
    # starting when the fetching ends, so close() normalizes chunks still waiting to be
    # fed itself, while the worker does the one its feeding thread holds (a chunk done
    # twice would make the worker's answer land on a finished future: an error in the
    # reading thread, an error here). The tables come out as one process gives them, in
    # the order the jobs came.
    from playment_datasets.pull.normalizing import OrderedNormalizer

    def result(i: int) -> bytes:
        boxes = [{"_id": f"a{i}-{k}", "label": f"l{(i + k) % 7}",
                  "coordinates": [{"x": 0.1, "y": 0.2}, {"x": 0.3 + k / 100, "y": 0.4}]}
                 for k in range(30)]
        return json.dumps({"annotations": boxes}).encode()

    jobs = [(result(i), {"job_id": f"j{i:04d}", "status": "completed"})
            for i in range(6 * CHUNK_JOBS + 10)]  # and a last, partial chunk
    assert sum(len(raw) for raw, _ in jobs[:CHUNK_JOBS]) > 2 * 65536

    def run(processes: int) -> tuple[dict[str, pa.Table], OrderedNormalizer]:
        written: list[Any] = []
        normalizer = OrderedNormalizer(written.append, processes=processes)
        for raw, record in jobs:
            normalizer.add(raw, record)
        normalizer.close()
        tables = {name: pa.concat_tables([t[name] for t in written if name in t])
                  for name in ("jobs", "annotations", "points")}
        return tables, normalizer

    expected, _ = run(0)
    got, normalizer = run(1)
    assert normalizer.started == 1 and 1 <= normalizer.taken_back < 6
    for name, table in expected.items():
        assert got[name].equals(table), name
    assert got["jobs"].column("job_id").to_pylist() == [r["job_id"] for _, r in jobs]


def test_a_small_pull_starts_no_process(tmp_path: Path) -> None:
    with Emulator(jobs=CHUNK_JOBS - 1, seed=2) as emu:
        ds = pull(emu, tmp_path, processes=2)
    assert ds.pull_stats["processes"] == 0 and len(ds.jobs) == CHUNK_JOBS - 1


@pytest.mark.slow
def test_large_masks_start_a_worker_before_64_jobs(tmp_path: Path) -> None:
    # 48 rasters of 2048×1536 (600 MB decoded) are worth a process; the tables are the
    # in-process ones.
    batch = generate_batch(48, seed=6, kinds=["image_segmentation"], completed_fraction=1.0,
                           mask_size=(2048, 1536))
    with Emulator(batch) as emu:
        here = pull(emu, tmp_path / "here", processes=0)
        there = pull(emu, tmp_path / "there", processes=1)
    assert there.pull_stats["processes"] == 1
    assert (there.masks["decode_status"] == "ok").sum() == 48
    assert_same_tables(there, here)


def test_processes_must_be_a_count(emu: Emulator, tmp_path: Path) -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError, match="processes must be a whole number"):
            pull(emu, tmp_path, processes=bad)
    proc = cli_pull(emu, tmp_path, "--processes", "-1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"expected a whole number >= 0" in err


@pytest.mark.slow
def test_a_killed_worker_costs_nothing(emu: Emulator, inline: Any, tmp_path: Path) -> None:
    emu.set_latency(10)
    emu.reset_stats()
    try:
        proc = cli_pull(emu, tmp_path, "--processes", "1", "--workers", "4")
        (worker,) = wait_for("a worker process", lambda: workers_of(proc.pid), proc)
        # kill it while it has work: once a third of the results were served
        third = len(emu.batch.jobs) // 3
        wait_for("a third of the results", lambda: emu.stats.requests["job"] >= third, proc)
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        emu.set_latency(0)
    assert proc.returncode == 3, err.decode()  # 3: the one invalid_json job is an error
    assert b"normalizing in the pull's own process from now on" in err
    ds = Registry(tmp_path).load(emu.batch_id)
    assert ds.pull_stats["processes"] == 1
    assert_same_tables(ds, inline)


@pytest.mark.slow
def test_workers_never_hold_the_key_and_end_with_a_killed_pull(emu: Emulator,
                                                               tmp_path: Path) -> None:
    emu.set_latency(10)
    try:
        proc = cli_pull(emu, tmp_path, "--processes", "2", "--workers", "4")
        workers = wait_for("two worker processes",
                           lambda: len(found := workers_of(proc.pid)) == 2 and found, proc)
        for pid in workers:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert emu.api_key.encode() not in environ
            assert b"PLAYMENT_API_KEY=" not in environ
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        emu.set_latency(0)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and b"Z" != _state(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived the killed pull"
        time.sleep(0.05)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"
