"""The prediction logger: the request path hands over a record and returns at once.

``log()`` appends to a bounded in-memory buffer and never blocks or raises. A background
thread takes up to ``flush_rows`` records at a time (or whatever arrived within
``flush_seconds``), serialises them and inserts them in one transaction. When the buffer
is full the record is dropped and counted; when the store fails the batch is dropped,
counted and logged. ``close()`` drains the buffer. Retention runs in the same thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from petalops.monitoring import metrics
from petalops.monitoring.store import MonitorStore, to_row, writer_id

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600.0
HEALTH_EVERY_SECONDS = 5.0


class PredictionLogger:
    """Batched, bounded, off-the-request-path writer of the ``predictions`` table."""

    def __init__(
        self,
        store: MonitorStore,
        *,
        queue_size: int = 100_000,
        flush_rows: int = 500,
        flush_seconds: float = 0.5,
        retention_days: float | None = 30.0,
    ) -> None:
        self.store = store
        self.queue_size = queue_size
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.retention_days = retention_days
        self.written = 0
        self.dropped = 0
        self._buffer: deque[Mapping[str, Any]] = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._writer = writer_id()
        self._last_purge = 0.0
        self._last_health = 0.0
        self._thread = threading.Thread(
            target=self._run, name="petalops-prediction-log", daemon=True
        )
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Any, store: MonitorStore | None = None) -> PredictionLogger:
        m = settings.monitor
        return cls(
            store or MonitorStore.from_settings(settings),
            queue_size=m.queue_size,
            flush_rows=m.flush_rows,
            flush_seconds=m.flush_seconds,
            retention_days=m.retention_days,
        )

    # -- the request path: O(1), no I/O, no lock, no exception ---------------------------

    def log(self, record: Mapping[str, Any]) -> bool:
        """Queue one prediction record; False (and counted) when it had to be dropped."""
        try:
            buffer = self._buffer
            if self._stopping or len(buffer) >= self.queue_size:
                self._drop(1)
                return False
            if "ts" not in record:
                record = {**record, "ts": time.time()}
            buffer.append(record)
            if len(buffer) >= self.flush_rows:
                self._wake.set()
            return True
        except Exception:  # a side channel never fails a request
            self._drop(1)
            return False

    def log_many(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Queue the rows of one batch request; returns how many were accepted."""
        return sum(1 for record in records if self.log(record))

    def _drop(self, count: int) -> None:
        self.dropped += count
        with contextlib.suppress(Exception):
            metrics.LOG_DROPPED.inc(count)

    # -- control ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._buffer and self._idle.is_set():
                return True
            self._wake.set()
            time.sleep(0.005)
        return not self._buffer and self._idle.is_set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting records, write what is queued and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("prediction log: %d rows still queued at shutdown", len(self._buffer))

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the background thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stopping
            while self._buffer:
                self._write_batch()
                if not stopping and len(self._buffer) < self.flush_rows:
                    break
            self._housekeeping(force=stopping)
            if stopping and not self._buffer:
                return

    def _write_batch(self) -> None:
        self._idle.clear()
        try:
            buffer = self._buffer
            batch: list[Mapping[str, Any]] = []
            for _ in range(min(self.flush_rows, len(buffer))):
                batch.append(buffer.popleft())
            if not batch:
                return
            now = time.time()
            rows = []
            for record in batch:
                try:
                    rows.append(to_row(record, now))
                except Exception:  # one malformed record must not cost the whole batch
                    self._drop(1)
            try:
                self.store.insert_predictions(rows)
            except Exception:
                self._drop(len(rows))
                log.warning(
                    "prediction log: dropped %d rows, store write failed", len(rows), exc_info=True
                )
                return
            self.written += len(rows)
            metrics.LOG_WRITTEN.inc(len(rows))
        finally:
            metrics.LOG_QUEUE.set(len(self._buffer))
            self._idle.set()

    def _housekeeping(self, force: bool = False) -> None:
        now = time.time()
        try:
            if force or now - self._last_health >= HEALTH_EVERY_SECONDS:
                self._last_health = now
                self.store.record_health(self._writer, self.written, self.dropped)
            if self.retention_days and now - self._last_purge >= PURGE_EVERY_SECONDS:
                self._last_purge = now
                removed = self.store.purge(now - self.retention_days * 86400.0)
                if removed:
                    log.info("prediction log: retention removed %d rows", removed)
        except Exception:
            log.warning("prediction log: housekeeping failed", exc_info=True)
