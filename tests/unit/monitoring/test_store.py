"""The monitoring store: concurrent first opens, and a database the old code created."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import sqlalchemy as sa
from tests.utils.monitor_db import MONITOR_TABLES, create_old_database, insert_old_rows

from petalops.database.engine import create_engine
from petalops.database.schema import predictions
from petalops.monitoring.store import _ROWS_A_STATEMENT, MonitorStore


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


def test_rows_that_stop_short_are_inserted_in_order_with_the_rest_null(tmp_path: Path) -> None:
    # An answer's rows stop before `label` (or before `reference_prediction`), a record's
    # have every column: one spool chunk mixes them, and each run is its own statement.
    store = MonitorStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    common = ("iris", "1", "champion", "/predict", 200, 0.5, "[1.0]", 0, "a", "[1.0,0.0]")
    rows = [
        ("r0", 0, 1.0, *common),  # 13 columns: no reference, no label
        ("r1", 0, 2.0, *common),
        ("r2", 0, 3.0, *common, 1),  # 14: a challenger's, with the champion's answer
        ("r3", 0, 4.0, *common, None, 1, 9.0),  # 16: a record with its label
        ("r4", 0, 5.0, *common),
    ]
    assert store.load_spool([("f1", rows)]) == 5
    with store.engine.connect() as conn:
        c = predictions.c
        query = sa.select(
            c.request_id, c.ts, c.class_name, c.reference_prediction, c.label, c.label_ts
        ).order_by(c.id)
        got = [tuple(r) for r in conn.execute(query)]
    store.close()
    assert got == [
        ("r0", 1.0, "a", None, None, None),
        ("r1", 2.0, "a", None, None, None),
        ("r2", 3.0, "a", 1, None, None),
        ("r3", 4.0, "a", None, 1, 9.0),
        ("r4", 5.0, "a", None, None, None),
    ]


def test_many_rows_go_in_multi_row_statements_in_order(tmp_path: Path) -> None:
    # Two and a half statements' worth of short rows, one full one, then one statement's
    # worth and a few: whole multi-row statements and the rest one by one, every row once
    # and in order.
    many = _ROWS_A_STATEMENT
    first, total = 2 * many + many // 2, 3 * many + many // 2 + 4
    store = MonitorStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    common = ("iris", "1", "champion", "/predict", 200, 0.5, "[1.0]", 0, "a", "[1.0,0.0]")
    rows: list[tuple[object, ...]] = [(f"r{i}", 0, float(i), *common) for i in range(first)]
    rows.append(("labelled", 0, float(first), *common, None, 1, 9.0))
    rows += [(f"r{i}", 0, float(i), *common) for i in range(first + 1, total)]
    assert store.load_spool([("f1", rows)]) == total
    with store.engine.connect() as conn:
        c = predictions.c
        query = sa.select(c.request_id, c.ts, c.label).order_by(c.id)
        got = [tuple(r) for r in conn.execute(query)]
    store.close()
    assert [ts for _, ts, _ in got] == [float(i) for i in range(total)]
    assert got[first] == ("labelled", float(first), 1)
    assert {label for i, (_, _, label) in enumerate(got) if i != first} == {None}
