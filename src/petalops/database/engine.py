"""The engine of the monitoring database: SQLite (WAL, busy timeout) or PostgreSQL by URL."""

from __future__ import annotations

import functools
import importlib.util
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from petalops.errors import ConfigError

_WAL_ATTEMPTS = 20


def _on_sqlite_connect(dbapi_connection: Any, _record: Any, cache_mib: int | None = None) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout makes concurrent writers (several workers) wait instead of failing
    # with "database is locked"; WAL lets the server write while `monitor drift` reads.
    cursor.execute("PRAGMA busy_timeout=10000")
    # Switching a new file to WAL needs a lock that SQLite does not wait for through the busy
    # handler: processes opening a fresh database together retry here a few times.
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    cursor.execute("PRAGMA synchronous=NORMAL")
    if cache_mib is not None:
        # A negative cache_size is in KiB (https://sqlite.org/pragma.html#pragma_cache_size).
        cursor.execute(f"PRAGMA cache_size={-int(cache_mib) * 1024}")
    cursor.close()


def create_engine(url: str, *, cache_mib: int | None = None) -> Engine:
    """An engine for the monitoring database; SQLite files get WAL and a busy timeout.

    ``cache_mib`` gives each SQLite connection a page cache of that size instead of
    SQLite's 2 MiB (the spool loader's: inserts into a big request-id index).

    Raises :class:`~petalops.errors.ConfigError` naming a valid example for a bad URL.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f"monitor.db_url {url!r} is not a database URL; "
            "example: sqlite:///.petalops/monitor.db or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        sa.event.listen(
            engine, "connect", functools.partial(_on_sqlite_connect, cache_mib=cache_mib)
        )
        return engine
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use psycopg2 when only it is
    # installed (the Docker image ships psycopg2-binary).
    if (
        parsed.drivername == "postgresql"
        and importlib.util.find_spec("psycopg") is None
        and importlib.util.find_spec("psycopg2")
    ):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return sa.create_engine(parsed, pool_pre_ping=True)
