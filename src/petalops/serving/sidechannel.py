"""Work done after the response has been handed to the transport: prediction metrics,
the prediction log, the champion's reference answer for a challenger, shadow predictions.

Everything here is guarded: a failure is counted and logged once in a while, and never
reaches the client (docs/architecture.md: side channels never fail a request).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from petalops.errors import PetalopsError
from petalops.monitoring.record import PredictionRecord, answer_records
from petalops.monitoring.sink import PredictionSink
from petalops.serving.accesslog import JsonLog
from petalops.serving.holder import Served
from petalops.serving.inputquality import REFUSED_STATUSES, InputQuality
from petalops.serving.metrics import RequestMetrics
from petalops.serving.prediction import Prediction
from petalops.serving.rows import predict_rows

ERROR_LOG_EVERY_SECONDS = 60.0


class SideChannel:
    """After-response work for one worker."""

    def __init__(
        self,
        metrics: RequestMetrics,
        log: JsonLog,
        sink: PredictionSink | None,
        quality: InputQuality | None = None,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.sink = sink
        self.quality = quality or InputQuality(metrics)
        self.failures = 0
        self._last_error_log = 0.0

    def predicted(
        self, request_id: str, route: str, prediction: Prediction, seconds: float
    ) -> None:
        """Everything a prediction owes after its response: never raises."""
        try:
            served, snapshot, variant = prediction.served, prediction.snapshot, prediction.variant
            rows, labels = prediction.rows, prediction.labels
            self._observe(served, variant, rows, labels)
            reference: list[int] | None = None
            champion = snapshot.champion
            sink = self.sink
            if sink is not None:
                if variant != "champion" and champion is not None and champion is not served:
                    reference, _ = predict_rows(champion.runtime, rows)
                _log_answer(
                    sink,
                    request_id,
                    route,
                    served,
                    variant,
                    seconds * 1000.0,
                    rows,
                    labels,
                    prediction.probas,
                    reference,
                )
            challenger = snapshot.challenger
            if snapshot.policy.shadow and challenger is not None and variant == "champion":
                # The shadow's latency is what the caller would have waited had it answered:
                # the request's time with the champion's predict swapped for the shadow's
                # (the champion's is timed again here, off the request path).
                begin = time.perf_counter()
                predict_rows(served.runtime, rows)
                middle = time.perf_counter()
                shadow_labels, shadow_probas = predict_rows(challenger.runtime, rows)
                shadow_seconds = max(
                    0.0, seconds + (time.perf_counter() - middle) - (middle - begin)
                )
                self._observe(challenger, "shadow", rows, shadow_labels)
                if sink is not None:
                    _log_answer(
                        sink,
                        request_id,
                        route,
                        challenger,
                        "shadow",
                        shadow_seconds * 1000.0,
                        rows,
                        shadow_labels,
                        shadow_probas,
                        labels,
                    )
        except Exception as exc:
            self.failed(exc)

    def variant_failed(
        self, request_id: str, route: str, served: Served, variant: str, exc: BaseException
    ) -> None:
        """Log that ``served`` failed this request (the caller got another answer)."""
        try:
            self.log.event(
                "variant_failed",
                request_id=request_id,
                model_version=served.version,
                variant=variant,
                error=repr(exc),
            )
            if self.sink is not None:
                self.sink.log_many(
                    records(request_id, route, served, variant, 500, None, [None], [None], [None])
                )
        except Exception as error:
            self.failed(error)

    def refused(
        self,
        request_id: str,
        route: str,
        served: Served | None,
        variant: str,
        error: PetalopsError,
        seconds: float,
    ) -> None:
        """A prediction request answered 400/422 for its input: counted per feature
        (`InputQuality.refused`) and logged as a row without values, so `monitor quality`
        counts it in the window's refused share. Never raises."""
        try:
            status = error.http_status
            if status not in REFUSED_STATUSES:
                return
            quality = self.quality
            quality.refused(served, error.field)
            sink = self.sink
            if sink is None:
                return
            if served is not None:
                rows = records(
                    request_id,
                    route,
                    served,
                    variant,
                    status,
                    seconds * 1000.0,
                    [None],
                    [None],
                    [None],
                )
            else:  # refused before a version was chosen: counts against those serving then
                rows = [
                    {
                        "request_id": request_id,
                        "row": 0,
                        "ts": time.time(),
                        "model_name": quality.model_name,
                        "model_version": "",
                        "variant": "",
                        "route": route,
                        "status": status,
                        "latency_ms": seconds * 1000.0,
                        "features": None,
                        "prediction": None,
                        "class_name": None,
                        "probabilities": None,
                        "reference_prediction": None,
                    }
                ]
            sink.log_many(rows)
        except Exception as exc:
            self.failed(exc)

    def _observe(
        self, served: Served, variant: str, rows: list[list[float]], labels: list[int]
    ) -> None:
        classes = served.classes
        version = served.version
        if len(labels) == 1:
            self.metrics.predicted(version, variant, classes[labels[0]])
        else:
            for label, n in Counter(labels).items():
                self.metrics.predicted(version, variant, classes[label], n)
        outside = self.quality.observe(served, rows)
        if outside:
            self.metrics.out_of_range(version, outside)

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY_SECONDS:
            self._last_error_log = now
            self.log.event("side_channel_error", error=repr(exc), failures=self.failures)

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close(10.0)
            except Exception as exc:
                self.failed(exc)


def _log_answer(
    sink: PredictionSink,
    request_id: str,
    route: str,
    served: Served,
    variant: str,
    latency_ms: float,
    rows: Sequence[list[float]],
    labels: Sequence[int],
    probas: Sequence[list[float]],
    reference: list[int] | None,
) -> None:
    """A 200 answer's rows to the sink, by its ``log_answer`` (the spool's: no record dicts)."""
    sink.log_answer(
        request_id,
        route,
        served.name,
        served.version,
        served.classes,
        variant,
        200,
        latency_ms,
        rows,
        labels,
        probas,
        reference,
    )


def records(
    request_id: str,
    route: str,
    served: Served,
    variant: str,
    status: int,
    latency_ms: float | None,
    rows: Sequence[list[float] | None],
    labels: Sequence[int | None],
    probas: Sequence[list[float] | None],
    reference: list[int] | None = None,
) -> list[PredictionRecord]:
    """The prediction log's rows for one request (`petalops.monitoring.record.answer_records`).

    A failed answer is one row of ``None`` features, prediction and probabilities.
    """
    return answer_records(
        request_id,
        route,
        served.name,
        served.version,
        served.classes,
        variant,
        status,
        latency_ms,
        rows,
        labels,
        probas,
        reference,
    )
