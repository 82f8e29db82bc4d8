"""The rollout block's reads and writes of the monitoring database.

* ``rollout_events``: every decision with its numbers (``petalops rollout history``).
* ``rollout_leases``: who may act; taken with one atomic conditional UPDATE.
* ``rollout_commands``: promote/abort requests handed to a running controller.
* ``predictions``: read only, per-variant windows of the prediction log for the analysis.

The tables, the engine and the migrations belong to :mod:`petalops.database`.

The lease lives in the database rather than in a registry tag because MLflow tags have no
compare-and-set: two controllers reading then writing a tag can both believe they won.
``UPDATE ... WHERE holder = :me OR expires < :now`` is atomic on SQLite and PostgreSQL,
so exactly one caller sees ``rowcount == 1``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from petalops.database import open_database
from petalops.database.schema import (
    predictions,
    rollout_commands,
    rollout_events,
    rollout_leases,
)
from petalops.rollout.analysis import Sample


class RolloutStore:
    """Rollout history, lease and commands, plus per-variant windows of the prediction log."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_database(url)

    def close(self) -> None:
        self.engine.dispose()

    # -- the prediction log -----------------------------------------------------------------

    def samples(
        self,
        model_name: str,
        variant: str,
        version: str,
        since: float,
        until: float | None = None,
    ) -> list[Sample]:
        """Rows one variant answered (or shadowed) in ``[since, until)``.

        The caller's mistakes (4xx rows, logged for the data-quality counts) are left out: a
        client sending bad input must neither fill a canary's sample floor nor move its p99.
        """
        c = predictions.c
        query = sa.select(
            c.status, c.latency_ms, c.prediction, c.reference_prediction, c.label, c.probabilities
        ).where(
            c.model_name == model_name,
            c.variant == variant,
            c.model_version == str(version),
            c.ts >= since,
            sa.or_(c.status < 400, c.status >= 500),
        )
        if until is not None:
            query = query.where(c.ts < until)
        with self.engine.connect() as conn:
            fetched = conn.execute(query).all()
        return [
            Sample(
                int(status),
                float(latency or 0.0),
                prediction,
                reference,
                label,
                tuple(orjson.loads(proba)) if proba else None,
            )
            for status, latency, prediction, reference, label, proba in fetched
        ]

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

    def history(
        self, model_name: str, *, rollout_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest decisions, oldest first, ``detail`` decoded."""
        e = rollout_events.c
        query = sa.select(rollout_events).where(e.model_name == model_name)
        if rollout_id:
            query = query.where(e.rollout_id == rollout_id)
        query = query.order_by(e.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["detail"] = orjson.loads(row["detail"]) if row["detail"] else {}
        return rows[::-1]

    def last_event(
        self, model_name: str, rollout_id: str, actions: Sequence[str]
    ) -> dict[str, Any] | None:
        e = rollout_events.c
        query = (
            sa.select(rollout_events)
            .where(
                e.model_name == model_name,
                e.rollout_id == rollout_id,
                e.action.in_(list(actions)),
            )
            .order_by(e.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["detail"] = orjson.loads(out["detail"]) if out["detail"] else {}
        return out

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

    def lease(self, name: str) -> dict[str, Any] | None:
        query = sa.select(rollout_leases).where(rollout_leases.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

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

    def pending(self, model_name: str) -> list[dict[str, Any]]:
        """Commands nobody has claimed yet, oldest first."""
        c = rollout_commands.c
        query = (
            sa.select(rollout_commands)
            .where(c.model_name == model_name, c.claimed_by.is_(None))
            .order_by(c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

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

    def command(self, command_id: int) -> dict[str, Any] | None:
        query = sa.select(rollout_commands).where(rollout_commands.c.id == command_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None
