"""Where the client goes and what it keeps: redirect targets compared by address, an
attachment answered with the body itself, a stale stored URL after the API restarts,
and no signed URL or key in any log record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from network_helpers import API_KEY, BATCH, PROJECT, RESULT, SIGNATURE, answer

import playment_datasets as pds
from playment_datasets.emulator import Emulator, generate_batch

FAST = pds.RetryPolicy(attempts=2, backoff_base=0.01)


def _pull(api, tmp_path: Path) -> pds.Dataset:
    return pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url,
                    registry=tmp_path, progress=False, retry=FAST)


def test_redirect_to_the_api_under_another_name_is_refused(fake_api, tmp_path: Path) -> None:
    api = fake_api(["fine", "alias"])

    def attachment(job_id: str, url: str):
        if job_id == "alias":  # localhost is 127.0.0.1: the API host itself
            target = f"http://localhost:{api.api.port}/v1/projects/{PROJECT}/jobs/alias"
            return answer(302, b"", {"Location": target})
        return answer(302, b"", {"Location": f"{url}?X-Amz-Signature={SIGNATURE}"})

    api.attachment = attachment
    ds = _pull(api, tmp_path)
    assert list(ds.errors["job_id"]) == ["alias"]
    assert "points at the API host" in ds.errors["message"][0]
    stored = ds.jobs.set_index("job_id")["result_sha256"].notna().to_dict()
    assert stored == {"fine": True, "alias": False}
    followed = [r for r in api.api.requests if r.target.endswith("/jobs/alias")]
    assert len(followed) == 1  # only the job record itself, never the redirect


def test_attachment_answered_with_the_body_itself(fake_api, tmp_path: Path) -> None:
    api = fake_api(["a", "b"])
    api.attachment = lambda job_id, url: answer(200, RESULT, {"Content-Type": "application/json"})
    ds = _pull(api, tmp_path)
    assert len(ds.errors) == 0
    assert sorted(ds.annotations["job_id"]) == ["a", "b"]
    assert api.store.requests == []


@pytest.mark.slow
def test_stale_result_urls_after_an_api_restart_are_asked_for_again(tmp_path: Path) -> None:
    batch = generate_batch(30, seed=3)
    # Without masks every attachment request is for a stored result URL.
    with Emulator(batch) as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        v1 = pds.pull(first.project_id, first.batch_id, api_key=first.api_key,
                      base_url=first.base_url, registry=tmp_path, progress=False, masks=False)
    # Restarted on the same API address; the storage host moved, old URLs are refused.
    with Emulator(batch, port=port) as second:
        assert second.base_url == first.base_url and second.storage_url != first.storage_url
        v2 = pds.pull(second.project_id, second.batch_id, api_key=second.api_key,
                      base_url=second.base_url, registry=tmp_path, progress=False, masks=False)
        stats = second.stats
    assert len(v1.errors) == 0 and len(v2.errors) == 0
    assert v2.version == v1.version  # nothing changed: no degraded version 2
    assert len(v2.annotations) == len(v1.annotations)
    completed = v1.pull_stats["fetched"]
    assert completed > 10
    assert stats.not_modified == completed  # the fresh URLs served the same ETags
    assert stats.requests["attachment"] == 2 * completed  # each stale URL, then the fresh one


def test_no_signed_url_or_key_in_any_log_record(tmp_path: Path, caplog) -> None:
    with Emulator(jobs=8) as emu, caplog.at_level(logging.DEBUG):
        pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                 registry=tmp_path, progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any(r.name == "urllib3.connectionpool" for r in caplog.records)  # logs were on
    assert not [m for m in messages if "X-Amz-Signature" in m or emu.api_key in m]
    assert not [m for m in messages if "page_token=" in m or "url=http" in m]
