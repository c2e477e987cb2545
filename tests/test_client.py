"""PlaymentClient against the emulator over real loopback HTTP."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from playment_datasets.api.client import FetchedResult, PlaymentClient, RetryPolicy, Timeouts
from playment_datasets.emulator import Emulator
from playment_datasets.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidIdError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PlaymentDatasetsError,
    ServerError,
    TransportError,
)


class SleepRecorder:
    """Stands in for time.sleep in the client: records delays, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=35, seed=3, page_size=10) as emulator:
        yield emulator


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(emu: Emulator, sleeps: SleepRecorder):
    emu.set_faults(None)
    emu.reset_stats()
    with PlaymentClient(emu.api_key, base_url=emu.base_url, sleep=sleeps) as c:
        yield c


def completed(emu: Emulator):
    return [job for job in emu.batch.jobs if job.result_bytes is not None]


# -- configuration -------------------------------------------------------------------


def test_missing_key_fails_before_any_request(emu: Emulator) -> None:
    emu.reset_stats()
    with pytest.raises(ConfigurationError, match="PLAYMENT_API_KEY"):
        PlaymentClient(base_url=emu.base_url)
    assert sum(emu.stats.requests.values()) == 0


def test_key_and_base_url_come_from_the_environment(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYMENT_API_KEY", emu.api_key)
    monkeypatch.setenv("PLAYMENT_BASE_URL", emu.base_url)
    with PlaymentClient() as c:
        assert c.base_url == emu.base_url
        jobs = list(c.iter_batch_jobs(emu.project_id, emu.batch_id))
    assert len(jobs) == len(emu.batch.jobs)


@pytest.mark.parametrize(
    "base_url", ["ftp://example.com", "api.playment.io", "https://user:pw@host", "https://h/?a=1"]
)
def test_bad_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        PlaymentClient("k", base_url=base_url)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "x\x00y", "q?x=1", "a" * 300])
def test_unsafe_ids_are_refused_before_sending(client: PlaymentClient, emu: Emulator, bad) -> None:
    with pytest.raises(InvalidIdError):
        client.get_job(emu.project_id, bad)
    assert sum(emu.stats.requests.values()) == 0


# -- pagination ----------------------------------------------------------------------


def test_pages_are_walked_in_order(client: PlaymentClient, emu: Emulator) -> None:
    ids = [job["id"] for job in client.iter_batch_jobs(emu.project_id, emu.batch_id)]
    assert ids == [job.job_id for job in emu.batch.jobs]
    assert emu.stats.requests["listing"] == 4  # 35 jobs, 10 a page


@pytest.mark.parametrize("mode", ["omit", "empty", "null"])
@pytest.mark.parametrize("n_jobs", [0, 1, 10, 25])
def test_every_end_of_pages_form_stops(mode: str, n_jobs: int) -> None:
    with Emulator(jobs=n_jobs, seed=1, page_size=10, last_page_token=mode) as emu:
        with PlaymentClient(emu.api_key, base_url=emu.base_url) as c:
            ids = [job["id"] for job in c.iter_batch_jobs(emu.project_id, emu.batch_id)]
        assert ids == [job.job_id for job in emu.batch.jobs]
        assert emu.stats.requests["listing"] == max(1, -(-n_jobs // 10))


# -- errors --------------------------------------------------------------------------


def test_wrong_key_is_an_authentication_error_without_the_key(emu: Emulator) -> None:
    secret = "wrong-key-0123456789abcdef0123456789"
    with PlaymentClient(secret, base_url=emu.base_url) as c:
        with pytest.raises(AuthenticationError) as info:
            list(c.iter_batch_jobs(emu.project_id, emu.batch_id))
    assert info.value.code == "auth-failure"
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert "PLAYMENT_API_KEY" in str(info.value)


def test_http_401_with_a_non_json_body_is_an_authentication_error() -> None:
    with Emulator(jobs=2, auth_failure_status=401) as emu:
        with PlaymentClient("nope", base_url=emu.base_url) as c:
            with pytest.raises(AuthenticationError) as info:
                c.get_job(emu.project_id, emu.batch.jobs[0].job_id)
    assert info.value.status_code == 401


def test_foreign_project_is_permission_denied(client: PlaymentClient, emu: Emulator) -> None:
    emu.add_foreign_project("someone-elses-project")
    with pytest.raises(PermissionDeniedError) as info:
        client.get_job("someone-elses-project", emu.batch.jobs[0].job_id)
    assert info.value.code == "unauthorized"


def test_unknown_project_is_not_found(client: PlaymentClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_job("no-such-project", "00000000-0000-0000-0000-000000000000")
    assert info.value.code == "resource_error"


def test_unknown_job_is_not_found(client: PlaymentClient, emu: Emulator) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_job(emu.project_id, "00000000-0000-0000-0000-000000000000")
    assert info.value.code == "FS_0006"


def test_malformed_id_is_an_invalid_request(client: PlaymentClient, emu: Emulator) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.get_job(emu.project_id, "not.a.uuid")  # safe here, refused by the API
    assert info.value.code == "GE_0001"


def test_unknown_attachment_is_an_invalid_request(client: PlaymentClient, emu: Emulator) -> None:
    with pytest.raises(InvalidRequestError):
        client.fetch_result(emu.storage_url + "/results/nothing/here.json")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://h/x.json", "", "javascript:x"])
def test_non_http_result_urls_are_refused(client: PlaymentClient, url: str) -> None:
    with pytest.raises(PlaymentDatasetsError):
        client.fetch_result(url)


def test_client_errors_are_not_retried(client: PlaymentClient, emu: Emulator, sleeps) -> None:
    with pytest.raises(NotFoundError):
        client.get_job(emu.project_id, "00000000-0000-0000-0000-000000000000")
    assert emu.stats.requests["job"] == 1
    assert sleeps.calls == []


# -- job records and results ---------------------------------------------------------


def test_job_record_and_result_match_the_batch(client: PlaymentClient, emu: Emulator) -> None:
    for job in completed(emu)[:5]:
        record = client.get_job(emu.project_id, job.job_id)
        assert record["job_id"] == job.job_id and record["status"] == job.status
        got = client.fetch_result(record["result"])
        assert got.content == job.result_bytes
        assert got.etag and not got.not_modified


def test_unfinished_jobs_have_no_result(emu: Emulator) -> None:
    with Emulator(jobs=40, seed=5) as e, PlaymentClient(e.api_key, base_url=e.base_url) as c:
        pending = [j for j in e.batch.jobs if j.result_bytes is None]
        assert pending, "the generator makes some jobs that are not completed"
        record = c.get_job(e.project_id, pending[0].job_id)
    assert record["status"] != "completed"
    assert not record.get("result")


def test_api_key_never_reaches_the_storage_host(client: PlaymentClient, emu: Emulator) -> None:
    for job in completed(emu)[:5]:
        client.fetch_result(client.get_job(emu.project_id, job.job_id)["result"])
    assert emu.stats.requests["storage"] >= 5
    assert emu.stats.leaks == 0


def test_etag_gives_not_modified(client: PlaymentClient, emu: Emulator) -> None:
    job = completed(emu)[0]
    url = client.get_job(emu.project_id, job.job_id)["result"]
    first = client.fetch_result(url)
    again = client.fetch_result(url, etag=first.etag)
    assert again == FetchedResult(None, first.etag, not_modified=True)
    assert emu.stats.not_modified == 1


def test_changed_result_is_downloaded_despite_old_etag(emu: Emulator) -> None:
    with Emulator(jobs=3, seed=9) as e, PlaymentClient(e.api_key, base_url=e.base_url) as c:
        job = completed(e)[0]
        url = c.get_job(e.project_id, job.job_id)["result"]
        first = c.fetch_result(url)
        e.set_result(job.job_id, {"data": {"annotations": {"rectangles": []}}})
        second = c.fetch_result(url, etag=first.etag)
    assert not second.not_modified and second.content != first.content
    assert second.etag != first.etag


def test_expired_signature_is_requested_again(client: PlaymentClient, emu: Emulator) -> None:
    job = completed(emu)[0]
    url = client.get_job(emu.project_id, job.job_id)["result"]
    emu.reset_stats()
    emu.fail_next(1, "expire", "storage")
    got = client.fetch_result(url)
    assert got.content == job.result_bytes
    assert emu.stats.requests["attachment"] == 2


def test_signed_urls_that_expire_quickly_are_refreshed() -> None:
    with Emulator(jobs=3, seed=2, signed_url_ttl=0.0) as e:
        with PlaymentClient(e.api_key, base_url=e.base_url, retry=RetryPolicy(attempts=3),
                            sleep=SleepRecorder()) as c:
            job = completed(e)[0]
            with pytest.raises(PermissionDeniedError, match="refused the signed URL"):
                c.fetch_result(c.get_job(e.project_id, job.job_id)["result"])
        assert e.stats.requests["attachment"] == 3


# -- retries -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503", "reset", "truncate"])
@pytest.mark.parametrize("request_class", ["listing", "job", "attachment", "storage"])
def test_each_fault_is_retried(client: PlaymentClient, emu: Emulator, sleeps, kind, request_class):
    job = completed(emu)[0]
    emu.fail_next(2, kind, request_class)
    ids = [j["id"] for j in client.iter_batch_jobs(emu.project_id, emu.batch_id)]
    record = client.get_job(emu.project_id, job.job_id)
    got = client.fetch_result(record["result"])
    assert len(ids) == len(emu.batch.jobs)
    assert got.content == job.result_bytes
    assert emu.stats.faults[kind] == 2
    assert len(sleeps.calls) == 2


def test_retry_after_is_honoured(client: PlaymentClient, emu: Emulator, sleeps) -> None:
    emu.set_faults("429=1.0;retry_after=7;only=job")
    job = completed(emu)[0]
    with pytest.raises(ServerError, match="6 attempts"):
        client.get_job(emu.project_id, job.job_id)
    assert sleeps.calls == [7.0] * 5
    emu.set_faults(None)


def test_retry_after_is_capped(emu: Emulator, sleeps) -> None:
    emu.set_faults("429=1.0;retry_after=1000;only=job")
    policy = RetryPolicy(attempts=2, retry_after_max=3)
    with PlaymentClient(emu.api_key, base_url=emu.base_url, retry=policy, sleep=sleeps) as c:
        with pytest.raises(ServerError):
            c.get_job(emu.project_id, emu.batch.jobs[0].job_id)
    emu.set_faults(None)
    assert sleeps.calls == [3.0]


def test_backoff_is_exponential_with_full_jitter(client, emu: Emulator, sleeps) -> None:
    emu.fail_next(5, "503", "job")
    policy = client.retry
    client.get_job(emu.project_id, emu.batch.jobs[0].job_id)
    assert len(sleeps.calls) == 5
    for attempt, delay in enumerate(sleeps.calls):
        assert 0 <= delay <= min(policy.backoff_max, policy.backoff_base * 2**attempt)


def test_slow_body_past_the_read_timeout_is_retried(emu: Emulator, sleeps) -> None:
    emu.set_faults(None)
    job = completed(emu)[0]
    emu.set_faults("slow=1.0;slow_seconds=1.5;only=storage")
    with PlaymentClient(emu.api_key, base_url=emu.base_url, sleep=sleeps,
                        timeout=Timeouts(connect=2, read=0.3), retry=RetryPolicy(attempts=2)) as c:
        record = c.get_job(emu.project_id, job.job_id)
        with pytest.raises(TransportError, match="2 attempts"):
            c.fetch_result(record["result"])
        emu.set_faults(None)
        assert c.fetch_result(record["result"]).content == job.result_bytes


def test_exhausted_retries_name_the_attempts(emu: Emulator, sleeps) -> None:
    emu.set_down(True)
    try:
        with PlaymentClient(emu.api_key, base_url=emu.base_url, sleep=sleeps,
                            retry=RetryPolicy(attempts=3)) as c:
            with pytest.raises(ServerError, match="3 attempts") as info:
                list(c.iter_batch_jobs(emu.project_id, emu.batch_id))
    finally:
        emu.set_down(False)
    assert emu.api_key not in str(info.value)


def test_connection_refused_is_a_transport_error(sleeps) -> None:
    with Emulator(jobs=1) as e:
        url = e.base_url
    with PlaymentClient("k", base_url=url, retry=RetryPolicy(attempts=2), sleep=sleeps) as c:
        with pytest.raises(TransportError, match="2 attempts"):
            c.get_job("p", "j")


# -- secrecy -------------------------------------------------------------------------


def test_key_is_absent_from_repr_errors_and_debug_logs(
    emu: Emulator, caplog: pytest.LogCaptureFixture, sleeps
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.set_faults("503=0.3,429=0.2;retry_after=0")
    messages = []
    with PlaymentClient(emu.api_key, base_url=emu.base_url, sleep=sleeps) as c:
        text = repr(c) + str(vars(c).get("retry"))
        for job in completed(emu)[:5]:
            record = c.get_job(emu.project_id, job.job_id)
            c.fetch_result(record["result"])
        calls = (lambda: c.get_job("foreign", "x"), lambda: c.get_job(emu.project_id, "0" * 36))
        for call in calls:
            try:
                call()
            except PlaymentDatasetsError as exc:
                messages.append(f"{exc!s} {exc!r} {vars(exc)}")
    emu.set_faults(None)
    assert len(messages) == 2
    everything = text + "".join(messages) + caplog.text
    assert caplog.records, "DEBUG logging produced records to check"
    assert emu.api_key not in everything


# -- the acceptance walk -------------------------------------------------------------


@pytest.mark.slow
def test_thousand_jobs_with_a_fifth_of_requests_faulted_all_come_back_intact() -> None:
    spec = ("500=0.05,502=0.02,503=0.04,429=0.04,reset=0.02,truncate=0.02,expire=0.01;"
            "seed=11;retry_after=0")
    with Emulator(jobs=1000, seed=21, faults=spec) as emu:
        by_id = {job.job_id: job for job in emu.batch.jobs}
        policy = RetryPolicy(attempts=10)
        with PlaymentClient(emu.api_key, base_url=emu.base_url, retry=policy,
                            sleep=SleepRecorder(), pool_size=8) as c:
            summaries = list(c.iter_batch_jobs(emu.project_id, emu.batch_id))

            def fetch(job_id: str) -> tuple[str, bytes | None]:
                record = c.get_job(emu.project_id, job_id)
                if not record.get("result"):
                    return job_id, None
                return job_id, c.fetch_result(record["result"]).content

            with ThreadPoolExecutor(8) as pool:
                results = dict(pool.map(fetch, [s["id"] for s in summaries]))
        stats = emu.stats
    assert [s["id"] for s in summaries] == [job.job_id for job in emu.batch.jobs]
    assert all(results[i] == by_id[i].result_bytes for i in by_id)
    total = sum(stats.requests.values())
    faulted = sum(stats.faults.values())
    assert 0.15 <= faulted / total <= 0.25, (faulted, total)
    assert stats.leaks == 0
