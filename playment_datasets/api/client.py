"""PlaymentClient: the Playment HTTP API, safely.

The client pages through batches, reads job records and downloads result files through
the attachment endpoint. It knows nothing of tables or disks. What it guarantees:

- every request has a connect and a read timeout;
- connection errors, timeouts, truncated bodies, 408, 429 (``Retry-After`` honoured) and
  5xx are retried with exponential backoff and full jitter; other 4xx are not;
- the attachment redirect is followed by the client itself, so ``x-api-key`` goes to the
  API host only, never to the storage host the redirect points at;
- an expired or refused signed URL is asked for again through the attachment endpoint;
- the API key appears in no log line, exception message or ``repr``.

Example:
    >>> from playment_datasets.api.client import PlaymentClient
    >>> client = PlaymentClient(api_key="...", base_url="http://127.0.0.1:8080")
    >>> for job in client.iter_batch_jobs("PROJECT", "BATCH"):   # doctest: +SKIP
    ...     record = client.get_job("PROJECT", job["id"])
    ...     fetched = client.fetch_result(record["result"])
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import LocationValueError

from playment_datasets.api.ids import validate_id
from playment_datasets.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TransportError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "FetchedResult",
    "PlaymentClient",
    "RetryPolicy",
    "Timeouts",
]

log = logging.getLogger(__name__)

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
    """Connect and read timeouts in seconds; both are always set.

    ``read`` bounds each wait for bytes from the server, not the whole download.
    """

    connect: float = 10.0
    read: float = 60.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ConfigurationError(
                f"timeouts must be > 0 seconds; got connect={self.connect}, read={self.read}"
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
        pool_size: connections kept open per host; size it to the number of threads
            that share the client.
        rate_limit: at most this many requests per second in total, or ``None``.
        sleep: the function used to wait between retries (tests pass a recorder).

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
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigurationError(f"rate_limit must be > 0 requests/s or None; got {rate_limit}")
        self._sleep = sleep
        self._limiter = _RateLimiter(rate_limit, sleep) if rate_limit else None
        self._rng = random.Random()
        # urllib3 (the engine under requests) directly: the pull is CPU-bound on small
        # machines, and requests' session layer cost about 0.4 ms of CPU per request
        # (benchmarks/bench_pull.py). It reads no proxy settings or .netrc either, so
        # nothing adds credentials behind our back.
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=max(1, pool_size), block=False, retries=False,
            headers={"User-Agent": "playment-datasets"},
        )
        self._timeout = urllib3.Timeout(connect=self.timeout.connect, read=self.timeout.read)

    def __repr__(self) -> str:
        return f"PlaymentClient(base_url={self.base_url!r})"

    def __enter__(self) -> PlaymentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()

    # -- public API -----------------------------------------------------------------

    def iter_batch_jobs(self, project_id: str, batch_id: str) -> Iterator[dict[str, Any]]:
        """Yield every job summary of a batch, page after page.

        Paging stops when ``next_page_token`` is absent, null or empty, when a token
        repeats, or when a page has no jobs, so it never loops forever.

        Example:
            >>> ids = [j["id"] for j in client.iter_batch_jobs("P", "B")]  # doctest: +SKIP
        """
        path = (f"/v1/projects/{_path_id(project_id, 'project id')}"
                f"/batch/{_path_id(batch_id, 'batch id')}")
        token = ""
        seen: set[str] = set()
        while True:
            data = self._get_data(path, params={"page_token": token})
            jobs = data.get("jobs")
            if jobs is None:
                jobs = []
            if not isinstance(jobs, list):
                raise APIError(
                    f"batch listing {path}: expected 'jobs' to be a list, got "
                    f"{type(jobs).__name__}; the API answered in an unknown format"
                )
            for job in jobs:
                if isinstance(job, Mapping) and job.get("id") not in (None, ""):
                    yield dict(job)
                else:
                    log.warning("batch listing %s: skipped a job summary without an id", path)
            next_token = data.get("next_page_token")
            if not jobs or next_token is None or str(next_token) == "":
                return
            next_token = str(next_token)
            if next_token == token or next_token in seen:
                log.warning("batch listing %s: page token repeated; stopping", path)
                return
            seen.add(next_token)
            token = next_token

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
            self._sleep(self.retry.backoff(refused - 1, self._rng))

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
        redirect back to the API host could make the key or an API answer pose as a result."""
        if _origin(url) == self._api_origin:
            raise TransportError(
                f"refusing {what} {_safe_url(url)!r}: it points at the API host itself, "
                "expected a signed URL on the storage host. The API (or a proxy in between) "
                "answered with an unsafe redirect; report it to Playment support."
            )

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
        shown = _safe_url(url)
        last = "no attempt made"
        for attempt in range(self.retry.attempts):
            if self._limiter:
                self._limiter.wait()
            try:
                return self._attempt(url, params, send, redirects, raw, ok, max_bytes)
            except _Retry as retry:
                last = retry.reason
                if attempt + 1 >= self.retry.attempts:
                    break
                delay = retry.retry_after
                if delay is None:
                    delay = self.retry.backoff(attempt, self._rng)
                else:
                    delay = min(delay, self.retry.retry_after_max)
                log.info(
                    "GET %s failed (%s); retry %d/%d in %.2f s",
                    shown, last, attempt + 1, self.retry.attempts - 1, delay,
                )
                self._sleep(delay)
        message = (
            f"GET {shown} failed after {self.retry.attempts} attempts; last error: {last}. "
            "The service or the network is failing; try again later (a pull resumes where "
            "it stopped)."
        )
        if last.startswith(("HTTP ", "server error")):
            raise ServerError(message, url=shown)
        raise TransportError(message)

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        redirects: bool,
        raw: bool,
        ok: tuple[int, ...],
        max_bytes: int | None = None,
    ) -> tuple[_Response, dict[str, Any] | None]:
        started = time.perf_counter()
        if params:
            url = f"{url}?{urlencode(params)}"
        try:
            answer = self._pool.request(
                "GET", url, headers=dict(headers), redirect=False, retries=False,
                timeout=self._timeout, preload_content=max_bytes is None,
            )
            data = answer.data if max_bytes is None else _read_limited(answer, url, max_bytes)
        except LocationValueError as exc:  # an unusable URL: not retryable
            raise TransportError(
                f"GET {_safe_url(url)} could not be sent: {type(exc).__name__}: "
                f"{_scrub(str(exc), self._api_key)}"
            ) from None
        except _Urllib3Error as exc:  # connection, timeout, truncated body
            raise _Retry(f"{type(exc).__name__}: {_scrub(str(exc), self._api_key)}") from None
        resp = _Response(answer.status, answer.headers, data, url)
        log.debug(
            "GET %s -> %d (%.0f ms)", _safe_url(url), resp.status,
            (time.perf_counter() - started) * 1000,
        )
        _check_length(resp)
        status = resp.status
        if status in ok or (redirects and resp.is_redirect):
            return resp, None
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(resp))
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


def _check_length(resp: _Response) -> None:
    """Treat a body shorter than its Content-Length as a transport failure."""
    declared = resp.headers.get("Content-Length")
    if declared is None or resp.headers.get("Content-Encoding"):
        return
    try:
        expected = int(declared)
    except ValueError:
        return
    if len(resp.content) != expected:
        raise _Retry(f"truncated body ({len(resp.content)} of {expected} bytes)")


def _read_limited(answer: Any, url: str, max_bytes: int) -> bytes:
    """The body of a streamed answer, refusing (not retrying) one over ``max_bytes``."""
    try:
        declared = int(answer.headers.get("Content-Length") or -1)
    except ValueError:
        declared = -1
    chunks: list[bytes] = []
    total = 0
    over = declared > max_bytes
    try:
        if not over:
            for chunk in answer.stream(1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    over = True
                    break
                chunks.append(chunk)
    finally:
        if over:
            answer.close()  # drop the connection rather than read the rest
        else:
            answer.release_conn()
    if over:
        raise TransportError(
            f"GET {_safe_url(url)}: the body is larger than max_bytes={max_bytes}; expected a "
            "smaller file. Raise max_bytes if the file is legitimately that large."
        )
    return b"".join(chunks)


def _retry_after(resp: _Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
