"""A faithful local Playment API: a real threaded HTTP server on loopback.

Two hosts are served: the API host (``base_url``: batch pages, job records, the
attachment redirect, project details) and a separate private storage host
(``storage_url``) that only answers signed, expiring URLs, as S3 does. Latency and
faults can be injected, and :attr:`Emulator.stats` counts what was served.

Example:
    >>> import requests
    >>> from playment_datasets.emulator.batch import GeneratedBatch
    >>> with Emulator(GeneratedBatch("proj-1", "batch-1", "Batch 1", jobs=[])) as emu:
    ...     page = requests.get(f"{emu.base_url}/v1/projects/proj-1/batch/batch-1",
    ...                         headers={"x-api-key": emu.api_key}, timeout=5).json()
    >>> page["data"]["jobs"]
    []
"""

from __future__ import annotations

import errno
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob, GroundTruth
from playment_datasets.emulator.catalog import Catalog, sha256_etag
from playment_datasets.emulator.faults import (
    FAULT_KINDS,
    REQUEST_CLASSES,
    FaultPlan,
    coerce_fault_plan,
)
from playment_datasets.emulator.handlers import (
    ASSET_PREFIX,
    PUBLIC_PREFIX,
    RESULT_PATH,
    ApiHandler,
    EmulatorHTTPServer,
    PublicHandler,
    Response,
    StorageHandler,
    asset_path,
    envelope_error,
)
from playment_datasets.emulator.media import MediaTruth, is_media_path, media_truth, render_media
from playment_datasets.emulator.signing import UrlSigner
from playment_datasets.errors import ConfigurationError

__all__ = ["Emulator", "EmulatorStats"]

logger = logging.getLogger(__name__)

_LAST_PAGE_MODES = ("omit", "empty", "null")


@dataclass
class EmulatorStats:
    """A snapshot of what the emulator served since it started (or since reset_stats).

    ``requests`` counts requests per class (``listing``, ``job``, ``attachment``,
    ``storage``, ``details``, ``other``); ``bytes_served`` counts result and asset body
    bytes sent by the storage host; ``not_modified`` counts 304 answers; ``leaks``
    counts storage requests that carried an ``x-api-key`` header; ``faults`` counts
    injected faults per kind (``down`` for outage answers); ``auth_failures`` counts
    requests refused for a missing or wrong key. ``storage_requests`` counts storage
    requests per object path (``urlsplit(url).path`` of a result or mask URL, unquoted).
    ``max_in_flight`` is the most GET requests each host (``api``, ``storage``,
    ``public``) was serving at once: what a client's concurrency looks like from outside.
    Under ``all``, the most requests of any host that were waiting out their latency at
    once (the moment between an answer's last byte and the handler's end, when the client
    may already have sent its next request, is not counted there).
    """

    requests: Counter[str] = field(default_factory=Counter)
    bytes_served: int = 0
    not_modified: int = 0
    leaks: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    auth_failures: int = 0
    storage_requests: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)


class Emulator:
    """Serve one or more generated batches over real HTTP, like api.playment.io.

    With ``batch=None`` a batch of ``jobs`` jobs is generated with
    ``generate_batch(jobs, seed=seed, kinds=kinds, ...)``. Use it as a context manager
    (or call :meth:`start` and :meth:`stop`).

    Args:
        batch: the batch to serve first; its ids become :attr:`project_id` and
            :attr:`batch_id`.
        api_key: the key every API request must carry in ``x-api-key``.
        page_size: jobs per batch page.
        last_page_token: what the last page says about ``next_page_token``: ``"omit"``
            the key (as Playment does), send ``""`` (``"empty"``) or ``null``.
        latency_ms: sleep this long before answering each request (both hosts).
        faults: a :class:`FaultPlan` or its spec string, e.g. ``"503=0.1;seed=7"``.
        signed_url_ttl: lifetime in seconds of the signed storage URLs.
        host, storage_host, port, storage_port: where to listen (0: a free port).
            The storage host is a different loopback address, so clients must treat
            it as another origin.
        auth_failure_status: 400 (Playment's ``auth-failure`` envelope) or 401 (a
            non-JSON body, as some gateways answer).
        mask_size: (width, height) of the PNG masks of a generated batch (default
            64×48; segmentation masks are served like result files, through the
            attachment redirect).

    Example:
        >>> from playment_datasets.emulator.batch import GeneratedBatch
        >>> emu = Emulator(GeneratedBatch("p1", "b1", "Batch", jobs=[]), page_size=10)
        >>> with emu:
        ...     emu.base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        batch: GeneratedBatch | None = None,
        *,
        jobs: int = 50,
        seed: int = 0,
        kinds: Sequence[str] | None = None,
        api_key: str = "emulator-api-key",
        page_size: int = 100,
        last_page_token: Literal["omit", "empty", "null"] = "omit",
        latency_ms: float = 0.0,
        faults: FaultPlan | str | None = None,
        signed_url_ttl: float = 300.0,
        host: str = "127.0.0.1",
        storage_host: str = "127.0.0.2",
        port: int = 0,
        storage_port: int = 0,
        public_host: str = "127.0.0.3",
        public_port: int = 0,
        auth_failure_status: int = 400,
        mask_size: tuple[int, int] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("api_key must be a non-empty string")
        if page_size < 1:
            raise ConfigurationError(f"page_size must be at least 1, got {page_size}")
        if last_page_token not in _LAST_PAGE_MODES:
            raise ConfigurationError(
                f"last_page_token must be one of {', '.join(_LAST_PAGE_MODES)}, "
                f"got {last_page_token!r}")
        if auth_failure_status not in (400, 401):
            raise ConfigurationError(
                f"auth_failure_status must be 400 or 401, got {auth_failure_status}")
        if signed_url_ttl < 0:
            raise ConfigurationError(f"signed_url_ttl must be >= 0, got {signed_url_ttl}")
        self.api_key = api_key
        self.page_size = int(page_size)
        self.last_page_token = last_page_token
        self.auth_failure_status = auth_failure_status
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._stats = EmulatorStats()
        self._in_flight: Counter[str] = Counter()  # requests being served, per host
        self._keys: dict[str, frozenset[str] | None] = {api_key: None}
        self._latency = 0.0
        self.set_latency(latency_ms)
        self._plan: FaultPlan | None = None
        self._rng = random.Random(0)
        self._forced: list[list[Any]] = []
        self.set_faults(faults)
        self._down = False
        self._signer = UrlSigner(signed_url_ttl)
        self._catalog = Catalog()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopped = False

        # Bind now, so the URLs (and the asset base of a generated batch) are known.
        self._api_server = EmulatorHTTPServer((host, port), ApiHandler, self)
        try:
            self._storage_server = _bind_storage(storage_host, storage_port, host, self)
        except BaseException:
            self._api_server.server_close()
            raise
        try:
            self._public_server = _bind_storage(public_host, public_port, host, self,
                                                PublicHandler)
        except BaseException:
            self._api_server.server_close()
            self._storage_server.server_close()
            raise
        self.base_url = _url_of(self._api_server)
        self.storage_url = _url_of(self._storage_server)
        #: A plain public web host (no signatures, no key) for some jobs' source media.
        self.public_url = _url_of(self._public_server)

        if batch is None:
            from playment_datasets.emulator.generator import DEFAULT_MASK_SIZE, generate_batch

            batch = generate_batch(jobs, seed=seed, kinds=kinds,
                                   asset_base_url=self.storage_url + ASSET_PREFIX.rstrip("/"),
                                   mask_size=mask_size or DEFAULT_MASK_SIZE,
                                   public_base_url=self.public_url + PUBLIC_PREFIX.rstrip("/"))
        try:
            self._catalog.add_batch(batch)
        except BaseException:
            self._close_servers()
            raise
        self.batch: GeneratedBatch = batch
        self.project_id: str = batch.project_id
        self.batch_id: str = batch.batch_id

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving (idempotent); returns the emulator for chaining."""
        with self._lock:
            if self._stopped:
                raise ConfigurationError("this emulator was stopped; create a new one")
            if self._started:
                return self
            self._started = True
        for name, server in (("api", self._api_server), ("storage", self._storage_server),
                             ("public", self._public_server)):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                      name=f"playment-emulator-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("Playment emulator serving %s (storage %s)", self.base_url, self.storage_url)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and release the ports (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            started = self._started
        self._stopping.set()
        if started:  # both loops at once: each shutdown() waits up to one poll interval
            waiters = [threading.Thread(target=server.shutdown, daemon=True)
                       for server in (self._api_server, self._public_server)]
            for waiter in waiters:
                waiter.start()
            self._storage_server.shutdown()
            for waiter in waiters:
                waiter.join()
        self._close_servers()
        for thread in self._threads:
            thread.join(timeout=5)
        logger.info("Playment emulator at %s stopped", self.base_url)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._started and not self._stopped else (
            "stopped" if self._stopped else "not started")
        return (f"Emulator(base_url={self.base_url!r}, storage_url={self.storage_url!r}, "
                f"project_id={self.project_id!r}, batch_id={self.batch_id!r}, {state})")

    # -- served data -------------------------------------------------------------------

    @property
    def truth(self) -> GroundTruth:
        """Ground truth of the first batch as generated (before any set_result)."""
        return self.batch.truth

    def add_batch(self, batch: GeneratedBatch) -> None:
        """Serve another batch (of the same or another project)."""
        self._catalog.add_batch(batch)

    def add_job(self, job: GeneratedJob, batch_id: str | None = None) -> None:
        """Append ``job`` to a served batch (default: the first batch)."""
        batch_id = self.batch_id if batch_id is None else batch_id
        project_id = self._catalog.batch_of(batch_id)
        if project_id is None:
            raise ConfigurationError(f"batch {batch_id!r} is not served; add it with add_batch()")
        self._catalog.add_job(job, project_id, batch_id)

    def remove_job(self, job_id: str) -> None:
        """Stop serving a job: it leaves the pages, and its result URL stops working."""
        self._catalog.remove_job(job_id)

    def set_result(self, job_id: str, result: dict[str, Any] | bytes | None,
                   status: str = "completed") -> None:
        """Replace a job's result file; new bytes get a new ETag.

        ``bytes`` are served as they are (to serve malformed files); ``None`` makes the
        job not completed (status ``in_progress`` unless another one is given).
        """
        self._catalog.set_result(job_id, result, status)

    def result(self, job_id: str) -> dict[str, Any] | None:
        """A copy of the result a job serves now (``None``: not completed or not JSON).

        Edit the copy and hand it to :meth:`set_result` to change the job::

            result = emu.result(job_id)
            result["data"]["annotations"]["rectangles"].pop()
            emu.set_result(job_id, result)
        """
        served = self._catalog.find_job(job_id)
        if served is None:
            raise ConfigurationError(f"job {job_id!r} is not served by this emulator")
        raw = served.job.result_bytes
        if raw is None:
            return None
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def add_foreign_project(self, project_id: str) -> None:
        """Make ``project_id`` exist without access for any key (→ ``unauthorized``)."""
        self._catalog.add_foreign_project(project_id)

    def add_api_key(self, api_key: str, project_ids: Iterable[str]) -> None:
        """Accept another key that may read only ``project_ids``."""
        if not api_key:
            raise ConfigurationError("api_key must be a non-empty string")
        with self._lock:
            self._keys[api_key] = frozenset(project_ids)

    def revoke_api_key(self, api_key: str) -> None:
        """Refuse ``api_key`` from now on (``auth-failure``), as after a user rotates it.

        Example:
            >>> import requests
            >>> with Emulator(jobs=1) as emu:
            ...     emu.revoke_api_key(emu.api_key)
            ...     url = f"{emu.base_url}/v1/projects/{emu.project_id}/batch/{emu.batch_id}"
            ...     answer = requests.get(url, headers={"x-api-key": emu.api_key}, timeout=5)
            >>> answer.json()["error"]["code"]
            'auth-failure'
        """
        with self._lock:
            self._keys.pop(api_key, None)

    def result_url(self, job_id: str) -> str:
        """The private (unsigned) result URL a completed job's record carries."""
        served = self._catalog.find_job(job_id)
        if served is None:
            raise ConfigurationError(f"job {job_id!r} is not served by this emulator")
        return (f"{self.storage_url}/results/{served.project_id}/{served.batch_id}/"
                f"{job_id}.json")

    # -- behaviour ---------------------------------------------------------------------

    def set_faults(self, faults: FaultPlan | str | None) -> None:
        """Replace the fault plan (its random stream restarts from its seed)."""
        plan = coerce_fault_plan(faults)
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed if plan is not None else 0)

    def fail_next(self, n: int, kind: str, request_class: str | None = None, *,
                  url: str | None = None) -> None:
        """Make the next ``n`` requests of ``request_class`` (any when None) fail with ``kind``.

        With ``url`` (a result or mask URL) only storage requests for that object fail.

        Example: ``emu.fail_next(2, "503", "job")`` — the next two job requests get 503.
        """
        if url is not None and request_class not in (None, "storage"):
            raise ConfigurationError("a fault for one url applies to storage requests only")
        if kind not in FAULT_KINDS:
            raise ConfigurationError(
                f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if request_class is not None and request_class not in REQUEST_CLASSES:
            raise ConfigurationError(
                f"unknown request class {request_class!r}; expected one of "
                f"{', '.join(REQUEST_CLASSES)}")
        if kind == "expire" and request_class not in (None, "storage"):
            raise ConfigurationError("the 'expire' fault only applies to storage requests")
        if n < 1:
            raise ConfigurationError(f"n must be at least 1, got {n}")
        with self._lock:
            if url is not None:
                self._forced.append([n, kind, "storage", unquote(urlsplit(url).path)])
            else:
                self._forced.append([n, kind, request_class, None])

    def set_latency(self, ms: float) -> None:
        """Sleep ``ms`` milliseconds before answering each request."""
        if ms < 0:
            raise ConfigurationError(f"latency must be >= 0 ms, got {ms}")
        with self._lock:
            self._latency = ms / 1000.0

    def set_down(self, down: bool) -> None:
        """Outage switch: while down, every API request answers 503."""
        with self._lock:
            self._down = bool(down)

    # -- statistics --------------------------------------------------------------------

    @property
    def stats(self) -> EmulatorStats:
        """A consistent copy of the counters."""
        with self._lock:
            s = self._stats
            return EmulatorStats(Counter(s.requests), s.bytes_served, s.not_modified, s.leaks,
                                 Counter(s.faults), s.auth_failures,
                                 Counter(s.storage_requests), Counter(s.max_in_flight))

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._stats = EmulatorStats()
            self._in_flight.clear()

    # -- used by the request handlers ----------------------------------------------------

    def _count_request(self, request_class: str, path: str | None = None) -> None:
        with self._lock:
            self._stats.requests[request_class] += 1
            if path is not None:
                self._stats.storage_requests[path] += 1

    def _enter(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] += 1
            peak = self._stats.max_in_flight
            peak[host] = max(peak[host], self._in_flight[host])

    def _leave(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] = max(0, self._in_flight[host] - 1)

    def _wait_latency(self) -> None:
        """Sleep the request's latency, counted in ``max_in_flight["all"]``."""
        self._enter("all")
        try:
            self._pause(self._latency_seconds())
        finally:
            self._leave("all")

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._stats.faults[kind] += 1

    def _count_auth_failure(self) -> None:
        with self._lock:
            self._stats.auth_failures += 1

    def _count_leak(self) -> None:
        with self._lock:
            self._stats.leaks += 1

    def _count_bytes(self, n: int) -> None:
        with self._lock:
            self._stats.bytes_served += n

    def _count_not_modified(self) -> None:
        with self._lock:
            self._stats.not_modified += 1

    def _latency_seconds(self) -> float:
        with self._lock:
            return self._latency

    def _is_down(self) -> bool:
        with self._lock:
            return self._down

    def _pause(self, seconds: float) -> None:
        # An Event wait, not time.sleep: stop() interrupts it, and tests that patch
        # time.sleep to speed up a client's retries leave the server's timing alone.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _fault_params(self) -> FaultPlan:
        with self._lock:
            return self._plan if self._plan is not None else FaultPlan()

    def _next_fault(self, request_class: str, path: str | None = None) -> str | None:
        with self._lock:
            kind = None
            for entry in self._forced:
                remaining, forced_kind, only, only_path = entry
                if only not in (None, request_class) or only_path not in (None, path):
                    continue
                if forced_kind == "expire" and request_class != "storage":
                    continue
                entry[0] = remaining - 1
                if entry[0] <= 0:
                    self._forced.remove(entry)
                kind = forced_kind
                break
            if kind is None and self._plan is not None:
                kind = self._plan.draw(self._rng, request_class)
            if kind is not None:
                self._stats.faults[kind] += 1
            return kind

    def _key_access(self, key: str | None) -> tuple[bool, frozenset[str] | None]:
        with self._lock:
            if key is None or key not in self._keys:
                return False, None
            return True, self._keys[key]

    def _storage_path_for(self, url: str, access: frozenset[str] | None
                          ) -> tuple[str | None, Response | None]:
        """The storage path an attachment URL names, or why it is refused."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            return None, None
        match = RESULT_PATH.match(parts.path)
        if match and parts.netloc == urlsplit(self.storage_url).netloc:
            project_id, batch_id, job_id = match.groups()
            served = self._catalog.job(project_id, job_id)
            if served is not None and served.batch_id == batch_id and served.has_result:
                if access is not None and project_id not in access:
                    return None, envelope_error(
                        "unauthorized", "You are not authorized to access this attachment.")
                return parts.path, None
        key = self._catalog.find_asset_key(parts.path)
        if key is not None:
            return asset_path(key), None
        if (parts.netloc == urlsplit(self.storage_url).netloc
                and parts.path.startswith(ASSET_PREFIX)
                and is_media_path(unquote(parts.path[len(ASSET_PREFIX):]))):
            return parts.path, None  # a source image or sensor file, made on demand
        return None, None

    def _storage_object(self, path: str) -> tuple[bytes, str, str] | None:
        """Body, ETag and content type of a storage path (``None``: no such object)."""
        match = RESULT_PATH.match(path)
        if match:
            project_id, batch_id, job_id = match.groups()
            served = self._catalog.job(project_id, job_id)
            if (served is None or served.batch_id != batch_id or served.body is None
                    or served.etag is None):
                return None
            return served.body, served.etag, "application/json"
        if path.startswith(ASSET_PREFIX):
            asset = self._catalog.asset(path[len(ASSET_PREFIX):])
            if asset is not None:
                return asset.body, asset.etag, asset.content_type
            return self.media_object(path[len(ASSET_PREFIX):])
        return None

    def media_object(self, key: str) -> tuple[bytes, str, str] | None:
        """Body, ETag and content type of the source media file ``key`` (images/…)."""
        if not is_media_path(key):
            return None
        body, content_type = render_media(key)
        return body, sha256_etag(body), content_type

    def media_truth(self, url: str) -> MediaTruth:
        """What the media file at ``url`` (private or public) holds: size, bytes, sha256.

        Example:
            >>> emu.media_truth(ds.jobs["image_url"][0]).width   # doctest: +SKIP
            117
        """
        path = unquote(urlsplit(url).path)
        for prefix in (ASSET_PREFIX, PUBLIC_PREFIX):
            if path.startswith(prefix) and is_media_path(path[len(prefix):]):
                return media_truth(path[len(prefix):])
        raise ConfigurationError(f"{url!r} is not a media URL this emulator serves")

    def _close_servers(self) -> None:
        for server in (self._api_server, self._storage_server, self._public_server):
            server.close_connections()
            server.server_close()


def _url_of(server: EmulatorHTTPServer) -> str:
    host, port = server.socket.getsockname()[:2]
    return f"http://{host}:{port}"


def _bind_storage(storage_host: str, storage_port: int, api_host: str,
                  emulator: Emulator, handler: type[Any] = StorageHandler) -> EmulatorHTTPServer:
    try:
        return EmulatorHTTPServer((storage_host, storage_port), handler, emulator)
    except OSError as exc:
        # Only Linux routes all of 127.0.0.0/8 to loopback; elsewhere fall back to the
        # API address (another port is still another origin for a client).
        if exc.errno != errno.EADDRNOTAVAIL or storage_host == api_host:
            raise
        logger.warning("cannot listen on %s (%s); serving storage on %s instead",
                       storage_host, exc.strerror, api_host)
        return EmulatorHTTPServer((api_host, storage_port), handler, emulator)
