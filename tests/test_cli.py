"""The playment-datasets console script, run in real subprocesses against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from playment_datasets.cli import render_docs
from playment_datasets.emulator import Emulator

REPO = Path(__file__).resolve().parent.parent


def console_script() -> list[str]:
    found = shutil.which("playment-datasets")
    if found:
        return [found]
    if os.environ.get("CI"):
        pytest.fail("the playment-datasets console script is not installed (pip install -e .)")
    return [sys.executable, "-m", "playment_datasets"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    full_env.update(env or {})
    return subprocess.run([*console_script(), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=30, seed=17) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def registry(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-registry")
    got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
              "--registry", str(root), "--json", env={"PLAYMENT_API_KEY": emu.api_key})
    assert got.returncode == 0, got.stderr
    return root


def test_pull_prints_a_json_summary(emu: Emulator, tmp_path: Path) -> None:
    got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
              "--registry", str(tmp_path), "--json", env={"PLAYMENT_API_KEY": emu.api_key})
    assert got.returncode == 0, got.stderr
    summary = json.loads(got.stdout)
    assert summary["batch_id"] == emu.batch_id and summary["version"] == 1
    assert summary["counts"]["jobs"] == len(emu.batch.jobs)
    assert summary["annotation_types"] == dict(sorted(emu.truth.annotations_by_type.items()))
    assert emu.api_key not in got.stdout + got.stderr


def test_pull_human_output_and_progress_off_when_piped(emu: Emulator, tmp_path: Path) -> None:
    got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
              "--registry", str(tmp_path), env={"PLAYMENT_API_KEY": emu.api_key})
    assert got.returncode == 0, got.stderr
    assert f"batch     {emu.batch_id}" in got.stdout
    assert "annotation type" in got.stdout
    assert got.stderr == ""  # no progress bars when stderr is not a terminal


def test_list_shows_versions(emu: Emulator, registry: Path) -> None:
    got = run("list", "--registry", str(registry), "--json")
    assert got.returncode == 0, got.stderr
    rows = json.loads(got.stdout)
    assert [(r["batch_id"], r["version"]) for r in rows] == [(emu.batch_id, 1)]
    text = run("list", "--registry", str(registry)).stdout
    assert emu.batch_id in text and "version" in text


def test_list_of_an_empty_registry_says_what_to_do(tmp_path: Path) -> None:
    got = run("list", "--registry", str(tmp_path))
    assert got.returncode == 0
    assert "playment-datasets demo" in got.stdout
    assert json.loads(run("list", "--registry", str(tmp_path), "--json").stdout) == []


def test_show_by_version_and_latest(emu: Emulator, registry: Path) -> None:
    a = json.loads(run("show", f"{emu.batch_id}@1", "--registry", str(registry), "--json").stdout)
    b = json.loads(run("show", emu.batch_id, "--registry", str(registry), "--json").stdout)
    assert a == b and a["version"] == 1
    assert sum(a["result_kinds"].values()) == len(emu.batch.jobs)


def test_diff_of_two_versions(emu: Emulator, tmp_path: Path) -> None:
    env = {"PLAYMENT_API_KEY": emu.api_key}
    pull = ["pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
            "--registry", str(tmp_path), "--json"]
    assert run(*pull, env=env).returncode == 0
    job = next(j for j in emu.batch.jobs if j.kind == "image")
    emu.set_result(job.job_id, {"annotations": {"rectangles": []}})
    try:
        second = run(*pull, env=env)
    finally:
        emu.set_result(job.job_id, job.result)
    assert json.loads(second.stdout)["version"] == 2
    got = run("diff", f"{emu.batch_id}@1", f"{emu.batch_id}@2", "--registry", str(tmp_path),
              "--json")
    assert got.returncode == 0, got.stderr
    diff = json.loads(got.stdout)
    assert diff["jobs_changed"] == 1 and diff["jobs_added"] == diff["jobs_removed"] == 0
    assert diff["annotations_removed"] == job.truth.annotations_by_type.total()


def test_verify_finds_a_flipped_byte(emu: Emulator, tmp_path: Path) -> None:
    assert run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url, "--registry",
               str(tmp_path), "--json", env={"PLAYMENT_API_KEY": emu.api_key}).returncode == 0
    ok = run("verify", "--registry", str(tmp_path), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    target = next(tmp_path.glob("datasets/*/*/v1/annotations.parquet"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    bad = run("verify", emu.batch_id, "--registry", str(tmp_path), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert any("annotations.parquet" in json.dumps(p) for p in report["problems"])


@pytest.mark.parametrize("fmt", ["coco", "yolo", "csv"])
def test_export_formats(emu: Emulator, registry: Path, tmp_path: Path, fmt: str) -> None:
    got = run("export", emu.batch_id, "--format", fmt, "--out", str(tmp_path / fmt),
              "--image-size", "1920x1080", "--registry", str(registry), "--json")
    assert got.returncode == 0, got.stderr
    path = Path(json.loads(got.stdout)["path"])
    assert path.exists()
    if fmt == "coco":
        coco = json.loads(path.read_text())
        assert coco["annotations"] and coco["categories"]


def test_demo_runs_offline_and_exits_zero(tmp_path: Path) -> None:
    got = run("demo", "--registry", str(tmp_path))
    assert got.returncode == 0, got.stderr
    assert "pds.load(" in got.stdout and "annotation type" in got.stdout
    summary = json.loads(run("show", json.loads(run("list", "--registry", str(tmp_path), "--json")
                                                 .stdout)[0]["batch_id"],
                             "--registry", str(tmp_path), "--json").stdout)
    kinds = set(summary["result_kinds"])
    assert {"image", "video", "image_segmentation", "video_segmentation",
            "point_cloud_segmentation", "sensor_fusion", "classification"} <= kinds


# -- errors: one clear line, the right exit code --------------------------------------


def test_wrong_key_is_one_line_and_exit_1(emu: Emulator, tmp_path: Path) -> None:
    got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
              "--registry", str(tmp_path), env={"PLAYMENT_API_KEY": "not-the-key-0123456789"})
    assert got.returncode == 1
    assert got.stderr.startswith("error: ") and len(got.stderr.strip().splitlines()) == 1
    assert "Traceback" not in got.stderr and "not-the-key-0123456789" not in got.stderr


def test_missing_key_says_how_to_set_it(emu: Emulator, tmp_path: Path) -> None:
    got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
              "--registry", str(tmp_path))
    assert got.returncode == 1 and "PLAYMENT_API_KEY" in got.stderr


def test_unknown_batch_lists_what_exists(emu: Emulator, registry: Path) -> None:
    got = run("show", "no-such-batch", "--registry", str(registry))
    assert got.returncode == 1
    assert got.stderr.startswith("error: ") and "Traceback" not in got.stderr


@pytest.mark.parametrize("ref", ["@3", "b@", "a@b@c"])
def test_malformed_batch_at_version_is_a_usage_error(registry: Path, ref: str) -> None:
    got = run("show", ref, "--registry", str(registry))
    assert got.returncode == 2
    assert "BATCH_ID@VERSION" in got.stderr


def test_unknown_version_is_a_user_error(emu: Emulator, registry: Path) -> None:
    got = run("show", f"{emu.batch_id}@99", "--registry", str(registry))
    assert got.returncode == 1 and "99" in got.stderr


def test_bad_arguments_are_usage_errors() -> None:
    assert run("pull").returncode == 2
    assert run("export", "b", "--format", "voc", "--out", "x").returncode == 2
    assert run("pull", "p", "b", "--workers", "0").returncode == 2


def test_debug_shows_the_traceback(registry: Path) -> None:
    got = run("show", "no-such-batch", "--registry", str(registry), "--debug")
    assert got.returncode != 0 and "Traceback" in got.stderr


def test_partial_pull_exits_3(tmp_path: Path) -> None:
    with Emulator(jobs=8, seed=3, kinds=["image"]) as emu:
        bad = next(j for j in emu.batch.jobs if j.result_bytes is not None)
        emu.set_result(bad.job_id, b"{not json")
        got = run("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
                  "--registry", str(tmp_path), env={"PLAYMENT_API_KEY": emu.api_key})
    assert got.returncode == 3, got.stderr
    assert "1 jobs could not be fetched or parsed" in got.stdout


@pytest.mark.slow
def test_every_command_has_help_with_an_example() -> None:
    for command in ("pull", "list", "show", "diff", "verify", "export", "emulator", "demo"):
        got = run(command, "--help")
        assert got.returncode == 0
        assert "example:" in got.stdout and "--registry" in got.stdout and "--json" in got.stdout


def test_docs_cli_md_is_current() -> None:
    # Every word must match. Python 3.13's argparse lays out the list of commands in
    # wider columns than 3.10 and 3.11 (which docs/cli.md is generated with): there only
    # the words are compared, so the suite passes on every supported Python.
    documented = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    rendered = render_docs()
    stale = "docs/cli.md is stale: run python -m playment_datasets.cli --write-docs docs/cli.md"
    assert documented.split() == rendered.split(), stale
    if sys.version_info < (3, 12):
        assert documented == rendered, stale


def test_emulator_command_serves_a_pullable_batch_until_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    proc = subprocess.Popen([*console_script(), "emulator", "--jobs", "12", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        got = run("pull", info["project_id"], info["batch_id"], "--base-url", info["base_url"],
                  "--registry", str(tmp_path), "--json",
                  env={"PLAYMENT_API_KEY": info["api_key"]})
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["counts"]["jobs"] == 12
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_a_dependency_older_than_required_is_named_not_blamed_on_the_registry(
        tmp_path: Path) -> None:
    # urllib3 1.26, as an environment that pins it has: its version in its metadata, and
    # none of the urllib3 2 API the client imports. The pull must say what to install.
    site = tmp_path / "site"
    (site / "urllib3").mkdir(parents=True)
    (site / "urllib3" / "__init__.py").write_text('__version__ = "1.26.20"\n',
                                                  encoding="utf-8")
    (site / "urllib3-1.26.20.dist-info").mkdir()
    (site / "urllib3-1.26.20.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.20\n", encoding="utf-8")
    got = run("pull", "p1", "b1", "--base-url", "http://127.0.0.1:9",
              "--registry", str(tmp_path / "reg"),
              env={"PLAYMENT_API_KEY": "k", "PYTHONPATH": str(site)})
    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stderr
    assert "urllib3 1.26.20 is installed; playment-datasets needs urllib3>=2.2" in got.stderr
    assert "python -m pip install 'urllib3>=2.2'" in got.stderr
    assert "verify" not in got.stderr


def test_an_old_urllib3_that_imports_is_refused_at_import_not_mid_pull() -> None:
    # urllib3 2.0 and 2.1 have every name the client imports but not HTTPResponse.read1
    code = ("import urllib3; urllib3.__version__ = '2.1.0'\n"
            "try:\n    import playment_datasets.api.transport\n"
            "except ImportError as exc:\n    print(exc.name, '|', exc)\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("urllib3 | urllib3 2.1.0 is installed; playment-datasets "
                                 "needs urllib3>=2.2"), got.stdout


def test_a_missing_optional_extra_is_named_with_its_install_command(tmp_path: Path) -> None:
    # fsspec (the s3 extra) shadowed by a package that cannot be imported
    gone = tmp_path / "site" / "fsspec"
    gone.mkdir(parents=True)
    (gone / "__init__.py").write_text('raise ImportError("No module named fsspec")\n',
                                      encoding="utf-8")
    got = run("list", "--registry", "s3://bucket/registry",
              env={"PYTHONPATH": str(tmp_path / "site")})
    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stderr
    assert "pip install 'playment-datasets[s3]'" in got.stderr
    assert "--upgrade" not in got.stderr and "verify" not in got.stderr
