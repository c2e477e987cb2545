"""Proxies and certificate authorities from the environment, as requests honours them:
a real logging proxy and a TLS server with a private CA, both on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from network_helpers import API_KEY, BATCH, PROJECT, make_private_ca

import playment_datasets as pds

FAST = pds.RetryPolicy(attempts=6, backoff_base=0.2)


def _pull(api, tmp_path: Path, **options) -> pds.Dataset:
    return pds.pull(PROJECT, BATCH, api_key=API_KEY, base_url=api.base_url,
                    registry=tmp_path, progress=False, retry=FAST, **options)


def _proxied_hosts(proxy) -> set[str]:
    return {urlsplit(r.target).hostname or r.target.rpartition(":")[0] for r in proxy.seen}


def test_http_proxy_carries_every_request_and_the_key_only_to_the_api(
        fake_api, proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = fake_api(["a", "b"])
    monkeypatch.setenv("http_proxy", proxy.url)
    ds = _pull(api, tmp_path)
    assert len(ds.annotations) == 2 and len(ds.errors) == 0
    assert _proxied_hosts(proxy) == {"127.0.0.1", "127.0.0.2"}
    assert len(api.api.requests) + len(api.store.requests) == len(proxy.seen)
    keyed = {urlsplit(r.target).hostname for r in proxy.seen if "x-api-key" in r.headers}
    assert keyed == {"127.0.0.1"}
    assert not any("x-api-key" in r.headers for r in api.store.requests)


@pytest.mark.parametrize(("no_proxy", "proxied"), [
    ("127.0.0.2", {"127.0.0.1"}),               # a host
    ("*", set()),                               # everything direct
    ("{api_port}", None),                       # host:port of the API only
    ("127.0.0.0/8", set()),                     # a network
    ("localhost, .example.com", {"127.0.0.1", "127.0.0.2"}),  # no match
])
def test_no_proxy(fake_api, proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  no_proxy: str, proxied: set[str] | None) -> None:
    api = fake_api(["a"])
    if no_proxy == "{api_port}":
        no_proxy, proxied = f"127.0.0.1:{api.api.port}", {"127.0.0.2"}
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    ds = _pull(api, tmp_path)
    assert len(ds.annotations) == 1
    assert _proxied_hosts(proxy) == proxied


def test_https_through_a_proxy_tunnels_with_connect(
        fake_api, proxy, private_ca, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = fake_api(["a", "b"], tls=private_ca.server)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    ds = _pull(api, tmp_path, ca_bundle=private_ca.ca_pem)
    assert len(ds.annotations) == 2 and len(ds.errors) == 0
    assert {r.method for r in proxy.seen} == {"CONNECT"}
    assert {r.target for r in proxy.seen} == {f"127.0.0.1:{api.api.port}",
                                              f"127.0.0.2:{api.store.port}"}
    assert not any("x-api-key" in r.headers for r in proxy.seen)  # inside the tunnel


def test_private_ca_is_refused_at_once_without_a_bundle(
        fake_api, private_ca, tmp_path: Path) -> None:
    api = fake_api(["a"], tls=private_ca.server)
    started = time.monotonic()
    with pytest.raises(pds.TransportError, match="ca_bundle") as caught:
        _pull(api, tmp_path)
    assert "127.0.0.1" in str(caught.value)
    assert api.api.handshakes == 1  # a certificate error is not retried
    assert time.monotonic() - started < 5


def test_a_refused_certificate_says_why_in_openssl_s_words(fake_api, tmp_path: Path) -> None:
    # trusted CA, but a certificate for clients only: none of the usual reasons
    wrong = make_private_ca(tmp_path / "ca", server_purpose="clientAuth")
    api = fake_api(["a"], tls=wrong.server)
    with pytest.raises(pds.TransportError) as caught:
        _pull(api, tmp_path / "reg", ca_bundle=wrong.ca_pem)
    # "unsuitable" in OpenSSL 3, "unsupported" in 1.1
    assert re.search(r"certificate verify failed: \w+ certificate purpose", str(caught.value))
    assert api.api.handshakes == 1  # not retried


def test_private_ca_from_argument_and_environment(
        fake_api, private_ca, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = fake_api(["a"], tls=private_ca.server)
    assert len(_pull(api, tmp_path / "arg", ca_bundle=private_ca.ca_pem).annotations) == 1
    assert len(_pull(api, tmp_path / "verify", verify=str(private_ca.ca_pem)).annotations) == 1
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(private_ca.ca_pem))
    assert len(_pull(api, tmp_path / "env").annotations) == 1


def test_a_missing_ca_bundle_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(pds.ConfigurationError, match="no CA bundle at"):
        pds.PlaymentClient(API_KEY, ca_bundle=tmp_path / "nope.pem")


@pytest.mark.slow
def test_cli_ca_bundle(fake_api, private_ca, tmp_path: Path) -> None:
    api = fake_api(["a"], tls=private_ca.server)
    done = subprocess.run(
        [sys.executable, "-m", "playment_datasets", "pull", PROJECT, BATCH, "--base-url",
         api.base_url, "--registry", str(tmp_path), "--ca-bundle", str(private_ca.ca_pem),
         "--no-progress", "--json"],
        env={**os.environ, "PLAYMENT_API_KEY": API_KEY}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"annotations": 1' in done.stdout
