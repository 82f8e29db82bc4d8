"""Schema migrations of the monitoring database: ordered steps, each applied once.

Every process that opens the database (each serving worker, the spool loader, the CLI, the
rollout controller) calls :func:`migrate`. The steps already applied are rows of
``petalops_schema``; the missing ones run in order, in one transaction, under a lock that
makes a second process starting at the same moment wait and then find nothing to do:

* PostgreSQL: a transaction-scoped advisory lock (``pg_advisory_xact_lock``);
* SQLite: ``BEGIN IMMEDIATE`` (the database's write lock; the busy timeout makes the
  second process wait for it).

Both run DDL inside transactions, so a step that fails leaves no half-changed schema.

Step 1 creates every table of :mod:`petalops.database.schema` that does not exist yet,
which also adopts a database created before schema versions were recorded (its tables and
rows stay as they are). Because step 1 creates the tables as ``schema.py`` defines them
*now*, every later step must be idempotent: check (``sa.inspect(conn)``) before it alters,
so that it is a no-op on a database step 1 has just created.

Hand-written rather than Alembic: importing Alembic's runtime (``alembic.runtime.migration``,
which loads the DDL support of every dialect) added ~270 ms to the ~400 ms of SQLAlchemy
itself on each serving worker's start (`python -X importtime`, 2-core machine under load),
for a schema of seven tables and additive steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from petalops.database.schema import (
    metadata,
    pending_labels,
    predictions,
    schema_versions,
    security_metadata,
    served_versions,
)

# The variants that answer live traffic: ``petalops.monitoring.reads.LIVE_VARIANTS`` (written
# out here because the database package imports nothing of monitoring; a test keeps them equal).
LIVE_VARIANTS = ("champion", "challenger")

# Any fixed 64-bit key: it names the lock of this schema among the server's advisory locks.
_POSTGRES_LOCK_KEY = 0x7065_7461_6C6F_7073  # "petalops"


@dataclass(frozen=True)
class Step:
    """One migration: ``apply`` runs inside the migration transaction, at most once per
    database (and must be idempotent, see the module docstring)."""

    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _create_tables(conn: sa.Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


def _create_pending_labels(conn: sa.Connection) -> None:
    pending_labels.create(conn, checkfirst=True)


def _create_security_tables(conn: sa.Connection) -> None:
    security_metadata.create_all(conn, checkfirst=True)


def _create_served_versions(conn: sa.Connection) -> None:
    if sa.inspect(conn).has_table(served_versions.name):
        return
    served_versions.create(conn)
    # One pass over the log as it is; from now on every insert keeps the table.
    c = predictions.c
    newest = (
        sa.select(c.model_name, c.model_version, sa.func.max(c.ts))
        .where(c.variant.in_(LIVE_VARIANTS), c.model_version != "")
        .group_by(c.model_name, c.model_version)
    )
    conn.execute(
        served_versions.insert().from_select(["model_name", "model_version", "last_ts"], newest)
    )


STEPS: tuple[Step, ...] = (
    Step(
        1,
        "prediction log, loop events, log health, spool loads and rollout state",
        _create_tables,
    ),
    Step(2, "labels waiting for their prediction (pending_labels)", _create_pending_labels),
    Step(3, "API keys and the audit trail (api_keys, audit_events)", _create_security_tables),
    Step(4, "versions with logged live rows (served_versions)", _create_served_versions),
)


def applied_versions(engine: Engine) -> list[int]:
    """The versions of the steps applied to this database, in order ([] before any)."""
    with engine.connect() as conn:
        return _applied(conn)


def _applied(conn: sa.Connection) -> list[int]:
    if not sa.inspect(conn).has_table(schema_versions.name):
        return []
    query = sa.select(schema_versions.c.version).order_by(schema_versions.c.version)
    return [int(v) for v in conn.execute(query).scalars()]


def migrate(engine: Engine, steps: Sequence[Step] = STEPS, *, attempts: int = 5) -> int:
    """Apply the steps this database lacks; returns its schema version afterwards.

    Cheap when there is nothing to do (two small queries). A database already migrated by
    newer code is left alone: steps only add, and during a rolling upgrade older workers
    keep using the same database.
    """
    versions = [step.version for step in steps]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"migration steps must have increasing versions from 1, got {versions}")
    for attempt in range(attempts):
        try:
            current = applied_versions(engine)
            if set(versions) <= set(current):
                return max(current, default=0)
            return _migrate_exclusively(engine, steps)
        except sa.exc.DBAPIError:
            # Another process beyond the lock's reach (older code running create_all during
            # a rolling upgrade, a busy timeout) got in the way: its work is done next time.
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _migrate_exclusively(engine: Engine, steps: Sequence[Step]) -> int:
    with _exclusive(engine) as conn:
        schema_versions.create(conn, checkfirst=True)
        done = set(_applied(conn))
        for step in steps:
            if step.version in done:
                continue
            step.apply(conn)
            conn.execute(
                schema_versions.insert().values(
                    version=step.version, name=step.name, applied=time.time()
                )
            )
            done.add(step.version)
        return max(done, default=0)


@contextmanager
def _exclusive(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction that no other migrating process runs at the same time."""
    backend = engine.dialect.name
    if backend == "sqlite":
        # pysqlite neither begins a transaction before DDL nor takes the write lock up
        # front; in AUTOCOMMIT mode it leaves BEGIN/COMMIT to us.
        with engine.connect() as plain:
            conn = plain.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        return
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
        yield conn
