"""Deliberately damaged registries: verify() reports every problem without raising, and
every CLI command turns the damage into one line naming the file and the remedy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from trust_registry_helpers import (  # noqa: F401 - fixtures
    Built,
    built_fixture,
    child_env,
    cli_many,
    copy_registry,
    one_line_error,
    pristine_fixture,
)

from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry


def _manifest(built: Built) -> Path:
    return built.vdir("a", 2) / "manifest.json"


def _edit_manifest(built: Built, change: Callable[[dict], None]) -> None:
    data = json.loads(_manifest(built).read_text(encoding="utf-8"))
    change(data)
    _manifest(built).write_text(json.dumps(data), encoding="utf-8")


def _a_v2_object(built: Built) -> Path:
    """The raw object of the job that only v2 of batch a has."""
    v2 = json.loads(_manifest(built).read_text(encoding="utf-8"))["jobs"]
    v1 = json.loads((built.vdir("a", 1) / "manifest.json").read_text(encoding="utf-8"))["jobs"]
    sha = next(j["result_sha256"] for k, j in v2.items() if k not in v1)
    return built.root / "objects" / sha[:2] / sha[2:]


#: name -> (damage, the file the problem is about (relative), the verify problem kind)
CORRUPTIONS: dict[str, tuple[Callable[[Built], None], Callable[[Built], str], str]] = {
    "index-not-utf8": (
        lambda b: (b.root / "registry.json").write_bytes(b'\xff\xfe{"format": 1}'),
        lambda b: "registry.json", "unreadable"),
    "index-batches-a-list": (
        lambda b: (b.root / "registry.json").write_text('{"format": 1, "batches": []}'),
        lambda b: "registry.json", "unreadable"),
    "index-version-a-number": (
        lambda b: (b.root / "registry.json").write_text(json.dumps(
            {"format": 1, "batches": {b.a: {"project_id": b.a_project, "versions": {"1": 5}}}})),
        lambda b: "registry.json", "unreadable"),
    "manifest-is-a-list": (
        lambda b: _manifest(b).write_text("[]"),
        lambda b: _manifest(b).relative_to(b.root).as_posix(), "unreadable"),
    "manifest-without-jobs": (
        lambda b: _edit_manifest(b, lambda m: m.pop("jobs")),
        lambda b: _manifest(b).relative_to(b.root).as_posix(), "unreadable"),
    "manifest-counts-wrong": (
        lambda b: _edit_manifest(b, lambda m: m["counts"].update(annotations=10**6)),
        lambda b: (b.vdir("a", 2) / "annotations.parquet").relative_to(b.root).as_posix(),
        "mismatch"),
    "manifest-table-outside": (
        lambda b: _edit_manifest(b, lambda m: m["tables"].append("../../../../escape")),
        lambda b: _manifest(b).relative_to(b.root).as_posix(), "unsafe"),
    "parquet-truncated": (
        lambda b: (b.vdir("a", 2) / "annotations.parquet").write_bytes(b"PAR1 torn"),
        lambda b: (b.vdir("a", 2) / "annotations.parquet").relative_to(b.root).as_posix(),
        "mismatch"),
    "object-missing": (
        lambda b: _a_v2_object(b).unlink(),
        lambda b: _a_v2_object(b).relative_to(b.root).as_posix(), "missing"),
}


@pytest.fixture(params=sorted(CORRUPTIONS))
def damaged(request: pytest.FixtureRequest, pristine: Built, tmp_path: Path) -> tuple[str, Built]:
    built = copy_registry(pristine, tmp_path / "reg")
    CORRUPTIONS[request.param][0](built)
    return request.param, built


def test_verify_reports_every_corruption_as_a_problem(damaged: tuple[str, Built]) -> None:
    name, built = damaged
    _, where, kind = CORRUPTIONS[name]
    report = Registry(built.root).verify()  # must not raise
    assert not report.ok
    assert (where(built), kind) in {(p.path, p.kind) for p in report.problems}, report
    if not name.startswith("index"):  # the other batch is unaffected
        assert all(p.batch_id == built.a and p.version == 2 for p in report.problems)
        assert Registry(built.root).verify(built.b).ok


def test_pristine_registry_verifies(pristine: Built) -> None:
    report = Registry(pristine.root).verify()
    assert report.ok, report
    assert len(report.versions_checked) == 3


def _commands(built: Built, emu: Emulator) -> dict[str, list[str]]:
    reg = ["--registry", str(built.root)]
    return {
        "show": ["show", f"{built.a}@2", *reg],
        "list": ["list", *reg],
        "diff": ["diff", f"{built.a}@1", f"{built.a}@2", *reg],
        "export": ["export", f"{built.a}@2", "--format", "csv", "--out",
                   str(built.root.parent / "csv"), *reg],
        "gc": ["gc", "--dry-run", *reg],
        "verify": ["verify", *reg],
        "pull": ["pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
                 "--no-progress", *reg],
    }


#: name -> {command: text the one-line error must hold}; commands absent succeed.
EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "index-not-utf8": dict.fromkeys(["show", "list", "diff", "export", "gc", "pull"],
                                    ("registry.json", "UTF-8", "repair")),
    "index-batches-a-list": dict.fromkeys(["show", "list", "diff", "export", "gc", "pull"],
                                          ("registry.json", "batches", "repair")),
    "manifest-is-a-list": {**dict.fromkeys(["show", "diff", "export"],
                                           ("manifest.json", "remove or re-pull")),
                           "gc": ("manifest.json", "gc stopped", "remove")},
    "parquet-truncated": dict.fromkeys(["show", "diff", "export"],
                                       ("annotations.parquet", "remove or re-pull")),
    "manifest-table-outside": dict.fromkeys(["show", "diff", "export"],
                                            ("manifest.json", "plain table names")),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_command_gives_one_line_with_file_and_remedy(
    name: str, pristine: Built, tmp_path: Path
) -> None:
    built = copy_registry(pristine, tmp_path / "reg")
    CORRUPTIONS[name][0](built)
    with Emulator(jobs=4, seed=77) as emu:
        commands = _commands(built, emu)
        procs = cli_many(*commands.values(), env=child_env(emu.api_key))
        results = dict(zip(commands, procs, strict=True))
        if name.startswith("index"):  # refused before fetching anything
            assert emu.stats.requests.get("storage", 0) == 0
    for command, proc in results.items():
        if command == "verify":
            assert proc.returncode == 1 and "CORRUPT" in proc.stdout, proc
            assert "Traceback" not in proc.stderr and "repair" in proc.stdout
        elif command in EXPECTED[name]:
            one_line_error(proc, *EXPECTED[name][command])
        else:
            assert proc.returncode in (0, 3), (command, proc.stderr)


def test_cli_one_line_errors_default_run(pristine: Built, tmp_path: Path) -> None:
    """The lean default-run sample of the matrix above: three damages, three commands."""
    not_utf8 = copy_registry(pristine, tmp_path / "a")
    CORRUPTIONS["index-not-utf8"][0](not_utf8)
    manifest = copy_registry(pristine, tmp_path / "b")
    CORRUPTIONS["manifest-is-a-list"][0](manifest)
    parquet = copy_registry(pristine, tmp_path / "c")
    CORRUPTIONS["parquet-truncated"][0](parquet)
    procs = cli_many(["show", not_utf8.a, "--registry", str(not_utf8.root)],
                     ["gc", "--registry", str(manifest.root)],
                     ["show", f"{parquet.a}@2", "--registry", str(parquet.root)])
    one_line_error(procs[0], "registry.json", "UTF-8", "repair")
    one_line_error(procs[1], "manifest.json", "gc stopped", "remove")
    one_line_error(procs[2], "annotations.parquet", "remove or re-pull")
