"""The tables of the monitoring database: one definition, the same columns as before."""

from __future__ import annotations

from pathlib import Path

from tests.utils.monitor_db import MONITOR_TABLES, ROLLOUT_TABLES, SQLITE_DDL, normalised

from petalops.database import open_database
from petalops.database.schema import metadata, predictions, schema_versions
from petalops.monitoring.record import INSERT_COLUMNS


def test_metadata_holds_every_table_of_both_blocks() -> None:
    assert set(metadata.tables) == set(MONITOR_TABLES) | set(ROLLOUT_TABLES)
    assert schema_versions.name not in metadata.tables  # created by the migrations alone


def test_a_fresh_database_has_exactly_the_tables_the_old_code_created(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'monitor.db'}")
    with engine.connect() as conn:
        query = "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        created: dict[str, str] = dict(conn.exec_driver_sql(query).tuples().all())
    engine.dispose()
    # Plus the tables later migration steps add (step 2: pending_labels and its index;
    # step 3: api_keys, audit_events and its index; step 4: served_versions).
    added_later = (
        "pending_labels",
        "ix_pending_labels_ts",
        "api_keys",
        "audit_events",
        "served_versions",
    )
    for added in (*added_later, "ix_audit_events_ts"):
        assert created.pop(added)
    assert set(created) - {schema_versions.name} == {
        statement.split()[2] for statement in SQLITE_DDL
    }
    # Same statement text, column for column (only the layout of whitespace may differ).
    assert sorted(
        normalised(sql) for name, sql in created.items() if name != "petalops_schema"
    ) == (sorted(normalised(statement) for statement in SQLITE_DDL))


def test_the_record_conversion_follows_the_prediction_columns() -> None:
    assert tuple(c.name for c in predictions.columns if c.name != "id") == INSERT_COLUMNS


def test_the_plain_sql_reads_name_every_column_of_their_tables() -> None:
    # The read path lists columns by hand (no SQLAlchemy); a column added here must be read.
    from petalops.database.schema import (
        log_health,
        loop_events,
        rollout_commands,
        rollout_events,
        rollout_leases,
    )
    from petalops.monitoring import reads as monitoring_reads
    from petalops.rollout import reads as rollout_reads

    def names(table: object) -> tuple[str, ...]:
        return tuple(c.name for c in table.columns)  # type: ignore[attr-defined]

    assert names(rollout_events) == rollout_reads.EVENT_COLUMNS
    assert names(rollout_leases) == rollout_reads.LEASE_COLUMNS
    assert names(rollout_commands) == rollout_reads.COMMAND_COLUMNS
    assert names(loop_events) == monitoring_reads.EVENT_COLUMNS
    assert names(log_health) == monitoring_reads.HEALTH_COLUMNS
