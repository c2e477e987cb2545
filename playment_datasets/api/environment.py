"""Network settings read from the environment, as ``requests`` and ``httpx`` read them.

Every variable is read here, once, when a client is made:

- ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (or lower case; lower case wins):
  the proxy for ``https://`` / ``http://`` URLs, ``ALL_PROXY`` for both;
- ``NO_PROXY``: comma-separated hosts (``api.example.com``), domains (``.example.com``
  or ``example.com``, which also match sub-domains), ``host:port`` entries, IP
  networks (``10.0.0.0/8``) or ``*`` (no proxy at all);
- ``REQUESTS_CA_BUNDLE``, then ``SSL_CERT_FILE``: a PEM file (or a directory of
  hashed certificates) of the certificate authorities to trust.

Example:
    >>> settings = NetworkSettings.from_environment({"HTTPS_PROXY": "http://proxy:3128",
    ...                                              "NO_PROXY": "localhost,.internal"})
    >>> settings.proxy_for("https://api.playment.io/v1")
    'http://proxy:3128'
    >>> settings.proxy_for("https://storage.internal/x") is None
    True
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playment_datasets.errors import ConfigurationError

__all__ = ["CA_BUNDLE_ENV", "NetworkSettings", "PROXY_ENV", "tls_options"]

#: Proxy variables, in the order they are looked up (lower case before upper case).
PROXY_ENV = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
#: CA bundle variables, first set wins.
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@dataclass(frozen=True)
class NetworkSettings:
    """Proxies by URL scheme and the hosts that bypass them."""

    proxies: Mapping[str, str]
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> NetworkSettings:
        env = os.environ if environ is None else environ
        proxies: dict[str, str] = {}
        for scheme in ("https", "http", "all"):
            value = _env(env, f"{scheme}_proxy")
            if value:
                proxies[scheme] = _check_proxy(value, f"{scheme.upper()}_PROXY")
        entries = (_env(env, "no_proxy") or "").replace(" ", "").split(",")
        return cls(proxies, tuple(e.lower().lstrip(".") for e in entries if e))

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL to reach ``url`` through, or ``None`` to connect directly."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme) or self.proxies.get("all")
        if proxy is None or self._bypass(parts.hostname or "", parts.port):
            return None
        return proxy

    def _bypass(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, _, want_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
            if want_port and str(port) != want_port:
                continue
            if host == name or host.endswith("." + name) or _in_network(host, name):
                return True
        return False


def tls_options(verify: bool | str | os.PathLike[str] = True,
                ca_bundle: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """urllib3 pool options for certificate checks.

    ``ca_bundle`` (or ``verify`` given as a path) wins over ``REQUESTS_CA_BUNDLE`` and
    ``SSL_CERT_FILE``; without any, the system's trust store is used. ``verify=False``
    turns checking off (never do it against the real API).

    Example:
        >>> tls_options(verify=False)["cert_reqs"]
        'CERT_NONE'
    """
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    if verify is not True and not isinstance(verify, (str, os.PathLike)):
        raise ConfigurationError(f"verify must be True, False or a CA bundle path; got {verify!r}")
    env = os.environ if environ is None else environ
    chosen: str | os.PathLike[str] | None = ca_bundle
    what = "ca_bundle"
    if chosen is None and verify is not True:
        chosen, what = verify, "verify"
    if chosen is None:
        for name in CA_BUNDLE_ENV:
            if env.get(name):
                chosen, what = env[name], name
                break
    if chosen is None:
        return {"cert_reqs": "CERT_REQUIRED"}
    path = Path(chosen).expanduser()
    if path.is_dir():
        return {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": str(path)}
    if not path.is_file():
        raise ConfigurationError(
            f"{what}: no CA bundle at {str(path)!r}; expected a PEM file of trusted "
            "certificate authorities (ask your IT team for the company CA) or a directory"
        )
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(path)}


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name.lower()) or env.get(name.upper())
    return value.strip() if value and value.strip() else None


def _check_proxy(value: str, what: str) -> str:
    if "://" not in value:
        value = "http://" + value  # as requests and curl read "proxy:3128"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{what}: expected an http:// or https:// proxy URL such as "
            f"'http://proxy.example.com:3128'; got scheme {parts.scheme!r} (SOCKS proxies are "
            "not supported: run a local HTTP proxy in front of it)"
        )
    return value


def _has_port(entry: str) -> bool:
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and ":" not in head  # not a bare IPv6 address


def _in_network(host: str, entry: str) -> bool:
    if "/" not in entry:
        return False
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
