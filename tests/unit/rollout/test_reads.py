"""The rollout block's read-only path: the same answers as the store, from sqlite3, and
nothing created where there is no database."""

from __future__ import annotations

import sys
from pathlib import Path

from petalops.database.reader import SqliteReader
from petalops.monitoring.store import MonitorStore
from petalops.rollout import history
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.reads import RolloutReader
from petalops.rollout.store import RolloutStore


def plan(**changes: object) -> RolloutPlan:
    return RolloutPlan("r-7", "canary", "2", "1", steps=(10.0, 100.0)).evolve(**changes)


def test_the_reader_answers_as_the_store_does(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    store = RolloutStore(url)
    history.record(store, "iris", plan(phase="running"), "start", "go", actor="me")
    history.record(
        store, "iris", plan(phase="running", step=1), "advance", "ok", actor="me", detail={"n": 1}
    )
    history.record(store, "other", plan(), "start", "elsewhere", actor="me")
    assert store.acquire("rollout:iris", "ctl-a", 30.0)
    command_id = store.submit("iris", "abort", "bad p99")
    monitor = MonitorStore(url)
    monitor.log_predictions(
        [
            {
                "request_id": "a",
                "model_name": "iris",
                "ts": 100.0,
                "model_version": "2",
                "variant": "challenger",
            },
            {
                "request_id": "b",
                "model_name": "iris",
                "ts": 101.0,
                "model_version": "2",
                "variant": "challenger",
                "status": 503,
                "latency_ms": 9.0,
                "probabilities": [0.1, 0.9],
            },
            {
                "request_id": "c",
                "model_name": "iris",
                "ts": 102.0,
                "model_version": "2",
                "variant": "challenger",
                "status": 400,
            },
        ]
    )
    monitor.close()

    reader = RolloutReader(url)
    assert isinstance(reader.reader, SqliteReader)
    assert reader.history("iris") == store.history("iris")
    assert [e["action"] for e in reader.history("iris", rollout_id="r-7")] == ["start", "advance"]
    assert reader.history("iris", limit=1)[0]["detail"] == {"n": 1}
    assert reader.last_event("iris", "r-7", ["start"]) == store.last_event("iris", "r-7", ["start"])
    assert reader.last_event("iris", "r-7", []) is None
    assert reader.lease("rollout:iris") == store.lease("rollout:iris")
    assert reader.lease("rollout:iris")["holder"] == "ctl-a"  # type: ignore[index]
    assert reader.pending("iris") == store.pending("iris")
    assert reader.command(command_id) == store.command(command_id)
    samples = reader.samples("iris", "challenger", "2", since=100.0)
    assert samples == store.samples("iris", "challenger", "2", since=100.0)
    assert [s.status for s in samples] == [200, 503]  # the 400 is the caller's mistake
    assert samples[1].probabilities == (0.1, 0.9)
    assert reader.samples("iris", "challenger", "2", since=100.0, until=101.0)[0].status == 200
    reader.close()
    store.close()


def test_a_missing_database_reads_as_no_rollout_and_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "home" / "monitor.db"
    reader = RolloutReader(f"sqlite:///{path}")
    assert reader.history("iris") == []
    assert reader.lease("rollout:iris") is None
    assert reader.samples("iris", "challenger", "2", since=0.0) == []
    reader.close()
    assert not path.parent.exists()


def test_reading_imports_no_sqlalchemy() -> None:
    # The module itself: a fresh interpreter, so other tests' imports do not count.
    import subprocess

    code = (
        "import sys; import petalops.rollout.reads, petalops.monitoring.reads; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
