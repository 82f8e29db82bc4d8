"""The prediction-log reads that quality analysis needs, per model version: the logged
probabilities and labels (estimated vs realized performance), the rows refused at the edge
(data quality) and the first rows a version served (training–serving skew).

:meth:`MonitorStore.window` answers drift's question (features and predicted classes of
the newest rows, floats only); these answer the others, so they are a module of their own
over the same ``predictions`` table (owned by :mod:`petalops.database`), in plain SQL
through the store's reader (:mod:`petalops.monitoring.reads`): `monitor status` reads them
without SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from petalops.monitoring.reads import LIVE, MonitorReads


@dataclass
class Served:
    """Logged rows of one model version, oldest first.

    ``features`` keeps the values as logged (numbers, and strings or ``None`` where a
    schema allows them); ``probabilities`` is NaN on rows logged without them; ``labels``
    is -1 where no feedback came. ``refused`` counts the 4xx answers of the version, and the
    bodies refused before any version was chosen, in the same period (refused at the edge:
    wrong type, missing value, wrong width).
    """

    model_version: str
    features: list[list[Any]]
    predictions: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    ts: npt.NDArray[np.float64]
    refused: int = 0

    @property
    def rows(self) -> int:
        return len(self.features)

    @property
    def scored(self) -> npt.NDArray[np.bool_]:
        """Rows whose probabilities were logged."""
        if not self.probabilities.size:
            return np.zeros(self.rows, dtype=bool)
        return np.asarray(np.isfinite(self.probabilities).all(axis=1))


def versions(store: MonitorReads, model_name: str, *, since: float | None = None) -> list[str]:
    """Versions with logged live rows (since ``since``), in version order.

    Read from ``served_versions``, which every insert keeps, not from the log itself; a
    database not migrated to it yet (read-only, by a command) is asked the long way.
    """
    if store.reader.has_table("served_versions"):
        sql = "SELECT model_version FROM served_versions WHERE model_name = :name"
        params: dict[str, Any] = {"name": model_name}
        if since is not None:
            sql += " AND last_ts >= :since"
            params["since"] = since
        return _in_version_order(str(v) for (v,) in store.reader.rows(sql, params))
    sql = (
        f"SELECT DISTINCT model_version FROM predictions WHERE model_name = :name AND {LIVE} "
        "AND model_version != ''"  # refused before a version was chosen
    )
    params = {"name": model_name}
    if since is not None:
        sql += " AND ts >= :since"
        params["since"] = since
    return _in_version_order(str(v) for (v,) in store.reader.rows(sql, params))


def _in_version_order(found: Iterable[str]) -> list[str]:
    return sorted(set(found), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def served(
    store: MonitorReads,
    model_name: str,
    version: str,
    *,
    rows: int | None = None,
    since: float | None = None,
    first: bool = False,
) -> Served:
    """The newest ``rows`` successful live rows of ``version`` (the first ``rows`` it ever
    served with ``first``), and how many of its answers in that period were 4xx."""
    params: dict[str, Any] = {"name": model_name, "version": str(version)}
    sql = (
        "SELECT ts, features, prediction, probabilities, label FROM predictions "
        f"WHERE model_name = :name AND model_version = :version AND {LIVE} "
        "AND status < 400 AND features IS NOT NULL AND prediction IS NOT NULL"
    )
    if since is not None:
        sql += " AND ts >= :since"
        params["since"] = since
    sql += " ORDER BY ts, id" if first else " ORDER BY ts DESC, id DESC"
    if rows is not None:
        sql += " LIMIT :rows"
        params["rows"] = int(rows)
    fetched = store.reader.rows(sql, params)
    if not first:
        fetched.reverse()
    # A body refused at the edge is refused before any version is chosen: its row has
    # no version, and counts against every version serving in that period.
    refused_sql = (
        "SELECT count(*) FROM predictions WHERE model_name = :name "
        "AND model_version IN (:version, '') AND status >= 400 AND status < 500"
    )
    if fetched:
        # The newest window runs from its oldest row until now (refusals after the last
        # answer count); the first rows a version served end at the last of them.
        refused_sql += " AND ts >= :start"
        params["start"] = fetched[0][0]
        if first:
            refused_sql += " AND ts <= :end"
            params["end"] = fetched[-1][0]
    elif since is not None:
        refused_sql += " AND ts >= :since"
    counted = store.reader.rows(refused_sql, params)
    refused = int(counted[0][0] or 0) if counted else 0
    features = [orjson.loads(f) for _, f, _, _, _ in fetched]
    decoded = [orjson.loads(p) if p else None for _, _, _, p, _ in fetched]
    width = max((len(p) for p in decoded if p), default=0)
    proba = np.full((len(fetched), width), np.nan)
    for i, p in enumerate(decoded):
        if p and len(p) == width:
            proba[i] = p
    return Served(
        model_version=str(version),
        features=features,
        predictions=np.asarray([int(p) for _, _, p, _, _ in fetched], dtype=np.int64),
        probabilities=proba,
        labels=np.asarray([-1 if lab is None else int(lab) for *_, lab in fetched], dtype=np.int64),
        ts=np.asarray([float(ts) for ts, *_ in fetched], dtype=np.float64),
        refused=refused,
    )
