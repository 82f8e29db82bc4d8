"""The library functions behind `petalops monitor drift` and `petalops monitor status`."""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from petalops.errors import InputError
from petalops.monitoring.firstwindow import drift_reference, unjudged
from petalops.monitoring.overview import estimated_summary
from petalops.monitoring.quality import live_quality
from petalops.monitoring.reads import MonitorReads, Window

if TYPE_CHECKING:
    from petalops.monitoring.drift import DriftReport

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# `--since 1h` at 10,000 predictions/s would be 36 M rows: analyse the newest of them only.
MAX_SINCE_ROWS = 100_000


def parse_duration(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"`` (or plain seconds) as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise InputError(f"--since {text!r} is not a duration; examples: 90s, 15m, 1h, 2d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass
class DriftResult:
    report: DriftReport
    window: Window
    profile: dict[str, Any]
    reference: str


def current_drift(
    settings: Any,
    store: MonitorReads,
    *,
    rows: int | None = None,
    since: str | float | None = None,
    version: str | None = None,
    reference: str | None = None,
) -> DriftResult:
    """Drift of the live window (newest ``rows``, or the last ``since``) against the profile.

    ``since`` alone analyses at most the newest ``MAX_SINCE_ROWS`` rows of that period.

    The reference is that of ``version`` if given (and only that version's rows are
    analysed), else of the current champion: its training profile, or with ``reference``
    (default ``monitor.drift_reference``) ``first-window`` its first served rows
    (`petalops.monitoring.firstwindow`).
    """
    from petalops.registry import load_profile, resolve  # MLflow; `monitor status` never needs it

    ref = f"{settings.project}/{version}" if version else f"{settings.project}@champion"
    info = resolve(settings, ref)
    profile = load_profile(settings, f"{info.name}/{info.version}")
    seconds = parse_duration(since) if isinstance(since, str) else since
    if rows is not None and rows < 1:
        raise InputError(f"--window must be a positive number of rows, got {rows}")
    window = store.window(
        settings.project,
        version=version,
        rows=rows
        if rows is not None
        else (MAX_SINCE_ROWS if seconds is not None else settings.monitor.drift_window),
        since=time.time() - seconds if seconds is not None else None,
    )
    chosen = drift_reference(settings, store, info.version, profile, reference)
    # Here, not at the top: drift needs scipy.stats (~1 s to import), which `monitor status`
    # (the rest of this module) never does.
    from petalops.monitoring.drift import drift_report

    compared = chosen.profile if chosen.profile is not None else profile
    report = drift_report(window, compared, settings.monitor, reference=chosen.label)
    report.window["reference_kind"] = chosen.kind
    report.window["reference_rows"] = chosen.rows
    if chosen.profile is None:
        report = unjudged(report, chosen.reason)
    return DriftResult(report=report, window=window, profile=compared, reference=chosen.label)


def monitor_status(settings: Any, store: MonitorReads, *, events: int = 10) -> dict[str, Any]:
    """Live quality per version/variant (realized, and estimated from the probabilities),
    prediction-log health, recent loop events."""
    now = time.time()
    m = settings.monitor
    requests, errors, latencies = store.recent_requests(now - m.alert_window_seconds)
    health = store.health()
    return {
        "model": settings.project,
        "store": _safe_url(store.url),
        "logged_rows": store.count(),
        "recent": {
            "seconds": m.alert_window_seconds,
            "requests": requests,
            "errors": errors,
            "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        },
        "quality": [
            row.to_json() for row in live_quality(store, settings.project, m.accuracy_window)
        ],
        "quality_window": m.accuracy_window,
        "estimated": estimated_summary(settings, store),
        "prediction_log": {
            "written": sum(int(h["written"]) for h in health),
            "dropped": sum(int(h["dropped"]) for h in health),
            "writers": len(health),
        },
        "loop_events": [
            {
                k: e[k]
                for k in ("ts", "cycle", "kind", "model_version", "run_id", "rollout_id", "message")
            }
            for e in store.events(limit=events)
        ],
    }


def _safe_url(url: str) -> str:
    """The store URL without its password (``postgresql://user:***@host/db``), as
    SQLAlchemy's ``render_as_string(hide_password=True)`` writes it; by hand because
    `monitor status` reads a SQLite file without importing SQLAlchemy."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<invalid url>"
