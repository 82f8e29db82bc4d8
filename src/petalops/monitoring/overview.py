"""The library function behind `petalops monitor quality` (and the estimated figures of
`monitor status`, the gauges and the watch alerts): per model version, the estimated
performance of its newest window (realized next to it where labels came), the data-quality
checks of the same rows and, with ``chunks``, the estimated-vs-realized timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from petalops.errors import InputError
from petalops.monitoring.dataquality import DataQualityReport, data_quality
from petalops.monitoring.estimate import Estimate, estimate
from petalops.monitoring.reads import MonitorReads
from petalops.monitoring.served import Served, served, versions

ProfileOf = Callable[[str], dict[str, Any]]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class VersionQuality:
    """What `monitor quality` reports for one version."""

    model_version: str
    rows: int
    start: float | None
    end: float | None
    estimate: Estimate
    data: DataQualityReport
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "window": {
                "rows": self.rows,
                "from": _iso(self.start) if self.start is not None else None,
                "to": _iso(self.end) if self.end is not None else None,
            },
            "estimated": self.estimate.to_json(),
            "data_quality": self.data.to_json(),
            "timeline": self.timeline,
        }


def estimate_of(
    window: Served, profile: dict[str, Any], monitor: Any, *, seed: int = 0
) -> Estimate:
    """The estimated (and, where labelled, realized) performance of a window of one
    version, from the rows logged with their probabilities."""
    scored = window.scored
    classes = [str(c) for c in profile["classes"]]
    width = window.probabilities.shape[1] if window.probabilities.ndim == 2 else 0
    proba = window.probabilities[scored] if width else np.zeros((0, len(classes)))
    return estimate(
        proba,
        window.predictions[scored],
        profile.get("calibration"),
        classes,
        labels=window.labels[scored],
        min_rows=monitor.estimate_min_rows,
        seed=seed,
    )


def timeline(
    window: Served, profile: dict[str, Any], monitor: Any, chunks: int
) -> list[dict[str, Any]]:
    """The window cut into ``chunks`` consecutive runs of rows (fewer, if a run would be
    shorter than ``monitor.estimate_min_rows``): estimated accuracy with its band and
    realized accuracy (``None`` without labels) for each, oldest first."""
    out: list[dict[str, Any]] = []
    count = min(chunks, window.rows // max(monitor.estimate_min_rows, 1))
    if chunks < 1 or not window.rows:
        return out
    for part in np.array_split(np.arange(window.rows), max(count, 1)):
        piece = Served(
            model_version=window.model_version,
            features=[window.features[i] for i in part],
            predictions=window.predictions[part],
            probabilities=window.probabilities[part],
            labels=window.labels[part],
            ts=window.ts[part],
        )
        result = estimate_of(piece, profile, monitor)
        out.append(
            {
                "from": _iso(float(piece.ts[0])),
                "to": _iso(float(piece.ts[-1])),
                "ts": float(piece.ts[-1]),
                "rows": piece.rows,
                "estimated": result.accuracy.to_json(),
                "labelled": result.labelled,
                "realized": result.realized.get("accuracy"),
            }
        )
    return out


def quality_of(
    window: Served, profile: dict[str, Any], monitor: Any, *, chunks: int = 0
) -> VersionQuality:
    """Estimate and data quality of one version's window against its own profile."""
    return VersionQuality(
        model_version=window.model_version,
        rows=window.rows,
        start=float(window.ts[0]) if window.rows else None,
        end=float(window.ts[-1]) if window.rows else None,
        estimate=estimate_of(window, profile, monitor),
        data=data_quality(window.features, profile, monitor, refused=window.refused),
        timeline=timeline(window, profile, monitor, chunks),
    )


def registry_profiles(settings: Any) -> ProfileOf:
    """Each version's reference profile from the registry, fetched once per version."""
    from petalops.registry import load_profile  # MLflow client where needed; not at import

    cache: dict[str, dict[str, Any]] = {}

    def profile_of(version: str) -> dict[str, Any]:
        if version not in cache:
            cache[version] = load_profile(settings, f"{settings.project}/{version}")
        return cache[version]

    return profile_of


def monitor_quality(
    settings: Any,
    store: MonitorReads,
    *,
    rows: int | None = None,
    since: float | None = None,
    version: str | None = None,
    chunks: int = 0,
    profiles: ProfileOf | None = None,
) -> list[VersionQuality]:
    """Per version with logged rows (or only ``version``): the newest ``rows`` (default
    ``monitor.quality_window``) rows since ``since`` (epoch seconds), their estimated
    performance and data quality."""
    m = settings.monitor
    if rows is not None and rows < 1:
        raise InputError(f"--window must be a positive number of rows, got {rows}")
    profile_of = profiles or registry_profiles(settings)
    chosen = (
        [str(version)] if version is not None else versions(store, settings.project, since=since)
    )
    out = []
    for v in chosen:
        window = served(store, settings.project, v, rows=rows or m.quality_window, since=since)
        out.append(quality_of(window, profile_of(v), m, chunks=chunks))
    return out


def since_seconds(seconds: float | None) -> float | None:
    """The epoch time ``seconds`` ago (``None`` stays ``None``)."""
    return None if seconds is None else time.time() - seconds


def quality_by_version(
    settings: Any, store: MonitorReads, profiles: ProfileOf | None = None
) -> tuple[list[VersionQuality], list[str]]:
    """:func:`monitor_quality` of every version with logged rows, for the status, the gauges
    and the alerts: a version whose profile cannot be read is reported in the second list
    (one line each) instead of failing the others."""
    m = settings.monitor
    profile_of = profiles or registry_profiles(settings)
    results: list[VersionQuality] = []
    errors: list[str] = []
    for v in versions(store, settings.project):
        try:
            profile = profile_of(v)
        except Exception as exc:  # one unreadable version must not hide the others
            errors.append(f"version {v}: no profile to check against ({exc})")
            continue
        window = served(store, settings.project, v, rows=m.quality_window)
        results.append(quality_of(window, profile, m))
    return results, errors


def estimated_summary(
    settings: Any, store: MonitorReads, profiles: ProfileOf | None = None
) -> dict[str, Any]:
    """`monitor status`'s view: estimated accuracy (and macro-F1) of each version's newest
    ``monitor.quality_window`` rows, realized accuracy next to it."""
    results, errors = quality_by_version(settings, store, profiles)
    rows: list[dict[str, Any]] = []
    for quality in results:
        result = quality.estimate
        rows.append(
            {
                "model_version": quality.model_version,
                "rows": result.rows,
                "calibration": result.calibration,
                "accuracy": result.accuracy.to_json(),
                "macro_f1": result.macro_f1.to_json(),
                "labelled": result.labelled,
                "realized_accuracy": result.realized.get("accuracy"),
                "data_quality": quality.data.passed,
                **({"reason": result.reason} if result.reason else {}),
            }
        )
    return {"window": settings.monitor.quality_window, "versions": rows, "errors": errors}
