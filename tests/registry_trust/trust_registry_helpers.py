"""Pieces of the tamper, corruption and CLI scenarios: a registry of two pulled batches,
the CLI in a child process, and the one-line error every damaged file must give."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from reliability_helpers import WORKTREE, child_env, do_pull  # noqa: E402

from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.registry.registry import Registry  # noqa: E402

__all__ = ["WORKTREE", "Built", "build_registry", "built_fixture", "child_env", "cli",
           "cli_many", "copy_registry", "do_pull", "edit_index", "object_files",
           "one_line_error", "pristine_fixture"]


@dataclass(frozen=True)
class Built:
    """A registry holding batch ``a`` (v1, v2, tag gold -> v1) and batch ``b`` (v1)."""

    root: Path
    a_project: str
    a: str
    b_project: str
    b: str

    def vdir(self, which: str, n: int) -> Path:
        project = self.a_project if which == "a" else self.b_project
        batch = self.a if which == "a" else self.b
        return self.root / "datasets" / project / batch / f"v{n}"


def build_registry(root: Path) -> Built:
    """Pull two batches from two emulators (the second version of ``a`` has one job more)."""
    with Emulator(jobs=24, seed=31) as emu_a, Emulator(jobs=16, seed=32) as emu_b:
        do_pull(emu_a, root)
        emu_a.add_job(_job())
        do_pull(emu_a, root)
        do_pull(emu_b, root)
        Registry(root).tag(emu_a.batch_id, 1, "gold")
        return Built(root, emu_a.project_id, emu_a.batch_id, emu_b.project_id, emu_b.batch_id)


@pytest.fixture(scope="module", name="pristine")
def pristine_fixture(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A registry built once per test module (never damaged: tests damage copies)."""
    return build_registry(tmp_path_factory.mktemp("pristine") / "reg")


@pytest.fixture(name="built")
def built_fixture(pristine: Built, tmp_path: Path) -> Built:
    """A fresh copy of :func:`pristine` for one test to damage."""
    return copy_registry(pristine, tmp_path / "reg")


def _job() -> Any:
    from playment_datasets.emulator.generator import generate_batch

    return generate_batch(1, seed=999).jobs[0]


def copy_registry(built: Built, dest: Path) -> Built:
    shutil.copytree(built.root, dest, symlinks=True)
    return Built(dest, built.a_project, built.a, built.b_project, built.b)


def object_files(root: Path) -> set[str]:
    return {p.parent.name + p.name for p in (root / "objects").glob("*/*")
            if not p.name.startswith(".")}


def edit_index(root: Path, change: Any) -> None:
    """Apply ``change`` to the parsed registry.json and write it back (a hand edit)."""
    path = root / "registry.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    change(index)
    path.write_text(json.dumps(index, indent=2), encoding="utf-8")


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m playment_datasets ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "playment_datasets", *args], cwd=str(cwd or WORKTREE),
        env=env or child_env("unused-key"), capture_output=True, text=True, timeout=timeout,
    )


def cli_many(*argvs: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 180) -> list[subprocess.CompletedProcess[str]]:
    """Several CLI commands at once (each in its own child process), in order."""
    procs = [subprocess.Popen([sys.executable, "-m", "playment_datasets", *argv],
                              cwd=str(cwd or WORKTREE), env=env or child_env("unused-key"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]  # fmt: skip
    done = []
    for argv, proc in zip(argvs, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single stderr line of a command that failed with exit 1; it names ``needles``."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
