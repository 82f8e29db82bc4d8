"""The monitoring block's reads and writes of the monitoring database.

The tables, the engine and the migrations belong to :mod:`petalops.database`; this module
is what monitoring asks of them: the prediction log (insert, spool loads, retention,
windows for drift and quality, feedback labels), the closed loop's ``loop_events`` and
each logger's ``log_health``. The reads the read-only commands need are plain SQL in
:mod:`petalops.monitoring.reads`, which they use without this module (and SQLAlchemy).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import operator
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from petalops.database import open_database
from petalops.database.reader import EngineReader
from petalops.database.schema import (
    log_health,
    loop_events,
    pending_labels,
    predictions,
    served_versions,
    spool_loads,
)
from petalops.monitoring.reads import LIVE_VARIANTS, Labelled, MonitorReads, Window
from petalops.monitoring.record import INSERT_COLUMNS, dumps, to_row

__all__ = ["LIVE_VARIANTS", "Labelled", "MonitorStore", "Window"]

# What `_note_versions` reads of each inserted row, and the live variants as a set.
_VERSION_FIELDS = operator.itemgetter(
    *(INSERT_COLUMNS.index(c) for c in ("model_name", "model_version", "variant", "ts"))
)
_LIVE = frozenset(LIVE_VARIANTS)
_NEVER = float("-inf")
# Rows in one multi-row INSERT (`MonitorStore._insert_rows`): 64 x 16 parameters stays far
# under SQLite's 32,766 and PostgreSQL's 65,535; more measured no cheaper a row.
_ROWS_A_STATEMENT = 64
_ANY_PENDING = sa.select(pending_labels.c.row).limit(1)


class MonitorStore(MonitorReads):
    """Reads and writes the monitoring tables. Creating one migrates the database if needed;
    the reads of :class:`~petalops.monitoring.reads.MonitorReads` go through its engine."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = open_database(url, engine)
        self.reader = EngineReader(self.engine, url)
        self._insert_sqls: dict[tuple[int, int], str] = {}  # by (width, rows)

    @classmethod
    def from_settings(cls, settings: Any) -> MonitorStore:
        return cls(settings.monitor_url)

    def close(self) -> None:
        self.engine.dispose()

    # -- prediction log -------------------------------------------------------------------

    def insert_predictions(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert already-converted rows (see :func:`to_row`) in one transaction."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            self._insert(conn, rows)
        return len(rows)

    def _insert(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_values(conn, [tuple(r[c] for c in INSERT_COLUMNS) for r in rows])

    def _insert_values(self, conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows given as values in ``INSERT_COLUMNS`` order. A row may stop short:
        the columns it leaves off are NULL (an answer's rows stop before ``label``)."""
        full = len(INSERT_COLUMNS)
        if self._marks is None:
            conn.execute(
                predictions.insert(),
                [
                    dict(zip(INSERT_COLUMNS, (*v, *(None,) * (full - len(v))), strict=True))
                    for v in values
                ],
            )
        else:
            cursor = conn.connection.cursor()  # the transaction's own connection
            try:
                self._insert_rows(cursor, values)
            finally:
                cursor.close()
        self._note_versions(conn, values)
        # The ids only when a label waits (nearly never): their set and sort cost ~1 µs a
        # row of the spool loader's ~13 (bench/spool_load.py).
        if values and conn.execute(_ANY_PENDING).first() is not None:
            self._join_pending(conn, sorted({str(v[0]) for v in values}))

    def _note_versions(self, conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> None:
        """Keep ``served_versions`` (one upsert per version in the batch, nearly always one
        or two): the versions with live rows and the ts of their newest row."""
        newest: dict[tuple[Any, Any], float] = {}
        # ~0.3 µs a row, of the ~7 µs its insert costs (measured on 500-row spool files).
        for name, version, variant, ts in map(_VERSION_FIELDS, values):
            if version and variant in _LIVE:
                key = (name, version)
                if ts > newest.get(key, _NEVER):
                    newest[key] = ts
        if not newest:
            return
        rows: list[dict[str, Any]] = [
            {"model_name": str(name), "model_version": str(version), "last_ts": float(ts)}
            for (name, version), ts in sorted(newest.items())
        ]
        upsert = self._upsert_version
        if upsert is not None:
            conn.execute(upsert, rows)
            return
        s = served_versions.c
        for row in rows:  # a backend without INSERT … ON CONFLICT
            name, version, ts = row["model_name"], row["model_version"], row["last_ts"]
            found = sa.select(s.last_ts).where(s.model_name == name, s.model_version == version)
            if conn.execute(found).first() is None:
                conn.execute(served_versions.insert().values(**row))
                continue
            conn.execute(
                served_versions.update()
                .where(s.model_name == name, s.model_version == version, s.last_ts < ts)
                .values(last_ts=ts)
            )

    @functools.cached_property
    def _upsert_version(self) -> Any:
        """``INSERT … ON CONFLICT DO UPDATE`` keeping the newer ts (SQLite, PostgreSQL)."""
        backend = self.engine.dialect.name
        if backend not in ("sqlite", "postgresql"):
            return None
        # Only this backend's dialect: PostgreSQL's costs a SQLite worker ~0.3 s to import.
        dialect = importlib.import_module(f"sqlalchemy.dialects.{backend}")
        s = served_versions.c
        statement = dialect.insert(served_versions)
        newer = sa.case(
            (statement.excluded.last_ts > s.last_ts, statement.excluded.last_ts), else_=s.last_ts
        )
        return statement.on_conflict_do_update(
            index_elements=[s.model_name, s.model_version], set_={"last_ts": newer}
        )

    def _join_pending(self, conn: sa.Connection, request_ids: Sequence[str]) -> int:
        """Give rows just inserted the labels that were sent before they arrived; returns
        the rows labelled. Nearly always one cheap query on an empty table."""
        if not request_ids or conn.execute(_ANY_PENDING).first() is None:
            return 0
        p, c = pending_labels.c, predictions.c
        waiting: list[tuple[str, int, int]] = []
        for start in range(0, len(request_ids), 500):
            chunk = list(request_ids[start : start + 500])
            waiting += [
                (str(rid), int(row), int(label))
                for rid, row, label in conn.execute(
                    sa.select(p.request_id, p.row, p.label).where(p.request_id.in_(chunk))
                )
            ]
        labelled = 0
        now = time.time()
        for request_id, row, label in waiting:
            rows = sorted(
                set(
                    conn.execute(
                        sa.select(c.row).where(c.request_id == request_id).distinct()
                    ).scalars()
                )
            )
            target = rows[0] if row == -1 and len(rows) == 1 else row
            if target not in rows:
                continue  # a batch labelled without "row", or no such row: stays unmatched
            result = conn.execute(
                predictions.update()
                .where(c.request_id == request_id, c.row == target, c.label.is_(None))
                .values(label=label, label_ts=now)
            )
            labelled += int(result.rowcount or 0)
            conn.execute(pending_labels.delete().where(p.request_id == request_id, p.row == row))
        return labelled

    def labels_for_requests(self, request_ids: Sequence[str]) -> dict[str, dict[int, int | None]]:
        """For each request id logged: its row indexes and the label each has (or None)."""
        c = predictions.c
        found: dict[str, dict[int, int | None]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(request_ids), 500):
                chunk = list(request_ids[start : start + 500])
                query = (
                    sa.select(c.request_id, c.row, sa.func.max(c.label))
                    .where(c.request_id.in_(chunk))
                    .group_by(c.request_id, c.row)
                )
                for request_id, row, label in conn.execute(query):
                    found.setdefault(str(request_id), {})[int(row)] = (
                        None if label is None else int(label)
                    )
        return found

    def pending_for(self, request_ids: Sequence[str]) -> dict[tuple[str, int], int]:
        """The labels waiting for these request ids: ``{(request_id, row): label}``."""
        p = pending_labels.c
        found: dict[tuple[str, int], int] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(request_ids), 500):
                chunk = list(request_ids[start : start + 500])
                query = sa.select(p.request_id, p.row, p.label).where(p.request_id.in_(chunk))
                for request_id, row, label in conn.execute(query):
                    found[(str(request_id), int(row))] = int(label)
        return found

    def add_pending(self, items: Sequence[tuple[str, int, int]], ts: float) -> int:
        """Keep labels for predictions not logged yet; rows already arrived meanwhile are
        labelled at once. Returns how many wait."""
        if not items:
            return 0
        p = pending_labels.c
        with self.engine.begin() as conn:
            for request_id, row, _label in items:
                conn.execute(
                    pending_labels.delete().where(p.request_id == request_id, p.row == row)
                )
            conn.execute(
                pending_labels.insert(),
                [{"request_id": r, "row": w, "label": lab, "ts": ts} for r, w, lab in items],
            )
            # The loader may have committed the rows between the lookup and this insert.
            ids = sorted({r for r, _, _ in items})
            self._join_pending(conn, ids)
            waiting = conn.execute(
                sa.select(sa.func.count()).select_from(pending_labels).where(p.request_id.in_(ids))
            ).scalar()
        return int(waiting or 0)

    def purge_pending(self, older_than: float) -> int:
        """Forget labels whose prediction never arrived; returns how many (unmatched)."""
        with self.engine.begin() as conn:
            result = conn.execute(pending_labels.delete().where(pending_labels.c.ts < older_than))
        return int(result.rowcount or 0)

    def load_spool(self, files: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> int:
        """Insert the rows of spool files (name, rows as :func:`to_values` tuples) not
        loaded before, and their names, in one transaction; returns the rows inserted.
        Idempotent per name."""
        if not files:
            return 0
        names = [name for name, _ in files]
        now = time.time()
        with self.engine.begin() as conn:
            done = set(
                conn.execute(
                    sa.select(spool_loads.c.name).where(spool_loads.c.name.in_(names))
                ).scalars()
            )
            fresh = [(name, rows) for name, rows in files if name not in done]
            values = [row for _, batch in fresh for row in batch]
            if values:
                self._insert_values(conn, values)
            if fresh:
                conn.execute(
                    spool_loads.insert(),
                    [{"name": name, "ts": now, "rows": len(batch)} for name, batch in fresh],
                )
        return len(values)

    def purge_spool_loads(self, older_than: float) -> int:
        """Forget spool file names loaded before ``older_than`` (their files are long gone)."""
        with self.engine.begin() as conn:
            result = conn.execute(spool_loads.delete().where(spool_loads.c.ts < older_than))
        return int(result.rowcount or 0)

    def _insert_rows(self, cursor: Any, values: Sequence[tuple[Any, ...]]) -> None:
        """The DB-API inserts of ``_insert_values``, on the transaction's own cursor.

        The driver's cursor, with tuples: SQLAlchemy's per-row parameter handling cost ~3x
        the CPU of the insert itself, and each of its executions ~10 µs more than the
        cursor's. Then, for the spool loader, which inserts every row served (counted by
        ``bench/spool_load.py --instructions``):

        * the columns a row leaves off are NULL in the statement, not bound: Python's
          sqlite3 binds a None through its adapter lookup, where an exact int, float or
          str is bound directly (with the parse in one ``map``, 68,637 → 57,590
          instructions a row);
        * ``_ROWS_A_STATEMENT`` rows go in one multi-row ``INSERT … VALUES``, which spares
          an executemany's per-row reset and step (57,590 → 51,068; psycopg's executemany
          is a loop of executes, so PostgreSQL gains more);
        * runs of rows of one width go in order, each in as few statements as it allows.
        """
        many = _ROWS_A_STATEMENT
        for width, run in itertools.groupby(values, key=len):
            rows = list(run)
            whole = len(rows) - len(rows) % many
            if whole:
                sql = self._insert_sql_of(width, many)
                for start in range(0, whole, many):
                    cursor.execute(
                        sql, tuple(itertools.chain.from_iterable(rows[start : start + many]))
                    )
            if whole < len(rows):
                cursor.executemany(self._insert_sql_of(width), rows[whole:])

    @functools.cached_property
    def _marks(self) -> str | None:
        """The DB-API driver's parameter mark, or None for a paramstyle not written here."""
        style = self.engine.dialect.paramstyle
        return {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(style)

    def _insert_sql_of(self, width: int, rows: int = 1) -> str:
        """The DB-API ``INSERT`` of ``rows`` rows of the first ``width`` columns, the rest NULL."""
        sql = self._insert_sqls.get((width, rows))
        if sql is None:
            full = len(INSERT_COLUMNS)
            if not 0 < width <= full:
                raise ValueError(f"a predictions row has {full} columns at most, not {width}")
            quote = self.engine.dialect.identifier_preparer.quote
            columns = ", ".join(quote(c) for c in INSERT_COLUMNS)
            row = ", ".join([str(self._marks)] * width + ["NULL"] * (full - width))
            values = ", ".join([f"({row})"] * rows)
            sql = f"INSERT INTO {quote(predictions.name)} ({columns}) VALUES {values}"
            self._insert_sqls[(width, rows)] = sql
        return sql

    def log_predictions(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Synchronous insert of prediction records; tests and batch jobs use it."""
        now = time.time()
        return self.insert_predictions([to_row(r, now) for r in records])

    def purge(self, older_than: float) -> int:
        """Delete predictions logged before ``older_than`` (epoch seconds): retention."""
        with self.engine.begin() as conn:
            result = conn.execute(predictions.delete().where(predictions.c.ts < older_than))
            # A version whose newest live row went has no live row left.
            conn.execute(served_versions.delete().where(served_versions.c.last_ts < older_than))
        return int(result.rowcount or 0)

    def record_health(self, writer: str, written: int, dropped: int) -> None:
        now = time.time()
        values = {"written": written, "dropped": dropped, "updated": now}
        with self.engine.begin() as conn:
            updated = conn.execute(
                log_health.update().where(log_health.c.writer == writer).values(**values)
            )
            if not updated.rowcount:
                conn.execute(log_health.insert().values(writer=writer, **values))

    # -- windows for analysis -------------------------------------------------------------

    def labelled_rows(
        self, model_name: str, *, since: float | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Features and labels of every labelled live request row (one per request row)."""
        c = predictions.c
        query = (
            sa.select(c.request_id, c.row, c.features, c.label)
            .where(
                c.model_name == model_name,
                c.label.is_not(None),
                c.features.is_not(None),
                c.variant.in_(list(LIVE_VARIANTS)),
            )
            .order_by(c.ts, c.id)
        )
        if since is not None:
            query = query.where(c.ts >= since)
        seen: set[tuple[str, int]] = set()
        feats: list[list[float]] = []
        labels: list[int] = []
        with self.engine.connect() as conn:
            for request_id, row, features, label in conn.execute(query):
                if (request_id, row) in seen:
                    continue
                seen.add((request_id, row))
                feats.append(orjson.loads(features))
                labels.append(int(label))
        width = len(feats[0]) if feats else 0
        return (
            np.asarray(feats, dtype=np.float64).reshape(len(feats), width),
            np.asarray(labels, dtype=np.int64),
        )

    # -- feedback -------------------------------------------------------------------------

    def rows_for_requests(self, request_ids: Sequence[str]) -> dict[str, set[int]]:
        """Which row indexes exist for each request id (shadow copies included)."""
        c = predictions.c
        found: dict[str, set[int]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(request_ids), 500):
                chunk = list(request_ids[start : start + 500])
                query = sa.select(c.request_id, c.row).where(c.request_id.in_(chunk)).distinct()
                for request_id, row in conn.execute(query):
                    found.setdefault(request_id, set()).add(int(row))
        return found

    def set_labels(self, items: Sequence[tuple[str, int, int]], label_ts: float) -> int:
        """Write ``(request_id, row, label)`` in one transaction; returns rows updated."""
        c = predictions.c
        statement = (
            predictions.update()
            .where(c.request_id == sa.bindparam("rid"), c.row == sa.bindparam("rrow"))
            .values(label=sa.bindparam("rlabel"), label_ts=label_ts)
        )
        total = 0
        with self.engine.begin() as conn:
            for request_id, row, label in items:
                result = conn.execute(statement, {"rid": request_id, "rrow": row, "rlabel": label})
                total += int(result.rowcount or 0)
        return total

    # -- closed-loop events ---------------------------------------------------------------

    def add_event(
        self,
        cycle: str,
        kind: str,
        message: str,
        *,
        model_name: str = "",
        model_version: str | None = None,
        run_id: str | None = None,
        rollout_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                loop_events.insert().values(
                    ts=time.time() if ts is None else ts,
                    cycle=cycle,
                    kind=kind,
                    model_name=model_name,
                    model_version=model_version,
                    run_id=run_id,
                    rollout_id=rollout_id,
                    message=message,
                    detail=dumps(dict(detail)) if detail is not None else None,
                )
            )

    def last_event_ts(self, kind: str, model_name: str) -> float | None:
        query = sa.select(sa.func.max(loop_events.c.ts)).where(
            loop_events.c.kind == kind, loop_events.c.model_name == model_name
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return float(value) if value is not None else None

    def open_rollouts(self, model_name: str) -> list[dict[str, Any]]:
        """``rollout_started`` events whose cycle has no ``rollout_outcome`` yet."""
        e = loop_events.c
        closed = sa.select(e.cycle).where(e.kind == "rollout_outcome", e.model_name == model_name)
        query = (
            sa.select(e.cycle, e.rollout_id, e.model_version, e.run_id)
            .where(
                e.kind == "rollout_started",
                e.model_name == model_name,
                e.cycle.not_in(closed),
            )
            .order_by(e.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
