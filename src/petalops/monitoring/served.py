"""The prediction-log reads that quality analysis needs, per model version: the logged
probabilities and labels (estimated vs realized performance), the rows refused at the edge
(data quality) and the first rows a version served (training–serving skew).

:meth:`MonitorStore.window` answers drift's question (features and predicted classes of
the newest rows, floats only); these answer the others, so they are a module of their own
over the same ``predictions`` table (owned by :mod:`petalops.database`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import sqlalchemy as sa

from petalops.database.schema import predictions
from petalops.monitoring.store import LIVE_VARIANTS, MonitorStore


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


def versions(store: MonitorStore, model_name: str, *, since: float | None = None) -> list[str]:
    """Versions with logged live rows (since ``since``), in version order."""
    c = predictions.c
    query = sa.select(c.model_version).where(
        c.model_name == model_name,
        c.variant.in_(list(LIVE_VARIANTS)),
        c.model_version != "",  # refused before a version was chosen
    )
    if since is not None:
        query = query.where(c.ts >= since)
    with store.engine.connect() as conn:
        found = {str(v) for v in conn.execute(query.distinct()).scalars()}
    return sorted(found, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def served(
    store: MonitorStore,
    model_name: str,
    version: str,
    *,
    rows: int | None = None,
    since: float | None = None,
    first: bool = False,
) -> Served:
    """The newest ``rows`` successful live rows of ``version`` (the first ``rows`` it ever
    served with ``first``), and how many of its answers in that period were 4xx."""
    c = predictions.c
    live = (
        c.model_name == model_name,
        c.model_version == str(version),
        c.variant.in_(list(LIVE_VARIANTS)),
    )
    query = sa.select(c.ts, c.features, c.prediction, c.probabilities, c.label).where(
        *live, c.status < 400, c.features.is_not(None), c.prediction.is_not(None)
    )
    if since is not None:
        query = query.where(c.ts >= since)
    order = (c.ts, c.id) if first else (c.ts.desc(), c.id.desc())
    query = query.order_by(*order)
    if rows is not None:
        query = query.limit(rows)
    with store.engine.connect() as conn:
        fetched = list(conn.execute(query).all())
        if not first:
            fetched.reverse()
        # A body refused at the edge is refused before any version is chosen: its row has
        # no version, and counts against every version serving in that period.
        refused_query = sa.select(sa.func.count()).where(
            c.model_name == model_name,
            c.model_version.in_([str(version), ""]),
            c.status >= 400,
            c.status < 500,
        )
        if fetched:
            # The newest window runs from its oldest row until now (refusals after the last
            # answer count); the first rows a version served end at the last of them.
            refused_query = refused_query.where(c.ts >= fetched[0][0])
            if first:
                refused_query = refused_query.where(c.ts <= fetched[-1][0])
        elif since is not None:
            refused_query = refused_query.where(c.ts >= since)
        refused = int(conn.execute(refused_query).scalar_one() or 0)
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
