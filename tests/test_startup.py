"""Start-up: which modules the command line and a pull import, checked in child processes.

``--help``, ``--version`` and the commands that read only ``registry.json`` (``list``,
``tag``, ``untag``) must not import pandas, pyarrow, NumPy or urllib3: those dominate
start-up. ``show`` reads Parquet (pyarrow) but builds no DataFrame. Nothing here times
anything (benchmarks/bench_startup.py does); the tests look at ``sys.modules`` and at
``python -X importtime``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playment_datasets.cli import COMMANDS
from playment_datasets.emulator import Emulator

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "numpy", "urllib3")

#: Runs the CLI's main with argv; prints its exit code and the HEAVY modules imported.
CLI_CHILD = f"""
import json, sys
from playment_datasets.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(*args: str, **env: str) -> dict[str, object]:
    """Run the command line in a child; its exit code and the heavy modules it imported."""
    done = subprocess.run([sys.executable, "-c", CLI_CHILD, *args], capture_output=True,
                          text=True, env=_env(**env), timeout=180, check=False)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry with one version of an emulated batch, and the batch id."""
    root = tmp_path_factory.mktemp("startup-registry")
    with Emulator(jobs=12, seed=5) as emu:
        got = run_cli("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
                      "--registry", str(root), "--json", PLAYMENT_API_KEY=emu.api_key)
        assert got["code"] == 0, got
        return root, emu.batch_id


@pytest.mark.parametrize("args", [["--help"], ["--version"],
                                  *([name, "--help"] for name in COMMANDS)],
                         ids=lambda a: " ".join(a))
def test_help_and_version_import_no_heavy_module(args: list[str]) -> None:
    got = run_cli(*args)
    assert got == {"code": 0, "heavy": []}


def test_module_entry_point_help_imports_no_heavy_module() -> None:
    # -X importtime lists every module the interpreter imported, one line each.
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "playment_datasets.cli",
                           "--help"], capture_output=True, text=True, env=_env(),
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: playment-datasets" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "playment_datasets.errors" in imported  # the listing is real
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert not {m for m in imported if m.startswith("playment_datasets.emulator.server")}


def test_list_tag_and_untag_read_json_only(registry: tuple[Path, str]) -> None:
    root, batch = registry
    listed = run_cli("list", "--registry", str(root))
    assert listed == {"code": 0, "heavy": []}
    assert run_cli("tag", f"{batch}@1", "gold", "--registry", str(root)) == \
        {"code": 0, "heavy": []}
    assert run_cli("untag", batch, "gold", "--registry", str(root)) == {"code": 0, "heavy": []}
    # the default registry, from the environment, and an empty one
    assert run_cli("list", PLAYMENT_DATASETS_HOME=str(root)) == {"code": 0, "heavy": []}
    assert run_cli("list", "--registry", str(root / "none")) == {"code": 1, "heavy": []}


def test_list_json_is_what_registry_datasets_gives(registry: tuple[Path, str]) -> None:
    # list reads registry.json itself; Registry.datasets() (a DataFrame) must agree.
    root, batch = registry
    done = subprocess.run([sys.executable, "-m", "playment_datasets.cli", "list", "--json",
                           "--registry", str(root)], capture_output=True, text=True,
                          env=_env(), timeout=180, check=True)
    rows = json.loads(done.stdout)
    from playment_datasets.registry.registry import Registry

    frame = Registry(root).datasets()
    expected = json.loads(frame.to_json(orient="records", date_format="iso"))
    assert rows == expected
    assert rows[0]["batch_id"] == batch and rows[0]["created_at"].endswith("Z")


def test_show_reads_parquet_without_pandas(registry: tuple[Path, str]) -> None:
    root, batch = registry
    got = run_cli("show", batch, "--registry", str(root))
    assert got["code"] == 0
    assert "pandas" not in got["heavy"] and "pyarrow" in got["heavy"]


PULL_CHILD = """
import json, sys
import playment_datasets as pds
from playment_datasets.emulator import Emulator

def loaded():
    return sorted(m for m in sys.modules
                  if m == "pandas" or m.startswith("playment_datasets.dataset."))

with Emulator(jobs=10, seed=3) as emu:
    ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                  registry=sys.argv[1], progress=False)
after_pull = loaded()
frame = ds.annotations
print(json.dumps({"after_pull": after_pull, "after_annotations": loaded(),
                  "frame": type(frame).__module__, "rows": len(frame),
                  "counted": ds.counts["annotations"]}))
"""


def _pull_in_child(tmp_path: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PULL_CHILD, str(tmp_path)],
                          capture_output=True, text=True, env=_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_pull_imports_no_dataframe_module_of_the_package(tmp_path: Path) -> None:
    got = _pull_in_child(tmp_path)
    # the modules that exist to build or work on DataFrames stay unimported by a pull
    dataframe_modules = {"playment_datasets.dataset." + m for m in
                         ("views", "media", "mask_array", "diff", "exports", "show",
                          "training", "coco_masks")}
    assert not dataframe_modules & set(got["after_pull"])  # type: ignore[arg-type]
    assert "playment_datasets.dataset.dataset" in got["after_pull"]  # type: ignore[operator]
    # reading a table gives the DataFrame
    assert "pandas" in got["after_annotations"]  # type: ignore[operator]
    assert str(got["frame"]).startswith("pandas")
    assert got["rows"] == got["counted"] and got["rows"]


#: Runs the command line as its console script does (cli.console on sys.argv); prints
#: the exit code and the HEAVY modules imported.
CONSOLE_CHILD = f"""
import json, sys
sys.argv = ["playment-datasets", *sys.argv[1:]]
from playment_datasets.cli import console
code = console()
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


@pytest.mark.parametrize("command", ["pull", "demo"])
def test_the_pulling_commands_leave_pandas_out_and_still_count_quality(
        tmp_path: Path, command: str) -> None:
    from playment_datasets.registry.registry import Registry

    def console(*args: str, **env: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, "-c", CONSOLE_CHILD, *args],
                              capture_output=True, text=True, env=_env(**env), timeout=300,
                              check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    if command == "pull":
        with Emulator(jobs=12, seed=5) as emu:  # every result kind, masks included
            got = console("pull", emu.project_id, emu.batch_id, "--base-url", emu.base_url,
                          "--registry", str(tmp_path), "--json", PLAYMENT_API_KEY=emu.api_key)
    else:
        got = console("demo", "--jobs", "12", "--registry", str(tmp_path), "--json")
    assert got["code"] == 0, got
    assert "pyarrow" in got["heavy"] and "pandas" not in got["heavy"]
    reg = Registry(tmp_path)
    (batch,) = reg.datasets()["batch_id"]
    ds = reg.load(batch)
    stored = ds.manifest["extra"]["quality"]
    assert sum(stored.values())  # counted at commit, not skipped
    assert stored == {check: int((ds.quality()["check"] == check).sum()) for check in stored}


CLI_MAIN_THEN_PANDAS = """
import json, sys
from playment_datasets.cli import main
code = main(["demo", "--jobs", "6", "--registry", sys.argv[1], "--json"])
import pandas  # main() called from Python must leave the import system alone
import playment_datasets as pds
ds = pds.load(pds.Registry(sys.argv[1]).datasets()["batch_id"][0], registry=sys.argv[1])
print(json.dumps({"code": code, "rows": len(ds.annotations)}))
"""


def test_main_called_from_python_leaves_pandas_importable(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CLI_MAIN_THEN_PANDAS, str(tmp_path)],
                          capture_output=True, text=True, env=_env(), timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["rows"] > 0


@pytest.mark.xfail(strict=True, reason=(
    "pds.pull() in a process of its own still imports pandas: pyarrow imports it on the "
    "first pa.array / pa.table built from Python objects (its pandas shim, whenever pandas "
    "is installed). The command line refuses pandas (pull.normalizing.refuse_pandas); the "
    "library does not touch a user's import system"))
def test_a_pull_leaves_pandas_out_until_a_table_is_read(tmp_path: Path) -> None:
    got = _pull_in_child(tmp_path)
    assert "pandas" not in got["after_pull"]  # type: ignore[operator]
