"""Execute the notebooks in place, so they are committed with their outputs (plots too).

Usage (from the repository root)::

    python notebooks/run.py                  # every notebook
    python notebooks/run.py quickstart.ipynb # one

Each notebook runs top to bottom in a fresh ``python3`` kernel, offline (it starts the
built-in emulator), in an empty working directory, with this checkout first on
``PYTHONPATH``. No timing metadata is recorded, and the run fails when an output holds
the temporary directory's path, a traceback, or anything written to stderr, so
re-running it changes a notebook only where its results change.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CELL_TIMEOUT = 300


def problems(nb: nbformat.NotebookNode, tmp: str) -> list[str]:
    """What must not be committed in the outputs of an executed notebook."""
    found = []
    for n, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {n}: {out.ename}: {out.evalue}")
            if out.output_type == "stream" and out.name == "stderr":
                found.append(f"cell {n} wrote to stderr: {out.text[:200]!r}")
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            if tmp in text or "/tmp/" in text:
                found.append(f"cell {n}: an output shows a temporary path")
    return found


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="playment-notebook-") as tmp:
        env_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        os.environ["PYTHONPATH"] = env_path  # the kernel inherits the environment
        client = nbclient.NotebookClient(
            nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
            resources={"metadata": {"path": tmp}},
        )
        client.execute()
        bad = problems(nb, tmp)
    if bad:
        raise SystemExit(f"{path.name}: not written:\n  " + "\n  ".join(bad))
    nbformat.write(nb, path)
    print(f"executed {path.relative_to(REPO)}")  # noqa: T201 - a script's report


def main(names: list[str]) -> None:
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        run(path)


if __name__ == "__main__":
    main(sys.argv[1:])
