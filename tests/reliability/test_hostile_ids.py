"""Scenario 7: hostile ids and URLs, from the user and from the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_api import HostileApi

import playment_datasets as pds
from playment_datasets.errors import InvalidIdError
from playment_datasets.registry.registry import Registry

API_KEY = "rel-hostile-key-41c2"
BAD_IDS = ["../../evil", "..", ".hidden", "a/b", "a\\b", "nul\x00id", "x" * 300, "",
           "new\nline", "q?x", "%2e%2e"]


def _pull(api: HostileApi, root: Path, project: str = "proj", batch: str = "batch",
          **options: object) -> pds.Dataset:
    return pds.pull(project, batch, api_key=API_KEY, base_url=api.base_url, registry=root,
                    progress=False, workers=2, **options)


def _files_outside(top: Path, root: Path) -> list[Path]:
    return [p for p in top.rglob("*") if root not in p.parents and p != root]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_hostile_ids_from_the_user_are_refused_before_any_io(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "registry"
    with HostileApi({"job-1": None}, API_KEY) as api:
        for project, batch in ((bad, "batch"), ("proj", bad)):
            with pytest.raises(InvalidIdError, match="expected 1–128 characters") as info:
                _pull(api, root, project, batch)
            assert "\x00" not in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(InvalidIdError):
            Registry(root).load(bad)
        assert api.seen == []  # no request was sent
    assert not root.exists() and list(tmp_path.iterdir()) == []


def test_hostile_job_ids_from_the_api_are_quarantined_not_fatal(tmp_path: Path) -> None:
    hostile = ["../../evil", "a/b", "nul\x00id", "y" * 300, "..", "..\\..\\win"]
    good = ["job-1", "job-2", "job-3"]
    root = tmp_path / "registry"
    with HostileApi(dict.fromkeys([good[0], *hostile, *good[1:]]), API_KEY) as api:
        ds = _pull(api, root)
        job_paths = [p for p in api.paths("api") if "/jobs/" in p]
    errors = ds.errors.set_index("job_id")
    assert sorted(errors.index) == sorted(hostile)
    assert set(errors["stage"]) == {"list"} and set(errors["error_type"]) == {"InvalidIdError"}
    assert sorted(set(ds.annotations["job_id"])) == good
    assert sorted(ds.jobs["job_id"]) == sorted(good + hostile)
    # Hostile ids were never requested, and nothing was written outside the registry.
    assert sorted(p.rsplit("/", 1)[1] for p in job_paths) == good
    assert _files_outside(tmp_path, root) == []
    assert not any(name in str(p) for p in root.rglob("*") for name in ("evil", "win"))
    assert Registry(root).verify().ok


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.2/x.json",
                                 "javascript:alert(1)", "http://user:pw@127.0.0.2/x.json"])
def test_result_urls_that_are_not_plain_http_are_refused(tmp_path: Path, url: str) -> None:
    with HostileApi({"job-1": None, "job-2": url}, API_KEY) as api:
        ds = _pull(api, tmp_path)
        attachment_urls = [p for p in api.paths("api") if p.startswith("/v1/attachments")]
    errors = ds.errors.set_index("job_id")
    assert list(errors.index) == ["job-2"]
    assert errors.loc["job-2", "error_type"] == "TransportError"
    assert "refusing result URL" in errors.loc["job-2", "message"]
    assert len(attachment_urls) == 1  # only job-1's URL went to the attachment endpoint
    assert "pw" not in errors.loc["job-2", "message"]


def test_attachment_redirects_to_other_schemes_or_the_api_host_are_refused(
    tmp_path: Path,
) -> None:
    with HostileApi({"job-1": None, "job-file": None, "job-api": None}, API_KEY) as api:
        def redirect(url: str) -> str:
            if "job-file" in url:
                return "file:///etc/passwd"
            if "job-api" in url:
                return api.base_url + "/v1/steal?from=redirect"
            return api.storage_url + "/results/job-1.json?sig=ok"

        api.redirect = redirect
        ds = _pull(api, tmp_path)
        api_paths = api.paths("api")
        key_sent_to = api.key_sent_to()
    errors = ds.errors.set_index("job_id")
    assert sorted(errors.index) == ["job-api", "job-file"]
    assert "expected an http(s) URL" in errors.loc["job-file", "message"]
    assert "points at the API host itself" in errors.loc["job-api", "message"]
    assert not [p for p in api_paths if p.startswith("/v1/steal")]
    # The key went to the API host's API endpoints, nowhere else.
    assert {host for host, _ in key_sent_to} == {"api"}
    assert all(path.startswith("/v1/projects/") or path == "/v1/attachments"
               for _, path in key_sent_to)


def test_storage_redirects_to_the_api_host_are_refused(tmp_path: Path) -> None:
    with HostileApi({"job-1": None}, API_KEY) as api:
        api.storage_redirect = api.base_url + "/v1/steal?from=storage"
        ds = _pull(api, tmp_path)
        api_paths = api.paths("api")
        key_sent_to = api.key_sent_to()
    assert ds.errors["job_id"].tolist() == ["job-1"]
    assert "points at the API host itself" in ds.errors["message"].iloc[0]
    assert not [p for p in api_paths if p.startswith("/v1/steal")]
    assert {host for host, _ in key_sent_to} == {"api"}
