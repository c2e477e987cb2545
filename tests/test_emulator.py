"""The emulator against real HTTP clients: pages, job records, attachments, errors, faults."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from emulator_helpers import (
    CLI_LAUNCHER,
    etag_of,
    make_batch,
    make_job,
    reference_script_for,
)

from playment_datasets.emulator import Emulator, EmulatorStats, FaultPlan, GeneratedBatch
from playment_datasets.emulator.__main__ import run_emulator_cli
from playment_datasets.errors import ConfigurationError, InvalidIdError

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
TIMEOUT = 10


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """Seven jobs (job 3 in progress), three per page."""
    with Emulator(make_batch(7, statuses={3: "in_progress"}), page_size=3) as emulator:
        yield emulator


def api(emulator: Emulator, path: str, *, key: str | None = "default",
        **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["x-api-key"] = emulator.api_key if key == "default" else key
    return requests.get(emulator.base_url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def walk_pages(emulator: Emulator, project_id: str, batch_id: str,
               version: str = "v1") -> list[dict[str, Any]]:
    """All page ``data`` objects, following next_page_token like the reference script."""
    pages = []
    token = ""
    while True:
        r = api(emulator, f"/{version}/projects/{project_id}/batch/{batch_id}?page_token={token}")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        pages.append(data)
        token = data.get("next_page_token") or ""
        if not token:
            return pages
        assert len(pages) < 100, "pagination does not end"


def signed_location(emulator: Emulator, url: str) -> str:
    r = api(emulator, "/v1/attachments", params={"url": url}, allow_redirects=False)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def error_code(r: requests.Response) -> str:
    body = r.json()
    assert body["success"] is False
    return str(body["error"]["code"])


# -- pagination --------------------------------------------------------------------------


def test_single_page_lists_every_job_and_omits_the_token() -> None:
    batch = make_batch(5)
    with Emulator(batch) as emulator:
        body = api(emulator, f"/v1/projects/{batch.project_id}/batch/{batch.batch_id}"
                             "?page_token=").json()
    assert body["success"] is True
    data = body["data"]
    assert "next_page_token" not in data
    assert (data["id"], data["project_id"], data["name"]) == ("", "", "Batch 1")
    assert [j["id"] for j in data["jobs"]] == [j.job_id for j in batch.jobs]
    first, job = data["jobs"][0], batch.jobs[0]
    assert first == {"id": job.job_id, "reference_id": job.reference_id, "status": "completed",
                     "frames": job.n_frames, "annotations": job.n_annotations,
                     "priority_weight": job.priority_weight, "tag": job.tag, "viewer_url": ""}


def test_many_pages_visit_every_job_once_in_order() -> None:
    batch = make_batch(23)
    with Emulator(batch, page_size=5) as emulator:
        pages = walk_pages(emulator, batch.project_id, batch.batch_id)
    assert [len(p["jobs"]) for p in pages] == [5, 5, 5, 5, 3]
    assert [j["id"] for p in pages for j in p["jobs"]] == [j.job_id for j in batch.jobs]
    tokens = [p["next_page_token"] for p in pages[:-1]]
    assert all(re.fullmatch(r"[0-9]{19}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)


def test_exact_multiple_of_page_size_ends_without_an_empty_page() -> None:
    batch = make_batch(10)
    with Emulator(batch, page_size=5) as emulator:
        pages = walk_pages(emulator, batch.project_id, batch.batch_id)
    assert [len(p["jobs"]) for p in pages] == [5, 5]


def test_first_page_without_the_token_parameter_and_empty_batch() -> None:
    batch = GeneratedBatch("proj-e", "batch-e", "Empty", jobs=[])
    with Emulator(batch) as emulator:
        data = api(emulator, "/v1/projects/proj-e/batch/batch-e").json()["data"]
    assert data["jobs"] == [] and "next_page_token" not in data


@pytest.mark.parametrize(("mode", "expected"), [("empty", ""), ("null", None)])
def test_last_page_token_modes(mode: str, expected: str | None) -> None:
    batch = make_batch(4)
    with Emulator(batch, page_size=3, last_page_token=mode) as emulator:  # type: ignore[arg-type]
        first = api(emulator, "/v1/projects/proj-0001/batch/batch-0001?page_token=").json()
        token = first["data"]["next_page_token"]
        last = api(emulator, f"/v1/projects/proj-0001/batch/batch-0001?page_token={token}")
    data = last.json()["data"]
    assert len(data["jobs"]) == 1
    assert "next_page_token" in data and data["next_page_token"] == expected


@pytest.mark.parametrize("token", ["abc", "123", "0000000000000000000", "-1", "1e18"])
def test_bad_page_token_is_invalid_request_error(emu: Emulator, token: str) -> None:
    r = api(emu, f"/v1/projects/{emu.project_id}/batch/{emu.batch_id}",
            params={"page_token": token})
    assert r.status_code == 400
    assert error_code(r) == "invalid_request_error"


def test_pages_stay_consistent_when_jobs_change_between_requests(emu: Emulator) -> None:
    path = f"/v1/projects/{emu.project_id}/batch/{emu.batch_id}"
    first = api(emu, path).json()["data"]
    emu.remove_job(first["jobs"][0]["id"])          # already seen: must not shift pages
    emu.add_job(make_job(99))
    rest = []
    token = first["next_page_token"]
    while token:
        data = api(emu, path, params={"page_token": token}).json()["data"]
        rest += [j["id"] for j in data["jobs"]]
        token = data.get("next_page_token")
    assert rest == [f"job-{i:04d}" for i in (3, 4, 5, 6, 99)]


# -- job records ---------------------------------------------------------------------------


def test_job_record_carries_a_private_result_url(emu: Emulator) -> None:
    job = emu.batch.jobs[1]
    data = api(emu, f"/v1/projects/{emu.project_id}/jobs/{job.job_id}").json()["data"]
    assert data == {
        "project_id": emu.project_id, "reference_id": job.reference_id, "job_id": job.job_id,
        "batch_id": emu.batch_id, "status": "completed", "work_flow_id": job.work_flow_id,
        "priority_weight": job.priority_weight, "tag": job.tag,
        "result": f"{emu.storage_url}/results/{emu.project_id}/{emu.batch_id}/{job.job_id}.json",
    }
    assert data["result"] == emu.result_url(job.job_id)
    assert urlsplit(emu.storage_url).hostname != urlsplit(emu.base_url).hostname


def test_job_not_completed_has_an_empty_result(emu: Emulator) -> None:
    data = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0003").json()["data"]
    assert data["status"] == "in_progress" and data["result"] == ""
    emu.set_result("job-0001", None)
    data = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0001").json()["data"]
    assert data["status"] == "in_progress" and data["result"] == ""


def test_v0_paths_serve_the_same_shapes(emu: Emulator) -> None:
    pid, bid = emu.project_id, emu.batch_id
    assert [j["id"] for p in walk_pages(emu, pid, bid, "v0") for j in p["jobs"]] == [
        j.job_id for j in emu.batch.jobs]
    assert api(emu, f"/v0/projects/{pid}/jobs/job-0000").json()["data"]["job_id"] == "job-0000"
    assert api(emu, f"/v0/projects/{pid}/details").json()["success"] is True
    assert api(emu, f"/v0/projects/{pid}/stats").json()["success"] is True
    assert api(emu, f"/v1/projects/{pid}/stats").status_code == 404


def test_details_and_stats_count_the_served_jobs() -> None:
    batch = make_batch(6, statuses={2: "in_progress", 5: "in_progress"})
    other = make_batch(2, batch_id="batch-0002", name="Batch 2")
    other.jobs = [make_job(10 + i) for i in range(2)]
    with Emulator(batch) as emulator:
        emulator.add_batch(other)
        details = api(emulator, "/v1/projects/proj-0001/details").json()["data"]
        stats = api(emulator, "/v0/projects/proj-0001/stats").json()["data"]
    assert details["base"] == "IMAGE"
    by_id = {b["id"]: b for b in details["batches"]}
    first = by_id["batch-0001"]
    done = [j for j in batch.jobs if j.status == "completed"]
    assert first["total_jobs"] == 6 and first["completed_jobs"] == len(done)
    assert first["total_frames"] == sum(j.n_frames for j in batch.jobs)
    assert first["completed_frames"] == sum(j.n_frames for j in done)
    assert first["annotations"] == sum(j.n_annotations for j in done)
    assert first["status"] == "In Progress" and by_id["batch-0002"]["status"] == "Complete"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+05:30", first["created_at"])
    assert stats["total_batches"] == 2 and stats["completed_batches"] == 1
    assert stats["total_jobs"] == 8 and stats["completed_jobs"] == len(done) + 2


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_wrong_key_is_auth_failure(emu: Emulator, key: str | None) -> None:
    for path in (f"/v1/projects/{emu.project_id}/batch/{emu.batch_id}",
                 f"/v1/projects/{emu.project_id}/jobs/job-0000",
                 "/v1/attachments?url=" + quote(emu.result_url("job-0000"))):
        r = api(emu, path, key=key, allow_redirects=False)
        assert r.status_code == 400 and error_code(r) == "auth-failure"
    assert emu.stats.auth_failures == 3


def test_auth_failure_can_be_a_bare_401() -> None:
    with Emulator(make_batch(1), auth_failure_status=401) as emulator:
        r = api(emulator, "/v1/projects/proj-0001/jobs/job-0000", key="nope")
    assert r.status_code == 401
    with pytest.raises(ValueError):
        r.json()


def test_project_without_access_is_unauthorized(emu: Emulator) -> None:
    emu.add_foreign_project("someone-elses")
    r = api(emu, "/v1/projects/someone-elses/batch/whatever")
    assert r.status_code == 400 and error_code(r) == "unauthorized"
    emu.add_batch(make_batch(1, project_id="proj-b", batch_id="batch-b"))
    emu.add_api_key("key-for-b", ["proj-b"])
    assert api(emu, "/v1/projects/proj-b/batch/batch-b", key="key-for-b").status_code == 200
    r = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000", key="key-for-b")
    assert error_code(r) == "unauthorized"
    r = api(emu, "/v1/attachments", params={"url": emu.result_url("job-0000")},
            key="key-for-b", allow_redirects=False)
    assert error_code(r) == "unauthorized"


@pytest.mark.parametrize("path", [
    "/v1/projects/bad%20id/batch/batch-0001",
    "/v1/projects/proj-0001/batch/b@d",
    "/v1/projects/proj-0001/jobs/" + "x" * 129,
    "/v1/projects/proj-0001/jobs/job.0001",
    "/v0/projects//details",
])
def test_malformed_ids_are_ge_0001(emu: Emulator, path: str) -> None:
    r = api(emu, path)
    assert r.status_code == 400 and error_code(r) == "GE_0001"


@pytest.mark.parametrize(("path", "code"), [
    ("/v1/projects/proj-0001/jobs/no-such-job", "FS_0006"),
    ("/v1/projects/proj-0001/batch/no-such-batch", "FS_0006"),
    ("/v1/projects/no-such-project/jobs/job-0000", "resource_error"),
    ("/v1/projects/no-such-project/details", "resource_error"),
])
def test_unknown_ids(emu: Emulator, path: str, code: str) -> None:
    r = api(emu, path)
    assert r.status_code == 400 and error_code(r) == code


def test_unknown_path_and_method(emu: Emulator) -> None:
    r = api(emu, "/v2/nothing")
    assert r.status_code == 404 and r.json()["success"] is False
    r = requests.post(emu.base_url + "/v1/projects/proj-0001/jobs", json={"a": 1},
                      headers={"x-api-key": emu.api_key}, timeout=TIMEOUT)
    assert r.status_code == 405 and r.json()["success"] is False


# -- attachments and storage ------------------------------------------------------------


def test_attachment_redirects_to_a_signed_url_on_the_storage_host(emu: Emulator) -> None:
    job = emu.batch.jobs[0]
    location = signed_location(emu, emu.result_url(job.job_id))
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == emu.storage_url
    query = parse_qs(parts.query)
    assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"][0])
    assert query["X-Amz-Expires"] == ["300"]
    assert emu.api_key not in location
    r = requests.get(location, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.content == job.result_bytes and r.json() == job.result
    assert r.headers["ETag"] == etag_of(r.content)
    assert int(r.headers["Content-Length"]) == len(r.content)
    stats = emu.stats
    assert stats.bytes_served == len(r.content) and stats.leaks == 0


def test_attachment_accepts_encoded_and_raw_urls(emu: Emulator) -> None:
    url = emu.result_url("job-0002")
    encoded = api(emu, "/v1/attachments?url=" + quote(url, safe=""), allow_redirects=False)
    raw = api(emu, "/v1/attachments?url=" + url, allow_redirects=False)
    assert encoded.status_code == raw.status_code == 302


@pytest.mark.parametrize("url", [
    "", "not a url", "http://127.0.0.2:1/results/proj-0001/batch-0001/job-0000.json",
    "RESULT:job-0003", "RESULT:missing",
])
def test_unknown_attachment_is_ge_0001(emu: Emulator, url: str) -> None:
    if url == "RESULT:job-0003":   # a job that is not completed has no result file
        url = emu.result_url("job-0003")
    elif url == "RESULT:missing":
        url = emu.result_url("job-0000").replace("job-0000", "job-9999")
    r = api(emu, "/v1/attachments", params={"url": url}, allow_redirects=False)
    assert r.status_code == 400 and error_code(r) == "GE_0001"


def test_direct_and_tampered_storage_access_is_access_denied(emu: Emulator) -> None:
    r = requests.get(emu.result_url("job-0000"), timeout=TIMEOUT)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    location = signed_location(emu, emu.result_url("job-0000"))
    other_job = location.replace("job-0000.json", "job-0001.json")
    r = requests.get(other_job, timeout=TIMEOUT)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    r = requests.get(re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=999999", location),
                     timeout=TIMEOUT)
    assert r.status_code == 403


def test_signed_url_expires() -> None:
    with Emulator(make_batch(1), signed_url_ttl=0) as emulator:
        location = signed_location(emulator, emulator.result_url("job-0000"))
        r = requests.get(location, timeout=TIMEOUT)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and "Request has expired" in r.text


def test_if_none_match_answers_304_and_set_result_changes_the_etag(emu: Emulator) -> None:
    first = requests.get(signed_location(emu, emu.result_url("job-0000")), timeout=TIMEOUT)
    etag = first.headers["ETag"]
    again = requests.get(signed_location(emu, emu.result_url("job-0000")),
                         headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert again.status_code == 304 and again.content == b""
    assert emu.stats.not_modified == 1
    emu.set_result("job-0000", {"data": {"annotations": {"rectangles": []}}})
    changed = requests.get(signed_location(emu, emu.result_url("job-0000")),
                           headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json() == {"data": {"annotations": {"rectangles": []}}}
    emu.set_result("job-0000", b"{not json")
    raw = requests.get(signed_location(emu, emu.result_url("job-0000")), timeout=TIMEOUT)
    assert raw.content == b"{not json" and raw.headers["ETag"] == etag_of(b"{not json")


def test_assets_referenced_by_results_are_served_through_attachments() -> None:
    mask = b"\x89PNG\r\n\x1a\n fake mask bytes"
    batch = make_batch(0)
    with Emulator(batch) as emulator:
        url = f"{emulator.storage_url}/assets/masks/job-0000.png"
        job = make_job(0, assets={"masks/job-0000.png": mask}, extra={"mask_url": url})
        emulator.add_job(job)
        r = api(emulator, "/v1/attachments", params={"url": url})
        foreign = api(emulator, "/v1/attachments", allow_redirects=False,
                      params={"url": "https://bucket.s3.amazonaws.com/x/masks/job-0000.png"})
    assert r.status_code == 200 and r.content == mask
    assert r.headers["Content-Type"] == "image/png"
    assert foreign.status_code == 302


def test_api_key_sent_to_storage_counts_as_a_leak(emu: Emulator) -> None:
    # requests keeps custom headers across a cross-host redirect, as the reference
    # script shows; a careful client follows the redirect itself without the key.
    r = api(emu, "/v1/attachments", params={"url": emu.result_url("job-0000")})
    assert r.status_code == 200
    assert emu.stats.leaks == 1
    requests.get(signed_location(emu, emu.result_url("job-0001")), timeout=TIMEOUT)
    assert emu.stats.leaks == 1


def test_removed_job_disappears_everywhere(emu: Emulator) -> None:
    location = signed_location(emu, emu.result_url("job-0002"))
    emu.remove_job("job-0002")
    assert error_code(api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0002")) == "FS_0006"
    r = requests.get(location, timeout=TIMEOUT)
    assert r.status_code == 404 and "<Code>NoSuchKey</Code>" in r.text


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [("500", "FS_0000"), ("502", "api_error"),
                                            ("503", "api_error")])
def test_server_error_faults_use_the_error_envelope(emu: Emulator, kind: str, code: str) -> None:
    emu.fail_next(1, kind, "job")
    r = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000")
    assert r.status_code == int(kind) and error_code(r) == code
    assert emu.stats.faults[kind] == 1


def test_429_carries_retry_after() -> None:
    with Emulator(make_batch(1), faults="429=1.0;retry_after=3;only=listing") as emulator:
        r = api(emulator, "/v1/projects/proj-0001/batch/batch-0001")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert api(emulator, "/v1/projects/proj-0001/jobs/job-0000").status_code == 200


def test_storage_faults_answer_in_s3_style(emu: Emulator) -> None:
    emu.fail_next(1, "503", "storage")
    r = requests.get(signed_location(emu, emu.result_url("job-0000")), timeout=TIMEOUT)
    assert r.status_code == 503 and "<Code>SlowDown</Code>" in r.text


def test_reset_closes_the_connection_without_a_response(emu: Emulator) -> None:
    emu.fail_next(1, "reset", "job")
    with pytest.raises(requests.ConnectionError):
        api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000")
    assert api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000").status_code == 200
    assert emu.stats.faults["reset"] == 1


@pytest.mark.parametrize("request_class", ["job", "storage"])
def test_truncate_sends_less_than_content_length(emu: Emulator, request_class: str) -> None:
    location = signed_location(emu, emu.result_url("job-0000"))
    emu.fail_next(1, "truncate", request_class)
    url = location if request_class == "storage" else (
        f"{emu.base_url}/v1/projects/{emu.project_id}/jobs/job-0000")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, headers={"x-api-key": emu.api_key}, timeout=TIMEOUT)
    assert emu.stats.faults["truncate"] == 1


def test_slow_delays_the_body_past_a_read_timeout(emu: Emulator) -> None:
    emu.set_faults(FaultPlan(slow_seconds=1.0))
    emu.fail_next(1, "slow", "job")
    with pytest.raises(requests.RequestException):
        requests.get(f"{emu.base_url}/v1/projects/{emu.project_id}/jobs/job-0000",
                     headers={"x-api-key": emu.api_key}, timeout=(5, 0.1))
    emu.set_faults(FaultPlan(slow_seconds=0.05))
    emu.fail_next(1, "slow", "job")
    r = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000")
    assert r.status_code == 200 and r.json()["data"]["job_id"] == "job-0000"
    assert emu.stats.faults["slow"] == 2


def test_expire_refuses_a_valid_signature(emu: Emulator) -> None:
    location = signed_location(emu, emu.result_url("job-0000"))
    emu.fail_next(1, "expire")            # only storage requests can expire
    assert api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000").status_code == 200
    r = requests.get(location, timeout=TIMEOUT)
    assert r.status_code == 403 and "Request has expired" in r.text
    assert requests.get(location, timeout=TIMEOUT).status_code == 200


def test_fail_next_is_deterministic_and_scoped(emu: Emulator) -> None:
    emu.fail_next(2, "503", "job")
    job_path = f"/v1/projects/{emu.project_id}/jobs/job-0000"
    list_path = f"/v1/projects/{emu.project_id}/batch/{emu.batch_id}"
    statuses = [api(emu, job_path).status_code, api(emu, list_path).status_code,
                api(emu, job_path).status_code, api(emu, job_path).status_code]
    assert statuses == [503, 200, 503, 200]
    assert emu.stats.faults == {"503": 2}


def test_seeded_fault_plan_repeats_and_respects_only() -> None:
    def run(spec: str) -> list[int]:
        with Emulator(make_batch(1), faults=spec) as emulator:
            codes = [api(emulator, "/v1/projects/proj-0001/jobs/job-0000").status_code
                     for _ in range(30)]
            assert api(emulator, "/v1/projects/proj-0001/details").status_code == 200
            return codes

    first = run("500=0.5;seed=11;only=job")
    assert first == run("500=0.5;seed=11;only=job")
    assert set(first) == {200, 500}
    assert first != run("500=0.5;seed=12;only=job")


def test_outage_answers_503_on_the_api_host_only(emu: Emulator) -> None:
    location = signed_location(emu, emu.result_url("job-0000"))
    emu.set_down(True)
    r = api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000")
    assert r.status_code == 503 and error_code(r) == "api_error"
    assert requests.get(location, timeout=TIMEOUT).status_code == 200
    emu.set_down(False)
    assert api(emu, f"/v1/projects/{emu.project_id}/jobs/job-0000").status_code == 200
    assert emu.stats.faults["down"] == 1


@pytest.mark.parametrize("spec", ["bogus=0.1", "500=abc", "500=0.7,503=0.5", "500",
                                  "500=1.5", "seed=x", "only=job,nowhere", "only="])
def test_bad_fault_specs_are_configuration_errors(spec: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FaultPlan.parse(spec)
    assert isinstance(info.value, ValueError) and str(info.value)


def test_fault_plan_parses_the_full_syntax() -> None:
    spec = ("500=0.1,503=0.05,429=0.05,reset=0.02,truncate=0.01,slow=0.01,expire=0.2;"
            "seed=7;retry_after=1;slow_seconds=2;only=job,storage")
    plan = FaultPlan.parse(spec)
    assert plan.rates == {"500": 0.1, "503": 0.05, "429": 0.05, "reset": 0.02,
                          "truncate": 0.01, "slow": 0.01, "expire": 0.2}
    assert (plan.seed, plan.retry_after, plan.slow_seconds) == (7, 1.0, 2.0)
    assert plan.only == {"job", "storage"}
    assert FaultPlan.parse(plan.spec) == plan and hash(plan) == hash(FaultPlan.parse(spec))
    with pytest.raises(TypeError):
        plan.rates["500"] = 0.9  # type: ignore[index]


# -- engineering --------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(emu: Emulator) -> None:
    parts = urlsplit(emu.base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        for job_id in ("job-0000", "job-0001", "job-0002"):
            conn.request("GET", f"/v1/projects/{emu.project_id}/jobs/{job_id}",
                         headers={"x-api-key": emu.api_key})
            response = conn.getresponse()
            assert response.status == 200 and response.version == 11
            assert json.loads(response.read())["data"]["job_id"] == job_id
    finally:
        conn.close()


def test_concurrent_clients_are_all_served_and_counted() -> None:
    with Emulator(make_batch(20)) as emulator:
        session = requests.Session()
        failures: list[int] = []

        def worker(offset: int) -> None:
            for i in range(20):
                job_id = f"job-{(offset + i) % 20:04d}"
                r = session.get(f"{emulator.base_url}/v1/projects/proj-0001/jobs/{job_id}",
                                headers={"x-api-key": emulator.api_key}, timeout=TIMEOUT)
                if r.status_code != 200:
                    failures.append(r.status_code)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == [] and emulator.stats.requests["job"] == 120
        emulator.reset_stats()
        assert emulator.stats == EmulatorStats()


def test_stop_releases_the_port_and_drops_idle_connections() -> None:
    emulator = Emulator(make_batch(1)).start()
    session = requests.Session()
    assert session.get(emulator.base_url + "/v1/projects/proj-0001/details",
                       headers={"x-api-key": emulator.api_key}, timeout=TIMEOUT).ok
    emulator.stop()
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(emulator.base_url + "/v1/projects/proj-0001/details", timeout=TIMEOUT)


def test_repr_never_shows_the_api_key() -> None:
    with Emulator(make_batch(1), api_key="s3cr3t-key-value") as emulator:
        assert "s3cr3t-key-value" not in repr(emulator)
        assert "s3cr3t-key-value" not in str(emulator.stats)


@pytest.mark.parametrize("kwargs", [{"page_size": 0}, {"last_page_token": "zero"},
                                    {"auth_failure_status": 403}, {"latency_ms": -1},
                                    {"faults": "nope=1"}, {"api_key": ""}])
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Emulator(make_batch(1), **kwargs)


def test_ids_that_cannot_be_served_are_refused() -> None:
    with pytest.raises(InvalidIdError):
        Emulator(make_batch(1, batch_id="bad/batch"))


# -- the documented reference script, the generator and the command line ----------------


def test_reference_script_walks_a_50_job_batch(tmp_path: Path) -> None:
    batch = make_batch(50)
    with Emulator(batch, page_size=20) as emulator:
        script = reference_script_for(emulator.base_url, emulator.api_key,
                                      batch.project_id, batch.batch_id)
        (tmp_path / batch.batch_id).mkdir()
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120,
                              capture_output=True, text=True)
        stats = emulator.stats
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [j.job_id for j in batch.jobs]
    for job in batch.jobs:
        saved = json.loads((tmp_path / batch.batch_id / f"{job.job_id}.json").read_text())
        assert saved == job.result
    assert stats.requests["listing"] == 3 and stats.requests["storage"] == 50
    assert stats.leaks == 50   # the script's key follows the redirect to storage


def test_generated_batch_is_served_end_to_end() -> None:
    pytest.importorskip("playment_datasets.emulator.generator")
    with Emulator(jobs=12, seed=3, page_size=5) as emulator:
        served = [j["id"] for p in walk_pages(emulator, emulator.project_id, emulator.batch_id)
                  for j in p["jobs"]]
        assert served == [j.job_id for j in emulator.batch.jobs]
        for job in emulator.batch.jobs:
            data = api(emulator, f"/v1/projects/{emulator.project_id}/jobs/{job.job_id}"
                       ).json()["data"]
            if not data["result"]:
                continue
            body = requests.get(signed_location(emulator, data["result"]), timeout=TIMEOUT)
            assert body.content == job.result_bytes
            urls = re.findall(re.escape(emulator.storage_url) + r'[^"\\]+', body.text)
            masks = [u for u in urls if any(u.endswith("/" + key) for key in job.assets)]
            assert len(masks) >= len(job.assets)
            for url in masks:
                asset = requests.get(signed_location(emulator, url), timeout=TIMEOUT)
                assert asset.status_code == 200 and asset.content in job.assets.values()


def _start_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", CLI_LAUNCHER, str(TESTS_DIR), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT, env=env)


def test_cli_prints_connection_details_serves_and_stops_on_ctrl_c() -> None:
    proc = _start_cli("--jobs", "3", "--page-size", "2", "--api-key", "cli-key")
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        while "batch_id" not in lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            name, _, value = line.partition(":")
            lines[name.strip()] = value.strip()
        assert lines["api_key"] == "cli-key"
        r = requests.get(f"{lines['base_url']}/v1/projects/{lines['project_id']}/batch/"
                         f"{lines['batch_id']}", headers={"x-api-key": "cli-key"},
                         timeout=TIMEOUT)
        assert r.status_code == 200 and len(r.json()["data"]["jobs"]) == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Emulator stopped." in out and "Traceback" not in err


def test_cli_rejects_a_bad_fault_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_emulator_cli(["--faults", "500=2"]) == 2
    assert "fault rate" in capsys.readouterr().err
    assert run_emulator_cli(["--jobs", "many"]) == 2


def test_module_entry_point_shows_its_options() -> None:
    done = subprocess.run([sys.executable, "-m", "playment_datasets.emulator", "--help"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for option in ("--jobs", "--seed", "--port", "--storage-port", "--latency-ms", "--faults",
                   "--page-size", "--api-key"):
        assert option in done.stdout


def test_result_returns_an_editable_copy_of_what_is_served() -> None:
    with Emulator(jobs=4, seed=1, kinds=["image"]) as emulator:
        job = next(j for j in emulator.batch.jobs if j.result is not None)
        result = emulator.result(job.job_id)
        assert result == json.loads(job.result_bytes)
        result["edited"] = True
        assert "edited" not in emulator.result(job.job_id)  # a copy
        emulator.set_result(job.job_id, result)
        assert emulator.result(job.job_id)["edited"] is True
        emulator.set_result(job.job_id, b"<html>")
        assert emulator.result(job.job_id) is None


def test_max_in_flight_counts_requests_served_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import urllib3

    with Emulator(jobs=2, latency_ms=150) as emu:
        url = f"{emu.base_url}/v1/projects/{emu.project_id}/batch/{emu.batch_id}"
        http = urllib3.PoolManager(maxsize=4)
        get = lambda _: http.request("GET", url, headers={"x-api-key": emu.api_key})  # noqa: E731
        get(0)
        get(0)
        assert emu.stats.max_in_flight["api"] == 1  # one after the other
        with ThreadPoolExecutor(3) as pool:
            assert all(r.status == 200 for r in pool.map(get, range(3)))
        assert emu.stats.max_in_flight["api"] == 3
        emu.reset_stats()
        assert emu.stats.max_in_flight["api"] == 0
