"""The prediction logger: the request path hands over a record and returns at once.

``log()`` appends to a bounded in-memory buffer and never blocks or raises. A background
thread takes up to ``flush_rows`` records at a time (or whatever arrived within
``flush_seconds``), serialises them and inserts them in one transaction. When the buffer
is full the record is dropped and counted; when the store fails the batch is dropped,
counted and logged. ``close()`` drains the buffer. Retention runs in the same thread.
The bound, the drop counting and the thread are :class:`~petalops.monitoring.sink.BoundedSink`'s.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from petalops.monitoring import metrics
from petalops.monitoring.record import to_row
from petalops.monitoring.sink import BoundedSink
from petalops.monitoring.store import MonitorStore

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600.0


class PredictionLogger(BoundedSink):
    """Batched, bounded, off-the-request-path writer of the ``predictions`` table."""

    label = "prediction log"
    thread_name = "petalops-prediction-log"
    poll_seconds = 0.005

    def __init__(
        self,
        store: MonitorStore,
        *,
        queue_size: int = 100_000,
        flush_rows: int = 500,
        flush_seconds: float = 0.5,
        retention_days: float | None = 30.0,
    ) -> None:
        super().__init__(store, queue_size=queue_size, flush_seconds=flush_seconds)
        self.flush_rows = flush_rows
        self.retention_days = retention_days
        self._buffer: deque[Mapping[str, Any]] = deque()
        self._last_purge = 0.0
        self._start()

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

    # -- the request path: O(1), no I/O, no lock -----------------------------------------

    def _enqueue(self, record: Mapping[str, Any]) -> None:
        buffer = self._buffer
        buffer.append(record)
        if len(buffer) >= self.flush_rows:
            self._wake.set()

    @property
    def _queued(self) -> int:
        return len(self._buffer)

    @property
    def pending(self) -> int:
        """Rows in the buffer (a batch being inserted is no longer pending)."""
        return len(self._buffer)

    # -- the background thread --------------------------------------------------------

    def _drain(self, stopping: bool) -> None:
        while self._buffer:
            self._write_batch()
            if not stopping and len(self._buffer) < self.flush_rows:
                break

    def _write_batch(self) -> None:
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
        metrics.LOG_QUEUE.set(len(buffer))

    def _housekeeping(self, force: bool = False) -> None:
        super()._housekeeping(force)
        now = time.time()
        if not self.retention_days or now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        try:
            removed = self.store.purge(now - self.retention_days * 86400.0)
        except Exception:
            log.warning("prediction log: retention purge failed", exc_info=True)
            return
        if removed:
            log.info("prediction log: retention removed %d rows", removed)
