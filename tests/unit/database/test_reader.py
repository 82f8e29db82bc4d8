"""The read-only path: sqlite3 on a mode=ro URI that creates nothing, the same SQL through an
engine, and a missing file or table read as empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from petalops.database import open_database
from petalops.database.reader import (
    EngineReader,
    SqliteReader,
    open_reader,
    placeholders,
    sqlite_file,
)

QUERY = "SELECT name, rows FROM spool_loads WHERE rows >= :least ORDER BY name"


def _migrated(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = open_database(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO spool_loads (name, ts, rows) VALUES ('a', 1.0, 3), ('b', 2.0, 7)"
        )
    engine.dispose()
    return url


def test_a_missing_file_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "monitor.db"
    reader = open_reader(f"sqlite:///{path}")
    assert isinstance(reader, SqliteReader)
    assert reader.rows(QUERY, {"least": 0}) == []
    reader.close()
    assert not path.exists()
    assert not path.parent.exists()


def test_sqlite3_and_the_engine_read_the_same_rows(tmp_path: Path) -> None:
    url = _migrated(tmp_path / "monitor.db")
    plain = open_reader(url)
    engine = EngineReader(open_database(url), url)
    try:
        assert plain.rows(QUERY, {"least": 5}) == [("b", 7)]
        assert engine.rows(QUERY, {"least": 5}) == plain.rows(QUERY, {"least": 5})
        marks, params = placeholders("n", ["a", "b"])
        sql = f"SELECT name FROM spool_loads WHERE name IN ({marks}) ORDER BY name"
        assert plain.rows(sql, params) == engine.rows(sql, params) == [("a",), ("b",)]
    finally:
        plain.close()
        engine.close()


def test_the_reader_cannot_write(tmp_path: Path) -> None:
    url = _migrated(tmp_path / "monitor.db")
    reader = open_reader(url)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.rows("DELETE FROM spool_loads")
    assert reader.rows(QUERY, {"least": 0}) == [("a", 3), ("b", 7)]
    reader.close()


def test_a_table_not_migrated_yet_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x INTEGER)").connection.close()
    reader = open_reader(f"sqlite:///{path}")
    assert reader.rows(QUERY, {"least": 0}) == []
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        reader.rows("SELECT nope FROM unrelated")
    reader.close()


def test_only_plain_sqlite_files_take_the_sqlite3_path(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert sqlite_file("sqlite:///relative/m.db?timeout=5") == Path("relative/m.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite:///file:m.db?mode=memory&uri=true") is None
    assert sqlite_file("postgresql://u@h/db") is None
    memory = open_reader("sqlite://")
    assert isinstance(memory, SqliteReader)
    assert memory.rows(QUERY, {"least": 0}) == []
