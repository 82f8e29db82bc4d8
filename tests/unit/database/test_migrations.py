"""Schema migrations: versions recorded, ordered steps applied once, a database created
before versions existed adopted with its rows, several processes starting at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.utils.monitor_db import (
    MONITOR_TABLES,
    ROLLOUT_TABLES,
    create_old_database,
    insert_old_rows,
    migrate_together,
)

from petalops.database.engine import create_engine
from petalops.database.migrations import STEPS, Step, applied_versions, migrate
from petalops.database.schema import (
    pending_labels,
    schema_versions,
    security_metadata,
    served_versions,
)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return create_engine(f"sqlite:///{tmp_path / 'monitor.db'}")


def _add_column(name: str, calls: list[str] | None = None) -> Callable[[sa.Connection], None]:
    """A later step as a real one is written: idempotent (it looks before it alters)."""

    def apply(conn: sa.Connection) -> None:
        if calls is not None:
            calls.append(name)
        columns = {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE predictions ADD COLUMN {name} TEXT")

    return apply


def test_a_fresh_database_gets_every_table_and_its_version(engine: sa.Engine) -> None:
    assert applied_versions(engine) == []
    assert migrate(engine) == STEPS[-1].version
    assert _tables(engine) == set(MONITOR_TABLES) | set(ROLLOUT_TABLES) | {
        schema_versions.name,
        pending_labels.name,
        *security_metadata.tables,
        served_versions.name,
    }
    assert applied_versions(engine) == [step.version for step in STEPS]
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(schema_versions.c.name, schema_versions.c.applied)))
    _, applied = rows[0]
    assert [r[0] for r in rows] == [step.name for step in STEPS]
    assert applied == pytest.approx(time.time(), abs=60)


def test_migrating_again_changes_nothing(engine: sa.Engine) -> None:
    migrate(engine)
    migrate(engine)
    assert _count(engine, schema_versions.name) == len(STEPS)


def test_a_database_created_before_versions_keeps_its_rows(engine: sa.Engine) -> None:
    create_old_database(engine)
    insert_old_rows(engine)
    assert migrate(engine) == STEPS[-1].version
    assert applied_versions(engine) == [step.version for step in STEPS]
    for table in (*MONITOR_TABLES, *ROLLOUT_TABLES):
        assert _count(engine, table) == 1, table
    with engine.connect() as conn:
        features = conn.exec_driver_sql("SELECT features FROM predictions").scalar_one()
    assert features == "[5.1,3.5,1.4,0.2]"


def test_a_database_of_monitoring_alone_gets_the_rollout_tables(engine: sa.Engine) -> None:
    create_old_database(engine, rollout=False)
    insert_old_rows(engine, rollout=False)
    assert _tables(engine) == set(MONITOR_TABLES)
    migrate(engine)
    assert set(ROLLOUT_TABLES) <= _tables(engine)
    assert _count(engine, "predictions") == 1


def test_later_steps_run_in_order_once_each(engine: sa.Engine) -> None:
    migrate(engine, STEPS[:1])
    calls: list[str] = []
    steps = [
        *STEPS[:1],
        Step(2, "add tenant", _add_column("tenant", calls)),
        Step(3, "add region", _add_column("region", calls)),
    ]
    assert migrate(engine, steps) == 3
    assert calls == ["tenant", "region"]
    assert applied_versions(engine) == [1, 2, 3]
    columns = {c["name"] for c in sa.inspect(engine).get_columns("predictions")}
    assert {"tenant", "region"} <= columns
    assert migrate(engine, steps) == 3
    assert calls == ["tenant", "region"]  # nothing ran twice


def test_on_a_fresh_database_step_one_and_a_later_idempotent_step_agree(
    engine: sa.Engine,
) -> None:
    # Step 1 creates the tables as schema.py defines them now; a later step must then be a
    # no-op. Here the later step adds a column that is not in schema.py, so it does add it.
    steps = [*STEPS[:1], Step(2, "add tenant", _add_column("tenant"))]
    assert migrate(engine, steps) == 2
    assert "tenant" in {c["name"] for c in sa.inspect(engine).get_columns("predictions")}


def test_a_failing_step_leaves_the_schema_as_it_was(engine: sa.Engine) -> None:
    migrate(engine, STEPS[:1])

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN half_done TEXT")
        raise RuntimeError("step 2 failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        migrate(engine, [*STEPS[:1], Step(2, "broken", broken)])
    assert applied_versions(engine) == [1]
    assert "half_done" not in {c["name"] for c in sa.inspect(engine).get_columns("predictions")}


def test_steps_out_of_order_are_refused(engine: sa.Engine) -> None:
    step = STEPS[0]
    with pytest.raises(ValueError, match="increasing versions"):
        migrate(engine, [Step(2, "b", step.apply), step])
    with pytest.raises(ValueError, match="increasing versions"):
        migrate(engine, [step, step])
    assert applied_versions(engine) == []


def test_a_database_migrated_by_newer_code_is_left_alone(engine: sa.Engine) -> None:
    newer = [*STEPS, Step(len(STEPS) + 1, "from a newer petalops", _add_column("tenant"))]
    migrate(engine, newer)
    assert migrate(engine) == len(STEPS) + 1  # older code: nothing to do, no error


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "at-version-1"])
def test_processes_starting_together_migrate_once(tmp_path: Path, existing: bool) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    marker = tmp_path / "runs"
    if existing:  # a rolling upgrade: the new workers all find step 2 missing
        first = create_engine(url)
        migrate(first, STEPS[:1])
        first.dispose()
    assert migrate_together(url, marker, processes=4) == [2] * 4
    engine = create_engine(url)
    assert applied_versions(engine) == [1, 2]
    assert _count(engine, "step_runs") == 1
    assert marker.read_text() == "x"  # the others waited for the lock, none ran it too
    engine.dispose()


def test_step_four_lists_the_versions_already_in_the_log(engine: sa.Engine) -> None:
    from petalops.database.migrations import LIVE_VARIANTS as MIGRATED_VARIANTS
    from petalops.monitoring.reads import LIVE_VARIANTS

    assert MIGRATED_VARIANTS == LIVE_VARIANTS
    migrate(engine, STEPS[:3])
    rows = [
        ("a", 10.0, "iris", "1", "champion"),
        ("b", 30.0, "iris", "1", "challenger"),
        ("c", 20.0, "iris", "2", "challenger"),
        ("d", 40.0, "iris", "3", "shadow"),
        ("e", 50.0, "iris", "", "champion"),
        ("f", 60.0, "other", "1", "champion"),
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO predictions (request_id, row, ts, model_name, model_version, variant, "
            "route, status) VALUES (?, 0, ?, ?, ?, ?, '', 200)",
            rows,
        )
    assert migrate(engine) == 4
    with engine.connect() as conn:
        listed = conn.exec_driver_sql(
            "SELECT model_name, model_version, last_ts FROM served_versions ORDER BY 1, 2"
        ).all()
    assert [tuple(r) for r in listed] == [
        ("iris", "1", 30.0),
        ("iris", "2", 20.0),
        ("other", "1", 60.0),
    ]
