"""Small hand-built batches and the documented reference script, for the emulator tests."""

from __future__ import annotations

import hashlib
from typing import Any

from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob


def rectangle(x0: float, y0: float, x1: float, y1: float, label: str = "car") -> dict[str, Any]:
    return {
        "_id": f"r-{label}-{x0}",
        "label": label,
        "attributes": {"occlusion": {"value": "25%"}},
        "coordinates": [{"x": x0, "y": y0}, {"x": x1, "y": y0},
                        {"x": x1, "y": y1}, {"x": x0, "y": y1}],
    }


def make_job(index: int, *, status: str = "completed", n_rects: int = 2,
             assets: dict[str, bytes] | None = None,
             extra: dict[str, Any] | None = None) -> GeneratedJob:
    """An image job with ``n_rects`` rectangles (no result unless completed)."""
    rects = [rectangle(0.01 * i, 0.02 * i, 0.01 * i + 0.1, 0.02 * i + 0.2)
             for i in range(n_rects)]
    result: dict[str, Any] | None = {
        "data": {"annotations": {"rectangles": rects, "polygons": [], "lines": [],
                                 "cuboids": [], "landmarks": []},
                 "image_url": f"https://images.example/{index}.jpg", **(extra or {})}
    }
    return GeneratedJob(
        job_id=f"job-{index:04d}",
        reference_id=f"ref-{index:04d}",
        status=status,
        kind="image",
        result=result if status == "completed" else None,
        work_flow_id="wf-1",
        tag=f"tag-{index % 3}",
        priority_weight=1 + index % 9,
        n_frames=1 + index % 2,
        n_annotations=n_rects,
        assets=assets or {},
    )


def make_batch(n_jobs: int, *, project_id: str = "proj-0001", batch_id: str = "batch-0001",
               statuses: dict[int, str] | None = None, name: str = "Batch 1") -> GeneratedBatch:
    """A batch of ``n_jobs`` image jobs; ``statuses`` overrides the status of some jobs."""
    statuses = statuses or {}
    jobs = [make_job(i, status=statuses.get(i, "completed")) for i in range(n_jobs)]
    return GeneratedBatch(project_id=project_id, batch_id=batch_id, name=name, jobs=jobs)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def reference_script_for(base_url: str, api_key: str, project_id: str, batch_id: str) -> str:
    """The reference script (benchmarks/reference_script.py) pointed at the emulator."""
    from benchmarks._common import reference_script_for as adapt

    return adapt(base_url, api_key, project_id, batch_id)


# Used by the command-line test: run the real entry point; when the batch generator
# is not installed, a tiny stand-in provides generate_batch so the CLI can still start.
CLI_LAUNCHER = '''
import sys
try:
    import playment_datasets.emulator.generator  # noqa: F401
except ImportError:
    import types
    sys.path.insert(0, sys.argv[1])
    import emulator_helpers
    stub = types.ModuleType("playment_datasets.emulator.generator")
    def generate_batch(n_jobs, *, seed=0, kinds=None, project_id=None, batch_id=None,
                       asset_base_url=""):
        return emulator_helpers.make_batch(n_jobs)
    stub.generate_batch = generate_batch
    sys.modules["playment_datasets.emulator.generator"] = stub
from playment_datasets.emulator.__main__ import run_emulator_cli
sys.exit(run_emulator_cli(sys.argv[2:]))
'''
