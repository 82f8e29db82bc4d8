"""The monitoring database: the one package that defines its tables and migrates them.

* :mod:`petalops.database.schema`      every table (prediction log, loop events, log health,
  spool loads, rollout state)
* :mod:`petalops.database.engine`      the engine: SQLite with WAL and a busy timeout, or
  PostgreSQL by URL
* :mod:`petalops.database.migrations`  ordered, versioned steps, safe when several
  processes start at once
* :mod:`petalops.database.reader`      read-only queries: ``sqlite3`` on a SQLite file
  (creates nothing, no SQLAlchemy), the engine for other databases

``petalops.monitoring.store.MonitorStore`` and ``petalops.rollout.store.RolloutStore``
query these tables; :func:`open_database` is how each gets its engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def open_database(url: str, engine: Engine | None = None) -> Engine:
    """An engine on ``url`` (or ``engine``) whose schema is migrated to the latest version."""
    # Imported here, not at the top: SQLAlchemy (~0.3 s), which the read-only path
    # (:mod:`petalops.database.reader`, a module of this package) must not pay.
    from petalops.database.engine import create_engine
    from petalops.database.migrations import migrate

    engine = engine or create_engine(url)
    migrate(engine)
    return engine
