"""The registry commands of the CLI (remove, gc, tag, untag, repair) and the registry
path checks, in real child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trust_registry_helpers import (
    Built,
    build_registry,
    cli_many,
    copy_registry,
    object_files,
    one_line_error,
)

from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry

from reliability_helpers import child_env  # isort: skip  (on sys.path via the helpers)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_registry(tmp_path_factory.mktemp("pristine") / "reg")


@pytest.fixture()
def built(pristine: Built, tmp_path: Path) -> Built:
    return copy_registry(pristine, tmp_path / "reg")


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
    return {j["result_sha256"] for n in reg.versions(batch)
            for j in reg.manifest(batch, n)["jobs"].values() if j["result_sha256"]}


def test_human_output_and_unknown_version(built: Built) -> None:
    reg = ["--registry", str(built.root)]
    remove, missing, gc, usage = cli_many(
        ["remove", f"{built.a}@1", *reg], ["remove", f"{built.a}@5", *reg],
        ["gc", "--dry-run", *reg], ["remove", built.a, *reg])
    assert remove.returncode == 0 and f"removed {built.a} v1" in remove.stdout
    one_line_error(missing, "has no version '5'", "use one of those")
    assert gc.returncode == 0 and "would remove (dry run):" in gc.stdout
    assert usage.returncode == 2 and "BATCH_ID@VERSION" in usage.stderr


def test_registry_path_empty_file_or_missing_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "registry.txt"
    a_file.write_text("not a registry", encoding="utf-8")
    missing = tmp_path / "no-such-registry"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with Emulator(jobs=4, seed=5) as emu:
        pull = ["pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
                "--no-progress"]
        procs = cli_many(
            ["list", "--registry", ""], [*pull, "--registry", ""],
            ["list", "--registry", str(a_file)], [*pull, "--registry", str(a_file)],
            ["list", "--registry", str(missing)], ["verify", "--registry", str(missing)],
            ["gc", "--registry", str(missing)], ["repair", "--registry", str(missing)],
            env=child_env(emu.api_key), cwd=cwd,
        )
        assert emu.stats.requests.get("storage", 0) == 0
    for proc in procs[:2]:
        one_line_error(proc, "registry path is empty")
    for proc in procs[2:4]:
        one_line_error(proc, str(a_file), "is a file")
    for proc in procs[4:]:
        one_line_error(proc, str(missing), "does not exist")
    assert list(cwd.iterdir()) == []  # nothing was written into the current directory
    assert not missing.exists()


def test_every_new_command_has_help_with_an_example() -> None:
    procs = cli_many(*([name, "--help"] for name in ("remove", "gc", "tag", "untag", "repair")))
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
        assert "example:\n  playment-datasets " in proc.stdout
        assert "--json" in proc.stdout and "--registry" in proc.stdout
    assert "--grace-seconds N" in procs[1].stdout and "--dry-run" in procs[1].stdout
