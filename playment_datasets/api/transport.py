"""The mechanics under PlaymentClient: deadlines, bounded bodies, proxies, quiet logs.

- A :class:`Watchdog` holds the deadline of every request in flight and shuts the
  request's socket down when it passes (or when the client is cancelled). A socket
  timeout only bounds each wait for bytes, so a server sending one byte per second
  would otherwise hold a request — headers, body or a TLS handshake — for ever.
- :func:`read_body` streams a body in chunks, decoding gzip/deflate incrementally and
  counting bytes on the wire and decoded, so an endless body or a compression bomb
  stops at the limit instead of filling memory.
- :class:`Pools` keeps one urllib3 pool manager per route (direct, or per proxy).
- :func:`quiet_urllib3` installs a filter that removes query strings (signatures) from
  urllib3's own log records.

Example:
    >>> watchdog = Watchdog()
    >>> with watchdog.deadline(30.0) as deadline:
    ...     deadline.left() > 29
    True
"""

from __future__ import annotations

import email.utils
import heapq
import io
import itertools
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, SSLError

__all__ = ["BodyError", "BodyTooLarge", "Deadline", "Pools", "Watchdog", "hopeless_reason",
           "quiet_urllib3", "read_body", "retry_after"]

_CHUNK = 64 * 1024
_local = threading.local()


class BodyError(Exception):
    """Internal: a body that cannot be read as sent (an unknown encoding)."""


class BodyTooLarge(BodyError):
    """Internal: a body passed a size limit; ``args[0]`` says which."""


class Deadline:
    """The deadline of one request and the connections it used."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self.cancelled = False
        self._conns: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.fired or self.left() <= 0

    def add(self, conn: HTTPConnection) -> None:
        with self._lock:
            if conn not in self._conns:
                self._conns.append(conn)
            fired = self.fired
        if fired:
            _shut(conn)

    def fire(self, cancelled: bool = False) -> None:
        with self._lock:
            self.fired = True
            self.cancelled = self.cancelled or cancelled
            conns = list(self._conns)
        for conn in conns:
            _shut(conn)


def _shut(conn: HTTPConnection) -> None:
    """Wake a thread blocked reading ``conn``: a shut-down socket reads as EOF."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:  # the plain socket call, also under TLS: no TLS close_notify to wait for
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One thread that fires the deadlines of requests in flight when they pass."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live: set[Deadline] = set()
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when :meth:`cancel` is called meanwhile."""
        self._cancel.wait(seconds)

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[Deadline]:
        """A deadline ``seconds`` from now, current for this thread's connections."""
        deadline = Deadline(time.monotonic() + seconds)
        with self._cond:
            if self.cancelled:
                deadline.fire(cancelled=True)
            self._live.add(deadline)
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="playment-deadlines",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        outer = getattr(_local, "deadline", None)
        _local.deadline = deadline
        try:
            yield deadline
        finally:
            _local.deadline = outer
            with self._cond:
                self._live.discard(deadline)

    def cancel(self) -> None:
        """Fire every deadline now and every later one at once (Ctrl-C, shutdown)."""
        with self._cond:
            self._cancel.set()
            live = list(self._live)
        for deadline in live:
            deadline.fire(cancelled=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2] not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, due = heapq.heappop(self._heap)
            due.fire()


def _watch(conn: HTTPConnection) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.add(conn)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self)  # a kept-alive connection is not connected again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class Pools:
    """urllib3 pool managers: one for direct connections, one per proxy."""

    def __init__(self, pool_size: int, headers: Mapping[str, str], tls: Mapping[str, Any]) -> None:
        self._kw: dict[str, Any] = dict(num_pools=8, maxsize=max(1, pool_size), block=False,
                                        retries=False, headers=dict(headers), **tls)
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def manager(self, proxy: str | None) -> urllib3.PoolManager:
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                if proxy is None:
                    manager = urllib3.PoolManager(**self._kw)
                else:
                    parts = urlsplit(proxy)
                    auth: dict[str, Any] = {}
                    if parts.username:  # credentials in the proxy URL, as curl reads them
                        creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                        auth = {"proxy_headers": urllib3.make_headers(proxy_basic_auth=creds)}
                    manager = urllib3.ProxyManager(proxy, **self._kw, **auth)
                manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
                self._managers[proxy] = manager
            return manager

    def clear(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()


def read_body(resp: urllib3.BaseHTTPResponse, deadline: Deadline, *, max_bytes: int,
              max_decoded_bytes: int) -> tuple[bytes, int]:
    """The decoded body of ``resp`` and its size on the wire, read in chunks.

    Raises :class:`BodyTooLarge` as soon as a limit is passed; memory never holds more
    than ``max_decoded_bytes`` plus one chunk. The caller checks ``deadline`` after a
    short read (a shut-down socket reads as the end of the body).
    """
    declared = resp.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"it declares {int(declared):,} bytes, more than max_bytes="
                           f"{max_bytes:,}")
    decoder = _decoder(resp.headers.get("Content-Encoding", ""))
    out = io.BytesIO()  # getvalue() hands its buffer over without a copy
    wire = 0

    def keep(data: bytes) -> None:
        if out.tell() + len(data) > max_decoded_bytes:
            raise BodyTooLarge(f"it decodes to more than max_decoded_bytes="
                               f"{max_decoded_bytes:,} bytes")
        out.write(data)

    while not deadline.expired():
        chunk = resp.read1(_CHUNK, decode_content=False)
        if not chunk:
            break
        wire += len(chunk)
        if wire > max_bytes:
            raise BodyTooLarge(f"more than max_bytes={max_bytes:,} bytes arrived")
        if decoder is None:
            keep(chunk)
            continue
        data = chunk
        while data:  # max_length: a bomb inflates one bounded piece at a time
            keep(decoder.decompress(data, _CHUNK * 4))
            data = decoder.unconsumed_tail
    if decoder is not None:
        keep(decoder.flush())
    return out.getvalue(), wire


def _decoder(encoding: str) -> Any:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    raise BodyError(f"unsupported Content-Encoding {encoding!r}")


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or raw when the wrapper is missing."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._first = True

    @property
    def unconsumed_tail(self) -> bytes:
        return self._obj.unconsumed_tail

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._obj.decompress(data, max_length)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._obj.decompress(data, max_length)

    def flush(self) -> bytes:
        return self._obj.flush()


def hopeless_reason(exc: BaseException, host: str) -> str | None:
    """Why ``exc`` cannot succeed on a retry (a refused certificate, an unknown host
    name), or ``None`` for the failures worth retrying."""
    chain = _chain(exc)
    if any(isinstance(e, NameResolutionError) for e in chain):
        return (f"the host name {host!r} (or its proxy's) could not be resolved. Check the "
                "URL (base_url, PLAYMENT_BASE_URL), the network, and HTTPS_PROXY/NO_PROXY")
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, (SSLError, ssl.SSLCertVerificationError)) for e in chain) and (
        "CERTIFICATE_VERIFY_FAILED" in text or "match" in text.lower()
    ):
        return (f"the TLS certificate of {host!r} was not accepted ({_ssl_reason(text)}). "
                "If the host (or a company proxy) uses a private certificate authority, pass "
                "ca_bundle='/path/to/ca.pem' (CLI: --ca-bundle) or set REQUESTS_CA_BUNDLE")
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and the errors urllib3 wraps in its arguments."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if item in seen:
            continue
        seen.append(item)
        todo.extend(e for e in (item.__cause__, item.__context__, *item.args)
                    if isinstance(e, BaseException))
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _ssl_reason(text: str) -> str:
    for marker in ("self-signed certificate", "unable to get local issuer certificate",
                   "certificate has expired", "Hostname mismatch", "doesn't match"):
        if marker.lower() in text.lower():
            return marker
    return "certificate verify failed"



def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
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


# -- logs ---------------------------------------------------------------------------

_QUERY = re.compile(r"\?[^\s\"']*")


class RedactQueries(logging.Filter):
    """Replace every URL query string in a record by ``?…``: signed storage URLs carry
    their signature there, and urllib3 logs full request lines at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub("?…", message), None
        return True


def quiet_urllib3() -> None:
    """Install :class:`RedactQueries` on urllib3's loggers (idempotent)."""
    for name in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.connection",
                 "urllib3.response", "urllib3.util.retry", "urllib3"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueries) for f in logger.filters):
            logger.addFilter(RedactQueries())
