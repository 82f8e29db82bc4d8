"""The monitoring block's reads of the monitoring database, in plain SQL.

:class:`MonitorReads` is what `petalops monitor status` (and drift, quality, the alerts
and the control room) ask of the prediction log, ``log_health`` and ``loop_events``. Its
queries run through a :class:`~petalops.database.reader.Reader`: ``sqlite3`` for a SQLite
file (read-only, nothing created, no SQLAlchemy import) or the SQLAlchemy engine of
PostgreSQL. :class:`~petalops.monitoring.store.MonitorStore` adds the writes and reads
through its own engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from petalops.database.reader import Reads, placeholders

LIVE_VARIANTS = ("champion", "challenger")
# The live variants as SQL: constants, so written out rather than bound.
LIVE = "variant IN ({})".format(", ".join(f"'{v}'" for v in LIVE_VARIANTS))

EVENT_COLUMNS = (
    "id",
    "ts",
    "cycle",
    "kind",
    "model_name",
    "model_version",
    "run_id",
    "rollout_id",
    "message",
    "detail",
)
HEALTH_COLUMNS = ("writer", "written", "dropped", "updated")


@dataclass
class Window:
    """Logged live predictions chosen for drift or quality analysis."""

    features: npt.NDArray[np.float64]
    predictions: npt.NDArray[np.int64]
    ts: npt.NDArray[np.float64]
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Labelled:
    """Labelled predictions of one model version and variant, newest last."""

    model_version: str
    variant: str
    predictions: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64]


class MonitorReads(Reads):
    """The reads of the monitoring tables."""

    def count(self) -> int:
        rows = self.reader.rows("SELECT count(*) FROM predictions")
        return int(rows[0][0] or 0) if rows else 0

    def health(self, since: float = 0.0) -> list[dict[str, Any]]:
        rows = self.reader.rows(
            f"SELECT {', '.join(HEALTH_COLUMNS)} FROM log_health WHERE updated >= :since",
            {"since": since},
        )
        return [dict(zip(HEALTH_COLUMNS, row, strict=True)) for row in rows]

    # -- windows for analysis -------------------------------------------------------------

    def window(
        self,
        model_name: str,
        *,
        version: str | None = None,
        rows: int | None = None,
        since: float | None = None,
        until: float | None = None,
        variants: Sequence[str] = LIVE_VARIANTS,
    ) -> Window:
        """The newest successful live predictions (shadow copies excluded by default)."""
        marks, params = placeholders("variant", list(variants))
        sql = (
            "SELECT ts, model_version, features, prediction FROM predictions "
            f"WHERE model_name = :name AND status < 400 AND variant IN ({marks or 'NULL'})"
        )
        params["name"] = model_name
        if version is not None:
            sql += " AND model_version = :version"
            params["version"] = str(version)
        if since is not None:
            sql += " AND ts >= :since"
            params["since"] = since
        if until is not None:
            sql += " AND ts < :until"
            params["until"] = until
        sql += " ORDER BY ts DESC, id DESC"
        if rows is not None:
            sql += " LIMIT :rows"
            params["rows"] = int(rows)
        fetched = self.reader.rows(sql, params)
        fetched.reverse()
        versions: dict[str, int] = {}
        feats: list[list[float]] = []
        preds: list[int] = []
        stamps: list[float] = []
        for ts, model_version, features, prediction in fetched:
            if features is None or prediction is None:
                continue
            feats.append(orjson.loads(features))
            preds.append(int(prediction))
            stamps.append(float(ts))
            versions[model_version] = versions.get(model_version, 0) + 1
        width = len(feats[0]) if feats else 0
        try:
            matrix = np.asarray(feats, dtype=np.float64)  # null (a missing value) is NaN
        except (TypeError, ValueError):  # categorical features: strings stay strings
            matrix = np.asarray(feats, dtype=object)
        return Window(
            features=matrix.reshape(len(feats), width),
            predictions=np.asarray(preds, dtype=np.int64),
            ts=np.asarray(stamps, dtype=np.float64),
            versions=versions,
        )

    def labelled(
        self, model_name: str, limit: int, *, since: float | None = None
    ) -> list[Labelled]:
        """The newest ``limit`` labelled predictions of each (version, variant)."""
        where = "model_name = :name AND label IS NOT NULL AND prediction IS NOT NULL"
        params: dict[str, Any] = {"name": model_name, "limit": int(limit)}
        if since is not None:
            where += " AND ts >= :since"
            params["since"] = since
        groups = self.reader.rows(
            f"SELECT DISTINCT model_version, variant FROM predictions WHERE {where}", params
        )
        out: list[Labelled] = []
        for model_version, variant in sorted(groups):
            pairs = self.reader.rows(
                f"SELECT prediction, label FROM predictions WHERE {where} "
                "AND model_version = :version AND variant = :variant "
                "ORDER BY ts DESC, id DESC LIMIT :limit",
                {**params, "version": model_version, "variant": variant},
            )[::-1]
            out.append(
                Labelled(
                    model_version=str(model_version),
                    variant=str(variant),
                    predictions=np.asarray([p for p, _ in pairs], dtype=np.int64),
                    labels=np.asarray([lab for _, lab in pairs], dtype=np.int64),
                )
            )
        return out

    def recent_requests(
        self, since: float, latency_rows: int = 100_000
    ) -> tuple[int, int, npt.NDArray[np.float64]]:
        """Logged live rows since ``since``: (count, how many had a 5xx status, latencies ms).

        Counting happens in the database; latencies are those of the newest
        ``latency_rows`` rows, enough for a p99 without loading minutes of traffic at 10k/s.
        """
        live = f"ts >= :since AND {LIVE}"
        params = {"since": since, "limit": int(latency_rows)}
        totals = self.reader.rows(
            "SELECT count(*), sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END) "
            f"FROM predictions WHERE {live}",
            params,
        )
        count, errors = totals[0] if totals else (0, 0)
        latencies = self.reader.rows(
            f"SELECT latency_ms FROM predictions WHERE {live} AND latency_ms IS NOT NULL "
            "ORDER BY ts DESC LIMIT :limit",
            params,
        )
        return (
            int(count or 0),
            int(errors or 0),
            np.asarray([v for (v,) in latencies], dtype=np.float64),
        )

    # -- closed-loop events ---------------------------------------------------------------

    def events(self, *, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
        """The newest loop events, oldest first, ``detail`` decoded."""
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM loop_events"
        params: dict[str, Any] = {"limit": int(limit)}
        if kind is not None:
            sql += " WHERE kind = :kind"
            params["kind"] = kind
        rows = self.reader.rows(f"{sql} ORDER BY id DESC LIMIT :limit", params)
        fetched = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows]
        for event in fetched:
            event["detail"] = orjson.loads(event["detail"]) if event["detail"] else {}
        return fetched[::-1]


class MonitorReader(MonitorReads):
    """The reads alone, for a command that only reads: a SQLite file that is not there
    reads as empty and is not created (:func:`~petalops.database.reader.open_reader`)."""

    @classmethod
    def from_settings(cls, settings: Any) -> MonitorReader:
        return cls(settings.monitor_url)
