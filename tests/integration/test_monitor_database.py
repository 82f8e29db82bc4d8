"""One monitoring database for two blocks: a database created by the old code (before
schema versions) opens with both the monitoring store and the rollout store, rows intact."""

from __future__ import annotations

from pathlib import Path

from tests.utils.monitor_db import create_old_database, insert_old_rows

from petalops.database.engine import create_engine
from petalops.database.migrations import STEPS, applied_versions
from petalops.monitoring.store import MonitorStore
from petalops.rollout.store import RolloutStore


def test_both_stores_read_the_rows_of_an_old_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = create_engine(url)
    create_old_database(engine)
    now = insert_old_rows(engine)
    engine.dispose()

    rollout = RolloutStore(url)
    monitor = MonitorStore(url)
    assert applied_versions(monitor.engine) == [step.version for step in STEPS]
    [event] = rollout.history("iris")
    assert (event["rollout_id"], event["action"], event["weight"]) == ("r-old", "step", 5.0)
    assert rollout.lease("rollout:iris")["holder"] == "old-holder"  # type: ignore[index]
    assert not rollout.acquire("rollout:iris", "new-holder", ttl=10.0)  # still held
    [command] = rollout.pending("iris")
    assert command["command"] == "abort"
    [sample] = rollout.samples("iris", "champion", "1", since=now - 1)
    assert (sample.status, sample.prediction) == (200, 0)
    assert monitor.count() == 1

    # Both keep writing to the same tables.
    monitor.log_predictions([{"request_id": "new-1", "model_name": "iris", "model_version": "1"}])
    rollout.record(
        model_name="iris", rollout_id="r-new", strategy="canary", phase="done", action="promote"
    )
    assert monitor.count() == 2
    assert [e["rollout_id"] for e in rollout.history("iris")] == ["r-old", "r-new"]
    rollout.close()
    monitor.close()
