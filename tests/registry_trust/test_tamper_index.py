"""Hand-edited and deleted registry.json, and symlinks in the datasets tree: nothing is
deleted outside the root or behind a symlink, gc stops while the index is lost, and
repair rebuilds the index from the manifests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from trust_registry_helpers import (  # noqa: F401 - fixtures
    Built,
    built_fixture,
    cli,
    do_pull,
    edit_index,
    object_files,
    one_line_error,
    pristine_fixture,
)

from playment_datasets.emulator import Emulator
from playment_datasets.errors import CorruptDatasetError
from playment_datasets.registry.registry import Registry


def test_deleted_index_stops_gc_and_pull_and_repair_brings_every_version_back(
    built: Built, tmp_path: Path
) -> None:
    reg = Registry(built.root)
    objects_before = object_files(built.root)
    (built.root / "registry.json").unlink()

    with pytest.raises(CorruptDatasetError, match="gc stopped without deleting anything.*repair"):
        reg.gc(grace_seconds=0)
    assert object_files(built.root) == objects_before
    assert all(built.vdir(w, n).is_dir() for w, n in (("a", 1), ("a", 2), ("b", 1)))

    # A pull must not start again at an empty registry (that made v2 then gc ate the rest).
    with Emulator(jobs=16, seed=32) as emu_b, pytest.raises(CorruptDatasetError, match="repair"):
        do_pull(emu_b, built.root)
    assert not built.vdir("b", 2).exists()
    report = reg.verify()
    assert [p.path for p in report.problems] == ["registry.json"]
    assert "missing" in report.problems[0].got

    repaired = reg.repair()
    assert repaired.old_index == "missing"
    assert repaired.versions == sorted([f"{built.a} v1", f"{built.a} v2", f"{built.b} v1"])
    assert repaired.skipped == []
    assert reg.versions(built.a) == [1, 2] and reg.versions(built.b) == [1]
    assert reg.verify().ok
    assert reg.gc(grace_seconds=0).objects_removed == []
    assert object_files(built.root) == objects_before


def test_cli_on_a_deleted_index_names_repair_and_repair_restores_it(built: Built) -> None:
    (built.root / "registry.json").unlink()
    for args in (["list"], ["show", built.b], ["gc", "--grace-seconds", "0"]):
        one_line_error(cli(*args, "--registry", str(built.root)), "registry.json", "repair")
    proc = cli("repair", "--registry", str(built.root), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["old_index"] == "missing" and out["changed"] is True
    assert len(out["added"]) == 3
    listed = json.loads(cli("list", "--registry", str(built.root), "--json").stdout)
    assert sorted((r["batch_id"], r["version"]) for r in listed) == sorted(
        [(built.a, 1), (built.a, 2), (built.b, 1)]
    )


def test_repair_keeps_tags_that_still_point_at_versions(built: Built) -> None:
    reg = Registry(built.root)
    reg.tag(built.a, 2, "silver")
    shutil.rmtree(built.vdir("a", 2))  # v2 gone from disk; its tag must go, gold stays
    report = reg.repair()
    assert report.removed == [f"{built.a} v2"]
    assert report.tags_kept == [f"{built.a}:gold -> v1"]
    assert report.tags_dropped == [f"{built.a}:silver -> v2"]
    assert reg.resolve(built.a, "gold") == (built.a_project, 1)
    assert reg.versions(built.a) == [1]
    again = reg.repair()
    assert not again.changed and again.tags_kept == [f"{built.a}:gold -> v1"]


def test_index_path_pointing_outside_never_deletes_outside(built: Built, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "thesis.txt").write_text("do not delete", encoding="utf-8")
    rel = os.path.relpath(outside, built.root)

    def point_outside(index: dict) -> None:
        index["batches"][built.b]["versions"]["1"]["path"] = rel

    edit_index(built.root, point_outside)
    reg = Registry(built.root)
    with pytest.raises(CorruptDatasetError, match="repair"):
        reg.load(built.b)
    one_line_error(cli("show", built.b, "--registry", str(built.root)), rel, "repair")
    assert any(p.kind == "unsafe" for p in reg.verify(built.b).problems)

    reg.remove(built.b, 1)
    assert (outside / "thesis.txt").read_text(encoding="utf-8") == "do not delete"
    assert not built.vdir("b", 1).exists()  # the version's own directory went
    assert reg.versions(built.b) == []
    assert reg.verify().ok


def test_repair_fixes_an_edited_path(built: Built) -> None:
    edit_index(built.root, lambda ix: ix["batches"][built.a]["versions"]["1"].update(
        path="/etc"))
    report = Registry(built.root).repair()
    assert report.fixed == [f"{built.a} v1"] and report.old_index == "ok"
    assert Registry(built.root).load(built.a, "gold").version == 1


def test_version_replaced_by_symlink_to_another_batch(built: Built, tmp_path: Path) -> None:
    """gc once deleted the objects of the replaced version (270 in the report) because it
    counted references through the link; now it stops, and remove unlinks only the link."""
    reg = Registry(built.root)
    objects_before = object_files(built.root)
    a1 = built.vdir("a", 1)
    shutil.move(a1, tmp_path / "a-v1-moved-away")
    a1.symlink_to(built.vdir("b", 1), target_is_directory=True)

    with pytest.raises(CorruptDatasetError, match="gc stopped without deleting anything"):
        reg.gc(grace_seconds=0)
    assert object_files(built.root) == objects_before
    problems = reg.verify(built.a, 1).problems
    assert [p.kind for p in problems] == ["unsafe"]
    with pytest.raises(CorruptDatasetError, match="symbolic link"):
        reg.load(built.a, 1)

    reg.remove(built.a, 1)
    assert not a1.is_symlink() and not a1.exists()
    assert reg.verify(built.b).ok  # the link's target is untouched
    assert (built.vdir("b", 1) / "manifest.json").is_file()


def test_symlinked_batch_directory_is_never_entered(built: Built, tmp_path: Path) -> None:
    """An orphan-looking tree behind a symlinked batch directory is left alone by gc and
    not indexed by repair."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(built.vdir("b", 1).parent, elsewhere / built.b)
    link = built.root / "datasets" / built.b_project / "linked-batch"
    link.symlink_to(elsewhere / built.b, target_is_directory=True)
    reg = Registry(built.root)
    report = reg.gc(grace_seconds=0)
    assert report.orphan_versions == []
    assert any("linked-batch" in s and "symbolic link" in s for s in report.skipped)
    assert (elsewhere / built.b / "v1" / "manifest.json").is_file()
    repaired = reg.repair()
    assert any("linked-batch" in s for s in repaired.skipped)
    assert all("linked-batch" not in v for v in repaired.versions)


def test_gc_keeps_an_orphan_that_is_not_a_complete_version(built: Built) -> None:
    """A crash leftover has a valid manifest and goes; a directory whose manifest is
    damaged is kept (it may be someone's data) and reported."""
    reg = Registry(built.root)
    crash_orphan = built.vdir("b", 7)
    shutil.copytree(built.vdir("b", 1), crash_orphan)
    manifest = json.loads((crash_orphan / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = 7
    (crash_orphan / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    damaged = built.vdir("b", 8)
    shutil.copytree(built.vdir("b", 1), damaged)
    (damaged / "manifest.json").write_text("[]", encoding="utf-8")

    report = reg.gc(grace_seconds=0)
    assert report.orphan_versions == [crash_orphan.relative_to(built.root).as_posix()]
    assert not crash_orphan.exists()
    assert damaged.is_dir()
    assert any(s.startswith(damaged.relative_to(built.root).as_posix()) for s in report.skipped)
