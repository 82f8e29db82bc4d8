"""The monitoring block's read-only path: what `monitor status` reads, from sqlite3, equal to
what the store reads through SQLAlchemy; nothing created where there is no database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from petalops.database.reader import SqliteReader
from petalops.monitoring.reads import MonitorReader
from petalops.monitoring.served import served, versions
from petalops.monitoring.store import MonitorStore


def test_the_reader_answers_as_the_store_does(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions(
        [
            make_record("a", ts=100.0, label=0),
            make_record("b", ts=101.0, label=1, variant="challenger", model_version="2"),
            make_record("c", ts=102.0, status=503, latency_ms=40.0),
            make_record("d", ts=103.0, status=400, model_version="", features=None),
            make_record("e", ts=104.0, variant="shadow", model_version="3"),
            make_record("f", ts=105.0, features=["x", None, 1.0, 2.0]),
        ]
    )
    store.record_health("worker-1", written=6, dropped=1)
    store.add_event("c-1", "drift", "drift on petal_length", model_name="iris", detail={"k": 2})
    store.add_event("c-1", "retrain", "v2 trained", model_name="iris")

    reader = MonitorReader(store.url)
    assert isinstance(reader.reader, SqliteReader)
    assert reader.count() == store.count() == 6
    assert reader.health() == store.health()
    assert reader.health(since=float("inf")) == []
    assert reader.events(limit=5) == store.events(limit=5)
    assert [e["kind"] for e in reader.events(kind="drift")] == ["drift"]
    assert reader.events(limit=1)[0]["message"] == "v2 trained"
    count, errors, latencies = reader.recent_requests(since=101.0)
    assert (count, errors) == store.recent_requests(since=101.0)[:2] == (4, 1)
    assert sorted(latencies.tolist()) == [1.5, 1.5, 1.5, 40.0]
    mine, theirs = reader.labelled("iris", 10), store.labelled("iris", 10)
    assert [(g.model_version, g.variant, g.labels.tolist()) for g in mine] == [
        (g.model_version, g.variant, g.labels.tolist()) for g in theirs
    ]
    window, expected = reader.window("iris", rows=3), store.window("iris", rows=3)
    assert window.versions == expected.versions
    assert (
        window.ts.tolist() == expected.ts.tolist() == [100.0, 101.0, 105.0]
    )  # 5xx, 4xx and shadow left out
    assert window.features.dtype == object  # a categorical value stays a string
    assert versions(reader, "iris") == versions(store, "iris") == ["1", "2"]
    assert versions(reader, "iris", since=101.5) == ["1"]
    mine_served, theirs_served = served(reader, "iris", "1"), served(store, "iris", "1")
    assert mine_served.ts.tolist() == theirs_served.ts.tolist()
    assert mine_served.refused == theirs_served.refused == 1
    assert np.array_equal(mine_served.labels, theirs_served.labels)
    reader.close()


def test_a_missing_database_reads_as_empty_and_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "monitor.db"
    reader = MonitorReader(f"sqlite:///{path}")
    assert reader.count() == 0
    assert reader.health() == [] and reader.events() == []
    assert reader.recent_requests(0.0)[:2] == (0, 0)
    assert reader.window("iris").rows == 0
    assert versions(reader, "iris") == []
    assert served(reader, "iris", "1").rows == 0
    reader.close()
    assert not path.parent.exists()
