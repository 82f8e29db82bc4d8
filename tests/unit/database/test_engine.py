"""The monitoring database's engine: SQLite options, the PostgreSQL driver, URL errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from petalops.database.engine import create_engine
from petalops.errors import ConfigError


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'monitor.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert (tmp_path / "sub" / "monitor.db").exists()
    engine.dispose()


def test_the_spool_loaders_store_has_a_bigger_page_cache(tmp_path: Path) -> None:
    from petalops.monitoring.spool import LOADER_CACHE_MIB, loader_store

    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    plain = create_engine(url)
    store = loader_store(url)
    with plain.connect() as conn:
        default = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -LOADER_CACHE_MIB * 1024
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert default != -LOADER_CACHE_MIB * 1024  # everyone else keeps SQLite's own
    plain.dispose()
    store.close()


def test_a_bare_postgresql_url_uses_the_installed_driver() -> None:
    if importlib.util.find_spec("psycopg2") is None:
        pytest.skip("psycopg2 is not installed")
    engine = create_engine("postgresql://petalops@127.0.0.1:1/petalops")  # never connects
    expected = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
    assert engine.dialect.driver == expected
    assert create_engine("postgresql+psycopg2://u@h/db").dialect.driver == "psycopg2"


def test_a_bad_url_says_what_a_good_one_looks_like() -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        create_engine("not a url")
