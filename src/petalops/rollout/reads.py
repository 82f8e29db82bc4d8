"""The rollout block's reads of the monitoring database, in plain SQL.

:class:`RolloutReads` is what `petalops rollout status | history`, `registry show` and the
control room ask: the decisions in ``rollout_events``, the lease, the queued commands and
per-variant windows of the prediction log. Its queries run through a
:class:`~petalops.database.reader.Reader`: ``sqlite3`` for a SQLite file (read-only, nothing
created, no SQLAlchemy import) or the SQLAlchemy engine of PostgreSQL.
:class:`~petalops.rollout.store.RolloutStore` adds the writes and reads through its engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from petalops.database.reader import Reads, placeholders
from petalops.rollout.analysis import Sample

EVENT_COLUMNS = (
    "id",
    "ts",
    "model_name",
    "rollout_id",
    "strategy",
    "phase",
    "step",
    "weight",
    "action",
    "verdict",
    "reason",
    "champion_version",
    "challenger_version",
    "actor",
    "detail",
)
LEASE_COLUMNS = ("name", "holder", "expires", "acquired")
COMMAND_COLUMNS = ("id", "ts", "model_name", "command", "reason", "claimed_by", "done_ts", "result")

_EVENTS = f"SELECT {', '.join(EVENT_COLUMNS)} FROM rollout_events"
_COMMANDS = f"SELECT {', '.join(COMMAND_COLUMNS)} FROM rollout_commands"


def _event(row: Sequence[Any]) -> dict[str, Any]:
    event = dict(zip(EVENT_COLUMNS, row, strict=True))
    event["detail"] = orjson.loads(event["detail"]) if event["detail"] else {}
    return event


class RolloutReads(Reads):
    """Rollout history, lease and commands, plus per-variant windows of the prediction log."""

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
        sql = (
            "SELECT status, latency_ms, prediction, reference_prediction, label, probabilities "
            "FROM predictions WHERE model_name = :name AND variant = :variant "
            "AND model_version = :version AND ts >= :since AND (status < 400 OR status >= 500)"
        )
        params: dict[str, Any] = {
            "name": model_name,
            "variant": variant,
            "version": str(version),
            "since": since,
        }
        if until is not None:
            sql += " AND ts < :until"
            params["until"] = until
        return [
            Sample(
                int(status),
                float(latency or 0.0),
                prediction,
                reference,
                label,
                tuple(orjson.loads(proba)) if proba else None,
            )
            for status, latency, prediction, reference, label, proba in self.reader.rows(
                sql, params
            )
        ]

    def history(
        self, model_name: str, *, rollout_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest decisions, oldest first, ``detail`` decoded."""
        sql = f"{_EVENTS} WHERE model_name = :name"
        params: dict[str, Any] = {"name": model_name, "limit": int(limit)}
        if rollout_id:
            sql += " AND rollout_id = :rollout"
            params["rollout"] = rollout_id
        rows = self.reader.rows(f"{sql} ORDER BY id DESC LIMIT :limit", params)
        return [_event(row) for row in rows][::-1]

    def last_event(
        self, model_name: str, rollout_id: str, actions: Sequence[str]
    ) -> dict[str, Any] | None:
        if not actions:
            return None
        marks, params = placeholders("action", list(actions))
        rows = self.reader.rows(
            f"{_EVENTS} WHERE model_name = :name AND rollout_id = :rollout "
            f"AND action IN ({marks}) ORDER BY id DESC LIMIT 1",
            {"name": model_name, "rollout": rollout_id, **params},
        )
        return _event(rows[0]) if rows else None

    def lease(self, name: str) -> dict[str, Any] | None:
        rows = self.reader.rows(
            f"SELECT {', '.join(LEASE_COLUMNS)} FROM rollout_leases WHERE name = :name",
            {"name": name},
        )
        return dict(zip(LEASE_COLUMNS, rows[0], strict=True)) if rows else None

    def pending(self, model_name: str) -> list[dict[str, Any]]:
        """Commands nobody has claimed yet, oldest first."""
        rows = self.reader.rows(
            f"{_COMMANDS} WHERE model_name = :name AND claimed_by IS NULL ORDER BY id",
            {"name": model_name},
        )
        return [dict(zip(COMMAND_COLUMNS, row, strict=True)) for row in rows]

    def command(self, command_id: int) -> dict[str, Any] | None:
        rows = self.reader.rows(f"{_COMMANDS} WHERE id = :id", {"id": int(command_id)})
        return dict(zip(COMMAND_COLUMNS, rows[0], strict=True)) if rows else None


class RolloutReader(RolloutReads):
    """The reads alone, for a command that only reads: a SQLite file that is not there
    reads as empty and is not created (:func:`~petalops.database.reader.open_reader`)."""
