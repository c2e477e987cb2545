"""The notebooks run top to bottom in a fresh kernel, offline, and leave no file behind.

Each notebook ends with a cell tagged ``summary`` whose value is a dict of plain Python
literals; the tests read it from the executed notebook and check it against the
emulator's ground truth, which is computed independently of the library under test.
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from playment_datasets.emulator.generator import generate_batch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT = 120

# The batches the notebooks generate (their Emulator(...) arguments).
QUICKSTART_BATCH = {"n_jobs": 60, "seed": 7}
TRAINING_BATCH = {"n_jobs": 80, "seed": 11, "kinds": ["image", "video"]}


def _run(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra_paths: tuple[Path, ...] = (),
) -> Any:
    """Execute a notebook in a fresh ``python3`` kernel; return the executed notebook.

    The kernel imports the package from this checkout (``PYTHONPATH``), runs in an
    empty working directory and has its own ``TMPDIR``; both must be empty afterwards.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cwd = tmp_path / "cwd"
    tmp = tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    paths = [*map(str, extra_paths), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("TMPDIR", str(tmp))  # the kernel inherits os.environ
    before = sorted(p.name for p in NOTEBOOKS.iterdir())

    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{name}: cells raised {[e.ename for e in errors]}"
    stderr = [
        o.text for c in nb.cells for o in c.get("outputs", [])
        if o.output_type == "stream" and o.name == "stderr"
    ]
    assert not stderr, f"{name} wrote to stderr (warnings or log lines): {stderr}"
    assert list(cwd.iterdir()) == [], f"{name} left files in its working directory"
    assert list(tmp.iterdir()) == [], f"{name} left files in the temporary directory"
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before
    return nb


def _summary(nb: Any) -> dict[str, Any]:
    """The value of the cell tagged ``summary`` (its ``text/plain`` repr)."""
    cells = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "expected exactly one cell tagged 'summary'"
    results = [o for o in cells[0].outputs if o.output_type == "execute_result"]
    assert results, "the summary cell returned no value"
    value = ast.literal_eval(results[0].data["text/plain"])
    assert isinstance(value, dict)
    return value


def _images(nb: Any) -> int:
    return sum(
        "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
    )


@pytest.mark.parametrize("name", ["quickstart.ipynb", "training-prep.ipynb"])
def test_notebooks_are_committed_with_their_outputs(name: str) -> None:
    """Readers browsing the repository see results and plots (notebooks/run.py)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # in order
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2
    assert _images(nb) >= 1
    assert any(c.cell_type == "markdown" for c in nb.cells)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in code:
        assert "execution" not in cell.metadata  # no timestamps that change every run
        for out in cell.outputs:
            assert out.output_type != "error"
            assert not (out.output_type == "stream" and out.name == "stderr")
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            assert "/tmp/" not in text and "IProgress" not in text


def test_the_committed_training_summary_holds(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS / "training-prep.ipynb", as_version=4)
    _check_training_summary(_summary(nb), "pycocotools")
    [show] = [c for c in nb.cells if "show" in c.metadata.get("tags", [])]
    assert any("image/png" in o.get("data", {}) for o in show.outputs)


@pytest.mark.slow
def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _run("quickstart.ipynb", tmp_path, monkeypatch)
    summary = _summary(nb)
    truth = generate_batch(**QUICKSTART_BATCH).truth

    assert summary["versions"] == [1, 2]
    assert summary["baseline"] == 1
    assert summary["car_boxes"] == truth.annotations_by_label[("rectangle", "car")]
    # The notebook changes two jobs: one relabelled box; one moved box and one new box.
    assert summary["jobs_changed"] == 2
    assert summary["jobs_added"] == summary["jobs_removed"] == 0
    assert summary["annotations_relabelled"] == 1
    assert summary["annotations_moved"] == 1
    assert summary["annotations_added"] == 1
    assert summary["annotations_removed"] == 0
    assert _images(nb) == 2  # label histogram and box-centre scatter


def _val_jobs(job_ids: list[str], seed: int = 0, train: float = 0.8) -> int:
    """The documented split rule: the first 8 bytes of sha256(f"{seed}\\0{job_id}"), as
    a fraction of 2**64, at or above the train fraction go to val."""
    return sum(
        int.from_bytes(hashlib.sha256(f"{seed}\x00{j}".encode()).digest()[:8], "big") / 2**64
        >= train
        for j in job_ids
    )


def _check_training_summary(summary: dict[str, Any], validated_with: str) -> None:
    batch = generate_batch(**TRAINING_BATCH)
    # the notebook splits the jobs that have rectangles (ds.select(types="rectangle"))
    job_ids = [job.job_id for job in batch.jobs if job.truth.annotations_by_type["rectangle"]]
    train, val = summary["train"], summary["val"]

    assert summary["jobs_in_both_splits"] == 0
    assert train["jobs"] + val["jobs"] == len(job_ids)
    assert val["jobs"] == _val_jobs(job_ids)
    assert 0 < val["jobs"] < train["jobs"]
    rectangles = batch.truth.annotations_by_type["rectangle"]
    assert train["boxes_kept"] + val["boxes_kept"] == rectangles
    assert summary["media_ok"] == summary["media_files"] > 0
    for split in (train, val):
        assert split["boxes_kept"] > 0
        assert split["coco_annotations"] == split["boxes_kept"]
        assert split["yolo_boxes"] == split["boxes_kept"]
        assert 0 < split["coco_images"] <= split["boxes_kept"]
        assert split["validated_with"] == validated_with


def test_training_prep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import pycocotools.coco  # noqa: F401
    except ImportError:
        expected = "json"
    else:
        expected = "pycocotools"
    nb = _run("training-prep.ipynb", tmp_path, monkeypatch)
    _check_training_summary(_summary(nb), expected)


def test_training_prep_runs_without_pycocotools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = tmp_path / "hide-pycocotools"
    (hidden / "pycocotools").mkdir(parents=True)
    (hidden / "pycocotools" / "__init__.py").write_text(
        'raise ImportError("pycocotools is hidden for this test")\n', encoding="utf-8"
    )
    nb = _run("training-prep.ipynb", tmp_path, monkeypatch, extra_paths=(hidden,))
    _check_training_summary(_summary(nb), "json")
