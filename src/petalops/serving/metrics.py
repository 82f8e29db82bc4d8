"""The server's Prometheus metrics (names from docs/internals.md) and the /metrics body.

With several workers, prometheus-client runs in multiprocess mode: ``petalops serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes its own mmap
files and ``/metrics`` merges them, so the answer is right whichever worker serves it.
Labelled children are cached in dicts: ``.labels()`` costs a lock and a tuple check per
call, which adds up at 10,000 requests/s.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Sub-millisecond buckets: a prediction here takes tens of microseconds.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

REQUESTS = Counter(
    "petalops_requests",
    "HTTP requests answered, by route, status, model version and variant.",
    ["route", "status", "model_version", "variant"],
)
DURATION = Histogram(
    "petalops_request_duration_seconds",
    "Time from the request's headers to its response, by route, model version and variant.",
    ["route", "model_version", "variant"],
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "petalops_predictions",
    "Rows predicted, by model version, variant and predicted class.",
    ["model_version", "variant", "class_name"],
)
OUT_OF_RANGE = Counter(
    "petalops_input_out_of_range",
    "Feature values outside the min/max seen in training.",
    ["model_version"],
)
MODEL_LOADS = Counter(
    "petalops_model_loads",
    "Model version loads (fetch, checksum verification and warm-up), by result.",
    ["result"],
)
MODEL_INFO = Gauge(
    "petalops_model_info",
    "1 for each model version a worker is serving, by variant.",
    ["name", "version", "variant"],
    multiprocess_mode="livemax",
)
MODEL_READY = Gauge(
    "petalops_model_ready",
    "1 when the worker has a verified, warmed champion (the lowest over live workers).",
    multiprocess_mode="livemin",
)
RECONCILE_ERRORS = Counter(
    "petalops_reconcile_errors",
    "Failed reconciliations with the registry; the last good model kept serving.",
    ["reason"],
)


class RequestMetrics:
    """Cached labelled children for the per-request observations."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int, str, str], Any] = {}
        self._duration: dict[tuple[str, str, str], Any] = {}
        self._predictions: dict[tuple[str, str, str], Any] = {}
        self._out_of_range: dict[str, Any] = {}

    def request(self, route: str, status: int, version: str, variant: str, seconds: float) -> None:
        key = (route, status, version, variant)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = REQUESTS.labels(route, str(status), version, variant)
        child.inc()
        dkey = (route, version, variant)
        hist = self._duration.get(dkey)
        if hist is None:
            hist = self._duration[dkey] = DURATION.labels(route, version, variant)
        hist.observe(seconds)

    def predicted(self, version: str, variant: str, class_name: str, n: int = 1) -> None:
        key = (version, variant, class_name)
        child = self._predictions.get(key)
        if child is None:
            child = self._predictions[key] = PREDICTIONS.labels(version, variant, class_name)
        child.inc(n)

    def out_of_range(self, version: str, n: int) -> None:
        child = self._out_of_range.get(version)
        if child is None:
            child = self._out_of_range[version] = OUT_OF_RANGE.labels(version)
        child.inc(n)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The Prometheus text body and its content type, merged across workers if needed."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges (multiprocess mode only)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
