"""The audit trail: every admin action, with its time, who did it and before/after.

Recorded by the functions that act, whoever calls them (the CLI, the control room, the
admin API): alias moves (`petalops.registry.store.set_alias`), rollout commands
(`petalops.rollout.api.request`) and key changes (`petalops.cli.keys`). Who acted is the
API key's name (or ``admin-token``) when an HTTP route acted, set with `acting_as`; else
``PETALOPS_ACTOR`` or ``user@host``. Rows go to the monitoring database's
``audit_events`` table; `petalops audit` and ``GET /admin/audit`` read them.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from petalops.config import Settings

_ACTOR: ContextVar[str | None] = ContextVar("petalops_audit_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute the admin actions inside the block to ``actor`` (an API key's name).

    A context variable: `asyncio.to_thread` carries it into the worker thread."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> str:
    """Who is acting: `acting_as`, else ``PETALOPS_ACTOR``, else ``user@host``."""
    actor = _ACTOR.get() or os.environ.get("PETALOPS_ACTOR")
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record(
    settings: Settings,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    detail: str = "",
    actor: str | None = None,
) -> None:
    """Append one event. The action itself has already happened: a trail that cannot be
    written says so on stderr instead of failing it."""
    from petalops.database.engine import create_engine
    from petalops.database.migrations import migrate
    from petalops.database.schema import audit_events

    row = {
        "ts": time.time(),
        "actor": (actor or current_actor())[:200],
        "action": action,
        "target": target[:200],
        "before": None if before is None else json.dumps(before, sort_keys=True, default=str),
        "after": None if after is None else json.dumps(after, sort_keys=True, default=str),
        "detail": detail,
    }
    try:
        engine = create_engine(settings.monitor_url)
        try:
            migrate(engine)
            with engine.begin() as conn:
                conn.execute(audit_events.insert().values(**row))
        finally:
            engine.dispose()
    except Exception as exc:
        sys.stderr.write(f"petalops: audit event {action} {target} not recorded: {exc!r}\n")


def entries(settings: Settings, limit: int = 50, action: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` events (optionally of one action, or one action family such
    as ``rollout``), oldest first, with before/after decoded."""
    import sqlalchemy as sa

    from petalops.database.engine import create_engine
    from petalops.database.migrations import migrate
    from petalops.database.schema import audit_events

    engine = create_engine(settings.monitor_url)
    try:
        migrate(engine)
        query = sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if action:
            query = query.where(
                sa.or_(audit_events.c.action == action, audit_events.c.action.like(f"{action}.%"))
            )
        with engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()
    for row in rows:
        for side in ("before", "after"):
            row[side] = None if row[side] is None else json.loads(row[side])
    return rows[::-1]
