"""The registry commands of the CLI (remove, gc, tag, untag, repair) and the registry
path checks, in real child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trust_registry_helpers import (  # noqa: F401 - fixtures
    Built,
    built_fixture,
    child_env,
    cli_many,
    object_files,
    one_line_error,
    pristine_fixture,
)

from playment_datasets.cli import render_docs
from playment_datasets.emulator import Emulator
from playment_datasets.registry.commit import job_objects
from playment_datasets.registry.registry import Registry


@pytest.mark.slow
def test_tag_untag_remove_gc_repair_in_child_processes(built: Built) -> None:
    reg = ["--registry", str(built.root), "--json"]
    tag, = cli_many(["tag", f"{built.a}@2", "silver", *reg])
    assert tag.returncode == 0, tag.stderr
    assert json.loads(tag.stdout) == {"batch_id": built.a, "version": 2, "tag": "silver"}
    assert Registry(built.root).resolve(built.a, "silver")[1] == 2

    untag, bad_tag = cli_many(["untag", built.a, "gold", *reg],
                              ["tag", f"{built.a}@1", "v9", *reg])
    assert untag.returncode == 0 and json.loads(untag.stdout)["removed"] is True
    one_line_error(bad_tag, "invalid tag name 'v9'")
    rows = Registry(built.root).datasets()
    assert list(rows[(rows.batch_id == built.a) & (rows.version == 1)]["tags"].iloc[0]) == []

    b_only = object_files(built.root) - _referenced(built, "a")
    remove, = cli_many(["remove", f"{built.b}@1", *reg])
    assert remove.returncode == 0, remove.stderr
    assert json.loads(remove.stdout) == {"batch_id": built.b, "version": 1, "removed": True}
    assert not built.vdir("b", 1).exists()

    dry, = cli_many(["gc", "--grace-seconds", "0", "--dry-run", *reg])
    assert json.loads(dry.stdout)["objects_removed"] == len(b_only) > 0
    assert object_files(built.root) >= b_only  # a dry run deletes nothing
    gc, = cli_many(["gc", "--grace-seconds", "0", *reg])
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["objects_removed"] == len(b_only)
    assert not (object_files(built.root) & b_only)
    assert Registry(built.root).verify().ok

    repair, = cli_many(["repair", *reg])
    out = json.loads(repair.stdout)
    assert repair.returncode == 0 and out["changed"] is False
    assert out["versions"] == [f"{built.a} v1", f"{built.a} v2"]
    assert out["tags_kept"] == [f"{built.a}:silver -> v2"]


def _referenced(built: Built, which: str) -> set[str]:
    batch = built.a if which == "a" else built.b
    reg = Registry(built.root)
    return {sha for n in reg.versions(batch)
            for j in reg.manifest(batch, n)["jobs"].values() for sha in job_objects(j)}


def test_human_output_and_unknown_version(built: Built) -> None:
    reg = ["--registry", str(built.root)]
    remove, missing, gc, usage = cli_many(
        ["remove", f"{built.a}@1", *reg], ["remove", f"{built.a}@5", *reg],
        ["gc", "--dry-run", *reg], ["remove", built.a, *reg])
    assert remove.returncode == 0 and f"removed {built.a} v1" in remove.stdout
    one_line_error(missing, "has no version '5'", "use one of those")
    assert gc.returncode == 0 and "would remove (dry run):" in gc.stdout
    assert usage.returncode == 2 and "BATCH_ID@VERSION" in usage.stderr


def _path_cases(tmp_path: Path, emu: Emulator) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name -> (command line, what its one-line error must say)."""
    a_file = tmp_path / "registry.txt"
    a_file.write_text("not a registry", encoding="utf-8")
    missing = tmp_path / "no-such-registry"
    pull = ["pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url, "--no-progress"]
    empty, is_file, absent = ("registry path is empty",), (str(a_file), "is a file"), (
        str(missing), "does not exist")
    return {
        "list-empty": (["list", "--registry", ""], empty),
        "pull-empty": ([*pull, "--registry", ""], empty),
        "list-file": (["list", "--registry", str(a_file)], is_file),
        "pull-file": ([*pull, "--registry", str(a_file)], is_file),
        "list-missing": (["list", "--registry", str(missing)], absent),
        "verify-missing": (["verify", "--registry", str(missing)], absent),
        "gc-missing": (["gc", "--registry", str(missing)], absent),
        "repair-missing": (["repair", "--registry", str(missing)], absent),
    }


def _check_path_cases(tmp_path: Path, names: list[str] | None) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with Emulator(jobs=4, seed=5) as emu:
        cases = _path_cases(tmp_path, emu)
        picked = {k: v for k, v in cases.items() if names is None or k in names}
        procs = cli_many(*(argv for argv, _ in picked.values()), env=child_env(emu.api_key),
                         cwd=cwd)
        assert emu.stats.requests.get("storage", 0) == 0
    for (_, needles), proc in zip(picked.values(), procs, strict=True):
        one_line_error(proc, *needles)
    assert list(cwd.iterdir()) == []  # nothing was written into the current directory
    assert not (tmp_path / "no-such-registry").exists()


def test_registry_path_empty_file_or_missing_is_one_line(tmp_path: Path) -> None:
    _check_path_cases(tmp_path, ["pull-empty", "list-file", "list-missing"])


@pytest.mark.slow
def test_registry_path_checks_of_every_command(tmp_path: Path) -> None:
    _check_path_cases(tmp_path, None)


def test_every_new_command_has_help_with_an_example() -> None:
    proc, = cli_many(["gc", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "example:\n  playment-datasets gc --dry-run" in proc.stdout
    assert "--grace-seconds N" in proc.stdout and "--json" in proc.stdout
    docs = render_docs()  # what docs/cli.md holds (test_cli checks it is current)
    for name in ("remove", "gc", "tag", "untag", "repair"):
        section = docs.split(f"## `playment-datasets {name}`")[1].split("\n## ")[0]
        assert f"example:\n  playment-datasets {name}" in section, name
        assert "--registry PATH" in section and "--json" in section, name
