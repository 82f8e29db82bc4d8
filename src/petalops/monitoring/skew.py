"""Training–serving skew: the first rows a version served against its own training profile.

Drift asks whether traffic moved over time; skew asks whether what a version was trained on
is what it is served at all (a feature scaled differently in the serving path, a column
swapped, a unit changed): a question about the first ``monitor.skew_rows`` rows the version
answered, fixed once they are in, whatever traffic does later. The same statistics as drift
(:mod:`petalops.monitoring.drift`, every registered statistic) and the data-quality checks
(:mod:`petalops.monitoring.dataquality`) are run on them; a window still short of
``monitor.drift_min_rows`` rows reports ``None`` verdicts with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from petalops.errors import DataError, InputError
from petalops.monitoring.dataquality import DataQualityReport, data_quality
from petalops.monitoring.drift import DriftReport, drift_report
from petalops.monitoring.overview import ProfileOf, registry_profiles
from petalops.monitoring.served import Served, served
from petalops.monitoring.store import MonitorStore, Window


@dataclass
class SkewReport:
    """The skew verdict of one version: ``None`` until enough rows were served."""

    model_version: str
    rows: int
    drift: DriftReport
    data: DataQualityReport

    @property
    def skewed(self) -> bool | None:
        if not self.drift.sufficient or self.drift.dataset_drift is None:
            return None
        return bool(self.drift.dataset_drift or self.data.passed is False)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "rows": self.rows,
            "skewed": self.skewed,
            "drift": self.drift.to_json(),
            "data_quality": self.data.to_json(),
        }


def as_window(rows: Served) -> Window:
    """The served rows as drift's numeric :class:`Window` (refused: a non-numeric value)."""
    try:
        features = np.asarray(rows.features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"the first rows of version {rows.model_version} hold non-numeric values ({exc}); "
            "skew statistics compare numeric features"
        ) from exc
    width = features.shape[1] if features.ndim == 2 else 0
    return Window(
        features=features.reshape(rows.rows, width),
        predictions=rows.predictions,
        ts=rows.ts,
        versions={rows.model_version: rows.rows} if rows.rows else {},
    )


def skew_of(first: Served, profile: dict[str, Any], monitor: Any, reference: str) -> SkewReport:
    """Skew of a version's first served rows against its training profile."""
    return SkewReport(
        model_version=first.model_version,
        rows=first.rows,
        drift=drift_report(as_window(first), profile, monitor, reference=reference),
        data=data_quality(first.features, profile, monitor, refused=first.refused),
    )


def training_serving_skew(
    settings: Any,
    store: MonitorStore,
    version: str,
    *,
    rows: int | None = None,
    profiles: ProfileOf | None = None,
) -> SkewReport:
    """The first ``rows`` (default ``monitor.skew_rows``) rows ``version`` served, against
    the training profile stored with it."""
    if rows is not None and rows < 1:
        raise InputError(f"--rows must be a positive number of rows, got {rows}")
    profile = (profiles or registry_profiles(settings))(str(version))
    first = served(
        store, settings.project, str(version), rows=rows or settings.monitor.skew_rows, first=True
    )
    return skew_of(first, profile, settings.monitor, f"{settings.project}/{version} (training)")
