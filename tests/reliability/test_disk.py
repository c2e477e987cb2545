"""Scenario 5: a full disk, a file size limit and a read-only registry.

Each failure must surface as a RegistryError (a PlaymentDatasetsError) naming the path
and what to do, with the committed versions untouched and ``verify()`` ok. The OS errors
are real: a tiny tmpfs (ENOSPC) and a read-only bind mount (EROFS) where mounting is
allowed, RLIMIT_FSIZE in a child process (EFBIG) everywhere, and otherwise a read-only
directory (non-root) or a file where the registry needs a directory (root).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import check_visible_versions, child_env, do_pull, spawn

from playment_datasets.emulator import Emulator, generate_batch
from playment_datasets.errors import RegistryError
from playment_datasets.registry.registry import Registry

BIG = 400_000  # bytes of each enlarged result


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", *args], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def _mounted(target: Path, *how: tuple[str, ...]) -> Iterator[bool]:
    """Apply each mount command to ``target``; yield whether all of them worked."""
    target.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        for args in how:
            if not _mount(*args, str(target)):
                break
            done += 1
        yield done == len(how)
    finally:
        for _ in range(done):
            subprocess.run(["umount", str(target)], capture_output=True)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(generate_batch(30, seed=41, kinds=["image"]), page_size=10) as emulator:
        yield emulator


def _enlarge(emu: Emulator, n: int = 10) -> None:
    """Give ``n`` completed jobs a bigger (valid) result, so a new version is needed."""
    done = 0
    for job in emu.batch.jobs:
        if job.result is not None and done < n:
            emu.set_result(job.job_id, {**job.result, "notes": "n" * BIG})
            done += 1


def _assert_untouched(root: Path, emu: Emulator, v1_content: str) -> None:
    registry = Registry(root)
    assert check_visible_versions(registry, emu.batch_id) == [1]
    assert registry.manifest(emu.batch_id)["content_id"] == v1_content
    assert registry.verify().ok


def _assert_clear(message: str, root: Path, *advice: str) -> None:
    assert str(root) in message, message
    assert "run the same pull again" in message, message
    assert any(a in message for a in advice), message


def test_full_disk_gives_a_registry_error_and_keeps_versions(
    emu: Emulator, tmp_path: Path,
) -> None:
    root = tmp_path / "tiny"
    with _mounted(root, ("-t", "tmpfs", "-o", "size=1m", "tmpfs")) as ok:
        if not ok:
            pytest.skip("cannot mount a tmpfs here; the RLIMIT_FSIZE scenario covers full disks")
        v1 = do_pull(emu, root).manifest["content_id"]
        _enlarge(emu)
        with pytest.raises(RegistryError) as info:
            do_pull(emu, root)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        _assert_clear(str(info.value), root, "free some disk space")
        assert "No space left" in str(info.value)
        _assert_untouched(root, emu, v1)


CHILD = """
import json, resource, signal, sys
import playment_datasets as pds
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
limit = int(sys.argv[5])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    pds.pull(sys.argv[1], sys.argv[2], base_url=sys.argv[3], registry=sys.argv[4],
             workers=4, progress=False)
except Exception as exc:
    print(json.dumps({"types": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}))
    sys.exit(1)
print(json.dumps({"types": [], "message": ""}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_file_size_limit_gives_a_registry_error_and_keeps_versions(
    emu: Emulator, tmp_path: Path,
) -> None:
    root = tmp_path / "registry"
    v1 = do_pull(emu, root).manifest["content_id"]
    _enlarge(emu)
    proc = spawn(CHILD, [emu.project_id, emu.batch_id, emu.base_url, str(root), str(BIG // 2)],
                 child_env(emu.api_key))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err.decode()
    got = json.loads(out)
    assert got["types"][:3] == ["RegistryError", "PlaymentDatasetsError", "Exception"], got
    _assert_clear(got["message"], root, "free some disk space")
    assert "File too large" in got["message"]
    assert b"Traceback" not in err
    _assert_untouched(root, emu, v1)
    # The write that failed left nothing under an object's name: every stored object,
    # referenced or not, holds the bytes its name says.
    objects = [p for p in (root / "objects").glob("*/*") if p.is_file()]
    assert objects and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name + p.name
                           for p in objects)
    # Once the limit is gone, the same pull finishes.
    assert do_pull(emu, root).version == 2


def test_read_only_registry_gives_a_registry_error_and_keeps_versions(
    emu: Emulator, tmp_path: Path,
) -> None:
    root = tmp_path / "registry"
    v1 = do_pull(emu, root).manifest["content_id"]
    _enlarge(emu)
    with _mounted(root, ("--bind",), ("-o", "remount,ro,bind")) as mounted:
        if mounted:
            advice = "make"  # EROFS: make it writable or use another registry
        elif os.geteuid() != 0:
            for path in [root, *root.rglob("*")]:
                path.chmod(path.stat().st_mode & 0o555)
            advice = "make"
        else:  # root, no mount: chmod does not stop root, a file in the way does
            shutil.rmtree(root / "staging", ignore_errors=True)
            (root / "staging").write_bytes(b"not a directory")
            advice = "writable directory"
        try:
            with pytest.raises(RegistryError) as info:
                do_pull(emu, root)
        finally:
            if not mounted and os.geteuid() != 0:
                for path in [root, *root.rglob("*")]:
                    path.chmod(path.stat().st_mode | 0o200)
        _assert_clear(str(info.value), root, advice)
        if mounted:
            assert "Read-only file system" in str(info.value)
        _assert_untouched(root, emu, v1)
