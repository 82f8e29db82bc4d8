"""The prediction-sink interface: what both sinks share (the bound, drop counting, the
thread, flush and close), checked on a small sink of the test's own and on the two real ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from petalops.monitoring import metrics
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.sink import BoundedSink, PredictionSink, writer_id
from petalops.monitoring.spool import SpoolWriter
from petalops.monitoring.store import MonitorStore

Record = Callable[..., dict[str, Any]]


class ListSink(BoundedSink):
    """Hands rows on to a list; ``settled`` stands for "the store has them"."""

    label = "list sink"
    thread_name = "petalops-test-sink"

    def __init__(self, store: MonitorStore, **options: Any) -> None:
        super().__init__(store, **options)
        self.memory: list[Mapping[str, Any]] = []
        self.handed: list[Mapping[str, Any]] = []
        self.drains: list[bool] = []
        self.settled = threading.Event()
        self.settled.set()
        self._start()

    def _enqueue(self, record: Mapping[str, Any]) -> None:
        if record.get("status") == "boom":
            raise ValueError("cannot take this record")
        self.memory.append(record)

    @property
    def _queued(self) -> int:
        return len(self.memory)

    @property
    def pending(self) -> int:
        return len(self.memory) + (0 if self.settled.is_set() else len(self.handed))

    def _settled(self) -> bool:
        return self.settled.is_set()

    def _drain(self, stopping: bool) -> None:
        self.drains.append(stopping)
        while self.memory:
            self.handed.append(self.memory.pop(0))
            self.written += 1


@pytest.fixture
def sink(store: MonitorStore) -> Iterator[ListSink]:
    made = ListSink(store, queue_size=5, flush_seconds=60.0)
    yield made
    made.close()


def test_log_stamps_records_and_counts_what_it_accepts(sink: ListSink, make_record: Record) -> None:
    unstamped = {k: v for k, v in make_record("a").items() if k != "ts"}
    before = time.time()
    assert sink.log(unstamped) is True
    assert "ts" not in unstamped  # the caller's dict is not changed
    assert sink.memory[0]["ts"] >= before
    assert sink.log_many(make_record(f"b{i}") for i in range(3)) == 3
    assert sink.pending == 4


def test_the_bound_drops_and_counts_without_raising(sink: ListSink, make_record: Record) -> None:
    dropped_before = metrics.LOG_DROPPED._value.get()
    assert sink.log_many([make_record(f"q{i}") for i in range(8)]) == 5
    assert sink.log(None) is False  # type: ignore[arg-type]
    assert sink.log(make_record("bad", status="boom")) is False
    assert sink.dropped == 5
    assert metrics.LOG_DROPPED._value.get() - dropped_before == 5


def test_flush_wakes_the_thread_and_waits_until_settled(
    sink: ListSink, make_record: Record
) -> None:
    sink.settled.clear()  # handed on, not yet in the store
    sink.log(make_record("f"))
    assert sink.flush(timeout=0.2) is False
    assert [r["request_id"] for r in sink.handed] == ["f"]  # woken long before 60 s
    sink.settled.set()
    assert sink.flush(timeout=5.0) is True


def test_close_drains_stops_taking_and_records_health(
    store: MonitorStore, sink: ListSink, make_record: Record
) -> None:
    sink.log_many([make_record(f"c{i}") for i in range(6)])  # one over the bound
    sink.close()
    assert sink.drains[-1] is True
    assert len(sink.handed) == 5
    [health] = store.health()
    assert (health["writer"], health["written"], health["dropped"]) == (writer_id(), 5, 1)
    assert sink.log(make_record("late")) is False
    assert sink.dropped == 2


def test_a_failing_pass_is_logged_and_the_thread_goes_on(
    store: MonitorStore, make_record: Record, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(ListSink):
        failures = 1

        def _drain(self, stopping: bool) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("disk full")
            super()._drain(stopping)

    flaky = Flaky(store, queue_size=10, flush_seconds=0.01)
    flaky.log(make_record("x"))
    assert flaky.flush(timeout=5.0)
    flaky.close()
    assert len(flaky.handed) == 1
    assert "list sink: writer step failed" in caplog.text


@pytest.fixture(params=["logger", "spool"])
def real_sink(
    request: pytest.FixtureRequest, store: MonitorStore, tmp_path: Path
) -> Iterator[BoundedSink]:
    made: BoundedSink
    if request.param == "logger":
        made = PredictionLogger(store, queue_size=3, flush_seconds=60.0, flush_rows=1000)
    else:
        made = SpoolWriter(tmp_path / "spool", store, queue_size=3, flush_seconds=60.0)
    yield made
    made.close()


def test_both_sinks_offer_the_interface_and_share_the_bound(
    real_sink: BoundedSink, make_record: Record
) -> None:
    assert isinstance(real_sink, PredictionSink)
    assert real_sink.store is not None
    assert real_sink.log_many([make_record(f"r{i}") for i in range(5)]) == 3
    assert (real_sink.pending, real_sink.dropped) == (3, 2)
    real_sink.close()
    assert real_sink.log(make_record("late")) is False
    assert real_sink.dropped == 3
