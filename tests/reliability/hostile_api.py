"""A deliberately hostile Playment API on loopback: it lists any job id, hands out any
result URL and redirects attachments anywhere. Every request is recorded with its host,
path and headers, so tests can check where the API key went."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

RESULT = json.dumps({"data": {"annotations": {"rectangles": [{
    "_id": "r1", "label": "car",
    "coordinates": [{"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.1}, {"x": 0.2, "y": 0.2},
                    {"x": 0.1, "y": 0.2}]}]}}}).encode()


class HostileApi:
    """``jobs`` maps a listed job id to its result URL (``None``: the storage default).

    ``redirect(result_url) -> location`` picks where the attachment endpoint sends the
    client (default: the storage host). ``storage_redirect`` makes the storage host answer
    302 to that URL instead of the file.
    """

    def __init__(self, jobs: dict[str, str | None], api_key: str) -> None:
        self.jobs = jobs
        self.api_key = api_key
        self.redirect: Callable[[str], str] | None = None
        self.storage_redirect: str | None = None
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._api = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("api"))
        self._storage = ThreadingHTTPServer(("127.0.0.2", 0), self._handler("storage"))
        self.base_url = f"http://127.0.0.1:{self._api.server_address[1]}"
        self.storage_url = f"http://127.0.0.2:{self._storage.server_address[1]}"
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.02},
                                          daemon=True) for s in (self._api, self._storage)]

    def __enter__(self) -> HostileApi:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self._api, self._storage):
            server.shutdown()
            server.server_close()

    def paths(self, host: str) -> list[str]:
        return [path for h, path, _ in self.seen if h == host]

    def key_sent_to(self) -> set[tuple[str, str]]:
        return {(h, urlsplit(p).path) for h, p, headers in self.seen
                if any(k.lower() == "x-api-key" for k in headers)}

    def _handler(self, host: str) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                with api._lock:
                    api.seen.append((host, self.path, dict(self.headers.items())))
                status, headers, body = (api._api_answer if host == "api"
                                         else api._storage_answer)(self.path)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _json(self, data: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps({"success": True, "data": data}).encode()
        return 200, [("Content-Type", "application/json")], body

    def _api_answer(self, raw_path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(raw_path)
        segments = [unquote(s) for s in parts.path.split("/")]
        if "batch" in segments:
            return self._json({"jobs": [{"id": job_id, "status": "completed"}
                                        for job_id in self.jobs]})
        if "jobs" in segments:
            job_id = segments[-1]
            url = self.jobs.get(job_id) or f"{self.storage_url}/results/{job_id}.json"
            return self._json({"job_id": job_id, "status": "completed", "result": url})
        if parts.path == "/v1/attachments":
            url = parse_qs(parts.query)["url"][0]
            location = (self.redirect(url) if self.redirect
                        else self.storage_url + urlsplit(url).path + "?sig=ok")
            return 302, [("Location", location)], b""
        return 200, [("Content-Type", "application/json")], b'{"stolen": true}'

    def _storage_answer(self, raw_path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.storage_redirect:
            return 302, [("Location", self.storage_redirect)], b""
        return 200, [("Content-Type", "application/json"), ("ETag", '"e1"')], RESULT
