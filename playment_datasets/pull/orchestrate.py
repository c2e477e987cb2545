"""pull(): one call from a Playment batch to a versioned local dataset.

The stages, each streaming into the next so memory stays flat as a batch grows:

1. list the batch (pages of job summaries);
2. fetch job records and result files with a bounded pool of threads; each worker
   stores the raw result in the registry's content-addressed object store and journals
   it at once, so a pull stopped at any point (even by SIGKILL) resumes fetching only
   what was in flight;
3. normalize each result into Arrow tables, in listing order, and append them to one
   Parquet writer per table;
4. commit a version — or, when the content equals the latest version, return that.

A re-pull is incremental: it sends each result's stored ETag (``If-None-Match``) and
skips the job record request for jobs whose listed status did not change, and it
normalizes nothing until it meets a changed job. It compares against the latest version
as it is once the batch lock is taken (a pull that waited for another one reuses what
that one committed), and only after verifying it: a damaged latest version is rebuilt.
Jobs that fail after all retries, or whose result cannot be parsed, are listed in the
``errors`` table; the version still commits and says so.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.pull("PROJECT_ID", "BATCH_ID", workers=32)  # doctest: +SKIP
    >>> ds.annotations.groupby("label").size()               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from playment_datasets.api.client import Limits, PlaymentClient, RetryPolicy, Timeouts
from playment_datasets.api.ids import validate_id
from playment_datasets.dataset.dataset import Dataset
from playment_datasets.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidIdError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PlaymentDatasetsError,
    PullError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)
from playment_datasets.pull import masks as _masks
from playment_datasets.pull.normalizing import OrderedNormalizer, check_processes
from playment_datasets.pull.previous import Previous, read_previous
from playment_datasets.pull.progress import make_progress
from playment_datasets.registry.registry import Registry
from playment_datasets.registry.shards import check_shard, listing_fingerprint, shard_of
from playment_datasets.registry.staging import (
    CommitResult,
    LatestChangedError,
    Staging,
    content_id_of,
)
from playment_datasets.registry.store import registry_write_error

__all__ = ["DEFAULT_LOCK_TIMEOUT", "DEFAULT_WORKERS", "PullStats", "pull"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_U = TypeVar("_U")

#: Threads fetching at once. The work is mostly waiting on the network, so this is
#: sized for latency: on a 2-core machine 64 beat 32 at both 20 ms and 100 ms per
#: request, and 128 lost at 20 ms to contention (benchmarks/bench_scaling.py).
DEFAULT_WORKERS = 64

#: Seconds a pull waits for another pull of the same batch to finish. Generous: the
#: waiting pull then reuses what the other one committed, which beats failing.
DEFAULT_LOCK_TIMEOUT = 3600.0

#: Rows normalized before they are converted to Arrow and written together: large
#: enough to amortize the conversion, small enough to keep memory flat.
_ROWS_PER_WRITE = 50_000

#: This many consecutive jobs failing with server or network errors means the service
#: is down rather than a few jobs being bad: the pull stops (and resumes later).
_OUTAGE_STREAK = 20


@dataclass
class PullStats:
    """What one pull did; stored in the manifest under ``extra.pull`` (``ds.pull_stats``)."""

    listed: int = 0
    fetched: int = 0
    not_modified: int = 0
    resumed: int = 0
    skipped_job_requests: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    with_masks: bool = True
    masks_fetched: int = 0
    masks_not_modified: int = 0
    mask_bytes_downloaded: int = 0
    masks_failed: int = 0
    mask_failures: dict[str, int] = field(default_factory=dict)
    #: worker processes that normalized (pull(processes=…)); 0 when it all ran here
    processes: int = 0


@dataclass
class _Outcome:
    """What a worker learned about one job."""

    job_id: str
    record: dict[str, Any]
    sha256: str | None = None
    etag: str | None = None
    content: bytes | None = None
    error: dict[str, Any] | None = None
    not_modified: bool = False
    resumed: bool = False
    #: mask entries (pull/masks.py); None when masks are not fetched or the job has no result
    masks: list[dict[str, Any]] | None = None
    fetched_masks: _masks.FetchedMasks | None = None


#: A worker's outcome, or its future while the job's masks download.
_Pending = _Outcome | Future[_Outcome]


def pull(
    project_id: str,
    batch_id: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    registry: str | os.PathLike[str] | Registry | None = None,
    workers: int = DEFAULT_WORKERS,
    rate_limit: float | None = None,
    progress: bool | None = None,
    retry: RetryPolicy | None = None,
    timeout: Timeouts | None = None,
    limits: Limits | None = None,
    verify: bool | str | os.PathLike[str] = True,
    ca_bundle: str | os.PathLike[str] | None = None,
    refresh_jobs: bool = False,
    shard: tuple[int, int] | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    masks: bool = True,
    processes: int | None = None,
) -> Dataset:
    """Fetch every job result of a batch into a new version of a local dataset.

    Args:
        project_id: the Playment project id.
        batch_id: the batch id.
        api_key: defaults to the ``PLAYMENT_API_KEY`` environment variable.
        base_url: defaults to ``PLAYMENT_BASE_URL``, else ``https://api.playment.io``.
        registry: a :class:`Registry` or its path; defaults to ``PLAYMENT_DATASETS_HOME``,
            else a per-user data directory.
        workers: requests in flight at once (and, with masks, as many more for masks).
        rate_limit: at most this many requests per second, or ``None``.
        progress: show progress bars; ``None`` shows them in a terminal or notebook.
        retry, timeout, limits: see :class:`RetryPolicy`, :class:`Timeouts` (a total
            deadline per request) and :class:`Limits` (body sizes, listing pages).
        verify, ca_bundle: TLS certificate checks; see :class:`PlaymentClient`
            (``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` by default; proxies come from
            ``HTTPS_PROXY`` / ``NO_PROXY``, docs/pulling.md).
        refresh_jobs: re-read every job record even when the listing shows the job
            unchanged since the latest version (to refresh priority, tag, workflow).
        shard: ``(i, n)`` pulls only shard ``i`` of ``n`` (a stable 1/n of the jobs) into
            the registry's shard staging area and returns it as a version-0 Dataset;
            :meth:`Registry.commit_shards` then makes the version (docs/scale-out.md).
        lock_timeout: seconds to wait for another pull of the same batch (then this pull
            is an incremental re-pull of what that one committed); RegistryLockError,
            naming the process that holds the lock, after that.
        masks: fetch the mask files of segmentation results (``masks`` table,
            ``ds.mask()``); ``False`` skips them (their rows say ``not_fetched``).
        processes: worker processes that normalize (and decode masks) while the threads
            fetch; ``None``: one per core but one (at most 4), ``0``: none. A pull of
            fewer than 64 jobs never starts one. The output is the same either way.

    Returns:
        The new version, or the latest one when nothing changed. ``ds.errors`` lists
        jobs that could not be fetched or parsed.

    Raises:
        AuthenticationError, PermissionDeniedError: the key was refused.
        PullError: the API stopped answering; run the same call again to resume.
        RegistryLockError: another pull of the batch held it longer than ``lock_timeout``.

    Example:
        >>> ds = pull("PROJECT_ID", "BATCH_ID", progress=False)  # doctest: +SKIP
        >>> ds.version, len(ds.jobs)                              # doctest: +SKIP
        (1, 1000)
    """
    validate_id(project_id, "project id")
    validate_id(batch_id, "batch id")
    if workers < 1:
        raise ConfigurationError(f"workers must be a whole number >= 1; got {workers!r}")
    processes = check_processes(processes)
    if not lock_timeout >= 0:  # also refuses NaN
        raise ConfigurationError(f"lock_timeout must be seconds >= 0; got {lock_timeout!r}")
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    if shard is not None:
        shard = check_shard(shard)
        if reg._pull_target() is not reg:
            raise ConfigurationError(
                "sharded pulls stage into a registry directory every worker shares; got a "
                f"remote registry {reg!r}. Pull the shards into a shared local or network "
                "path, commit_shards() there, then publish() the version."
            )
    client = PlaymentClient(
        api_key, base_url=base_url, retry=retry, timeout=timeout, limits=limits,
        # masks download in a second set of threads: connections for both
        verify=verify, ca_bundle=ca_bundle, pool_size=workers * (2 if masks else 1),
        rate_limit=rate_limit,
    )
    with client:
        try:
            # A remote registry stages and commits into a local working registry first.
            run = _PullRun(reg._pull_target(), client, project_id, batch_id, workers, progress,
                           refresh_jobs, shard, lock_timeout, masks=masks,
                           processes=processes)
            dataset = run.execute()
        except OSError as exc:
            # The client turns network errors into TransportError: an OSError here is
            # the disk. A full disk, a read-only registry, a file where a directory belongs…
            raise registry_write_error(exc, reg.root) from None
    return reg._publish_pulled(dataset)


class _PullRun:
    """The state of one pull; :meth:`execute` runs it."""

    def __init__(
        self,
        registry: Registry,
        client: PlaymentClient,
        project_id: str,
        batch_id: str,
        workers: int,
        progress: bool | None,
        refresh_jobs: bool,
        shard: tuple[int, int] | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        *,
        masks: bool = True,
        processes: int = 0,
    ) -> None:
        self.registry = registry
        self.processes = processes
        #: PNG masks are decoded by the fetching threads only when nothing else will
        self.decode_in_threads = processes == 0
        self.client = client
        self.project_id = project_id
        self.batch_id = batch_id
        self.workers = workers
        self.progress = progress
        self.refresh_jobs = refresh_jobs
        self.shard = shard
        self.shard_extra: dict[str, Any] = {}
        self.stats = PullStats(with_masks=masks)
        self.quarantined: dict[str, dict[str, Any]] = {}
        self.lock_timeout = lock_timeout
        self.previous: Previous | None = None  # read once the batch lock is held
        #: the fetching threads; a job's masks (one per frame of a video) are tasks of
        #: the same pool, so they download side by side while the job's thread goes on
        #: to the next job, and ``workers`` bounds job and mask requests together
        self.pool: ThreadPoolExecutor | None = None

    def execute(self) -> Dataset:
        started = time.perf_counter()
        if self.shard is None:
            staging = self.registry.open_staging(
                self.project_id, self.batch_id, lock_timeout=self.lock_timeout)
        else:
            staging = self.registry.open_shard_staging(
                self.project_id, self.batch_id, *self.shard)
        with staging:
            # Under the lock: a pull that waited compares against what the winner committed.
            self.previous = read_previous(self.registry, self.batch_id, self.project_id)
            journal = staging.journal()
            emitter = _Emitter(self, staging.writer())
            try:
                self._fetch_all(self._iter_listing(), journal, staging, emitter)
                jobs = emitter.manifest_jobs
                previous_id = self.previous.content_id if self.previous else None
                if content_id_of(jobs) != previous_id:
                    emitter.flush_pending()
                emitter.close()
            except KeyboardInterrupt:
                emitter.abort()
                log.warning(
                    "pull of batch %s interrupted: %d jobs are stored; run the same pull "
                    "again to resume", self.batch_id, len(staging.journal()),
                )
                raise
            except BaseException:
                emitter.abort()
                raise
            self.stats.seconds = round(time.perf_counter() - started, 3)
            result = self._commit(staging, emitter)
        if self.stats.failed:
            log.warning(
                "batch %s: %d of %d jobs could not be fetched or parsed; they are listed in "
                "the errors table of version %d", self.batch_id, self.stats.failed,
                self.stats.listed, result.version,
            )
        verb = "committed" if result.created else "unchanged; latest is"
        log.info("batch %s: %s version %d", self.batch_id, verb, result.version)
        if self.shard is not None:
            return Dataset(result.path, objects=self.registry.get_object)  # a shard (v0)
        return self.registry.load(self.batch_id, result.version)

    def _commit(self, staging: Staging, emitter: _Emitter) -> CommitResult:
        """Commit; write the held-back rows first if the latest version changed meanwhile."""
        options: dict[str, Any] = {
            "jobs": emitter.manifest_jobs,
            "source": {"base_url": self.client.base_url},
            "extra": {"pull": vars(self.stats), **self.shard_extra},
            # A latest version that failed verification is replaced, not kept as "unchanged".
            "force": bool(self.previous and not self.previous.trusted),
        }
        try:
            return staging.commit(tables_complete=emitter.flushed, **options)
        except LatestChangedError:
            log.info("batch %s: the latest version changed during the pull; writing the rows "
                     "of its unchanged jobs from the stored raw results", self.batch_id)
        emitter.writer = staging.writer()  # the closed tables are discarded
        emitter.flush_pending()
        emitter.close()
        return staging.commit(**options)

    # -- listing ---------------------------------------------------------------------

    def _iter_listing(self) -> Iterator[dict[str, Any]]:
        """Job summaries page by page, as the fetch loop asks for them.

        Listing is sequential (each page names the next), so it runs interleaved with
        fetching instead of before it. Repeated ids are dropped; unsafe ids are
        quarantined; with ``shard``, only this shard's jobs are yielded.
        """
        seen: set[str] = set()
        for summary in self.client.iter_batch_jobs(self.project_id, self.batch_id):
            job_id = str(summary["id"])
            if job_id in seen:  # a job listed twice is pulled once
                continue
            seen.add(job_id)
            if self.shard is not None and shard_of(job_id, self.shard[1]) != self.shard[0]:
                continue
            try:
                validate_id(job_id, "job id")
            except InvalidIdError as exc:
                # One hostile id must not cost the batch: never fetched, never used
                # in a path, listed in the errors table.
                log.warning("batch %s: quarantined a job: %s", self.batch_id, exc)
                self.quarantined[job_id] = _error_entry("list", exc)
            self.stats.listed += 1
            yield summary
        if self.shard is not None:
            index, count = self.shard
            self.shard_extra = {"shard": {
                "index": index, "count": count, "listed": len(seen),
                "listing_sha256": listing_fingerprint(seen),
            }}
        log.info("listed %d jobs of batch %s", self.stats.listed, self.batch_id)

    # -- fetching --------------------------------------------------------------------

    def _fetch_all(self, summaries, journal, staging, emitter: _Emitter) -> None:
        """Fetch with a bounded window in flight; emit outcomes in listing order."""
        window = self.workers * 4
        pending = iter(summaries)  # pulls pages lazily
        in_flight: deque[Future[_Pending] | _Outcome] = deque()
        submit = self._submitter(journal, staging)
        streak = 0
        bar = make_progress(self.progress, desc="pulling", unit="job")
        pool = self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="playment-pull")

        def top_up() -> None:
            while len(in_flight) < window:
                summary = next(pending, None)
                if summary is None:
                    bar.total = self.stats.listed  # the listing is complete: show a total
                    bar.refresh()
                    return
                in_flight.append(submit(pool, summary))

        try:
            with bar:
                top_up()
                while in_flight:
                    item = in_flight.popleft()
                    outcome = item.result() if isinstance(item, Future) else item
                    if isinstance(outcome, Future):  # its masks were still downloading
                        outcome = outcome.result()
                    top_up()
                    streak = streak + 1 if outcome.error and outcome.error["outage"] else 0
                    if streak >= _OUTAGE_STREAK:
                        self._salvage(pool, in_flight, staging)
                        last = outcome.error["message"] if outcome.error else ""
                        raise self._outage(staging, f"{_OUTAGE_STREAK} jobs in a row failed "
                                                    f"after all retries (last: {last})")
                    emitter.emit(outcome)
                    if outcome.fetched_masks and outcome.fetched_masks.entries:
                        bar.set_postfix_str(_masks.progress_text(self.stats))
                    bar.update(1)
        except (ServerError, TransportError) as exc:  # the listing failed after all retries
            self._salvage(pool, in_flight, staging)
            if not self.stats.listed:
                raise  # unreachable from the start: the client's error says it best
            raise self._outage(staging, f"listing the batch failed ({exc})") from None
        except BaseException:
            self.client.cancel()  # Ctrl-C: workers stuck in slow downloads end now
            self._salvage(pool, in_flight, staging)
            raise
        finally:
            pool.shutdown(wait=True)

    def _salvage(self, pool: ThreadPoolExecutor, in_flight, staging) -> None:
        """On the way out of a failed pull, let running downloads finish and drop what
        has not started. A job is journalled once its result and every mask are stored,
        so a job whose masks had not all started is not, and the next run fetches it."""
        pool.shutdown(wait=True, cancel_futures=True)
        in_flight.clear()

    def _submitter(self, journal: Mapping[str, Any], staging: Staging):
        """Returns submit(pool, summary): a finished outcome from the journal, or a future."""

        def submit(
            pool: ThreadPoolExecutor, summary: dict[str, Any]
        ) -> Future[_Pending] | _Outcome:
            job_id = str(summary["id"])
            if job_id in self.quarantined:
                return _journal(staging, _Outcome(job_id, dict(summary),
                                                  error=self.quarantined[job_id]))
            entry = journal.get(job_id)
            if entry is not None and entry.error is None and (
                entry.result_sha256 is None or self.registry.has_object(entry.result_sha256)
            ):
                self.stats.resumed += 1
                record, masks = {**summary, **entry.job}, entry.extra.get("masks")
                if (not self.stats.with_masks or entry.result_sha256 is None
                        or _masks.all_stored(masks, self.registry.has_object)):
                    return _Outcome(job_id, record, entry.result_sha256, entry.etag,
                                    resumed=True, masks=masks if self.stats.with_masks else None)
                # the result is stored, a mask is not: fetch only the masks it lacks
                outcome = _Outcome(job_id, record, entry.result_sha256, entry.etag)
                return pool.submit(lambda: _then(self._resume_masks(outcome, masks),
                                                 partial(_journal, staging)))
            return pool.submit(lambda: _then(self._fetch_one(summary),
                                             partial(_journal, staging)))

        return submit

    def _fetch_one(self, summary: dict[str, Any]) -> _Pending:
        """Runs in a worker thread: the job record, then the result file."""
        job_id = str(summary["id"])
        before = self.previous.jobs.get(job_id) if self.previous else None
        try:
            record = self._job_record(summary, before)
            url = record.get("result") or ""
            status = str(record.get("status") or "")
            if not url or status.lower() != "completed":
                return _Outcome(job_id, record)
            etag = stored_sha = None
            if before and before.get("etag") and before.get("result_sha256"):
                if self.registry.has_object(before["result_sha256"]):
                    etag, stored_sha = before["etag"], before["result_sha256"]
            try:
                got = self.client.fetch_result(url, etag=etag)
            except (InvalidRequestError, NotFoundError):
                if not record.get("_from_previous"):
                    raise
                # The stored URL went stale (a redeployed API refuses it): ask again.
                record = self._job_record(summary, None)
                if not record.get("result"):
                    return _Outcome(job_id, record)
                got = self.client.fetch_result(record["result"], etag=etag)
            if got.not_modified:  # only possible when an etag (and so stored_sha) was sent
                return self._with_masks(
                    _Outcome(job_id, record, stored_sha, etag, not_modified=True), before)
            assert got.content is not None
            sha = self.registry.put_object(got.content)
            return self._with_masks(
                _Outcome(job_id, record, sha, got.etag, content=got.content), before)
        except AuthenticationError:
            raise  # the key is refused: no job can succeed
        except PermissionDeniedError as exc:
            if exc.url and "/projects/" in exc.url:
                raise  # no access to the project: no job can succeed
            return _Outcome(job_id, dict(summary), error=_error_entry("fetch", exc))
        except (APIError, TransportError) as exc:
            outage = isinstance(exc, (ServerError, TransportError)) and not isinstance(
                exc, ResponseTooLargeError)
            return _Outcome(job_id, dict(summary), error=_error_entry("fetch", exc, outage))

    def _with_masks(self, outcome: _Outcome, before: Mapping[str, Any] | None
                    ) -> _Pending:
        """Queue the job's masks in the pull's pool: the outcome, complete once they are
        fetched (a future, unless there was nothing to fetch)."""
        if not self.stats.with_masks:
            return outcome
        fetching = _masks.fetch_job_masks(
            self.client, self.registry, outcome.content, outcome.sha256, before,
            self.previous is not None and self.previous.pulled_masks(),
            decode=self.decode_in_threads, pool=self.pool,
        )
        return _then(fetching, partial(_add_masks, outcome))

    def _resume_masks(self, outcome: _Outcome, stored: Any) -> _Pending:
        """Runs in a worker: the masks a journalled job lacks (its others are not asked for)."""
        fetching = _masks.resume_job_masks(self.client, self.registry, outcome.sha256, stored,
                                           decode=self.decode_in_threads, pool=self.pool)
        return _then(fetching, partial(_add_masks, outcome))

    def _job_record(
        self, summary: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The job record; taken from the latest version when the listing shows no change."""
        status = str(summary.get("status"))
        if (
            not self.refresh_jobs
            and before
            and self.previous is not None
            and self.previous.trusted  # its job records are read from its jobs table
            and status == before.get("status")
            and (before.get("result_url") or status.lower() != "completed")
        ):
            self.stats.skipped_job_requests += 1
            return {**summary, "job_id": summary["id"], "status": before["status"],
                    "result": before.get("result_url") or "", "_from_previous": True}
        record = self.client.get_job(self.project_id, str(summary["id"]))
        return {**summary, **record}

    def _outage(self, staging, what: str) -> PullError:
        # Only jobs a rerun will not fetch again count as stored: failed ones are retried.
        stored = sum(1 for entry in staging.journal().values() if entry.error is None)
        return PullError(
            f"the Playment API stopped answering while pulling batch {self.batch_id}: "
            f"{what}. {stored} of the {self.stats.listed} jobs listed so far are stored; "
            "run the same pull again to resume."
        )


class _Emitter:
    """Normalizes outcomes in listing order and writes them.

    Jobs whose result equals the latest version's are held back as ids only: if the
    whole batch turns out unchanged no version is made and nothing is normalized.
    """

    def __init__(self, run: _PullRun, writer) -> None:
        self.run = run
        self.writer = writer
        self.pending: list[_Outcome] = []
        self.manifest_jobs: dict[str, dict[str, Any]] = {}
        # Rows are held back only while they can be had from a sound latest version.
        self.flushed = run.previous is None or not run.previous.trusted
        self.normalizer = OrderedNormalizer(lambda tables: self.writer.write(tables),
                                            processes=run.processes,
                                            rows_per_write=_ROWS_PER_WRITE)

    def emit(self, outcome: _Outcome) -> None:
        stats = self.run.stats
        if outcome.error:
            stats.failed += 1
            kind = outcome.error["error_type"]
            stats.failures[kind] = stats.failures.get(kind, 0) + 1
        elif outcome.not_modified:
            stats.not_modified += 1
        elif outcome.content is not None:
            stats.fetched += 1
            stats.bytes_downloaded += len(outcome.content)
        if outcome.fetched_masks is not None:
            _masks.count(stats, outcome.fetched_masks)
        self.manifest_jobs[outcome.job_id] = _manifest_entry(outcome)
        meta = _Outcome(outcome.job_id, outcome.record, outcome.sha256, outcome.etag,
                        error=outcome.error, not_modified=outcome.not_modified,
                        masks=outcome.masks)
        unchanged = self._unchanged(outcome)
        if not self.flushed and unchanged:
            self.pending.append(meta)
            return
        self.flush_pending()
        self._write(outcome)

    def flush_pending(self) -> None:
        if self.flushed:
            return
        self.flushed = True
        for meta in self.pending:
            self._write(meta)
        self.pending.clear()

    def _unchanged(self, outcome: _Outcome) -> bool:
        previous = self.run.previous
        if previous is None or outcome.error:
            return False
        before = previous.jobs.get(outcome.job_id)
        return (before is not None and before.get("result_sha256") == outcome.sha256
                and _masks.mask_shas(before.get("masks")) == _masks.mask_shas(outcome.masks))

    def _write(self, outcome: _Outcome) -> None:
        self.normalizer.expect(self.run.stats.listed)  # the first job: start the workers
        record = dict(outcome.record)
        if record.pop("_from_previous", False) and self.run.previous:
            record = {**self.run.previous.records().get(outcome.job_id, {}), **record}
        record.update(
            project_id=self.run.project_id, batch_id=self.run.batch_id,
            etag=outcome.etag, result_sha256=outcome.sha256,
        )
        record.setdefault("job_id", outcome.job_id)
        if outcome.error:
            error = outcome.error
            self.normalizer.add_failure(
                record, stage=error["stage"], error_type=error["error_type"],
                message=error["message"], http_status=error.get("http_status"),
                code=error.get("code"), raw_sha256=outcome.sha256,
            )
        else:
            raw = outcome.content
            if raw is None and outcome.sha256:
                raw = self.run.registry.get_object(outcome.sha256)
            self.normalizer.add(raw, record, _masks.mask_values(
                outcome.masks, outcome.fetched_masks, self.run.registry.get_object))

    def close(self) -> None:
        """Write what is still buffered (call once every outcome was emitted)."""
        self.normalizer.close()
        self.run.stats.processes = self.normalizer.started

    def abort(self) -> None:
        """Stop normalizing (the pull failed): nothing more is written."""
        self.normalizer.abort()


def _then(value: _T | Future[_T], fn: Callable[[_T], _U]) -> _U | Future[_U]:
    """``fn(value)``, or, for a future not done yet, a future of it (run in the thread
    that completes ``value``; an exception is handed on)."""
    if not isinstance(value, Future):
        return fn(value)
    if value.done():
        return fn(value.result())
    chained: Future[_U] = Future()

    def run(done: Future[_T]) -> None:
        try:
            chained.set_result(fn(done.result()))
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits
            chained.set_exception(exc)

    value.add_done_callback(run)
    return chained


def _add_masks(outcome: _Outcome, fetched: _masks.FetchedMasks) -> _Outcome:
    outcome.fetched_masks, outcome.masks = fetched, fetched.entries
    return outcome


def _journal(staging: Staging, outcome: _Outcome) -> _Outcome:
    """Journal a worker's finished outcome (any thread), then hand it on unchanged."""
    staging.record(outcome.job_id, outcome.record, outcome.sha256, outcome.etag, outcome.error,
                   _journal_extra(outcome))
    return outcome


def _journal_extra(outcome: _Outcome) -> dict[str, Any] | None:
    return {"masks": outcome.masks} if outcome.masks is not None else None


def _manifest_entry(outcome: _Outcome) -> dict[str, Any]:
    record = outcome.record
    entry: dict[str, Any] = {
        "result_sha256": outcome.sha256,
        "etag": outcome.etag,
        "status": str(record.get("status")) if record.get("status") is not None else None,
        "result_url": record.get("result") or None,
        "error": outcome.error["error_type"] if outcome.error else None,
    }
    if outcome.masks:
        entry["masks"] = outcome.masks
    return entry


def _error_entry(stage: str, exc: PlaymentDatasetsError, outage: bool = False) -> dict[str, Any]:
    return {
        "stage": stage,
        "error_type": type(exc).__name__,
        "message": str(exc),
        "http_status": getattr(exc, "status_code", None),
        "code": getattr(exc, "code", None),
        "outage": outage,
    }
