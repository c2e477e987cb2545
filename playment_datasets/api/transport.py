"""The mechanics under PlaymentClient: deadlines, bounded bodies, proxies, quiet logs.

- A :class:`Watchdog` holds the deadline of every request in flight and shuts the
  request's socket down when it passes (or when the client is cancelled). A socket
  timeout only bounds each wait for bytes, so a server sending one byte per second
  would otherwise hold a request — headers, body or a TLS handshake — for ever.
- :func:`read_body` streams a body in chunks, decoding gzip/deflate incrementally and
  counting bytes on the wire and decoded, so an endless body or a compression bomb
  stops at the limit instead of filling memory.
- :class:`Pools` keeps one urllib3 pool manager per route (direct, or per proxy), and
  remembers each origin's route and connection pool, so a request parses its URL once;
  a direct request goes straight to one of the pool's connections (:func:`_send`).
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
import http.client
import io
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, ProtocolError, SSLError
from urllib3.response import HTTPResponse

from playment_datasets.api.head import Response

#: The oldest urllib3 this module works with, as pyproject.toml says: bodies are read with
#: ``HTTPResponse.read1`` (urllib3 2.2). Older ones fail here, not in the middle of a pull.
URLLIB3_FLOOR = (2, 2)
if tuple(int(n) for n in re.findall(r"\d+", urllib3.__version__)[:2]) < URLLIB3_FLOOR:
    raise ImportError(f"urllib3 {urllib3.__version__} is installed; playment-datasets needs "
                      f"urllib3>={'.'.join(map(str, URLLIB3_FLOOR))} (it reads bodies with "
                      "HTTPResponse.read1)", name="urllib3")

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


#: The longest the deadline thread sleeps while requests are in flight: a deadline set
#: while it sleeps fires at most this late.
_TICK = 0.05


class Watchdog:
    """One thread that fires the deadlines of requests in flight when they pass.

    Starting and ending a request only adds its deadline to a set and removes it (no
    lock, no wake-up: a pull makes hundreds of requests a second). The thread sleeps
    until the nearest deadline, at most :data:`_TICK` seconds, and while no request is
    in flight it waits for one.
    """

    def __init__(self) -> None:
        self._live: set[Deadline] = set()
        self._busy = threading.Event()  # set while deadlines may be live
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when :meth:`cancel` is called meanwhile."""
        self._cancel.wait(seconds)

    def deadline(self, seconds: float) -> _Current:
        """A deadline ``seconds`` from now, current for this thread's connections
        inside the ``with`` block."""
        return _Current(self, Deadline(time.monotonic() + seconds))

    def _enter(self, deadline: Deadline) -> None:
        self._live.add(deadline)
        if self.cancelled:  # checked after the add: cancel() sets the flag, then copies
            deadline.fire(cancelled=True)
        if not self._busy.is_set():
            self._busy.set()
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="playment-deadlines")
                    self._thread.start()

    def cancel(self) -> None:
        """Fire every deadline now and every later one at once (Ctrl-C, shutdown)."""
        self._cancel.set()
        for deadline in self._live.copy():
            deadline.fire(cancelled=True)

    def _run(self) -> None:
        while True:
            self._busy.wait()
            live = self._live.copy()  # one call, atomic: adds and removes go on meanwhile
            if not live:
                self._busy.clear()
                if self._live:  # added between the copy and the clear
                    self._busy.set()
                continue
            now = time.monotonic()
            nearest = now + _TICK
            for deadline in live:
                if deadline.fired:
                    continue
                if deadline.at <= now:
                    deadline.fire()
                elif deadline.at < nearest:
                    nearest = deadline.at
            time.sleep(max(0.0, nearest - now))


class _Current:
    """The ``with`` block of one deadline: makes it current for this thread."""

    __slots__ = ("_watchdog", "_deadline", "_outer")

    def __init__(self, watchdog: Watchdog, deadline: Deadline) -> None:
        self._watchdog = watchdog
        self._deadline = deadline
        self._outer: Deadline | None = None

    def __enter__(self) -> Deadline:
        self._watchdog._enter(self._deadline)
        self._outer = getattr(_local, "deadline", None)
        _local.deadline = self._deadline
        return self._deadline

    def __exit__(self, *exc: object) -> None:
        _local.deadline = self._outer
        self._watchdog._live.discard(self._deadline)


def _watch(conn: HTTPConnection) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.add(conn)


class _WatchedHTTPConnection(HTTPConnection):
    response_class = Response  # heads read without the email package, where supported

    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self)  # a kept-alive connection is not connected again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    response_class = Response

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


# -- pools ----------------------------------------------------------------------------

#: Origins whose route is remembered; past it the table starts afresh (public media
#: downloads may touch many hosts).
_MAX_ROUTES = 256


class _Route:
    """How to reach one origin: its pool manager, and its connection pool when direct."""

    __slots__ = ("manager", "pool")

    def __init__(self, manager: urllib3.PoolManager, pool: HTTPConnectionPool | None) -> None:
        self.manager = manager
        self.pool = pool


class Pools:
    """urllib3 pool managers (one for direct connections, one per proxy), and the
    route of every origin requested so far.

    ``proxy_for(url)`` names the proxy of a URL (``None``: direct). Each origin —
    scheme and ``host:port`` exactly as written — is looked up once; a direct one then
    goes straight to its connection pool. Origins that differ in any way (another host
    on the same port, say) have routes, pools and connections of their own.
    """

    def __init__(self, pool_size: int, headers: Mapping[str, str], tls: Mapping[str, Any],
                 proxy_for: Callable[[str], str | None] = lambda url: None) -> None:
        self._kw: dict[str, Any] = dict(num_pools=8, maxsize=max(1, pool_size), block=False,
                                        retries=False, headers=dict(headers), **tls)
        self._headers = dict(headers)
        self._proxy_for = proxy_for
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._routes: dict[tuple[str, str], _Route] = {}
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

    def get(self, url: str, headers: Mapping[str, str],
            timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
        """Send ``GET url`` once (no retry, no redirect) and return the unread response.

        ``headers`` come on top of the defaults given at construction. The caller
        reads the body and calls ``release_conn()``.
        """
        scheme, netloc, path, query, _ = urlsplit(url)
        send = {**self._headers, **headers}
        route = self._routes.get((scheme, netloc))
        if route is None or (route.pool is not None and route.pool.pool is None):
            route = self._route(url, scheme, netloc)  # new, or its pool was closed
        if route.pool is None or "/." in path:  # proxied, or dot segments to resolve
            return route.manager.request("GET", url, headers=send, redirect=False,
                                         retries=False, timeout=timeout,
                                         preload_content=False)
        target = f"{path or '/'}?{query}" if query else path or "/"
        if not _PLAIN_TARGET.fullmatch(target) or ("%" in target and _ODD_ESCAPE.search(target)):
            # characters to percent-encode, or escapes to normalize: urllib3's way
            return route.pool.urlopen("GET", target, headers=send, redirect=False,
                                      retries=False, assert_same_host=False, timeout=timeout,
                                      preload_content=False, release_conn=False)
        return _send(route.pool, target, send, timeout)

    def _route(self, url: str, scheme: str, netloc: str) -> _Route:
        proxy = self._proxy_for(url)
        manager = self.manager(proxy)
        pool = None
        parts = urlsplit(url)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:  # a bad port: urllib3 words the error
            host = port = None
        if proxy is None and host and host.isascii():  # IDNA names: urllib3's own path
            pool = manager.connection_from_host(f"[{host}]" if ":" in host else host,
                                                port=port, scheme=scheme)
        route = _Route(manager, pool)
        with self._lock:
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            self._routes[(scheme, netloc)] = route
        return route

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()
            for manager in self._managers.values():
                manager.clear()


#: A request target sent as it is: printable ASCII but space and ``"#<>[\]^`{|}``,
#: whose ``%`` each start an upper-case escape (``%2F``). Any other target goes through
#: urllib3's urlopen, which percent-encodes those characters and upper-cases ``%2f``,
#: so the server gets the same bytes either way.
_PLAIN_TARGET = re.compile(r"[!$-;=?-Z_a-z~]*")
_ODD_ESCAPE = re.compile(r"%(?![0-9A-F]{2})")


def _send(pool: HTTPConnectionPool, target: str, headers: Mapping[str, str],
          timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
    """``GET target`` on one of ``pool``'s connections; the unread response.

    What ``pool.urlopen`` does for a request without retries, redirects or a body, with
    less work per request (it re-parses and re-encodes the target, builds a Retry, and
    wraps each error on the way). The connection comes from the pool — idle and not
    closed by the server, or new — and ``release_conn()`` returns it. Errors are the same
    kinds as urlopen's to the caller: urllib3's own for connecting, ``OSError`` for the
    socket and :class:`~urllib3.exceptions.ProtocolError` for an unreadable answer.
    """
    conn = cast(HTTPConnection, pool._get_conn())
    try:
        conn.timeout = urllib3.Timeout.resolve_default_timeout(timeout.connect_timeout)
        try:
            conn.request("GET", target, headers=headers, preload_content=False)
        except BrokenPipeError:  # the server may close after answering: read the answer
            pass
        conn.timeout = timeout.read_timeout  # getresponse() sets it on the socket
        resp = cast(HTTPResponse, conn.getresponse())
    except BaseException as exc:
        conn.close()
        pool._put_conn(conn)  # the slot (closed connection) goes back, as urlopen does
        if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
            raise ProtocolError(f"unreadable answer: {type(exc).__name__}: {exc}") from exc
        raise
    resp._pool, resp._connection = pool, conn  # release_conn() puts it back
    return resp


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
    # OpenSSL's own words otherwise ("Missing Authority Key Identifier" from Python
    # 3.13's strict checks, "unsuitable certificate purpose", …)
    detail = _VERIFY_DETAIL.search(text)
    return "certificate verify failed" + (f": {detail.group(1)}" if detail else "")


_VERIFY_DETAIL = re.compile(r"certificate verify failed: ([^()]+?)\s*\(")



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
