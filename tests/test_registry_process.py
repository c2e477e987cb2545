"""Several processes and crashes: commits stay atomic and the index loses no update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from playment_datasets.registry.registry import Registry
from playment_datasets.registry.staging import CRASH_ENV

ROOT = Path(__file__).resolve().parents[1]

# Commits `rounds` versions of batch `batch`, each with distinct content.
COMMIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from playment_datasets.registry.registry import Registry
    from playment_datasets.schema import TABLES

    root, batch, tag, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    reg = Registry(root, lock_timeout=60)
    for i in range(rounds):
        with reg.open_staging("proj", batch) as st:
            sha = reg.put_object(f"{tag}-{i}".encode())
            st.record("j1", {"id": "j1"}, sha, None)
            w = st.writer()
            schema = TABLES["jobs"]
            w.write({"jobs": pa.Table.from_pydict(
                {c: [("j1" if c == "job_id" else None)] for c in schema.names}, schema=schema)})
            res = st.commit(jobs={"j1": {"result_sha256": sha, "etag": None, "status": "done"}})
            assert res.created, res
    """
)


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", COMMIT_SCRIPT, *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_concurrent_commits_lose_no_update(tmp_path: Path) -> None:
    root = str(tmp_path / "reg")
    procs = [
        _run([root, "shared", "a", "3"]),
        _run([root, "shared", "b", "3"]),
        _run([root, "solo1", "c", "3"]),
        _run([root, "solo2", "d", "3"]),
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    reg = Registry(root)
    assert reg.versions("shared") == [1, 2, 3, 4, 5, 6]
    assert reg.versions("solo1") == [1, 2, 3]
    assert reg.versions("solo2") == [1, 2, 3]
    index = json.loads((Path(root) / "registry.json").read_text())
    dirs = sorted(p.relative_to(root).as_posix() for p in Path(root).glob("datasets/*/*/v*"))
    indexed = sorted(
        info["path"] for e in index["batches"].values() for info in e["versions"].values()
    )
    assert dirs == indexed
    contents = {reg.manifest("shared", v)["content_id"] for v in reg.versions("shared")}
    assert len(contents) == 6
    parents = [reg.manifest("shared", v)["parent"] for v in reg.versions("shared")]
    assert parents == [None, 1, 2, 3, 4, 5]
    assert reg.verify().ok


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("step", ["before-rename", "after-rename", "after-index"])
def test_sigkill_during_commit_leaves_a_valid_registry(tmp_path: Path, step: str) -> None:
    root = str(tmp_path / "reg")
    first = _run([root, "b", "first", "1"])
    assert first.wait(timeout=60) == 0
    crashed = _run([root, "b", "second", "1"], env={CRASH_ENV: step})
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL

    reg = Registry(root, lock_timeout=5)
    report = reg.verify()
    assert report.ok, str(report)
    visible = [1, 2] if step == "after-index" else [1]
    assert reg.versions("b") == visible
    assert reg.load("b").version == visible[-1]
    assert reg.datasets()["version"].tolist() == visible
    if step == "after-rename":
        assert report.orphans == ["datasets/proj/b/v2"]
        assert (Path(root) / "datasets/proj/b/v2/manifest.json").exists()
    else:
        assert report.orphans == []

    # The journal survived, so the pull can resume; the lock died with the process.
    with reg.open_staging("proj", "b") as st:
        if step != "after-index":
            assert list(st.journal()) == ["j1"]

    # A new commit never clobbers the orphan, and gc removes it.
    again = _run([root, "b", "third", "1"])
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    expected_new = 3 if step in ("after-rename", "after-index") else 2
    assert reg.latest_version("b") == expected_new
    gc = reg.gc(grace_seconds=0)
    assert gc.orphan_versions == (["datasets/proj/b/v2"] if step == "after-rename" else [])
    assert reg.verify().ok
    assert [reg.load("b", v).version for v in reg.versions("b")] == reg.versions("b")
