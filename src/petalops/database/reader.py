"""Read-only access to the monitoring database, without SQLAlchemy for a SQLite file.

`petalops rollout status | history`, `monitor status` and `registry show` only read the
monitoring database. Importing SQLAlchemy costs them ~0.3–0.5 s on this 2-core machine
(`python -X importtime -m petalops rollout status`), more than the rest of the command, and
opening a :class:`~petalops.database.open_database` engine creates and migrates a file that
is not there. The reads are plain SQL with ``:name`` parameters, which both the standard
library's ``sqlite3`` and SQLAlchemy's ``text()`` accept, so one query serves both paths:

* a SQLite file (``sqlite:///path``): :class:`SqliteReader`, ``sqlite3`` on a ``mode=ro``
  URI; a file or a table that is not there reads as empty, and nothing is ever created;
* anything else (PostgreSQL, a ``sqlite:///file:…`` URI): :class:`EngineReader` over the
  SQLAlchemy engine the stores use (imported only then).

The writing stores (``MonitorStore``, ``RolloutStore``) read through an
:class:`EngineReader` on their own engine, so their reads run the same SQL.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Params = Mapping[str, Any]
Row = tuple[Any, ...]


class Reader(Protocol):
    """Runs one read-only query; rows as tuples in the order of its SELECT list."""

    @property
    def url(self) -> str: ...

    def rows(self, sql: str, params: Params | None = None) -> list[Row]: ...

    def has_table(self, name: str) -> bool: ...

    def close(self) -> None: ...


def placeholders(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(":v0, :v1", {"v0": a, "v1": b})`` for an ``IN (…)`` list of ``values``."""
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL (None for memory, URIs and other backends)."""
    if not url.startswith("sqlite:///"):
        return None
    database = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def is_empty_memory(url: str) -> bool:
    """``sqlite://`` or ``sqlite:///:memory:``: a database that holds nothing for a reader
    (each connection to it is a new, empty one)."""
    return url in ("sqlite://", "sqlite:///:memory:")


class SqliteReader:
    """``sqlite3`` on a SQLite file opened read-only (``mode=ro``); ``path=None`` or a file that
    does not exist reads as an empty database, and so does a table it does not have yet."""

    def __init__(self, path: Path | None, url: str = "sqlite://", timeout: float = 10.0) -> None:
        self.path = path
        self._url = url
        self.timeout = timeout
        self._con: sqlite3.Connection | None = None

    @property
    def url(self) -> str:
        return self._url

    def _connection(self) -> sqlite3.Connection | None:
        if self._con is None and self.path is not None and self.path.is_file():
            uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
            self._con = sqlite3.connect(uri, uri=True, timeout=self.timeout)
        return self._con

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        con = self._connection()
        if con is None:
            return []
        try:
            return list(con.execute(sql, dict(params or {})).fetchall())
        except sqlite3.OperationalError as exc:
            # A database the writers have not migrated to this table yet: nothing logged.
            if str(exc).startswith("no such table"):
                return []
            raise

    def has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
        return bool(self.rows(sql, {"name": name}))

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class EngineReader:
    """The same queries through a SQLAlchemy engine (PostgreSQL, or a store's own engine)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self._url = url
        self._tables: set[str] = set()  # found once, a table stays: no second look

    @property
    def url(self) -> str:
        return self._url

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        import sqlalchemy as sa  # the store that made the engine has imported it already

        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), dict(params or {}))]

    def has_table(self, name: str) -> bool:
        if name not in self._tables:
            import sqlalchemy as sa

            with self.engine.connect() as conn:
                if sa.inspect(conn).has_table(name):
                    self._tables.add(name)
        return name in self._tables

    def close(self) -> None:
        self.engine.dispose()


def open_reader(url: str) -> Reader:
    """A reader of the monitoring database at ``url`` that creates nothing for SQLite; other
    databases are opened (and migrated) as the stores open them."""
    path = sqlite_file(url)
    if path is not None or is_empty_memory(url):
        return SqliteReader(path, url)
    from petalops.database import open_database  # SQLAlchemy: PostgreSQL needs it

    return EngineReader(open_database(url), url)


class Reads:
    """A block's reads over a :class:`Reader`. Built from a URL, it is what a read-only
    command uses (a SQLite file that is not there reads as empty and is not created); a
    store sets ``reader`` to one on its own engine instead."""

    reader: Reader

    def __init__(self, url: str) -> None:
        self.url = url
        self.reader = open_reader(url)

    def close(self) -> None:
        self.reader.close()
