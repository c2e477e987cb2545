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


# The reference script of the "Get job result" documentation page, re-indented, with
# nothing else changed. Tests substitute the host, the key and the ids only.
REFERENCE_SCRIPT = '''
import requests
import json
import os
import urllib.request
x_api_key = "__KEY__"
project_id = "__PROJECT__"
batch_id = "__BATCH__"
def get_batch_job(project_id, batch_id, x_api_key,next_page_token):
    base_url = "https://api.playment.io/v1/projects/{}/batch/{}?page_token={}".format(
    project_id, batch_id, next_page_token
    )
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    # print(response.json())
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()
def get_job_result(project_id,job_id, x_api_key):
    base_url = "https://api.playment.io/v1/projects/{}/jobs/{}".format(project_id,job_id)
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    # print(response.json())
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()
def get_attachment(result_url, x_api_key):
    base_url = "https://api.playment.io/v1/attachments?url={}".format(result_url)
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    # print(response.json())
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()
if __name__ == "__main__":
    batch_res = get_batch_job(project_id, batch_id, x_api_key,'')
    jobs = batch_res['data']['jobs']
    while 'next_page_token' in batch_res['data'].keys():
        next_page_token = batch_res['data']['next_page_token']
        batch_res = get_batch_job(project_id, batch_id, x_api_key,next_page_token)
        jobs = jobs + batch_res['data']['jobs']
    # Set the desired folder struture/name here
    folder_name = batch_id
    for job in jobs:
        job_res = get_job_result(project_id,job['id'],x_api_key)
        job_annotation_result = get_attachment(job_res['data']['result'],x_api_key)
        # Set the filename here
        file_name = job['id'] + '.json'
        with open(os.path.join(folder_name, file_name),'w') as outfile:
            json.dump(job_annotation_result, outfile)
        print(job['id'])
'''


def reference_script_for(base_url: str, api_key: str, project_id: str, batch_id: str) -> str:
    """The reference script pointed at ``base_url`` with the given key and ids."""
    return (REFERENCE_SCRIPT.replace("https://api.playment.io", base_url)
            .replace("__KEY__", api_key).replace("__PROJECT__", project_id)
            .replace("__BATCH__", batch_id))


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
