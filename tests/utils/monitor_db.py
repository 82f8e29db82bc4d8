"""The monitoring database as petalops created it before schema versions were recorded.

The DDL below is what `MonitorStore` and `RolloutStore` of commit c5498cd emitted
(``metadata.create_all`` of monitoring/store.py and rollout/store.py), copied here so that
tests can build a database the old way and open it with the new code.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from petalops.database.engine import create_engine
from petalops.database.migrations import STEPS, Step, migrate

MONITOR_TABLES = ("predictions", "loop_events", "log_health", "spool_loads")
ROLLOUT_TABLES = ("rollout_events", "rollout_leases", "rollout_commands")

# What MonitorStore created on SQLite.
SQLITE_MONITOR_DDL = [
    """CREATE TABLE predictions (
        id INTEGER NOT NULL,
        request_id VARCHAR(128) NOT NULL,
        "row" INTEGER NOT NULL,
        ts FLOAT NOT NULL,
        model_name VARCHAR(200) NOT NULL,
        model_version VARCHAR(64) NOT NULL,
        variant VARCHAR(16) NOT NULL,
        route VARCHAR(128) NOT NULL,
        status INTEGER NOT NULL,
        latency_ms FLOAT,
        features TEXT,
        prediction INTEGER,
        class_name VARCHAR(200),
        probabilities TEXT,
        reference_prediction INTEGER,
        label INTEGER,
        label_ts FLOAT,
        PRIMARY KEY (id)
    )""",
    'CREATE INDEX ix_predictions_request ON predictions (request_id, "row")',
    "CREATE INDEX ix_predictions_ts ON predictions (ts)",
    """CREATE TABLE loop_events (
        id INTEGER NOT NULL,
        ts FLOAT NOT NULL,
        cycle VARCHAR(64) NOT NULL,
        kind VARCHAR(32) NOT NULL,
        model_name VARCHAR(200) NOT NULL,
        model_version VARCHAR(64),
        run_id VARCHAR(64),
        rollout_id VARCHAR(64),
        message TEXT NOT NULL,
        detail TEXT,
        PRIMARY KEY (id)
    )""",
    "CREATE INDEX ix_loop_events_ts ON loop_events (ts)",
    """CREATE TABLE log_health (
        writer VARCHAR(200) NOT NULL,
        written BIGINT NOT NULL,
        dropped BIGINT NOT NULL,
        updated FLOAT NOT NULL,
        PRIMARY KEY (writer)
    )""",
    """CREATE TABLE spool_loads (
        name VARCHAR(255) NOT NULL,
        ts FLOAT NOT NULL,
        rows INTEGER NOT NULL,
        PRIMARY KEY (name)
    )""",
]

# What RolloutStore added.
SQLITE_ROLLOUT_DDL = [
    """CREATE TABLE rollout_events (
        id INTEGER NOT NULL,
        ts FLOAT NOT NULL,
        model_name VARCHAR(200) NOT NULL,
        rollout_id VARCHAR(64) NOT NULL,
        strategy VARCHAR(16) NOT NULL,
        phase VARCHAR(32) NOT NULL,
        step INTEGER NOT NULL,
        weight FLOAT NOT NULL,
        action VARCHAR(32) NOT NULL,
        verdict VARCHAR(16),
        reason TEXT NOT NULL,
        champion_version VARCHAR(64),
        challenger_version VARCHAR(64),
        actor VARCHAR(200) NOT NULL,
        detail TEXT,
        PRIMARY KEY (id)
    )""",
    "CREATE INDEX ix_rollout_events_model ON rollout_events (model_name, id)",
    """CREATE TABLE rollout_leases (
        name VARCHAR(200) NOT NULL,
        holder VARCHAR(200) NOT NULL,
        expires FLOAT NOT NULL,
        acquired FLOAT NOT NULL,
        PRIMARY KEY (name)
    )""",
    """CREATE TABLE rollout_commands (
        id INTEGER NOT NULL,
        ts FLOAT NOT NULL,
        model_name VARCHAR(200) NOT NULL,
        command VARCHAR(16) NOT NULL,
        reason TEXT NOT NULL,
        claimed_by VARCHAR(200),
        done_ts FLOAT,
        result TEXT,
        PRIMARY KEY (id)
    )""",
]

SQLITE_DDL = SQLITE_MONITOR_DDL + SQLITE_ROLLOUT_DDL


def postgres(statement: str) -> str:
    """The same statement as the old code emitted it on PostgreSQL: an autoincrementing
    integer key is SERIAL there, and ``row`` needs no quotes."""
    for follower in ("ts", "request_id"):
        statement = statement.replace(
            f"id INTEGER NOT NULL,\n        {follower}", f"id SERIAL NOT NULL,\n        {follower}"
        )
    return statement.replace('"row"', "row")


def normalised(sql: str) -> str:
    """DDL text with whitespace collapsed, to compare statements however they were laid out."""
    return " ".join(sql.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())


def create_old_database(engine: sa.Engine, *, rollout: bool = True) -> None:
    """Create the tables the old way (``rollout=False``: only MonitorStore had run)."""
    statements = SQLITE_MONITOR_DDL + (SQLITE_ROLLOUT_DDL if rollout else [])
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(
                statement if engine.dialect.name == "sqlite" else postgres(statement)
            )


def insert_old_rows(engine: sa.Engine, *, rollout: bool = True) -> float:
    """One row in each old table, written with plain SQL as the old code stored it; returns
    the ``ts`` used."""
    now = time.time()
    statements = [
        """INSERT INTO predictions (request_id, "row", ts, model_name, model_version, variant,
            route, status, latency_ms, features, prediction, class_name, probabilities)
        VALUES ('old-1', 0, :now, 'iris', '1', 'champion', '/v1/predict', 200, 1.5,
            '[5.1,3.5,1.4,0.2]', 0, 'setosa', '[0.9,0.08,0.02]')""",
        """INSERT INTO loop_events (ts, cycle, kind, model_name, message, detail)
        VALUES (:now, 'c-old', 'trigger', 'iris', 'drift', '{"why": "old"}')""",
        """INSERT INTO log_health (writer, written, dropped, updated)
        VALUES ('oldhost:1', 10, 2, :now)""",
        "INSERT INTO spool_loads (name, ts, rows) VALUES ('old.jsonl', :now, 1)",
    ]
    if rollout:
        statements += [
            """INSERT INTO rollout_events (ts, model_name, rollout_id, strategy, phase, step,
                weight, action, reason, actor)
            VALUES (:now, 'iris', 'r-old', 'canary', 'analysing', 1, 5.0, 'step', 'old', 'me')""",
            """INSERT INTO rollout_leases (name, holder, expires, acquired)
            VALUES ('rollout:iris', 'old-holder', :later, :now)""",
            """INSERT INTO rollout_commands (ts, model_name, command, reason)
            VALUES (:now, 'iris', 'abort', 'old')""",
        ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), {"now": now, "later": now + 3600})
    return now


def _migrate_at_once(url: str, marker: Path, barrier: Barrier, results: Any) -> None:
    def slow(conn: sa.Connection) -> None:
        # The file counts every run, including one whose transaction is later rolled back;
        # the table counts the committed runs.
        with marker.open("a") as runs:
            runs.write("x")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS step_runs (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO step_runs VALUES (1)")
        time.sleep(0.2)  # holds the lock while the others try

    try:
        engine = create_engine(url)
        barrier.wait(30)
        results.put(migrate(engine, [*STEPS[:1], Step(2, "slow", slow)]))
        engine.dispose()
    except Exception as exc:
        results.put(repr(exc))


def migrate_together(url: str, marker: Path, processes: int) -> list[Any]:
    """Fork ``processes`` that migrate ``url`` at the same moment to STEPS plus a slow
    step 2 (which appends to ``marker`` each time it runs); their results (versions, or
    the repr of an error)."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_migrate_at_once, args=(url, marker, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return [results.get(timeout=5) for _ in workers]
