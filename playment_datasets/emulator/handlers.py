"""The HTTP side of the emulator: one request handler for the API host, one for storage.

Handlers are thin: they route, ask the :class:`~playment_datasets.emulator.server.Emulator`
for faults and access rules, read the :class:`~playment_datasets.emulator.catalog.Catalog`,
and write each response (status line, headers and body) with a single socket write, so
a benchmark measures the client and not the emulator.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from playment_datasets.emulator.catalog import is_token_shaped, is_valid_id

# The Emulator of server.py, which imports this module: named loosely so imports run one way.
Emulator = Any

__all__ = ["ApiHandler", "EmulatorHTTPServer", "PublicHandler", "StorageHandler"]

logger = logging.getLogger(__name__)

RESULT_PATH = re.compile(r"/results/([^/]+)/([^/]+)/([^/]+)\.json\Z")
ASSET_PREFIX = "/assets/"
PUBLIC_PREFIX = "/public/"  # source media on the plain public host
_MAX_DISCARD = 1 << 20


@dataclass
class Response:
    """A complete response, written in one go."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def envelope_error(code: str, message: str, status: int = 400) -> Response:
    """Playment's error envelope: ``{"success": false, "error": {"code", "message"}}``."""
    body = {"success": False, "error": {"code": code, "message": message}}
    return Response(status, json.dumps(body).encode())


def envelope_ok(data: dict[str, Any]) -> Response:
    return Response(200, json.dumps({"success": True, "data": data},
                                    separators=(",", ":")).encode())


def s3_error(status: int, code: str, message: str, **extra: str) -> Response:
    """An S3-style XML error body (what a private bucket answers)."""
    parts = [f"<Code>{escape(code)}</Code>", f"<Message>{escape(message)}</Message>"]
    parts += [f"<{name}>{escape(value)}</{name}>" for name, value in extra.items()]
    parts.append("<RequestId>EMULATOR</RequestId>")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts)
            + "</Error>").encode()
    return Response(status, body, content_type="application/xml")


_SERVER_ERRORS: dict[str, tuple[int, str, str, str]] = {
    # kind: (status, API error code, S3 error code, message)
    "500": (500, "FS_0000", "InternalError",
            "We encountered an internal error. Please try again."),
    "502": (502, "api_error", "BadGateway", "Bad gateway. Please try again."),
    "503": (503, "api_error", "SlowDown", "Service unavailable. Please reduce your request rate."),
}


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded server that remembers its open connections, so stop() is prompt."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.emulator._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.emulator._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock every handler thread that waits on an idle keep-alive connection."""
        with self.emulator._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("emulator: error while serving %s", client_address, exc_info=True)


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this many seconds
    server: EmulatorHTTPServer
    request_class = "other"
    host_class = "api"  # which host, for the in-flight gauge (EmulatorStats.max_in_flight)

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("emulator %s: " + format, self.address_string(), *args)

    # -- request flow ------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        host = self.host_class
        self.emulator._enter(host)
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.emulator._leave(host)

    def _serve(self) -> None:
        raise NotImplementedError

    def _refuse_method(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= _MAX_DISCARD:
            self.rfile.read(int(length))
        else:
            self.close_connection = True
        self._write(self._method_not_allowed())

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_method  # noqa: N815

    def _method_not_allowed(self) -> Response:
        raise NotImplementedError

    def _server_fault(self, kind: str) -> Response:
        raise NotImplementedError

    def _apply_fault(self, kind: str | None) -> bool:
        """Answer with fault ``kind`` when it replaces the response; True if answered."""
        if kind is None or kind in ("truncate", "slow"):
            return False
        if kind == "reset":
            self._reset()
        elif kind == "429":
            response = self._server_fault(kind)
            retry_after = self.emulator._fault_params().retry_after
            retry = str(int(retry_after)) if retry_after.is_integer() else f"{retry_after:g}"
            response.headers.append(("Retry-After", retry))
            self._write(response)
        else:
            self._write(self._server_fault(kind))
        return True

    def _reset(self) -> None:
        """Drop the connection without a response (the client sees a reset)."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _head(self, response: Response) -> bytes:
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}",
                 f"Server: {self.server_version}",
                 f"Date: {formatdate(usegmt=True)}"]
        if response.status != 304:
            lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines += [f"{name}: {value}" for name, value in response.headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, response: Response, fault: str | None = None) -> int:
        """Send ``response`` (altered by a ``truncate``/``slow`` fault); body bytes sent."""
        body = b"" if response.status == 304 else response.body
        if fault == "truncate":
            self.close_connection = True
            head = self._head(response)
            if body:
                sent = body[: len(body) // 2]
                self.wfile.write(head + sent)
                return len(sent)
            self.wfile.write(head[: len(head) // 2])
            return 0
        head = self._head(response)
        if fault == "slow":
            self.wfile.write(head)
            self.emulator._pause(self.emulator._fault_params().slow_seconds)
            self.wfile.write(body)
        else:
            self.wfile.write(head + body)
        return len(body)


class ApiHandler(_BaseHandler):
    """``api.playment.io``: batch pages, job records, the attachment redirect, details."""

    server_version = "PlaymentEmulator/1.0"

    def _serve(self) -> None:
        emulator = self.emulator
        split = urlsplit(self.path)
        routed = self._route(split.path)
        request_class = routed[0] if routed else "other"
        emulator._count_request(request_class)
        emulator._wait_latency()
        if emulator._is_down():
            emulator._count_fault("down")
            self._write(envelope_error("api_error", "Service unavailable, retry later.", 503))
            return
        if routed is None:
            self._write(envelope_error(
                "not_found", f"No route for GET {split.path}; see the Playment API reference.",
                404))
            return
        request_class, handler, args = routed
        fault = emulator._next_fault(request_class)
        if self._apply_fault(fault):
            return
        response = handler(split.query, *args)
        self._write(response, fault)

    def _route(self, path: str) -> tuple[str, Callable[..., Response], tuple[str, ...]] | None:
        for pattern, request_class, name in _API_ROUTES:
            match = pattern.match(path)
            if match:
                return request_class, getattr(self, name), match.groups()
        return None

    def _server_fault(self, kind: str) -> Response:
        if kind == "429":
            return envelope_error("api_error", "Too many requests, retry later.", 429)
        status, code, _s3_code, message = _SERVER_ERRORS[kind]
        return envelope_error(code, message, status)

    def _method_not_allowed(self) -> Response:
        return envelope_error("method_not_allowed",
                              f"{self.command} is not supported by this emulator; use GET.", 405)

    # -- access rules ------------------------------------------------------------------

    def _authenticate(self) -> tuple[frozenset[str] | None, Response | None]:
        """Which projects the key may read (``None``: all), or the error to answer."""
        ok, access = self.emulator._key_access(self.headers.get("x-api-key"))
        if ok:
            return access, None
        self.emulator._count_auth_failure()
        if self.emulator.auth_failure_status == 401:
            return None, Response(401, b"<html><body><h1>401 Unauthorized</h1></body></html>",
                                  content_type="text/html")
        return None, envelope_error(
            "auth-failure", "Authentication failed: the x-api-key header is missing or wrong.")

    def _open_project(self, project_id: str) -> tuple[frozenset[str] | None, Response | None]:
        access, error = self._authenticate()
        if error is not None:
            return access, error
        catalog = self.emulator._catalog
        if not is_valid_id(project_id):
            return access, _bad_id("project_id", project_id)
        if catalog.is_foreign(project_id) or (
                catalog.has_project(project_id) and access is not None
                and project_id not in access):
            return access, envelope_error(
                "unauthorized", "You are not authorized to access this project.")
        if not catalog.has_project(project_id):
            return access, envelope_error("resource_error", "project_id not found")
        return access, None

    # -- endpoints ---------------------------------------------------------------------

    def _listing(self, query: str, project_id: str, batch_id: str) -> Response:
        _access, error = self._open_project(project_id)
        if error is not None:
            return error
        catalog = self.emulator._catalog
        if not is_valid_id(batch_id):
            return _bad_id("batch_id", batch_id)
        if not catalog.has_batch(project_id, batch_id):
            return envelope_error("FS_0006", "Batch not found")
        token = parse_qs(query, keep_blank_values=True).get("page_token", [""])[0]
        after: int | None = None
        if token:
            if not is_token_shaped(token) or not catalog.token_is_valid(
                    project_id, batch_id, int(token)):
                return envelope_error("invalid_request_error",
                                      "The supplied page_token is not valid.")
            after = int(token)
        jobs, next_cursor = catalog.page(project_id, batch_id, after=after,
                                         size=self.emulator.page_size)
        data: dict[str, Any] = {"id": "", "project_id": "",
                                "name": catalog.batch_name(project_id, batch_id), "jobs": jobs}
        if next_cursor is not None:
            data["next_page_token"] = str(next_cursor)
        elif self.emulator.last_page_token == "empty":
            data["next_page_token"] = ""
        elif self.emulator.last_page_token == "null":
            data["next_page_token"] = None
        return envelope_ok(data)

    def _job(self, query: str, project_id: str, job_id: str) -> Response:
        _access, error = self._open_project(project_id)
        if error is not None:
            return error
        if not is_valid_id(job_id):
            return _bad_id("job_id", job_id)
        served = self.emulator._catalog.job(project_id, job_id)
        if served is None:
            return envelope_error("FS_0006", "Job not found")
        job = served.job
        return envelope_ok({
            "project_id": project_id,
            "reference_id": job.reference_id,
            "job_id": job.job_id,
            "batch_id": served.batch_id,
            "status": job.status,
            "work_flow_id": job.work_flow_id,
            "priority_weight": job.priority_weight,
            "tag": job.tag,
            "result": self.emulator.result_url(job_id) if served.has_result else "",
        })

    def _attachment(self, query: str) -> Response:
        access, error = self._authenticate()
        if error is not None:
            return error
        candidates = parse_qs(query, keep_blank_values=True).get("url", [])
        marker = query.find("url=")
        if marker >= 0:  # an unencoded URL that itself holds '&' arrives split up
            candidates.append(unquote(query[marker + 4:]))
        for url in candidates:
            path, refusal = self.emulator._storage_path_for(url, access)
            if refusal is not None:
                return refusal
            if path is not None:
                location = f"{self.emulator.storage_url}{path}?{self.emulator._signer.sign(path)}"
                return Response(302, f"Found. Redirecting to {location}".encode(),
                                content_type="text/plain; charset=utf-8",
                                headers=[("Location", location)])
        shown = candidates[0][:200] if candidates else ""
        return envelope_error(
            "GE_0001", f"Invalid parameter: url {shown!r} is not an attachment of your projects.")

    def _details(self, query: str, project_id: str) -> Response:
        _access, error = self._open_project(project_id)
        if error is not None:
            return error
        return envelope_ok(self.emulator._catalog.details(project_id))

    def _stats(self, query: str, project_id: str) -> Response:
        _access, error = self._open_project(project_id)
        if error is not None:
            return error
        return envelope_ok(self.emulator._catalog.stats(project_id))


_API_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"/v[01]/projects/([^/]*)/batch/([^/]*)\Z"), "listing", "_listing"),
    (re.compile(r"/v[01]/projects/([^/]*)/jobs/([^/]*)\Z"), "job", "_job"),
    (re.compile(r"/v1/attachments/?\Z"), "attachment", "_attachment"),
    (re.compile(r"/v[01]/projects/([^/]*)/details/?\Z"), "details", "_details"),
    (re.compile(r"/v0/projects/([^/]*)/stats/?\Z"), "details", "_stats"),
]


def _bad_id(name: str, value: str) -> Response:
    return envelope_error(
        "GE_0001", f"Invalid parameter: {name} {value[:80]!r} is not a valid id.")


class StorageHandler(_BaseHandler):
    """The private object store behind the attachment redirect (S3 lookalike)."""

    server_version = "AmazonS3"
    request_class = "storage"
    host_class = "storage"

    def _serve(self) -> None:
        emulator = self.emulator
        split = urlsplit(self.path)
        if any(name.lower() == "x-api-key" for name in self.headers.keys()):
            emulator._count_leak()
        emulator._count_request("storage", unquote(split.path))
        emulator._wait_latency()
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        fault = emulator._next_fault("storage", unquote(split.path))
        if fault == "expire":
            self._write(self._expired(params))
            return
        if self._apply_fault(fault):
            return
        response = self._object(split.path, params)
        # Count before writing: a client may read the counters as soon as it has the answer.
        if response.status == 200:
            size = len(response.body)
            emulator._count_bytes(size // 2 if fault == "truncate" else size)
        elif response.status == 304:
            emulator._count_not_modified()
        self._write(response, fault)

    def _object(self, path: str, params: dict[str, str]) -> Response:
        verdict = self.emulator._signer.check(path, params)
        if verdict == "missing":
            return s3_error(403, "AccessDenied", "Access Denied")
        if verdict == "invalid":
            return s3_error(403, "AccessDenied", "The request signature we calculated does "
                            "not match the signature you provided.")
        if verdict == "expired":
            return self._expired(params)
        found = self.emulator._storage_object(unquote(path))
        if found is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.",
                            Key=unquote(path).lstrip("/"))
        body, etag, content_type = found
        if _etag_matches(self.headers.get("If-None-Match"), etag):
            return Response(304, headers=[("ETag", etag)])
        return Response(200, body, content_type=content_type, headers=[("ETag", etag)])

    def _expired(self, params: dict[str, str]) -> Response:
        return s3_error(403, "AccessDenied", "Request has expired",
                        **{"X-Amz-Expires": params.get("X-Amz-Expires", ""),
                           "Expires": self.emulator._signer.expiry_of(params),
                           "ServerTime": formatdate(usegmt=True)})

    def _server_fault(self, kind: str) -> Response:
        if kind == "429":
            return s3_error(429, "TooManyRequests", "Please reduce your request rate.")
        status, _code, s3_code, message = _SERVER_ERRORS[kind]
        return s3_error(status, s3_code, message)

    def _method_not_allowed(self) -> Response:
        return s3_error(405, "MethodNotAllowed",
                        "The specified method is not allowed against this resource.")


class PublicHandler(_BaseHandler):
    """A plain public web host (a CDN, say) serving some jobs' source media unsigned.

    It never needs a key: a request that carries ``x-api-key`` counts as a leak.
    """

    server_version = "nginx"
    request_class = "public"
    host_class = "public"

    def _serve(self) -> None:
        emulator = self.emulator
        if any(name.lower() == "x-api-key" for name in self.headers.keys()):
            emulator._count_leak()
        emulator._count_request("public")
        emulator._wait_latency()
        path = unquote(urlsplit(self.path).path)
        found = (emulator.media_object(path[len(PUBLIC_PREFIX):])
                 if path.startswith(PUBLIC_PREFIX) else None)
        if found is None:
            response = Response(404, b"not found\n", content_type="text/plain")
        else:
            body, etag, content_type = found
            emulator._count_bytes(len(body))
            response = Response(200, body, content_type=content_type, headers=[("ETag", etag)])
        self._write(response)

    def _server_fault(self, kind: str) -> Response:
        return Response(503, b"unavailable\n", content_type="text/plain")

    def _method_not_allowed(self) -> Response:
        return Response(405, b"method not allowed\n", content_type="text/plain")


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def asset_path(key: str) -> str:
    """The storage path of an asset key (``masks/a.png`` → ``/assets/masks/a.png``)."""
    return ASSET_PREFIX + quote(key)
