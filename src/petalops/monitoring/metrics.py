"""The monitoring block's Prometheus metrics and the call that refreshes its gauges.

Names follow docs/internals.md. The server's request metrics live in the serving block;
these are the prediction-log counters and the drift / live-quality gauges. In
prometheus-client's multiprocess mode each gauge keeps the most recent value written by
any worker, so one worker refreshing them is enough.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from petalops.errors import NotFoundError
from petalops.monitoring.quality import QualityRow, live_quality

# The prediction sinks import this module on the server's start path: scipy (seconds to
# import, `python -X importtime`), SQLAlchemy and MLflow are imported where first needed.
if TYPE_CHECKING:
    from petalops.monitoring.drift import DriftReport
    from petalops.monitoring.overview import VersionQuality

log = logging.getLogger(__name__)

LOG_WRITTEN = Counter(
    "petalops_prediction_log_written", "Prediction rows written to the monitoring store."
)
LOG_DROPPED = Counter(
    "petalops_prediction_log_dropped",
    "Prediction rows dropped (queue full or store unavailable); requests were never blocked.",
)
LOG_QUEUE = Gauge(
    "petalops_prediction_log_queue",
    "Prediction rows waiting in the logger queue.",
    multiprocess_mode="livesum",
)
DRIFT_SCORE = Gauge(
    "petalops_drift_score",
    "Drift statistic of a feature in the live window (test=ks: KS statistic, "
    "test=ks_p: KS p-value, test=psi: population stability index; feature=_prediction: "
    "chi-square on the predicted classes).",
    ["feature", "test"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFT = Gauge(
    "petalops_feature_drift",
    "1 when the feature drifted from the reference profile.",
    ["feature"],
    multiprocess_mode="mostrecent",
)
DATASET_DRIFT = Gauge(
    "petalops_dataset_drift",
    "1 when enough features drifted for the dataset to count as drifted.",
    multiprocess_mode="mostrecent",
)
LIVE_ACCURACY = Gauge(
    "petalops_live_accuracy",
    "Accuracy over the sliding window of labelled predictions.",
    ["model_version", "variant"],
    multiprocess_mode="mostrecent",
)
LIVE_F1 = Gauge(
    "petalops_live_f1",
    "Macro-F1 over the sliding window of labelled predictions.",
    ["model_version", "variant"],
    multiprocess_mode="mostrecent",
)

ESTIMATED_ACCURACY = Gauge(
    "petalops_estimated_accuracy",
    "Accuracy estimated from the calibrated probabilities of the newest monitor.quality_window "
    "rows of a version (no labels needed).",
    ["model_version"],
    multiprocess_mode="mostrecent",
)
ESTIMATED_ACCURACY_BAND = Gauge(
    "petalops_estimated_accuracy_band",
    "The band of petalops_estimated_accuracy (side=low|high, central 95% of label draws).",
    ["model_version", "side"],
    multiprocess_mode="mostrecent",
)
ESTIMATED_F1 = Gauge(
    "petalops_estimated_f1",
    "Macro-F1 estimated from the calibrated probabilities (no labels needed).",
    ["model_version"],
    multiprocess_mode="mostrecent",
)
DATA_QUALITY_SHARE = Gauge(
    "petalops_data_quality_share",
    "Share of a version's window failing a data-quality check of a feature (check=missing, "
    "out_of_range, unseen, wrong_type; constant: share of the most common value; "
    "feature=_edge check=refused: answers refused with a 4xx).",
    ["model_version", "feature", "check"],
    multiprocess_mode="mostrecent",
)
DATA_QUALITY_FAILED = Gauge(
    "petalops_data_quality_failed",
    "1 when the data-quality check is over its monitor.quality_* threshold.",
    ["model_version", "feature", "check"],
    multiprocess_mode="mostrecent",
)


def set_drift_gauges(report: DriftReport) -> None:
    """Publish one drift report; a window too small to judge publishes nothing."""
    if not report.sufficient:
        return
    for name, feature in report.features.items():
        for measured in feature.statistics.values():
            DRIFT_SCORE.labels(feature=name, test=measured.name).set(measured.value)
            if measured.p_value is not None:
                DRIFT_SCORE.labels(feature=name, test=f"{measured.name}_p").set(measured.p_value)
        FEATURE_DRIFT.labels(feature=name).set(1.0 if feature.drift else 0.0)
    if report.prediction is not None and report.prediction.statistic is not None:
        DRIFT_SCORE.labels(feature="_prediction", test="chi2").set(report.prediction.statistic)
    DATASET_DRIFT.set(1.0 if report.dataset_drift else 0.0)


def set_quality_gauges(rows: list[QualityRow]) -> None:
    for row in rows:
        LIVE_ACCURACY.labels(model_version=row.model_version, variant=row.variant).set(row.accuracy)
        LIVE_F1.labels(model_version=row.model_version, variant=row.variant).set(row.macro_f1)


def set_estimate_gauges(results: list[VersionQuality]) -> None:
    """Publish the estimated performance and data quality of each version; figures of a
    window too small to judge are not published."""
    for result in results:
        version = result.model_version
        accuracy = result.estimate.accuracy
        if accuracy.value is not None:
            ESTIMATED_ACCURACY.labels(model_version=version).set(accuracy.value)
            for side, bound in (("low", accuracy.low), ("high", accuracy.high)):
                if bound is not None:
                    ESTIMATED_ACCURACY_BAND.labels(model_version=version, side=side).set(bound)
        if result.estimate.macro_f1.value is not None:
            ESTIMATED_F1.labels(model_version=version).set(result.estimate.macro_f1.value)
        data = result.data
        if data.passed is None:
            continue
        for name, feature in data.features.items():
            for check in (*feature.counts, "constant"):
                labels = {"model_version": version, "feature": name, "check": check}
                DATA_QUALITY_SHARE.labels(**labels).set(feature.share(check))
                DATA_QUALITY_FAILED.labels(**labels).set(1.0 if check in feature.failed else 0.0)
        edge = {"model_version": version, "feature": "_edge", "check": "refused"}
        DATA_QUALITY_SHARE.labels(**edge).set(data.refused_share)
        over = data.refused_share > data.thresholds.max_refused
        DATA_QUALITY_FAILED.labels(**edge).set(1.0 if over else 0.0)


def update_estimate_gauges(settings: Any, store: Any) -> list[VersionQuality] | None:
    """Recompute every version's estimated performance and data quality and set the gauges.
    Never raises: a failure is logged and ``None`` returned."""
    from petalops.monitoring.overview import quality_by_version  # SQLAlchemy: see the top

    try:
        results, errors = quality_by_version(settings, store)
        for error in errors:
            log.warning("estimated-quality gauges: %s", error)
        set_estimate_gauges(results)
        return results
    except Exception:
        log.warning("could not refresh the estimated-quality gauges", exc_info=True)
        return None


def update_gauges(
    settings: Any,
    store: Any,
    profile: dict[str, Any] | None = None,
    *,
    window_rows: int | None = None,
) -> DriftReport | None:
    """Recompute drift and live quality from the store and set the gauges.

    The server calls this off the request path (a background task every few seconds).
    ``profile`` is the reference profile of the serving champion; without it only the
    quality gauges are refreshed. Never raises: a failure is logged and ``None`` returned.
    """
    from petalops.monitoring.drift import drift_report  # scipy: see the top of the module

    try:
        set_quality_gauges(live_quality(store, settings.project, settings.monitor.accuracy_window))
        if profile is None:
            return None
        window = store.window(settings.project, rows=window_rows or settings.monitor.drift_window)
        report = drift_report(window, profile, settings.monitor)
        set_drift_gauges(report)
        return report
    except Exception:
        log.warning("could not refresh the drift and quality gauges", exc_info=True)
        return None


def champion_profile(settings: Any, store: Any = None) -> dict[str, Any] | None:
    """The reference profile of the current champion, or None when there is none. With
    ``store``, the drift reference ``monitor.drift_reference`` names: under ``first-window``
    the profile of the champion's first served rows (None until there are enough)."""
    from petalops.registry import load_profile, resolve  # MLflow: see the top of the module

    try:
        info = resolve(settings, f"{settings.project}@champion")
    except NotFoundError:
        return None
    training = load_profile(settings, f"{info.name}/{info.version}")
    if store is None or settings.monitor.drift_reference == "training":
        return training
    from petalops.monitoring.firstwindow import drift_reference  # SQLAlchemy: see the top

    return drift_reference(settings, store, info.version, training).profile


class GaugeRefresher:
    """A daemon thread calling :func:`update_gauges` every ``interval`` seconds.

    ``start_gauge_refresher(settings)`` in one server worker (the gauges are shared in
    multiprocess mode); ``stop()`` on shutdown. It follows the champion as rollouts move it.
    """

    def __init__(self, settings: Any, store: Any = None, interval: float = 30.0) -> None:
        self.settings = settings
        self.store = store
        self.interval = interval
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="petalops-gauges", daemon=True)

    def start(self) -> GaugeRefresher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def refresh(self) -> None:
        if self.store is None:
            from petalops.monitoring.store import MonitorStore  # SQLAlchemy: see the top

            self.store = MonitorStore.from_settings(self.settings)
        try:
            profile = champion_profile(self.settings, self.store)
        except Exception:
            log.warning("could not load the champion's profile for the drift gauges", exc_info=True)
            profile = None
        update_gauges(self.settings, self.store, profile)
        update_estimate_gauges(self.settings, self.store)
        self.runs += 1

    def _run(self) -> None:
        # Wait first: a server's first seconds are its warm-up, and the first refresh imports
        # scipy (a second of CPU under the worker's GIL).
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # never let the refresher die, never touch a request
                log.warning("gauge refresh failed", exc_info=True)


def start_gauge_refresher(
    settings: Any, store: Any = None, interval: float = 30.0
) -> GaugeRefresher:
    """Refresh the drift and live-quality gauges in the background; returns the refresher."""
    return GaugeRefresher(settings, store, interval).start()
