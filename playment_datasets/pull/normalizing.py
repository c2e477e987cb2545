"""Normalization off the pull's GIL: worker processes fed chunks of raw results.

A pull's threads spend their time in the network; normalizing (parsing the JSON,
building rows, decoding mask rasters) is CPU work that, in those threads' process,
competes for one interpreter lock. :class:`OrderedNormalizer` takes the jobs in listing
order and sends them, in chunks, to worker processes (``python -c`` importing
:func:`main` of this module, fed pickled raw bytes on stdin by a thread, answering with
Arrow tables on stdout), so normalization runs on the other cores while the threads
fetch. The tables come back and are written in the order the jobs were given, so the
output is exactly what one in-process :class:`~playment_datasets.normalize.BatchNormalizer`
gives; the journal is written by the fetching threads as before, so resume after a
kill is unchanged. When the workers fall two rounds of chunks behind, the pull
normalizes the next chunk itself rather than wait; once the fetching ends, it normalizes
the chunks no worker has picked up yet itself, one at a time, while the workers finish
theirs.

Small pulls never start a process: until there are 64 jobs (or masks worth about
170 decodes of a 1024×768 raster) to give it, and whenever ``processes=0``, jobs are
normalized in the pull's own process. A worker that dies (killed, out of memory) costs
nothing but time: its unanswered chunks are normalized in-process and the pull goes on
without workers. A worker's environment is the pull's without ``PLAYMENT_API_KEY``: it
never needs the key. It keeps pyarrow from importing pandas, which it never uses.

Example:
    >>> got = []
    >>> with OrderedNormalizer(got.append, processes=0) as normalizer:
    ...     normalizer.add(b'{"category": "cat"}', {"job_id": "j1", "status": "completed"})
    >>> got[0]["attributes"].column("value").to_pylist()
    ['cat']
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Any

from playment_datasets.errors import ConfigurationError

if TYPE_CHECKING:
    from playment_datasets.normalize import BatchNormalizer

__all__ = ["OrderedNormalizer", "WorkerExited", "default_processes", "normalize_chunk"]

log = logging.getLogger(__name__)

#: Jobs per chunk sent to a worker, and the work (bytes of results, decoded bytes of
#: PNG masks) that ends a chunk early: large enough to amortize the pickling and the
#: per-chunk tables, small enough that memory stays flat, the answers come back soon
#: and little is left to do once the last job is fetched (a 1024×768 mask is 3 MB
#: decoded: 32 to a chunk, about 50 ms of libspng; smaller chunks made the pull's own
#: process normalize some, as the queue of small chunks outran the worker).
CHUNK_JOBS = 64
CHUNK_WORK = 96 << 20
#: A pull starts its first worker once it has this many jobs, or this much work, to
#: give it: starting a process costs what about 170 to 270 such masks cost to decode
#: and count with libspng (0.2 to 0.4 s against 0.8 to 1.8 ms a mask, measured on an
#: idle and on a busy machine).
START_JOBS = CHUNK_JOBS
START_WORK = 512 << 20
#: Chunks in flight per worker before the pull waits for the oldest answer.
_CHUNKS_PER_WORKER = 4
#: Rounds of chunks the workers may fall behind before the pull normalizes one itself.
_STEAL_AT = 2
#: Worker processes a pull starts at most, whatever the core count.
_MAX_PROCESSES = 4

#: One job of a chunk: ("add", raw, record, masks) or ("fail", record, error keywords).
Item = tuple[Any, ...]
Tables = Mapping[str, Any]


class WorkerExited(RuntimeError):
    """A normalizer worker process ended before answering (its chunks are redone here)."""


class ChunkFailed(RuntimeError):
    """Normalizing a chunk raised in a worker (it is redone here, to raise here)."""


def default_processes() -> int:
    """Worker processes for a pull: one per usable core but one (the fetching threads'),
    at most 4; 0 on a single core.

    Example:
        >>> 0 <= default_processes() <= 4
        True
    """
    if getattr(sys, "frozen", False):  # a bundled app: sys.executable is not Python
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(cores - 1, _MAX_PROCESSES))


def check_processes(processes: int | None) -> int:
    """``processes`` as given to pull(), or the default for ``None``; refuses the rest."""
    if processes is None:
        return default_processes()
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
        raise ConfigurationError(
            f"processes must be a whole number >= 0 (0 normalizes in the pull's own "
            f"process) or None for one per core but one; got {processes!r}"
        )
    return processes


def normalize_chunk(items: list[Item]) -> dict[str, Any]:
    """Normalize the jobs of one chunk, in order, into one Arrow table per table name.

    Example:
        >>> tables = normalize_chunk([("add", b"{}", {"job_id": "j1"}, None)])
        >>> tables["jobs"].column("job_id").to_pylist()
        ['j1']
    """
    normalizer = _new_normalizer()
    for item in items:
        _add(normalizer, item)
    return normalizer.flush()


def _normalize_into(future: Future[Tables], chunk: list[Item]) -> None:
    """Normalize ``chunk`` here into ``future``. A chunk that raises is marked failed
    rather than raising now: it is redone when its turn comes to be written, so an error
    is raised at the same job, in listing order, as in a pull without workers."""
    try:
        future.set_result(normalize_chunk(chunk))
    except Exception as exc:  # noqa: BLE001 - redone in order by _write_ready
        future.set_exception(ChunkFailed(f"{type(exc).__name__}: {exc}"))


def _work_of(value: Any) -> int:
    """What normalizing one mask costs, in bytes: a PNG's decoded size (from its
    header), else its length."""
    if not isinstance(value, bytes):
        return 0
    if value.startswith(b"\x89PNG\r\n\x1a\n") and len(value) >= 24:
        return 4 * int.from_bytes(value[16:20], "big") * int.from_bytes(value[20:24], "big")
    return len(value)


def _new_normalizer() -> BatchNormalizer:
    # Imported here: a worker process installs its import hook (_WithoutPandas) first.
    from playment_datasets.normalize import BatchNormalizer

    return BatchNormalizer()


def _add(normalizer: BatchNormalizer, item: Item) -> None:
    if item[0] == "add":
        _, raw, record, masks = item
        normalizer.add(raw, record, masks=masks)
    else:
        _, record, error = item
        normalizer.add_failure(record, **error)


class OrderedNormalizer:
    """Normalizes jobs in the order given and hands their tables to ``write``.

    ``processes`` worker processes (0: in this process). Use as a context manager, or
    call :meth:`close` (writes what is left) / :meth:`abort` (on failure).
    """

    def __init__(self, write: Callable[[Tables], None], *, processes: int = 0,
                 rows_per_write: int = 50_000) -> None:
        self._write = write
        self.processes = processes
        self._rows_per_write = rows_per_write
        self._inline = _new_normalizer()
        self._chunk: list[Item] = []
        self._chunk_work = 0
        self._queue: deque[tuple[list[Item], Future[Tables]]] = deque()
        self._workers: list[_Worker] = []
        self._next = 0
        #: worker processes started so far (a pull reports it in its stats)
        self.started = 0
        #: chunks given to a worker that :meth:`close` took back and normalized here
        self.taken_back = 0
        self._seen_jobs = self._seen_work = 0

    @property
    def in_processes(self) -> bool:
        """Whether jobs go to worker processes (then mask rasters are decoded there)."""
        return self.processes > 0

    def __enter__(self) -> OrderedNormalizer:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(self, raw: bytes | None, record: Mapping[str, Any],
            masks: Mapping[str, Any] | None = None) -> None:
        """One job's result (``None``: no result), its record and its masks (url → bytes
        or MaskMissing; ``None``: not fetched)."""
        size = len(raw or b"") + sum(_work_of(v) for v in (masks or {}).values())
        self._put(("add", raw, dict(record), dict(masks) if masks is not None else None), size)

    def add_failure(self, record: Mapping[str, Any], **error: Any) -> None:
        """A job whose result could not be had (see ``BatchNormalizer.add_failure``)."""
        self._put(("fail", dict(record), error), 0)

    def _put(self, item: Item, size: int) -> None:
        if not self.in_processes:
            self._drain()
            _add(self._inline, item)
            if self._inline.rows >= self._rows_per_write:
                self._write(self._inline.flush())
            return
        self._chunk.append(item)
        self._chunk_work += size
        self._seen_jobs += 1
        self._seen_work += size
        if not self._workers:
            if self._seen_jobs < START_JOBS and self._seen_work < START_WORK:
                return  # not yet worth starting a process
            self.start()
        if len(self._chunk) >= CHUNK_JOBS or self._chunk_work >= CHUNK_WORK:
            self._send_chunk()
        self._write_ready(block=len(self._queue) >= 3 * self._per_round)

    @property
    def _per_round(self) -> int:
        return max(1, self.processes) * _CHUNKS_PER_WORKER

    def expect(self, jobs: int) -> None:
        """The caller will give about ``jobs`` jobs: start the workers now when that is
        worth it, so that they load while the first chunk fills."""
        if jobs >= START_JOBS and not self._workers:
            self.start()

    def start(self) -> None:
        """Start the worker processes (each imports the normalizer, then waits)."""
        while self.in_processes and len(self._workers) < self.processes:
            try:
                self._workers.append(_Worker())
            except OSError as exc:
                self._stop_workers(f"cannot start a normalizer process ({exc})")
                return
            self.started += 1

    def _drain(self) -> None:
        """Write every chunk sent, then take the jobs not sent yet in this process."""
        while self._queue:
            self._write_ready(block=True)
        for item in self._chunk:
            _add(self._inline, item)
        self._chunk, self._chunk_work = [], 0

    def _send_chunk(self) -> None:
        chunk, self._chunk, self._chunk_work = self._chunk, [], 0
        future: Future[Tables] = Future()
        if len(self._queue) >= _STEAL_AT * self._per_round or not self._workers:
            # The workers are far behind: rather than wait, this process takes one.
            future.set_result(normalize_chunk(chunk))
        else:
            worker = self._workers[self._next % len(self._workers)]
            self._next += 1
            try:
                future = worker.submit(chunk)
            except WorkerExited as exc:
                self._stop_workers(str(exc))
                future.set_exception(exc)
        self._queue.append((chunk, future))

    def _write_ready(self, *, block: bool) -> None:
        """Write the answered chunks at the head of the queue (wait for one if ``block``)."""
        while self._queue and (block or self._queue[0][1].done()):
            block = False
            chunk, future = self._queue.popleft()
            try:
                tables = future.result()
            except WorkerExited as exc:
                self._stop_workers(str(exc))
                tables = normalize_chunk(chunk)
            except ChunkFailed:
                tables = normalize_chunk(chunk)  # here, an error says where it came from
            self._write(tables)

    def close(self) -> None:
        """Write every job given so far, in order; stop the workers. The normalizer can
        still be used afterwards (in this process).

        The fetching is over, so this process has nothing else to do: it normalizes the
        last, partial chunk, then takes back, one at a time, the chunks no worker's
        feeding thread has picked up yet, while the workers go on with theirs, instead
        of waiting for them to work through their whole backlog.
        """
        try:
            if self._workers:
                if self._chunk:
                    chunk, self._chunk, self._chunk_work = self._chunk, [], 0
                    done: Future[Tables] = Future()
                    self._queue.append((chunk, done))
                    _normalize_into(done, chunk)
                self._share_backlog()
            self._drain()  # a small pull never fills a chunk: not worth starting a process
            self._write(self._inline.flush())
        except BaseException:
            self.abort()  # no worker left waiting, and a second close() cannot hang
            raise
        self._shutdown()
        self.processes = 0

    def _share_backlog(self) -> None:
        """Normalize here the chunks the workers have not picked up, one at a time from
        each worker in turn, until none is left waiting."""
        taken = True
        while taken:
            taken = False
            for worker in self._workers:
                got = worker.take_back()
                if got is not None:
                    _normalize_into(got[1], got[0])
                    self.taken_back += 1
                    taken = True

    def abort(self) -> None:
        """Drop what was not written and stop the workers (the pull failed)."""
        self._chunk.clear()
        self._queue.clear()
        self._inline = _new_normalizer()
        self._shutdown()
        self.processes = 0

    def _stop_workers(self, why: str) -> None:
        """Normalize here from now on; chunks a live worker holds are still answered."""
        if self.processes:
            log.warning("normalizing in the pull's own process from now on: %s", why)
        self.processes = 0

    def _shutdown(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()


#: A worker's first line: the pull's import path, so that it imports the same copy of
#: the package (an editable checkout, a path a script added) and nothing else.
_BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
         "from playment_datasets.pull.normalizing import main; main()")


class _Worker:
    """One worker process, the thread that feeds it and the thread that reads its answers.

    Chunks go through a queue to the feeding thread: a pipe holds about one chunk, so
    writing it from the pull's thread would wait for the worker to finish the one
    before, and normalizing would run one chunk behind fetching instead of beside it.
    """

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PLAYMENT_API_KEY"}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, json.dumps(sys.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self._lock = threading.Lock()
        self._pending: dict[int, Future[Tables]] = {}
        self._seq = 0
        self._exited: str | None = None
        self._outbox: queue.SimpleQueue[tuple[int, list[Item]] | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="playment-normalize-reader")
        self._feeder = threading.Thread(target=self._feed, daemon=True,
                                        name="playment-normalize-feeder")
        self._reader.start()
        self._feeder.start()

    def submit(self, chunk: list[Item]) -> Future[Tables]:
        future: Future[Tables] = Future()
        with self._lock:
            if self._exited is not None:
                raise WorkerExited(self._exited)
            self._seq += 1
            seq = self._seq
            self._pending[seq] = future
        self._outbox.put((seq, chunk))
        return future

    def take_back(self) -> tuple[list[Item], Future[Tables]] | None:
        """The oldest chunk submitted that the feeding thread has not picked up, with
        its future, for the caller to normalize itself (the worker never sees it);
        ``None`` when there is none."""
        while True:
            try:
                message = self._outbox.get_nowait()
            except queue.Empty:
                return None
            if message is None:  # closing: leave the end of input where it was
                self._outbox.put(None)
                return None
            seq, chunk = message
            with self._lock:
                future = self._pending.pop(seq, None)
            if future is not None:  # else the worker died: the chunk is redone in order
                return chunk, future

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while (message := self._outbox.get()) is not None:
                pickle.dump(message, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError) as exc:  # a broken pipe: the worker is gone
            self._fail_all(f"the normalizer process {self._proc.pid} ended ({exc})")
            return
        try:
            stdin.close()  # end of input: the worker ends
        except OSError:
            pass

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            while True:
                seq, ok, payload, records = pickle.load(stdout)
                for record in records:
                    logging.getLogger(record[0]).log(record[1], "%s", record[2])
                with self._lock:
                    future = self._pending.pop(seq)
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(ChunkFailed(payload))
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            pass
        self._fail_all(f"the normalizer process {self._proc.pid} ended "
                       f"(exit status {self._proc.wait()})")

    def _fail_all(self, why: str) -> None:
        with self._lock:
            self._exited = self._exited or why
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerExited(why))

    def close(self) -> None:
        """Ask the worker to end (end of input), then make sure it has."""
        self._outbox.put(None)
        self._feeder.join(timeout=10)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class _LogRecords(logging.Handler):
    """Keeps a worker's log records to send back with its answer."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """A worker's loop: chunks in, tables (or the error) and log records out."""
    handler = _LogRecords()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)  # the pull's own logging decides
    while True:
        try:
            seq, chunk = pickle.load(stdin)
        except EOFError:
            return
        try:
            tables = normalize_chunk(chunk)  # empty tables need not travel
            answer: tuple[Any, ...] = (seq, True, {n: t for n, t in tables.items() if t.num_rows})
        except Exception as exc:  # noqa: BLE001 - reported to the pull, which redoes it
            answer = (seq, False, f"{type(exc).__name__}: {exc}")
        records, handler.records = handler.records, []
        pickle.dump((*answer, records), stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


class _WithoutPandas:
    """An import hook that refuses pandas (see :func:`refuse_pandas`)."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(
                "pandas is left out of this process, which builds Arrow tables only "
                "(playment_datasets.pull.normalizing.refuse_pandas). To use pandas here, "
                "import it before calling playment_datasets.")


def refuse_pandas() -> None:
    """Keep pandas out of this process for good, unless it is imported already.

    Only for a process of our own that builds and writes Arrow tables and then ends: a
    normalizer worker, and the ``pull`` and ``demo`` commands run as a command
    (:func:`playment_datasets.cli.console`). pyarrow would otherwise import pandas
    (about 0.2 s, and 0.1 s more to tear it down at exit) the first time it converts a
    Python list, to check whether the list is a pandas object; refused, it goes on
    without. The library never calls this on a user's behalf: ``pds.pull()`` and
    ``cli.main()`` leave the import system alone.

    Example:
        >>> refuse_pandas()  # doctest: +SKIP
    """
    if "pandas" not in sys.modules and _WithoutPandas not in sys.meta_path:
        sys.meta_path.insert(0, _WithoutPandas)  # type: ignore[arg-type]


def main() -> None:
    """Entry point of a worker process (``python -m playment_datasets.pull.normalizing``)."""
    refuse_pandas()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed may corrupt the answers
    try:
        _serve(stdin, stdout)
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C reaches the whole group
        pass


if __name__ == "__main__":
    main()
