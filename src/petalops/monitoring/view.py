"""The monitoring block's read model for pages that watch it (the control room).

Two reads, each bounded whatever the request rate:

* `MonitorView.traffic`: request rate, error rate, p50 and p99 per variant over the last
  minute, from its newest ``TRAFFIC_ROWS`` rows in one index-ordered read;
* `MonitorView.health`: the watch's alerts and drift report (`monitoring.alerts.evaluate`),
  the reference-vs-window histogram of each feature, live accuracy on labels, and live and
  estimated accuracy over time (`monitoring.overview.monitor_quality`'s timeline of the
  newest 2 × ``monitor.quality_window`` rows of the champion and the challenger).

The store is opened on first use (SQLAlchemy, ~300 ms to import) and kept.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from petalops.config import Settings
from petalops.database.schema import predictions
from petalops.monitoring import alerts
from petalops.monitoring.overview import ProfileOf, monitor_quality, registry_profiles
from petalops.monitoring.store import MonitorStore

LIVE_VARIANTS = ("champion", "challenger")
# The per-variant traffic figures cover this many newest seconds ...
TRAFFIC_SECONDS = 60.0
# ... read from at most this many of their newest rows.
TRAFFIC_ROWS = 5000
# Accuracy over time: each version's newest rows of this period, cut in QUALITY_CHUNKS.
# (8 runs of the newest 2 × quality_window rows: ~50 ms of a builder's CPU a minute; 12 of
# 4 × took 85 ms.)
QUALITY_SECONDS = 24 * 3600.0
QUALITY_CHUNKS = 8


class _PageStore(MonitorStore):
    """The store as a page's alert evaluation reads it: the p99 of the request window from
    its newest TRAFFIC_ROWS latencies instead of the watch's 100,000 (over a minute at
    10,000 requests/s, loading them costs the builder about a second of CPU each time; 5,000
    put 50 rows in the tail, enough for a p99). The counts stay exact, in SQL."""

    def recent_requests(
        self, since: float, latency_rows: int = TRAFFIC_ROWS
    ) -> tuple[int, int, npt.NDArray[np.float64]]:
        return super().recent_requests(since, min(latency_rows, TRAFFIC_ROWS))


class MonitorView:
    """Reads the monitoring database for one project; ``close`` when done."""

    def __init__(self, settings: Settings, profiles: ProfileOf | None = None) -> None:
        self.settings = settings
        self.profiles = profiles or registry_profiles(settings)
        self._store: MonitorStore | None = None

    @property
    def store(self) -> MonitorStore:
        if self._store is None:
            self._store = _PageStore.from_settings(self.settings)
        return self._store

    def traffic(self, aliases: dict[str, str], now: float | None = None) -> dict[str, Any]:
        """Per live variant (``champion``, ``challenger``) of the current ``aliases``: its
        version, requests, errors, rate per second, error rate, p50 and p99 latency.

        At thousands of requests a second the newest TRAFFIC_ROWS rows cover the last
        seconds rather than the minute (``seconds`` says which), so the read costs the same
        at any load.
        """
        now = time.time() if now is None else now
        c = predictions.c
        query = (
            sa.select(c.ts, c.variant, c.model_version, c.status, c.latency_ms)
            .where(
                c.model_name == self.settings.project,
                c.ts >= now - TRAFFIC_SECONDS,
                c.variant.in_(LIVE_VARIANTS),
            )
            .order_by(c.ts.desc())
            .limit(TRAFFIC_ROWS)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        seconds = TRAFFIC_SECONDS
        if len(rows) == TRAFFIC_ROWS:
            seconds = max(now - float(rows[-1][0]), 1e-3)
        out: dict[str, Any] = {}
        for variant in LIVE_VARIANTS:
            version = aliases.get(variant)
            if version is None:
                continue
            mine = [r for r in rows if r[1] == variant and str(r[2]) == version]
            errors = sum(1 for r in mine if int(r[3]) >= 500)
            latencies = np.asarray([r[4] for r in mine if r[4] is not None], dtype=np.float64)
            out[variant] = {
                "version": version,
                "seconds": round(seconds, 3),
                "rate_per_s": round(len(mine) / seconds, 3),
                "requests": len(mine),
                "errors": errors,
                "error_rate": round(errors / len(mine), 4) if mine else None,
                "p50_ms": _percentile(latencies, 50),
                "p99_ms": _percentile(latencies, 99),
            }
        return out

    def health(
        self,
        aliases: dict[str, str],
        now: float | None = None,
        *,
        timeline: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Alerts, drift against the champion's profile with per-feature histograms, live
        accuracy on labels, and the accuracy timeline of the champion and the challenger
        (of ``aliases``). A part that cannot be read is left out and named in ``errors``
        (section: one line). ``timeline`` is a previous answer's ``timeline`` and
        ``timeline_at`` to reuse (`timeline` is the dearest part of it)."""
        now = time.time() if now is None else now
        champion = aliases.get("champion")
        live = list(dict.fromkeys(aliases[v] for v in LIVE_VARIANTS if v in aliases))
        settings = self.settings
        errors: dict[str, str] = {}
        profile = (
            guard(errors, "profile", lambda: self.profiles(champion), None) if champion else None
        )
        reference = f"{settings.project}/{champion}" if champion else ""
        evaluation = guard(
            errors,
            "monitoring",
            lambda: alerts.evaluate(
                settings, self.store, profile, reference=reference, now=now, profiles=self.profiles
            ),
            None,
        )
        out: dict[str, Any] = {
            "computed": now,
            "drift": None,
            "alerts": [],
            "notes": [],
            "live": [],
            "timeline": guard(errors, "accuracy", lambda: self.timeline(live, now), [])
            if timeline is None
            else timeline["timeline"],
            "timeline_at": now if timeline is None else timeline["timeline_at"],
            "errors": errors,
        }
        if evaluation is not None:
            out["alerts"] = [a.to_json() for a in evaluation.alerts]
            out["notes"] = evaluation.notes
            out["live"] = [row.to_json() for row in evaluation.quality]
            if evaluation.drift is not None and profile is not None:
                drift = evaluation.drift.to_json()
                drift["reference"] = reference
                drift["histograms"] = guard(
                    errors, "histograms", lambda: self.histograms(profile), {}
                )
                out["drift"] = drift
        return out

    def timeline(self, versions: list[str], now: float) -> list[dict[str, Any]]:
        """Per version of ``versions`` with rows in the last QUALITY_SECONDS: its newest
        ``monitor.quality_window`` × 2 rows cut in QUALITY_CHUNKS runs, each with its
        estimated accuracy and band (from the calibrated probabilities, no labels needed)
        and its realized accuracy where labels came."""
        out = []
        for version in versions:
            (quality,) = monitor_quality(
                self.settings,
                self.store,
                rows=self.settings.monitor.quality_window * 2,
                since=now - QUALITY_SECONDS,
                version=version,
                chunks=QUALITY_CHUNKS,
                profiles=self.profiles,
            )
            out.append(
                {
                    "model_version": version,
                    "rows": quality.rows,
                    "points": quality.timeline,
                }
            )
        return out

    def histograms(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Reference and live-window shares per bin of each feature, on the profile's bins
        (window values outside them fall in the end bins, so nothing is dropped)."""
        settings = self.settings
        window = self.store.window(settings.project, rows=settings.monitor.drift_window)
        out: dict[str, Any] = {}
        for index, (name, feature) in enumerate(profile.get("features", {}).items()):
            histogram = feature.get("histogram")
            if not histogram:
                continue
            edges = np.asarray(histogram["edges"], dtype=np.float64)
            reference = np.asarray(histogram["counts"], dtype=np.float64)
            current = np.zeros(len(reference))
            if window.rows and index < window.features.shape[1]:
                values = np.clip(window.features[:, index], edges[0], edges[-1])
                current, _ = np.histogram(values, bins=edges)
            out[name] = {
                "edges": [round(float(e), 6) for e in edges],
                "reference": _shares(reference),
                "window": _shares(np.asarray(current, dtype=np.float64)),
                "window_rows": int(window.rows),
            }
        return out

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def guard(errors: dict[str, str], section: str, read: Any, default: Any) -> Any:
    """``read()``, or ``default`` and a one-line reason under ``errors[section]``: a page
    shows what it can (a missing monitoring database must not blank the rest)."""
    try:
        return read()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        errors[section] = f"{type(exc).__name__}: {first}"[:300]
        return default


def _percentile(values: np.ndarray[Any, Any], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def _shares(counts: np.ndarray[Any, Any]) -> list[float]:
    total = float(counts.sum())
    return [round(float(c) / total, 5) if total else 0.0 for c in counts]
