"""The prediction logger: batched, bounded, never blocks or raises, drains on close."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from petalops.database.schema import predictions
from petalops.monitoring import metrics
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.store import MonitorStore


def rows(store: MonitorStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(predictions))]


def test_records_are_written_in_batches_and_close_drains(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    inserts: list[int] = []
    original = store.insert_predictions

    def counting(batch: Any) -> int:
        inserts.append(len(batch))
        return original(batch)

    store.insert_predictions = counting  # type: ignore[method-assign]
    logger = PredictionLogger(store, flush_rows=100, flush_seconds=5.0)
    for i in range(1050):
        assert logger.log(make_record(f"r{i}", row=0)) is True
    logger.close()
    assert store.count() == 1050
    assert logger.written == 1050
    assert logger.dropped == 0
    assert max(inserts) <= 100
    assert len(inserts) >= 11


def test_row_content_round_trips(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    with PredictionLogger(store) as logger:
        logger.log_many(
            [make_record("b", row=i, features=[float(i)] * 4, prediction=i) for i in range(3)]
        )
    logged = sorted(rows(store), key=lambda r: r["row"])
    assert [r["row"] for r in logged] == [0, 1, 2]
    assert logged[2]["features"] == "[2.0,2.0,2.0,2.0]"
    assert logged[2]["probabilities"] == "[0.9,0.08,0.02]"
    assert logged[0]["label"] is None
    assert logged[1]["variant"] == "champion"
    assert logged[1]["status"] == 200


def test_full_queue_drops_and_counts_without_blocking(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    gate = threading.Event()
    original = store.insert_predictions

    def stuck(batch: Any) -> int:
        gate.wait(10)  # the database hangs
        return original(batch)

    store.insert_predictions = stuck  # type: ignore[method-assign]
    dropped_before = metrics.LOG_DROPPED._value.get()
    logger = PredictionLogger(store, queue_size=100, flush_rows=10, flush_seconds=0.01)
    time.sleep(0.05)
    started = time.perf_counter()
    accepted = sum(logger.log(make_record(f"q{i}")) for i in range(1000))
    elapsed = time.perf_counter() - started
    gate.set()
    logger.close()
    assert elapsed < 1.0  # never waited on the stuck database
    assert logger.dropped == 1000 - accepted
    assert 100 <= accepted <= 120  # queue bound plus the batch in flight
    assert metrics.LOG_DROPPED._value.get() - dropped_before == logger.dropped
    assert store.count() == accepted


def test_store_failure_is_counted_never_raised(make_record: Callable[..., dict[str, Any]]) -> None:
    class Broken(MonitorStore):
        def insert_predictions(self, rows: Any) -> int:
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    store = Broken("sqlite://")
    logger = PredictionLogger(store, flush_rows=5, flush_seconds=0.01)
    for i in range(12):
        logger.log(make_record(f"x{i}"))
    logger.close()
    assert logger.dropped == 12
    assert logger.written == 0


def test_malformed_records_are_dropped_alone(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    logger = PredictionLogger(store, flush_rows=50)
    assert logger.log(None) is False  # type: ignore[arg-type]
    logger.log(make_record("ok1"))
    logger.log(make_record("bad", status="not a status"))
    logger.log(make_record("ok2"))
    logger.close()
    assert store.count() == 2
    assert logger.dropped == 2


def test_flush_makes_queued_rows_visible(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    logger = PredictionLogger(store, flush_rows=10_000, flush_seconds=30.0)
    logger.log(make_record("f1"))
    assert logger.flush(timeout=5.0)
    assert store.count() == 1
    logger.close()
    assert logger.log(make_record("late")) is False  # closed: counted, not raised


def test_retention_purges_old_rows_and_health_is_recorded(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    now = time.time()
    store.log_predictions(
        [make_record("old", ts=now - 10 * 86400), make_record("new", ts=now - 3600)]
    )
    logger = PredictionLogger(store, retention_days=7, flush_seconds=0.01)
    logger.log(make_record("now"))
    logger.close()
    assert sorted(r["request_id"] for r in rows(store)) == ["new", "now"]
    [health] = store.health()
    assert health["written"] == 1
    assert health["dropped"] == 0
