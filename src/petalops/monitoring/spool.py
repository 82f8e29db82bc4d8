"""The prediction spool: serving workers append rows to files, one loader puts them in the store.

A serving worker's prediction-log thread used to run the database inserts itself, sharing
the worker's GIL with the requests (the p99 at high concurrency paid for it). With
`petalops serve`, each worker instead hands its records to a :class:`SpoolWriter`:

* ``log()`` serialises the record with orjson (one line, newline-terminated) onto an
  in-memory buffer: no I/O, never raises. (A bytearray under an uncontended lock: keeping
  each orjson result alive in a list cost ~10 µs a row against ~2 µs.)
* Every ``flush_seconds`` a thread writes what is queued into a new file
  ``<dir>/<time_ns>-<writer>-<seq>.part`` and renames it to ``.jsonl`` once every byte is
  written: a ``.jsonl`` file is complete and never written again.
* Rows queued in memory plus rows spooled and not yet loaded are bounded by ``queue_size``;
  above it a record is dropped and counted, as is a batch the disk refuses.

One :class:`SpoolLoader` (a separate process, started by `petalops serve`, see
:func:`main`) loads the ``.jsonl`` files, oldest first, into the store. Each transaction
inserts the rows of a few files *and* one ``spool_loads`` row per file name; a file whose
name is already in ``spool_loads`` is not loaded again. The file is deleted only after the
commit, so a crash anywhere loses nothing and loads nothing twice. A line that is not a
complete JSON object (the torn tail of a ``.part`` file left by a worker that died
mid-write, which the loader adopts once that process is gone) is skipped and counted as
dropped, never loaded. A store failure leaves the files in place for the next attempt.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from petalops.logs import JsonFormatter
from petalops.monitoring import metrics
from petalops.monitoring.record import answer_line, answer_values, to_values
from petalops.monitoring.sink import HEALTH_EVERY_SECONDS, BoundedSink, writer_id

if TYPE_CHECKING:  # `petalops serve`'s supervisor imports this module: SQLAlchemy costs ~0.4 s
    from petalops.monitoring.store import MonitorStore

log = logging.getLogger(__name__)

SPOOL_ENV = "_PETALOPS_PREDICTION_SPOOL"
LOADER_ENV = "_PETALOPS_SPOOL_LOADER"
# petalops.serving.app.SETTINGS_ENV, the settings `petalops serve` hands its processes
# (spelled out: importing the app would cost the loader FastAPI's import).
SERVE_SETTINGS_ENV = "_PETALOPS_SERVE_SETTINGS"
# prometheus-client's multiprocess directory (petalops.serving.metrics.MULTIPROC_ENV).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
READY = ".jsonl"
PARTIAL = ".part"
LOCK_NAME = "loader.lock"
# Every live SpoolWriter holds a shared flock on this file; the loader, told to stop, keeps
# loading until it can take it exclusively: no writer is left to spool a last row.
WRITERS_LOCK = "writers.lock"
# How long a stopping loader waits for the writers (a worker's drain is bounded by
# serve.shutdown_seconds, far below this).
WRITERS_WAIT_SECONDS = 60.0
PURGE_EVERY_SECONDS = 3600.0
# A label sent before its prediction waits this long for the row, then counts as unmatched.
PENDING_LABEL_SECONDS = 3600.0
# A .part file this old is adopted even when its writer cannot be checked (another host).
ORPHAN_SECONDS = 60.0
# One loader transaction carries at most this many bytes of spool files.
LOAD_BYTES = 4 * 1024 * 1024
# The loader's SQLite page cache. Random request ids (a gateway's UUIDs) land anywhere in
# the request-id index: once that outgrows SQLite's 2 MiB cache, every insert reads pages
# back. bench/spool_load.py --request-ids uuid --prefill 1000000 measures it (docs/serving.md).
LOADER_CACHE_MIB = 64
_DUMP = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


def spool_dir(home: Path) -> Path:
    """Where the workers of `petalops serve` spool prediction rows for the loader."""
    return home / "spool"


def _writer_tag(writer: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in writer)


def _parse_lines(data: bytes) -> tuple[list[Any], int]:
    """The complete records of a spool file and how many lines had to be skipped.

    A record counts only if its line ends with a newline and parses as a JSON object (one
    record) or array (an answer line, all the rows of one request): a write cut short
    leaves a last line without its newline (or a prefix of one, which is never valid
    JSON), so a torn record is never taken for a row."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    skipped = 1 if tail.strip() else 0
    # Every line in one C loop (map), ~0.4 µs a row less than the loop below
    # (bench/spool_load.py); that loop runs only for a file with a line that is not JSON.
    try:
        records: list[Any] = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        pass
    else:
        if all(type(r) is dict or type(r) is list for r in records):
            return records, skipped
    records = []
    for line in lines:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(value, (dict, list)):
            records.append(value)
        else:
            skipped += 1
    return records, skipped


class SpoolWriter(BoundedSink):
    """One serving worker's prediction sink: serialise on ``log()``, spool to files in a
    thread, never touch the ``predictions`` table."""

    label = "prediction spool"
    thread_name = "petalops-spool"

    def __init__(
        self,
        directory: Path,
        store: MonitorStore,
        *,
        queue_size: int = 100_000,
        flush_seconds: float = 0.5,
    ) -> None:
        # ``store`` serves feedback lookups, the gauges and log_health; ``written`` counts
        # the rows the loader has committed (their file is gone).
        super().__init__(store, queue_size=queue_size, flush_seconds=flush_seconds)
        self.directory = directory
        self.failures = 0
        self._buffer = bytearray()
        self._buffered = 0  # rows in _buffer
        self._lock = threading.Lock()
        self._spooled: deque[tuple[Path, int]] = deque()  # files written, not yet loaded
        self._spooled_rows = 0
        self._reaping = threading.Lock()
        self._tag = _writer_tag(self._writer)
        self._seq = itertools.count()
        self._last_error_log = 0.0
        directory.mkdir(parents=True, exist_ok=True)
        self._presence = (directory / WRITERS_LOCK).open("a")
        fcntl.flock(self._presence, fcntl.LOCK_SH)
        self._start()

    @classmethod
    def from_settings(
        cls, settings: Any, directory: Path, store: MonitorStore | None = None
    ) -> SpoolWriter:
        # Here, not at the top: the supervisor imports this module (SQLAlchemy costs ~0.4 s).
        from petalops.monitoring.store import MonitorStore

        m = settings.monitor
        return cls(
            directory,
            store or MonitorStore.from_settings(settings),
            queue_size=m.queue_size,
            flush_seconds=m.flush_seconds,
        )

    # -- the request path: one orjson dump appended to a buffer, no I/O ---------------------

    def _enqueue(self, record: Mapping[str, Any]) -> None:
        line = orjson.dumps(record, option=_DUMP)
        with self._lock:
            self._buffer += line
            self._buffered += 1

    def log_answer(
        self,
        request_id: str,
        route: str,
        model_name: str,
        model_version: str,
        classes: Sequence[str],
        variant: str,
        status: int,
        latency_ms: float | None,
        rows: Sequence[Any],
        labels: Sequence[int | None],
        probas: Sequence[Any],
        reference: Sequence[int] | None = None,
    ) -> int:
        """Every row of one answer as one line (`petalops.monitoring.record.answer_line`):
        one orjson dump and one lock a request, no record dicts. All its rows are taken,
        or (past ``queue_size``, or failing) all dropped and counted."""
        n = len(rows)
        try:
            if self._stopping or self._buffered + self._spooled_rows >= self.queue_size:
                self._drop(n)
                return 0
            names = [None if label is None else classes[label] for label in labels]
            line = orjson.dumps(
                answer_line(
                    request_id,
                    time.time(),
                    model_name,
                    model_version,
                    variant,
                    route,
                    status,
                    latency_ms,
                    rows,
                    labels,
                    names,
                    probas,
                    reference,
                ),
                option=_DUMP,
            )
            with self._lock:
                self._buffer += line
                self._buffered += n
            return n
        except Exception:  # a side channel never fails a request
            self._drop(n)
            return 0

    @property
    def _queued(self) -> int:
        return self._buffered

    @property
    def pending(self) -> int:
        """Rows not yet in the store: queued in memory or spooled and not yet loaded."""
        return self._buffered + self._spooled_rows

    def _settled(self) -> bool:
        """Whether the loader has committed (and deleted) every file this worker spooled;
        so ``flush()`` waits for the loader, and is False on timeout when none runs."""
        self._reap()
        return not self._spooled

    def close(self, timeout: float = 30.0) -> None:
        """Spool what is queued, then let a stopping loader know this writer is done."""
        super().close(timeout)
        if not self._presence.closed:
            self._presence.close()  # releases the shared lock

    # -- the background thread --------------------------------------------------------

    def _drain(self, stopping: bool) -> None:
        if self._buffered:
            self._spool()
        self._reap()

    def _spool(self) -> None:
        with self._lock:
            data = memoryview(self._buffer)
            count = self._buffered
            self._buffer = bytearray()
            self._buffered = 0
        name = f"{time.time_ns():020d}-{self._tag}-{next(self._seq):08d}"
        partial = self.directory / (name + PARTIAL)
        ready = self.directory / (name + READY)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            os.rename(partial, ready)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            self._drop(count)
            self.failures += 1
            now = time.monotonic()
            if now - self._last_error_log >= 60.0:
                self._last_error_log = now
                log.warning(
                    "prediction spool: dropped %d rows, cannot write %s: %r", count, partial, exc
                )
            return
        with self._reaping:
            self._spooled.append((ready, count))
            self._spooled_rows += count

    def _reap(self) -> None:
        """Count as written the files the loader has committed and deleted (it loads the
        oldest first, so stop at the first one still there)."""
        with self._reaping:
            spooled = self._spooled
            loaded = 0
            while spooled and not spooled[0][0].exists():
                _, rows = spooled.popleft()
                loaded += rows
            if not loaded:
                return
            self._spooled_rows -= loaded
            self.written += loaded
            with contextlib.suppress(Exception):
                metrics.LOG_WRITTEN.inc(loaded)


class SpoolLoader:
    """Loads complete spool files into the store, exactly once, oldest first."""

    def __init__(
        self,
        directory: Path,
        store: MonitorStore,
        *,
        retention_days: float | None = 30.0,
        load_bytes: int = LOAD_BYTES,
    ) -> None:
        self.directory = directory
        self.store = store
        self.retention_days = retention_days
        self.load_bytes = load_bytes
        self.loaded = 0
        self.skipped = 0
        self.recovered = 0  # rows loaded from files adopted from dead writers
        self._writer = writer_id() + ":spool-loader"
        self._adopted: set[str] = set()
        self._last_health = 0.0
        self._last_purge = 0.0
        directory.mkdir(parents=True, exist_ok=True)

    def ready_files(self) -> list[Path]:
        """Complete spool files, oldest first."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(READY))
        except FileNotFoundError:
            return []
        return [self.directory / n for n in names]

    def load_once(self) -> int:
        """Adopt orphaned partial files, then load every complete file there is now; returns
        the rows inserted. Raises when the store fails (the files stay for the next call)."""
        self.adopt_orphans()
        inserted = 0
        files = self.ready_files()
        while files:
            chunk: list[tuple[Path, bytes]] = []
            size = 0
            while files and (not chunk or size < self.load_bytes):
                path = files.pop(0)
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # another loader got there first
                    continue
                chunk.append((path, data))
                size += len(data)
            inserted += self._load_chunk(chunk)
        return inserted

    def _load_chunk(self, chunk: list[tuple[Path, bytes]]) -> int:
        # Parsing a chunk makes ~10 containers a row, all alive until the insert: with the
        # cyclic collector on, its collections walk them again and again (17.2 against
        # 12.5 µs of CPU a row, bench/spool_load.py). None of them can be in a cycle (JSON
        # values and tuples), so the collector waits for the chunk to be in.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._load_chunk_unpaused(chunk)
        finally:
            if paused:
                gc.enable()

    def _load_chunk_unpaused(self, chunk: list[tuple[Path, bytes]]) -> int:
        now = time.time()
        batches: list[tuple[str, list[tuple[Any, ...]]]] = []
        skipped = 0
        for path, data in chunk:
            records, torn = _parse_lines(data)
            rows = []
            for record in records:
                try:
                    if type(record) is list:
                        rows.extend(answer_values(record, now))
                    else:
                        rows.append(to_values(record, now))
                except Exception:
                    torn += 1
            if torn:
                log.warning("prediction spool: skipped %d unreadable lines of %s", torn, path.name)
            skipped += torn
            batches.append((path.name, rows))
        inserted = self.store.load_spool(batches)
        # Committed: only now may the files go. A crash before this point is harmless, the
        # names are in spool_loads and the next pass only deletes them.
        for path, _ in chunk:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.loaded += inserted
        if skipped:
            self.skipped += skipped
            with contextlib.suppress(Exception):
                metrics.LOG_DROPPED.inc(skipped)
        recovered = sum(len(rows) for name, rows in batches if name in self._adopted)
        if recovered:
            self.recovered += recovered
            self._adopted.difference_update(name for name, _ in batches)
        return inserted

    def adopt_orphans(self) -> None:
        """Rename the ``.part`` file of a writer that died mid-write to ``.jsonl``: its
        complete lines are loaded, its torn last line skipped and counted."""
        try:
            names = [n for n in os.listdir(self.directory) if n.endswith(PARTIAL)]
        except FileNotFoundError:
            return
        host = _writer_tag(socket.gethostname())
        for name in names:
            path = self.directory / name
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            # A live writer keeps a .part file for the milliseconds of one write; one this
            # old is a dead writer's whose pid was reused, or on a host we cannot check.
            if age < ORPHAN_SECONDS and _writer_alive(name, host) is not False:
                continue
            target = path.with_suffix(READY)
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, target)
                self._adopted.add(target.name)
                log.warning("prediction spool: adopted %s from a writer that stopped", name)

    def housekeeping(self, force: bool = False) -> None:
        now = time.time()
        try:
            if force or now - self._last_health >= HEALTH_EVERY_SECONDS:
                self._last_health = now
                if self.skipped or self.recovered:
                    self.store.record_health(self._writer, self.recovered, self.skipped)
            if now - self._last_purge >= PURGE_EVERY_SECONDS:
                self._last_purge = now
                if self.retention_days:
                    removed = self.store.purge(now - self.retention_days * 86400.0)
                    if removed:
                        log.info("prediction log: retention removed %d rows", removed)
                self.store.purge_spool_loads(now - 86400.0)
                unmatched = self.store.purge_pending(now - PENDING_LABEL_SECONDS)
                if unmatched:
                    log.warning(
                        "feedback: %d labels never met their prediction in %.0f s; dropped",
                        unmatched,
                        PENDING_LABEL_SECONDS,
                    )
        except Exception:
            log.warning("prediction spool: housekeeping failed", exc_info=True)

    def writers_done(self) -> bool:
        """Whether no SpoolWriter has this directory open (each holds a shared lock)."""
        try:
            with (self.directory / WRITERS_LOCK).open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def run(
        self,
        stop: threading.Event,
        poll_seconds: float = 0.2,
        writers_wait: float = WRITERS_WAIT_SECONDS,
    ) -> None:
        """Load until ``stop`` is set, then on until every writer has closed (bounded by
        ``writers_wait``), then once more: the rows the workers spooled last."""
        failing = False
        stopped_at: float | None = None
        while True:
            if stop.is_set() and stopped_at is None:
                stopped_at = time.monotonic()
            stopping = stopped_at is not None and (
                self.writers_done() or time.monotonic() - stopped_at >= writers_wait
            )
            try:
                self.load_once()
                if failing:
                    log.warning("prediction spool: the store accepts rows again")
                failing = False
            except Exception:
                if not failing:
                    log.warning("prediction spool: loading failed, will retry", exc_info=True)
                failing = True
            self.housekeeping(force=stopping)
            if stopping:
                if stopped_at is not None and not self.writers_done():
                    log.warning("prediction spool: writers still open at exit; stopped")
                return
            if stopped_at is None:
                stop.wait(poll_seconds * (10 if failing else 1))
            else:
                time.sleep(poll_seconds)


def _writer_alive(name: str, host: str) -> bool | None:
    """Whether the process that writes a ``.part`` file still runs; None when it cannot
    be told (a writer on another host sharing the directory, a name not of this module)."""
    try:
        tag = name.split("-", 1)[1].rsplit("-", 1)[0]
        writer_host, pid = tag.rsplit("_", 1)
        if writer_host != host:
            return None
        os.kill(int(pid), 0)
    except (IndexError, ValueError):
        return None
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


# -- the loader process `petalops serve` starts ------------------------------------------


def gauges_in_loader(env: Mapping[str, str]) -> bool:
    """Whether the spool loader, not a serving worker, refreshes the drift and live-quality
    gauges: under `petalops serve` with several workers (a multiprocess metrics directory,
    which every worker's /metrics reads, and a spool). A refresh is seconds of statistics
    (and, the first time, scipy's import) under one interpreter's GIL: in a worker it
    stalled every request of that worker (bench/serve.py --gap; docs/serving.md)."""
    return bool(env.get(MULTIPROC_ENV)) and bool(env.get(SPOOL_ENV) or env.get(LOADER_ENV))


def start_loader_gauges(env: Mapping[str, str]) -> Any:
    """In the loader: the gauge refresher of the served settings (a thread of this niced
    process, with its own store), or None when the workers keep them (`gauges_in_loader`)."""
    payload = env.get(SERVE_SETTINGS_ENV)
    if not payload or not gauges_in_loader(env):
        return None
    from petalops.config import Settings
    from petalops.monitoring.metrics import start_gauge_refresher

    settings = Settings(**orjson.loads(payload))
    if settings.monitor.gauge_seconds <= 0:
        return None
    return start_gauge_refresher(settings, interval=settings.monitor.gauge_seconds)


def loader_store(url: str) -> MonitorStore:
    """The store the loader writes to: SQLite with a page cache of ``LOADER_CACHE_MIB``."""
    # Here, not at the top: the supervisor imports this module (SQLAlchemy costs ~0.4 s).
    from petalops.database.engine import create_engine
    from petalops.monitoring.store import MonitorStore

    return MonitorStore(url, create_engine(url, cache_mib=LOADER_CACHE_MIB))


def loader_config(directory: Path, url: str, retention_days: float | None) -> str:
    """What :func:`main` reads from ``LOADER_ENV`` (an env var keeps a DB password off ps)."""
    payload = {"directory": str(directory), "url": url, "retention_days": retention_days}
    return orjson.dumps(payload).decode()


def main() -> None:
    """The loader process. It runs until its stdin closes (the server that started it
    closes the pipe once its workers have stopped, or dies), then loads what is left.
    One loader per spool directory (an flock); a second one waits as a standby."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Runs at niceness 5, set by `petalops serve` as it starts it (serving/runner.py).
    config = orjson.loads(os.environ[LOADER_ENV])
    directory = Path(config["directory"])
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the loader keeps going until the server
    # closes the pipe. SIGTERM (to the group, as supervisors send it) or the pipe closing
    # stops it only once the workers' writers have closed (`SpoolLoader.run`).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader at
        # interpreter exit aborts it ("Fatal Python error: _enter_buffered_busy").
        with contextlib.suppress(OSError):
            while os.read(0, 1024):
                pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    directory.mkdir(parents=True, exist_ok=True)
    lock = (directory / LOCK_NAME).open("w")
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if stop.wait(0.5):
                return
    while True:
        try:
            store = loader_store(config["url"])
            break
        except Exception:  # the store is down: the files wait, the workers bound them
            log.warning("prediction spool: the store is unavailable, will retry", exc_info=True)
            if stop.wait(5.0):
                return
    gauges = None
    try:
        gauges = start_loader_gauges(os.environ)
    except Exception:  # the gauges are a side job: loading goes on without them
        log.warning("prediction spool: the drift gauges could not start", exc_info=True)
    SpoolLoader(directory, store, retention_days=config["retention_days"]).run(stop)
    if gauges is not None:
        gauges.stop()
    store.close()


if __name__ == "__main__":
    main()
