"""Peer: aiohttp with a bounded number of requests in flight, one JSON file per job.

Usage: python aiohttp_dump.py BASE_URL API_KEY PROJECT_ID BATCH_ID OUT_DIR IN_FLIGHT
"""

# ruff: noqa: T201
from __future__ import annotations

import asyncio
import json
import os
import sys
from urllib.parse import quote

import aiohttp


async def _main(base_url: str, api_key: str, project_id: str, batch_id: str, out_dir: str,
                in_flight: int) -> int:
    limit = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers={"x-api-key": api_key}, connector=connector,
                                     timeout=timeout) as http:

        async def get_json(url: str) -> dict:
            async with http.get(url) as response:
                response.raise_for_status()
                return await response.json(content_type=None)

        jobs, token = [], ""
        while True:
            page = (await get_json(f"{base_url}/v1/projects/{project_id}/batch/{batch_id}"
                                   f"?page_token={token}"))["data"]
            jobs += page["jobs"]
            token = page.get("next_page_token")
            if not token:
                break

        async def fetch(job: dict) -> None:
            async with limit:
                record = (await get_json(
                    f"{base_url}/v1/projects/{project_id}/jobs/{job['id']}"))["data"]
                if not record.get("result"):
                    return
                result = await get_json(
                    f"{base_url}/v1/attachments?url={quote(record['result'], safe='')}")
            with open(os.path.join(out_dir, job["id"] + ".json"), "w") as out:
                json.dump(result, out)

        await asyncio.gather(*(fetch(job) for job in jobs))
    return len(jobs)


def main(base_url: str, api_key: str, project_id: str, batch_id: str, out_dir: str,
         in_flight: int) -> int:
    return asyncio.run(_main(base_url, api_key, project_id, batch_id, out_dir, in_flight))


if __name__ == "__main__":
    base_url, api_key, project_id, batch_id, out_dir, in_flight = sys.argv[1:7]
    print(main(base_url, api_key, project_id, batch_id, out_dir, int(in_flight)))
