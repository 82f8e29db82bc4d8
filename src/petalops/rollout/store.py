"""The rollout block's reads and writes of the monitoring database.

* ``rollout_events``: every decision with its numbers (``petalops rollout history``).
* ``rollout_leases``: who may act; taken with one atomic conditional UPDATE.
* ``rollout_commands``: promote/abort requests handed to a running controller.
* ``predictions``: read only, per-variant windows of the prediction log for the analysis.

The reads are plain SQL in :mod:`petalops.rollout.reads` (which read-only commands use
without this module, SQLAlchemy or a write); the tables, the engine and the migrations
belong to :mod:`petalops.database`.

The lease lives in the database rather than in a registry tag because MLflow tags have no
compare-and-set: two controllers reading then writing a tag can both believe they won.
``UPDATE ... WHERE holder = :me OR expires < :now`` is atomic on SQLite and PostgreSQL,
so exactly one caller sees ``rowcount == 1``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import sqlalchemy as sa

from petalops.database import open_database
from petalops.database.reader import EngineReader
from petalops.database.schema import (
    rollout_commands,
    rollout_events,
    rollout_leases,
)
from petalops.rollout.reads import RolloutReads


class RolloutStore(RolloutReads):
    """Rollout history, lease and commands, plus per-variant windows of the prediction log:
    the reads of :class:`~petalops.rollout.reads.RolloutReads` through this store's engine,
    and the writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_database(url)
        self.reader = EngineReader(self.engine, url)

    def close(self) -> None:
        self.engine.dispose()

    # -- history ----------------------------------------------------------------------------

    def record(self, **values: Any) -> int:
        """Append one decision; ``detail`` (a dict) is stored as JSON."""
        detail = values.pop("detail", None)
        row = {"ts": time.time(), **values}
        if detail is not None:
            row["detail"] = orjson.dumps(detail).decode()
        with self.engine.begin() as conn:
            result = conn.execute(rollout_events.insert().values(**row))
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    # -- the lease --------------------------------------------------------------------------

    def acquire(self, name: str, holder: str, ttl: float, *, force: bool = False) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False if someone else holds it."""
        now = time.time()
        lease = rollout_leases.c
        condition = sa.or_(lease.holder == holder, lease.expires < now)
        update = rollout_leases.update().where(lease.name == name)
        if not force:
            update = update.where(condition)
        with self.engine.begin() as conn:
            result = conn.execute(update.values(holder=holder, expires=now + ttl, acquired=now))
            if result.rowcount == 1:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    rollout_leases.insert().values(
                        name=name, holder=holder, expires=now + ttl, acquired=now
                    )
                )
        except sa.exc.IntegrityError:
            return False  # the row exists and is held by someone else
        return True

    def release(self, name: str, holder: str) -> None:
        lease = rollout_leases.c
        with self.engine.begin() as conn:
            conn.execute(
                rollout_leases.update()
                .where(lease.name == name, lease.holder == holder)
                .values(expires=0.0)
            )

    # -- commands for a running controller --------------------------------------------------

    def submit(self, model_name: str, command: str, reason: str = "") -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                rollout_commands.insert().values(
                    ts=time.time(), model_name=model_name, command=command, reason=reason
                )
            )
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    def claim(self, command_id: int, holder: str) -> bool:
        """Take a command; False if someone else took it first (conditional UPDATE)."""
        c = rollout_commands.c
        with self.engine.begin() as conn:
            updated = conn.execute(
                rollout_commands.update()
                .where(c.id == command_id, c.claimed_by.is_(None))
                .values(claimed_by=holder)
            )
        return updated.rowcount == 1

    def finish(self, command_id: int, result: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                rollout_commands.update()
                .where(rollout_commands.c.id == command_id)
                .values(done_ts=time.time(), result=result)
            )
