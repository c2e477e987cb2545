"""PlaymentClient: the Playment HTTP API, safely.

The client pages through batches, reads job records and downloads result files through
the attachment endpoint. It knows nothing of tables or disks. What it guarantees:

- every request has a connect and a read timeout, and a total deadline (connect,
  headers, body and retries) that holds even against a server sending a byte a second;
- every body is streamed in chunks under size limits (on the wire and decoded, so a
  gzip bomb stops at the limit): memory stays bounded whatever a server sends;
- connection errors, timeouts, truncated bodies, 408, 429 (``Retry-After`` honoured) and
  5xx are retried with exponential backoff and full jitter; other 4xx, certificate
  errors and unknown host names are not (they cannot succeed);
- the attachment redirect is followed by the client itself, so ``x-api-key`` goes to the
  API host only, never to the storage host the redirect points at — nor to a redirect
  target that resolves to the API host under another name;
- an expired or refused signed URL is asked for again through the attachment endpoint;
- proxies (``HTTPS_PROXY``, ``NO_PROXY``, …) and CA bundles (``REQUESTS_CA_BUNDLE``,
  ``SSL_CERT_FILE``, ``ca_bundle=``) are honoured as ``requests`` honours them;
- the API key and signed URLs appear in no log line (urllib3's included), exception
  message or ``repr``.

Example:
    >>> from playment_datasets.api.client import PlaymentClient
    >>> client = PlaymentClient(api_key="...", base_url="http://127.0.0.1:8080")
    >>> for job in client.iter_batch_jobs("PROJECT", "BATCH"):   # doctest: +SKIP
    ...     record = client.get_job("PROJECT", job["id"])
    ...     fetched = client.fetch_result(record["result"])
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import InsecureRequestWarning, LocationValueError

from playment_datasets.api.environment import NetworkSettings, tls_options
from playment_datasets.api.ids import validate_id
from playment_datasets.api.transport import (
    BodyError,
    BodyTooLarge,
    Deadline,
    Pools,
    Watchdog,
    hopeless_reason,
    quiet_urllib3,
    read_body,
    retry_after,
)
from playment_datasets.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "FetchedResult",
    "Limits",
    "PlaymentClient",
    "RetryPolicy",
    "Timeouts",
]

log = logging.getLogger(__name__)
quiet_urllib3()  # urllib3 logs whole request lines, signatures included, at DEBUG

DEFAULT_BASE_URL = "https://api.playment.io"
API_KEY_ENV = "PLAYMENT_API_KEY"
BASE_URL_ENV = "PLAYMENT_BASE_URL"

_RETRY_STATUSES = frozenset({408, 429, 443, 444})
_AUTH_CODES = frozenset({"auth-failure", "core.webutil.token_auth", "unauthorized_request"})
_PERMISSION_CODES = frozenset({"unauthorized", "core.webutil.auther"})
_NOT_FOUND_CODES = frozenset({"FS_0006", "resource_error"})
_INVALID_CODES = frozenset({"GE_0001", "GE_0002", "invalid_request_error"})
_SERVER_CODES = frozenset({"FS_0000", "FS_0008", "api_error"})
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failing request.

    Attempt ``n`` (0-based) that fails waits a random time between 0 and
    ``min(backoff_max, backoff_base * 2**n)`` seconds ("full jitter"), except after a
    429/503 with ``Retry-After``, which is honoured up to ``retry_after_max`` seconds.

    Example:
        >>> RetryPolicy(attempts=3).attempts
        3
    """

    attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"RetryPolicy.attempts must be >= 1; got {self.attempts}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ConfigurationError("RetryPolicy delays must be >= 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        return rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2.0**attempt)))


@dataclass(frozen=True)
class Timeouts:
    """Timeouts in seconds; all are always set.

    ``connect`` bounds opening a connection and ``read`` each wait for bytes from the
    server. ``total`` bounds a whole request — connect, headers, body and its retries —
    so a server trickling one byte a second cannot hold a pull: the request fails with
    :class:`~playment_datasets.errors.DeadlineExceededError` when it passes. The default
    (120 s) fits a 100 MB result on a 10 Mbit/s line.

    Example:
        >>> Timeouts(total=30).total
        30
    """

    connect: float = 10.0
    read: float = 60.0
    total: float = 120.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0 or self.total <= 0:
            raise ConfigurationError(
                f"timeouts must be > 0 seconds; got connect={self.connect}, read={self.read}, "
                f"total={self.total}"
            )


_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much a server may send, checked while the bytes arrive.

    ``max_bytes`` bounds one response body on the wire and ``max_decoded_bytes`` the
    same body after gzip/deflate decoding (what is stored and parsed). A body over
    either limit fails with :class:`~playment_datasets.errors.ResponseTooLargeError`
    (the job lands in the ``errors`` table; nothing is retried). ``max_pages`` bounds
    the pages of one batch listing.

    The defaults leave a wide margin over real results — job results are JSON of a few
    kB to a few MB, masks a few MB — while keeping a pull's memory bounded: a result is
    parsed in memory, so a larger limit would protect nothing. 100,000 pages of 100
    jobs are 10 million jobs.

    Example:
        >>> Limits(max_bytes=1024**3).max_decoded_bytes == 256 * 1024**2
        True
    """

    max_bytes: int = 128 * _MiB
    max_decoded_bytes: int = 256 * _MiB
    max_pages: int = 100_000

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_decoded_bytes, self.max_pages) < 1:
            raise ConfigurationError(
                f"limits must be >= 1; got max_bytes={self.max_bytes}, max_decoded_bytes="
                f"{self.max_decoded_bytes}, max_pages={self.max_pages}"
            )


@dataclass(frozen=True)
class FetchedResult:
    """A downloaded result file.

    ``content`` is ``None`` when the server answered 304 Not Modified to the ``etag``
    sent; the stored copy is then still current.
    """

    content: bytes | None
    etag: str | None
    not_modified: bool = False
    content_type: str | None = None


_FOLD = re.compile(r"\r?\n[ \t]+")


class _Headers(Mapping[str, str]):
    """A response's headers (case-insensitive, as urllib3 gives them) with obsolete line
    folding undone: before 2.8, urllib3 kept a folded value's line break, and an ETag
    holding one could not be sent back in ``If-None-Match``."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        value = self._raw[name]
        return _FOLD.sub(" ", value) if "\n" in value else value

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True)
class _Response:
    """What the client keeps of one HTTP answer."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    content: bytes
    url: str

    @property
    def is_redirect(self) -> bool:
        return self.status in _REDIRECTS and "Location" in self.headers

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")


class _RateLimiter:
    """Spaces requests at least ``1/rate`` seconds apart across all threads."""

    def __init__(self, rate: float, sleep: Callable[[float], None]) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


class _Fatal(Exception):
    """Internal: this attempt failed in a way no retry can mend."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PlaymentClient:
    """A thread-safe client of the Playment API.

    Args:
        api_key: the API key; defaults to the ``PLAYMENT_API_KEY`` environment variable.
        base_url: the API host; defaults to ``PLAYMENT_BASE_URL``, else
            ``https://api.playment.io``.
        retry: a :class:`RetryPolicy`.
        timeout: a :class:`Timeouts`.
        limits: a :class:`Limits` (body sizes, listing pages).
        verify: check TLS certificates (``True``), not (``False``, never against the
            real API), or the path of a CA bundle.
        ca_bundle: a PEM file (or directory) of the certificate authorities to trust,
            for a company proxy or a private deployment; defaults to
            ``REQUESTS_CA_BUNDLE``, else ``SSL_CERT_FILE``, else the system's store.
        pool_size: connections kept open per host; size it to the number of threads
            that share the client.
        rate_limit: at most this many requests per second in total, or ``None``.
        sleep: the function used to wait between retries (tests pass a recorder).

    Proxies come from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY``
    (see :mod:`playment_datasets.api.environment`), read when the client is made.

    Example:
        >>> client = PlaymentClient(api_key="secret", base_url="http://127.0.0.1:1")
        >>> client
        PlaymentClient(base_url='http://127.0.0.1:1')
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeouts | None = None,
        limits: Limits | None = None,
        verify: bool | str | os.PathLike[str] = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        pool_size: int = 32,
        rate_limit: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        key = key.strip()
        if not key:
            raise ConfigurationError(
                "no Playment API key: pass api_key=... or set the PLAYMENT_API_KEY environment "
                "variable (GT Studio → Settings → API keys)"
            )
        if any(ch in key for ch in "\r\n\x00"):
            raise ConfigurationError("the API key contains a line break or NUL; copy it again")
        self._api_key = key
        self.base_url = _check_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        )
        self._api_origin = _origin(self.base_url)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout or Timeouts()
        self.limits = limits or Limits()
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigurationError(f"rate_limit must be > 0 requests/s or None; got {rate_limit}")
        self._sleep = sleep
        self._limiter = _RateLimiter(rate_limit, sleep) if rate_limit else None
        self._rng = random.Random()
        # urllib3 (the engine under requests) directly: the pull is CPU-bound on small
        # machines, and requests' session layer cost about 0.4 ms of CPU per request
        # (benchmarks/bench_pull.py). Proxies and CA bundles are read from the
        # environment here; .netrc is not, so nothing adds credentials behind our back.
        tls = tls_options(verify, ca_bundle)
        if tls["cert_reqs"] == "CERT_NONE":
            log.warning("TLS certificate checks are off (verify=False): anyone on the path "
                        "can read the API key; pass ca_bundle= instead")
            urllib3.disable_warnings(InsecureRequestWarning)  # said once, above
        self._network = NetworkSettings.from_environment()
        self._pools = Pools(pool_size, {"User-Agent": "playment-datasets"}, tls,
                            proxy_for=self._network.proxy_for)
        self._watchdog = Watchdog()
        self._addresses: dict[tuple[str, int | None], frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"PlaymentClient(base_url={self.base_url!r})"

    def __enter__(self) -> PlaymentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._pools.clear()

    def cancel(self) -> None:
        """Stop every request in flight now, and fail every later one at once.

        Threads blocked reading a slow server wake up within milliseconds; a pull
        calls this on Ctrl-C so that its workers end and the process can exit.

        Example:
            >>> client.cancel()  # doctest: +SKIP
        """
        self._watchdog.cancel()

    # -- public API -----------------------------------------------------------------

    def iter_batch_jobs(self, project_id: str, batch_id: str) -> Iterator[dict[str, Any]]:
        """Yield every job summary of a batch, page after page.

        Paging stops when ``next_page_token`` is absent, null or empty, when a token
        repeats, when a page has no jobs or no job not listed before, or after
        ``Limits.max_pages`` pages, so it never loops forever (the last three with a
        warning: the listing may be incomplete).

        Example:
            >>> ids = [j["id"] for j in client.iter_batch_jobs("P", "B")]  # doctest: +SKIP
        """
        path = (f"/v1/projects/{_path_id(project_id, 'project id')}"
                f"/batch/{_path_id(batch_id, 'batch id')}")
        token = ""
        seen: set[str] = set()
        ids: set[str] = set()
        for page in range(self.limits.max_pages):
            data = self._get_data(path, params={"page_token": token})
            jobs = data.get("jobs")
            if jobs is None:
                jobs = []
            if not isinstance(jobs, list):
                raise APIError(
                    f"batch listing {path}: expected 'jobs' to be a list, got "
                    f"{type(jobs).__name__}; the API answered in an unknown format"
                )
            new = 0
            for job in jobs:
                if isinstance(job, Mapping) and job.get("id") not in (None, ""):
                    new += str(job["id"]) not in ids
                    ids.add(str(job["id"]))
                    yield dict(job)
                else:
                    log.warning("batch listing %s: skipped a job summary without an id", path)
            next_token = data.get("next_page_token")
            if not jobs or next_token is None or str(next_token) == "":
                return
            if not new:
                log.warning("batch listing %s: page %d brought no job not listed before; "
                            "stopping (the API keeps handing out page tokens)", path, page + 1)
                return
            next_token = str(next_token)
            if next_token == token or next_token in seen:
                log.warning("batch listing %s: page token repeated; stopping", path)
                return
            seen.add(next_token)
            token = next_token
        log.warning("batch listing %s: stopped after Limits.max_pages=%d pages; the listing "
                    "may be incomplete (raise max_pages for a larger batch)", path,
                    self.limits.max_pages)

    def get_job(self, project_id: str, job_id: str) -> dict[str, Any]:
        """Return the job record: status, ids, workflow, and the private ``result`` URL.

        Every field is optional except ``job_id``; a job that is not completed has an
        empty or missing ``result``.

        Example:
            >>> record = client.get_job("P", "J")  # doctest: +SKIP
            >>> record["status"], record["result"]  # doctest: +SKIP
            ('completed', 'https://…/J.json')
        """
        path = (f"/v1/projects/{_path_id(project_id, 'project id')}"
                f"/jobs/{_path_id(job_id, 'job id')}")
        data = dict(self._get_data(path))
        if not data.get("job_id"):
            data["job_id"] = job_id
        return data

    def get_project_details(self, project_id: str) -> dict[str, Any]:
        """Return the project's name, base type and batches with their counters."""
        return dict(self._get_data(f"/v1/projects/{_path_id(project_id, 'project id')}/details"))

    def fetch_result(self, result_url: str, *, etag: str | None = None,
                     max_bytes: int | None = None) -> FetchedResult:
        """Download a result file (or a mask) through the attachment endpoint.

        The endpoint redirects to a signed storage URL; this client follows it without
        the API key. With ``etag``, ``If-None-Match`` is sent and a 304 answer gives
        ``FetchedResult(content=None, not_modified=True)``. A signed URL that has expired
        or is refused (403) is asked for again. ``max_bytes`` refuses a larger body
        (:class:`TransportError`, not retried) without reading more than that.

        Example:
            >>> got = client.fetch_result(record["result"], etag=old_etag)  # doctest: +SKIP
            >>> got.not_modified  # doctest: +SKIP
            True
        """
        _check_http_url(result_url, "result URL")
        refused = 0
        while True:
            resp, _ = self._request(
                self.base_url + "/v1/attachments", params={"url": result_url}, redirects=True,
                raw=True,
            )
            if not resp.is_redirect:  # served directly, without a redirect
                return FetchedResult(resp.content, resp.etag,
                                     content_type=resp.headers.get("Content-Type"))
            location = urljoin(resp.url, resp.headers.get("Location", ""))
            _check_http_url(location, "attachment redirect")
            self._check_not_api(location, "attachment redirect")
            got = self._download(location, etag, max_bytes)
            if got is not None:
                return got
            refused += 1
            if refused >= self.retry.attempts:
                raise PermissionDeniedError(
                    f"the storage host refused the signed URL for {_safe_url(result_url)} "
                    f"{refused} times (403); the signature keeps expiring or the object is "
                    "private. Check the machine's clock, then try again.",
                    status_code=403,
                    url=_safe_url(location),
                )
            log.info("signed URL refused (403); asking the attachment endpoint again")
            self._wait(self.retry.backoff(refused - 1, self._rng))

    def download(self, url: str, *, max_bytes: int | None = None) -> FetchedResult:
        """Download a public URL (a CDN, a customer's bucket) **without** the API key.

        Redirects are followed, each checked (http(s), no credentials, never the API
        host); retries, timeouts and ``max_bytes`` work as for :meth:`fetch_result`.
        A 403 raises :class:`PermissionDeniedError`: the file is private, so fetch it
        through :meth:`fetch_result` (the attachment endpoint) instead.

        Example:
            >>> got = client.download("https://cdn.example/a.jpg")  # doctest: +SKIP
            >>> got.content_type  # doctest: +SKIP
            'image/jpeg'
        """
        _check_http_url(url, "download URL")
        self._check_not_api(url, "download URL")
        got = self._download(url, None, max_bytes)
        if got is None:
            raise PermissionDeniedError(
                f"GET {_safe_url(url)}: the host refused the download (403); expected a "
                "public file. If it is stored by Playment, fetch it through the attachment "
                "endpoint (fetch_result).", status_code=403, url=_safe_url(url),
            )
        return got

    # -- internals ------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        """Wait between retries; a cancel ends the wait at once."""
        if self._sleep is time.sleep:
            self._watchdog.wait(seconds)
        else:  # a recorder from a test
            self._sleep(seconds)

    def _download(self, url: str, etag: str | None,
                  max_bytes: int | None = None) -> FetchedResult | None:
        """GET a signed storage URL without the API key; ``None`` means 403 (re-sign)."""
        headers = {"If-None-Match": etag} if etag else {}
        for _ in range(_MAX_REDIRECTS):
            resp, _ = self._request(url, headers=headers, redirects=True, raw=True, ok=(403, 304),
                                    send_key=False, max_bytes=max_bytes)
            if resp.is_redirect:
                url = urljoin(resp.url, resp.headers.get("Location", ""))
                _check_http_url(url, "storage redirect")
                self._check_not_api(url, "storage redirect")
                continue
            if resp.status == 304:
                return FetchedResult(None, etag, not_modified=True)
            if resp.status == 403:
                return None
            return FetchedResult(resp.content, resp.etag,
                                 content_type=resp.headers.get("Content-Type"))
        raise TransportError(f"more than {_MAX_REDIRECTS} redirects downloading a result file")

    def _check_not_api(self, url: str, what: str) -> None:
        """Refuse a download URL on the API host: storage is another origin, and a
        redirect back to the API host could make the key or an API answer pose as a result.

        Hosts are compared by the addresses they resolve to, so ``localhost`` and
        ``127.0.0.1`` (or a second DNS name of the API) are the same host."""
        scheme, host, port = _origin(url)
        api_scheme, api_host, api_port = self._api_origin
        if (scheme, port) == (api_scheme, api_port) and (
            host == api_host or self._resolve(host, port) & self._resolve(api_host, api_port)
        ):
            raise TransportError(
                f"refusing {what} {_safe_url(url)!r}: it points at the API host itself, "
                "expected a signed URL on the storage host. The API (or a proxy in between) "
                "answered with an unsafe redirect; report it to Playment support."
            )

    def _resolve(self, host: str, port: int | None) -> frozenset[str]:
        """The addresses of ``host`` (cached); none when it does not resolve here (behind
        a proxy, names may resolve only on the proxy's side)."""
        key = (host, port)
        if key not in self._addresses:
            try:
                infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
                self._addresses[key] = frozenset(str(info[4][0]) for info in infos)
            except (OSError, UnicodeError):
                self._addresses[key] = frozenset()
        return self._addresses[key]

    def _get_data(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET an API path and return the ``data`` of its success envelope."""
        resp, body = self._request(self.base_url + path, params=params)
        data = (body or {}).get("data")
        if not isinstance(data, dict):
            raise APIError(
                f"GET {path}: expected a JSON object under 'data', got {type(data).__name__}",
                status_code=resp.status,
                url=path,
            )
        return data

    def _request(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        redirects: bool = False,
        raw: bool = False,
        ok: tuple[int, ...] = (),
        send_key: bool = True,
        max_bytes: int | None = None,
    ) -> tuple[_Response, dict[str, Any] | None]:
        """One logical GET with retries: the response and its parsed JSON envelope.

        ``redirects`` accepts a 3xx answer (returned to the caller, never followed
        here); ``raw`` returns a 2xx body unparsed (result files are not envelopes);
        ``ok`` lists other statuses handed back as they are; ``send_key=False`` never
        sends the API key (downloads from storage).
        """
        send = dict(headers or {})
        if send_key and _origin(url) == self._api_origin:
            send["x-api-key"] = self._api_key
        last = "no attempt made"
        with self._watchdog.deadline(self.timeout.total) as deadline:
            for attempt in range(self.retry.attempts):
                if self._limiter:
                    self._limiter.wait()
                try:
                    return self._attempt(url, params, send, redirects, raw, ok, deadline,
                                         max_bytes)
                except _Fatal as fatal:
                    raise fatal.error from None
                except _Retry as retry:
                    last = retry.reason
                    if attempt + 1 >= self.retry.attempts:
                        break
                    delay = retry.retry_after
                    if delay is None:
                        delay = self.retry.backoff(attempt, self._rng)
                    else:
                        delay = min(delay, self.retry.retry_after_max)
                    if delay >= deadline.left():
                        raise self._deadline_error(_safe_url(url), f"last error: {last}") from None
                    log.info(
                        "GET %s failed (%s); retry %d/%d in %.2f s",
                        _safe_url(url), last, attempt + 1, self.retry.attempts - 1, delay,
                    )
                    self._wait(delay)
        shown = _safe_url(url)
        message = (
            f"GET {shown} failed after {self.retry.attempts} attempts; last error: {last}. "
            "The service or the network is failing; try again later (a pull resumes where "
            "it stopped)."
        )
        if last.startswith(("HTTP ", "server error")):
            raise ServerError(message, url=shown)
        raise TransportError(message)

    def _deadline_error(self, shown: str, detail: str) -> TransportError:
        if self._watchdog.cancelled:
            return TransportError(f"GET {shown} was cancelled (the pull is stopping)")
        return DeadlineExceededError(
            f"GET {shown} did not finish within Timeouts.total={self.timeout.total:g} s "
            f"({detail}); the server or the network is too slow. Try again later, or "
            "raise the deadline: timeout=Timeouts(total=...)."
        )

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        redirects: bool,
        raw: bool,
        ok: tuple[int, ...],
        deadline: Deadline,
        max_bytes: int | None = None,
    ) -> tuple[_Response, dict[str, Any] | None]:
        started = time.perf_counter()
        if params:
            url = f"{url}?{urlencode(params)}"
        left = deadline.left()
        if deadline.expired():
            raise _Fatal(self._deadline_error(_safe_url(url), "no time left"))
        timeout = urllib3.Timeout(connect=min(self.timeout.connect, left),
                                  read=min(self.timeout.read, left))
        answer = None
        try:
            answer = self._pools.get(url, headers, timeout)
            content, wire = read_body(
                answer, deadline, max_bytes=_smaller(max_bytes, self.limits.max_bytes),
                max_decoded_bytes=self.limits.max_decoded_bytes,
            )
        except LocationValueError as exc:  # an unusable URL: not retryable
            raise _Fatal(TransportError(
                f"GET {_safe_url(url)} could not be sent: {type(exc).__name__}: "
                f"{_scrub(str(exc), self._api_key)}"
            )) from None
        except BodyTooLarge as exc:
            raise _Fatal(ResponseTooLargeError(
                f"GET {_safe_url(url)}: refused the response body: {exc}. A real result is far "
                "smaller; if this one is expected, raise the limit: limits=Limits(...)."
            )) from None
        except BodyError as exc:
            raise _Fatal(TransportError(f"GET {_safe_url(url)}: {exc}")) from None
        except (_Urllib3Error, OSError) as exc:  # connection, timeout, truncated body
            shown = _safe_url(url)
            if deadline.expired():
                raise _Fatal(self._deadline_error(shown, type(exc).__name__)) from None
            hopeless = hopeless_reason(exc, urlsplit(url).hostname or "")
            if hopeless:  # a bad certificate or an unknown host: no retry can mend it
                raise _Fatal(TransportError(f"GET {shown} failed: {hopeless}")) from None
            raise _Retry(f"{type(exc).__name__}: {_scrub(str(exc), self._api_key)}") from None
        finally:
            if answer is not None:
                answer.release_conn()
        if deadline.expired():  # a socket shut down at the deadline reads as a short body
            raise _Fatal(self._deadline_error(_safe_url(url), "while reading the body"))
        resp = _Response(answer.status, _Headers(answer.headers), content, url)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("GET %s -> %d (%.0f ms)", _safe_url(url), resp.status,
                      (time.perf_counter() - started) * 1000)
        _check_length(resp, wire)
        status = resp.status
        if status in ok or (redirects and resp.is_redirect):
            return resp, None
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status}", retry_after(resp.headers.get("Retry-After")))
        if raw and 200 <= status < 300:
            return resp, None
        body = _json_body(resp)
        if 200 <= status < 300:
            if body is None:
                raise _Retry(f"HTTP {status} with a body that is not JSON")
            if body.get("success") is False:
                self._raise_envelope(resp, body)
            return resp, body
        self._raise_envelope(resp, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_envelope(self, resp: _Response, body: dict[str, Any] | None) -> None:
        """Turn an error answer into the matching exception (or a retry)."""
        status = resp.status
        error = body.get("error") if body else None
        code = message = None
        if isinstance(error, Mapping):
            code = str(error.get("code")) if error.get("code") is not None else None
            message = str(error.get("message") or "")
        if body is None:
            message = _snippet(resp)
        message = _scrub(message or "", self._api_key)
        where = f"GET {_safe_url(resp.url)}"
        said = f" ({code}: {message})" if code else (f": {message}" if message else "")
        kwargs: dict[str, Any] = {"code": code, "status_code": status, "url": _safe_url(resp.url)}
        if code in _SERVER_CODES:
            raise _Retry(f"server error {code}")
        if code in _AUTH_CODES or status == 401:
            raise AuthenticationError(
                f"{where}: the API key was refused{said}. Check PLAYMENT_API_KEY or the "
                "api_key argument (GT Studio → Settings → API keys).",
                **kwargs,
            )
        if code in _PERMISSION_CODES or status == 403:
            raise PermissionDeniedError(
                f"{where}: the API key has no access to this project or resource{said}. "
                "Check the project id, or use a key of a member of that project.",
                **kwargs,
            )
        if code in _NOT_FOUND_CODES or status in (404, 410):
            raise NotFoundError(
                f"{where}: not found{said}. Check the project, batch and job ids.", **kwargs
            )
        if code in _INVALID_CODES or 400 <= status < 500:
            raise InvalidRequestError(f"{where}: the request was refused{said}.", **kwargs)
        raise APIError(f"{where}: the API reported a failure{said}.", **kwargs)


# -- helpers ------------------------------------------------------------------------


def _check_base_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}; got {url!r}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(
            "base_url must not carry credentials, a query or a fragment; pass the key as "
            "api_key= or PLAYMENT_API_KEY"
        )
    return url.strip().rstrip("/")


def _check_http_url(url: str, what: str) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{what} is empty; the job has no result to download")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(
            f"refusing {what} {_safe_url(url)!r}: expected an http(s) URL, got scheme "
            f"{parts.scheme or 'none'!r}"
        )
    if parts.username or parts.password:
        raise TransportError(f"refusing {what} {_safe_url(url)!r}: it carries credentials")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _path_id(value: str, what: str) -> str:
    """An id checked like every id that may become a path, then percent-encoded."""
    return quote(validate_id(value, what), safe="")


def _safe_url(url: str) -> str:
    """The URL without its query string (signatures, tokens) for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _json_body(resp: _Response) -> dict[str, Any] | None:
    try:
        body = json.loads(resp.content)
    except ValueError:  # also UnicodeDecodeError
        return None
    return body if isinstance(body, dict) else None


def _snippet(resp: _Response) -> str:
    """A short, printable piece of a non-JSON body (an HTML page from a proxy, say)."""
    text = resp.content[:200].decode("utf-8", "replace")
    text = " ".join(text.split())
    kind = resp.headers.get("Content-Type", "unknown type")
    return f"HTTP {resp.status} with a non-JSON body ({kind}): {text!r}"


def _smaller(limit: int | None, default: int) -> int:
    """A caller's own size limit, never above the client's."""
    return default if limit is None else min(limit, default)


def _check_length(resp: _Response, wire: int) -> None:
    """Treat a body shorter than its Content-Length as a transport failure."""
    declared = resp.headers.get("Content-Length")
    if declared is None:
        return
    try:
        expected = int(declared)
    except ValueError:
        return
    if wire != expected:
        raise _Retry(f"truncated body ({wire} of {expected} bytes)")
