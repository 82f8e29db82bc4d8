"""The monitoring store: concurrent first opens, and a database the old code created."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import sqlalchemy as sa
from tests.utils.monitor_db import MONITOR_TABLES, create_old_database, insert_old_rows

from petalops.database.engine import create_engine
from petalops.monitoring.store import MonitorStore


def _open(url: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        MonitorStore(url).close()
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_workers_starting_together_all_get_the_tables(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'race{trial}.db'}"
        results = ctx.Queue()
        workers = [ctx.Process(target=_open, args=(url, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 4
        engine = sa.create_engine(url)
        assert {"predictions", "loop_events", "log_health"} <= set(
            sa.inspect(engine).get_table_names()
        )
        engine.dispose()


def test_a_database_the_old_code_created_opens_with_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = create_engine(url)
    create_old_database(engine, rollout=False)
    now = insert_old_rows(engine, rollout=False)
    engine.dispose()

    store = MonitorStore(url)
    assert store.count() == 1
    window = store.window("iris")
    assert window.rows == 1
    assert window.features.tolist() == [[5.1, 3.5, 1.4, 0.2]]
    assert window.versions == {"1": 1}
    [event] = store.events()
    assert (event["cycle"], event["kind"], event["detail"]) == ("c-old", "trigger", {"why": "old"})
    assert store.health()[0]["dropped"] == 2
    assert store.load_spool([("old.jsonl", [])]) == 0  # known from before: not loaded again
    assert store.rows_for_requests(["old-1"]) == {"old-1": {0}}
    assert store.set_labels([("old-1", 0, 2)], now) == 1
    assert set(MONITOR_TABLES) <= set(sa.inspect(store.engine).get_table_names())
    store.close()
