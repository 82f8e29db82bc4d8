"""The alert conditions of deploy/prometheus/alerts.yml, evaluated from the monitoring store.

`petalops monitor watch` uses these where no Prometheus runs (the embedded default). The
alert names are the same as in the Prometheus rules, so a runbook covers both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from petalops.monitoring.drift import DriftReport, drift_report
from petalops.monitoring.overview import ProfileOf, quality_by_version
from petalops.monitoring.quality import QualityRow, live_quality
from petalops.monitoring.store import MonitorStore

log = logging.getLogger(__name__)

HIGH_ERROR_RATE = "PetalopsHighErrorRate"
HIGH_LATENCY = "PetalopsHighLatencyP99"
DATASET_DRIFT = "PetalopsDatasetDrift"
ACCURACY_DROP = "PetalopsAccuracyDrop"
LOG_DROPS = "PetalopsPredictionLogDrops"
NO_MODEL_READY = "PetalopsModelNotReady"
ESTIMATED_ACCURACY_DROP = "PetalopsEstimatedAccuracyDrop"
DATA_QUALITY = "PetalopsDataQuality"
# Conditions that start a retraining cycle when `--retrain` is on.
RETRAIN_TRIGGERS = (DATASET_DRIFT, ACCURACY_DROP)


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    message: str
    value: float | None = None
    threshold: float | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Identity of the alert across checks: name and labels."""
        return self.name, tuple(sorted(self.labels.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "labels": self.labels,
        }


@dataclass
class Evaluation:
    """Everything one watch tick found: firing alerts plus the analyses behind them."""

    ts: float
    alerts: list[Alert]
    drift: DriftReport | None
    quality: list[QualityRow]
    requests: int
    reference: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return {alert.name for alert in self.alerts}

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "alerts": [alert.to_json() for alert in self.alerts],
            "drift": self.drift.to_json() if self.drift is not None else None,
            "quality": [row.to_json() for row in self.quality],
            "requests": self.requests,
            "reference": self.reference,
            "notes": self.notes,
        }


def check_ready(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """GET ``<url>/readyz``: (ready, why not)."""
    try:
        response = httpx.get(url.rstrip("/") + "/readyz", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{url} unreachable: {exc.__class__.__name__}"
    if response.status_code != 200:
        return False, f"{url}/readyz answered {response.status_code}"
    return True, ""


def evaluate(
    settings: Any,
    store: MonitorStore,
    profile: dict[str, Any] | None,
    *,
    reference: str = "",
    now: float | None = None,
    server_url: str | None = None,
    dropped_before: dict[str, int] | None = None,
    profiles: ProfileOf | None = None,
) -> Evaluation:
    """Evaluate every alert condition once.

    ``dropped_before`` maps each logger writer to the drop count seen on the previous tick
    (updated in place), so only new drops alert, like ``increase(...) > 0`` in Prometheus.
    ``profiles`` gives each version's reference profile (default: from the registry) for
    the estimated-accuracy and data-quality checks.
    """
    m = settings.monitor
    now = time.time() if now is None else now
    alerts: list[Alert] = []
    notes: list[str] = []

    requests, errors, latencies = store.recent_requests(now - m.alert_window_seconds)
    if requests:
        rate = errors / requests
        if rate > m.alert_error_rate:
            alerts.append(
                Alert(
                    HIGH_ERROR_RATE,
                    "critical",
                    f"{rate:.1%} of {requests} logged requests failed with 5xx "
                    f"(threshold {m.alert_error_rate:.1%})",
                    rate,
                    m.alert_error_rate,
                )
            )
    if len(latencies):
        p99 = float(np.percentile(latencies, 99))
        if p99 > m.alert_p99_ms:
            alerts.append(
                Alert(
                    HIGH_LATENCY,
                    "warning",
                    f"p99 latency {p99:.1f} ms over {len(latencies)} requests "
                    f"(threshold {m.alert_p99_ms:g} ms)",
                    p99,
                    m.alert_p99_ms,
                )
            )

    report: DriftReport | None = None
    if profile is not None:
        window = store.window(settings.project, rows=m.drift_window)
        report = drift_report(window, profile, m, reference=reference)
        if not report.sufficient:
            notes.append(report.reason)
        elif report.dataset_drift:
            drifted = report.drifted
            share = len(drifted) / max(len(report.features), 1)
            alerts.append(
                Alert(
                    DATASET_DRIFT,
                    "warning",
                    f"dataset drift: {len(drifted)} of {len(report.features)} features "
                    f"drifted ({', '.join(drifted)}) over {report.window['rows']} rows",
                    share,
                    m.drift_share,
                )
            )
    else:
        notes.append("no reference profile (no champion registered): drift not evaluated")

    quality = live_quality(store, settings.project, m.accuracy_window)
    for row in quality:
        if row.variant == "shadow":
            continue
        if row.labelled < m.drift_min_rows:
            notes.append(
                f"version {row.model_version} ({row.variant}): {row.labelled} labelled rows, "
                f"need {m.drift_min_rows} before judging accuracy"
            )
            continue
        if row.accuracy < m.min_accuracy:
            alerts.append(
                Alert(
                    ACCURACY_DROP,
                    "warning",
                    f"live accuracy of version {row.model_version} ({row.variant}) is "
                    f"{row.accuracy:.3f} over the last {row.labelled} labels "
                    f"(threshold {m.min_accuracy})",
                    row.accuracy,
                    m.min_accuracy,
                    {"model_version": row.model_version, "variant": row.variant},
                )
            )

    checked, unreadable = quality_by_version(settings, store, profiles)
    notes.extend(unreadable)
    for version_quality in checked:
        version = version_quality.model_version
        accuracy = version_quality.estimate.accuracy
        if accuracy.value is None:
            notes.append(f"version {version}: {version_quality.estimate.reason}")
        elif accuracy.value < m.min_accuracy:
            alerts.append(
                Alert(
                    ESTIMATED_ACCURACY_DROP,
                    "warning",
                    f"estimated accuracy of version {version} is {accuracy.value:.3f} "
                    f"[{accuracy.low:.3f}, {accuracy.high:.3f}] over its newest "
                    f"{version_quality.estimate.rows} rows, no labels needed "
                    f"(threshold {m.min_accuracy})",
                    accuracy.value,
                    m.min_accuracy,
                    {"model_version": version},
                )
            )
        data = version_quality.data
        if data.passed is False:
            alerts.append(
                Alert(
                    DATA_QUALITY,
                    "warning",
                    f"data quality of version {version} over {data.rows} rows: "
                    + "; ".join(data.failures),
                    float(len(data.failures)),
                    0.0,
                    {"model_version": version},
                )
            )

    new_drops = 0
    seen = dropped_before if dropped_before is not None else {}
    for health in store.health(since=now - m.alert_window_seconds):
        previous = seen.get(health["writer"], 0)
        new_drops += max(int(health["dropped"]) - previous, 0)
        seen[health["writer"]] = int(health["dropped"])
    if new_drops:
        alerts.append(
            Alert(
                LOG_DROPS,
                "warning",
                f"the prediction log dropped {new_drops} rows; raise monitor.queue_size or "
                "check the monitoring store",
                float(new_drops),
                0.0,
            )
        )

    if server_url:
        ready, why = check_ready(server_url)
        if not ready:
            alerts.append(Alert(NO_MODEL_READY, "critical", f"no model ready: {why}"))

    return Evaluation(
        ts=now,
        alerts=alerts,
        drift=report,
        quality=quality,
        requests=requests,
        reference=reference,
        notes=notes,
    )


def post_webhook(
    url: str, alerts: list[Alert], timeout: float = 5.0, *, resolved: list[str] | None = None
) -> bool:
    """POST newly firing (and resolved) alerts as JSON; a failure is logged, never raised."""
    body = {
        "source": "petalops",
        "ts": time.time(),
        "alerts": [alert.to_json() for alert in alerts],
        "resolved": list(resolved or []),
    }
    try:
        response = httpx.post(url, json=body, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)
        return False
    return True
