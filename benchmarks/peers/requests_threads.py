"""Peer: requests + a thread pool, one JSON file per job.

Usage: python requests_threads.py BASE_URL API_KEY PROJECT_ID BATCH_ID OUT_DIR WORKERS
"""

# ruff: noqa: T201
from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter


def main(base_url: str, api_key: str, project_id: str, batch_id: str, out_dir: str,
         workers: int) -> int:
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.mount("http://", HTTPAdapter(pool_maxsize=workers))
            local.session.headers["x-api-key"] = api_key
        return local.session

    def get_json(url: str) -> dict:
        response = session().get(url, timeout=60)
        response.raise_for_status()
        return response.json()

    jobs, token = [], ""
    while True:
        page = get_json(f"{base_url}/v1/projects/{project_id}/batch/{batch_id}"
                        f"?page_token={token}")["data"]
        jobs += page["jobs"]
        token = page.get("next_page_token")
        if not token:
            break

    def fetch(job: dict) -> None:
        record = get_json(f"{base_url}/v1/projects/{project_id}/jobs/{job['id']}")["data"]
        if not record.get("result"):
            return
        result = get_json(f"{base_url}/v1/attachments?url={quote(record['result'], safe='')}")
        with open(os.path.join(out_dir, job["id"] + ".json"), "w") as out:
            json.dump(result, out)

    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fetch, jobs):
            pass
    return len(jobs)


if __name__ == "__main__":
    base_url, api_key, project_id, batch_id, out_dir, in_flight = sys.argv[1:7]
    print(main(base_url, api_key, project_id, batch_id, out_dir, int(in_flight)))
