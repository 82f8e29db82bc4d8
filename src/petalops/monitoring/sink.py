"""The prediction sink: what the request path hands its prediction records to.

:class:`PredictionSink` is the interface the server (and feedback, which flushes a sink
before it gives up on a request id) relies on. :class:`BoundedSink` holds what both
implementations share: the bound on rows not yet in the store, drop counting, the
background thread and its wake-up, ``flush``/``close`` and the ``log_health`` row. The
two implementations:

* ``petalops.monitoring.logger.PredictionLogger``: batches rows into the store from a
  thread of the worker;
* ``petalops.monitoring.spool.SpoolWriter``: spools rows to files that one loader process
  puts in the store (`petalops serve`).

``log()`` never blocks on I/O and never raises: a record it cannot take is dropped and
counted (``petalops_prediction_log_dropped_total`` and ``log_health``). No SQLAlchemy is
imported here: `petalops serve`'s supervisor imports the spool module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from petalops.monitoring import metrics
from petalops.monitoring.record import answer_records

if TYPE_CHECKING:  # SQLAlchemy costs ~0.4 s to import; the supervisor must not pay it
    from petalops.monitoring.store import MonitorStore

log = logging.getLogger(__name__)

HEALTH_EVERY_SECONDS = 5.0


def writer_id() -> str:
    """Names one logger process in ``log_health``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@runtime_checkable
class PredictionSink(Protocol):
    """Takes prediction records off the request path; see the module docstring."""

    store: MonitorStore
    written: int
    dropped: int

    def log(self, record: Mapping[str, Any]) -> bool:
        """Queue one record; False (and counted) when it had to be dropped. Never raises."""
        ...

    def log_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Queue the rows of one request; returns how many were accepted."""
        ...

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
        """Queue the rows of one answer (`petalops.monitoring.record.answer_records`'s
        fields, without building them); returns how many were accepted."""
        ...

    @property
    def pending(self) -> int:
        """Rows accepted and not yet in the store."""
        ...

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what was queued so far is in the store; False on timeout."""
        ...

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting rows and hand on what is queued."""
        ...


class BoundedSink(ABC):
    """The shared half of a prediction sink: a bound, drop counting and a writer thread.

    A subclass sets up its own state, then calls :meth:`_start`. It implements
    :meth:`_enqueue` (the request path: no I/O), :meth:`_drain` (one pass of the thread),
    :attr:`_queued` (rows still in memory) and :attr:`pending` (rows not yet in the store,
    the quantity ``queue_size`` bounds); it may extend :meth:`_settled` (what ``flush``
    waits for beyond an empty memory queue) and :meth:`_housekeeping`.
    """

    label: ClassVar[str]  # names the sink in its log lines
    thread_name: ClassVar[str]
    poll_seconds: ClassVar[float] = 0.01  # how often flush() looks again

    def __init__(self, store: MonitorStore, *, queue_size: int, flush_seconds: float) -> None:
        self.store = store
        self.queue_size = queue_size
        self.flush_seconds = flush_seconds
        self.written = 0
        self.dropped = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._writer = writer_id()
        self._last_health = 0.0
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # -- the request path: O(1), no I/O, no exception ---------------------------------------

    def log(self, record: Mapping[str, Any]) -> bool:
        """Queue one prediction record; False (and counted) when it had to be dropped."""
        try:
            if self._stopping or self.pending >= self.queue_size:
                self._drop(1)
                return False
            if "ts" not in record:
                record = {**record, "ts": time.time()}
            self._enqueue(record)
            return True
        except Exception:  # a side channel never fails a request
            self._drop(1)
            return False

    def log_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Queue the rows of one batch request; returns how many were accepted."""
        return sum(1 for record in records if self.log(record))

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
        """Queue the rows of one answer; the spool overrides this with a cheaper path."""
        try:
            made = answer_records(
                request_id,
                route,
                model_name,
                model_version,
                classes,
                variant,
                status,
                latency_ms,
                rows,
                labels,
                probas,
                reference,
            )
        except Exception:
            self._drop(len(rows))
            return 0
        return self.log_many(made)

    def _drop(self, count: int) -> None:
        self.dropped += count
        with contextlib.suppress(Exception):
            metrics.LOG_DROPPED.inc(count)

    @abstractmethod
    def _enqueue(self, record: Mapping[str, Any]) -> None:
        """Take one record (already stamped); raise if it cannot be taken."""

    @property
    @abstractmethod
    def _queued(self) -> int:
        """Rows in memory, not yet handed on by the thread."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Rows accepted and not yet in the store (bounded by ``queue_size``)."""

    # -- control ------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is in the store (or dropped); False on
        timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._done():
                return True
            if self._queued:
                self._wake.set()
            time.sleep(self.poll_seconds)
        return self._done()

    def _done(self) -> bool:
        return not self._queued and self._idle.is_set() and self._settled()

    def _settled(self) -> bool:
        """Whether rows handed on by the thread are in the store (they are, by default)."""
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting records, hand on what is queued and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: %d rows still queued at shutdown", self.label, self._queued)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the background thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stopping
            self._idle.clear()
            try:
                self._drain(stopping)
                self._housekeeping(force=stopping)
            except Exception:
                log.warning("%s: writer step failed", self.label, exc_info=True)
            finally:
                self._idle.set()
                with contextlib.suppress(Exception):
                    metrics.LOG_QUEUE.set(self.pending)
            if stopping and not self._queued:
                return

    @abstractmethod
    def _drain(self, stopping: bool) -> None:
        """One pass of the thread: hand on what is queued (all of it when ``stopping``)."""

    def _housekeeping(self, force: bool = False) -> None:
        """Record this writer's counters in ``log_health`` every few seconds."""
        now = time.time()
        if force or now - self._last_health >= HEALTH_EVERY_SECONDS:
            self._last_health = now
            try:
                self.store.record_health(self._writer, self.written, self.dropped)
            except Exception:
                log.warning("%s: recording log health failed", self.label, exc_info=True)
