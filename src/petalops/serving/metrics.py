"""The server's Prometheus metrics (names from docs/internals.md) and the /metrics body.

With several workers, prometheus-client runs in multiprocess mode: ``petalops serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes its own mmap
files and ``/metrics`` merges them, so the answer is right whichever worker serves it.
Labelled children are cached in dicts: ``.labels()`` costs a lock and a tuple check per
call, which adds up at 10,000 requests/s.
"""

from __future__ import annotations

import asyncio
import math
import os
from bisect import bisect_left
from collections.abc import Callable
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
UNSEEN_CATEGORIES = Counter(
    "petalops_unseen_categories",
    "Categorical feature values never seen in training, by model version and feature.",
    ["model_version", "feature"],
)
INPUT_VALUES = Counter(
    "petalops_input_values",
    "Served feature values failing a data-quality check, by model version, feature and check "
    "(missing, out_of_range: beyond the training min/max widened by "
    "monitor.quality_range_tolerance, unseen: a category training never saw, refused: "
    "answered 400/422 at the edge; feature=_request when no one feature was at fault).",
    ["model_version", "feature", "check"],
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
KEY_REQUESTS = Counter(
    "petalops_api_key_requests",
    "Requests on guarded routes by API key name (never the key), allowed or rate_limited.",
    ["key", "outcome"],
)
AUTH_FAILURES = Counter(
    "petalops_auth_failures",
    "Requests refused by the key check, by scope and reason (missing, malformed, invalid, "
    "revoked, expired, scope, disabled).",
    ["scope", "reason"],
)
RECONCILE_ERRORS = Counter(
    "petalops_reconcile_errors",
    "Failed reconciliations with the registry; the last good model kept serving.",
    ["reason"],
)


def unseen_category(model_version: str, feature: str, count: int) -> None:
    """Count ``count`` values of ``feature`` that training never saw (rare: not batched)."""
    UNSEEN_CATEGORIES.labels(model_version, feature).inc(count)


class RequestMetrics:
    """Per-request observations, added up in plain dicts and flushed every 0.1 s.

    A prometheus-client ``inc``/``observe`` takes a lock (and in multiprocess mode writes
    an mmap) each time: ~1.5 µs, four of them a request. Counting in a dict and flushing
    the sums is ~0.3 µs a request; a scrape flushes first, so it is never stale in the
    worker that answers it (other workers' counts are at most ``FLUSH_SECONDS`` old).
    """

    FLUSH_SECONDS = 0.1

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int, str, str], int] = {}
        self._durations: dict[tuple[str, str, str], list[float]] = {}
        self._predictions: dict[tuple[str, str, str], int] = {}
        self._out_of_range: dict[str, int] = {}
        self.values: dict[tuple[str, str, str], int] = {}
        self._keyed: dict[tuple[str, str], int] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        self._scheduled = False

    def request(self, route: str, status: int, version: str, variant: str, seconds: float) -> None:
        key = (route, status, version, variant)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        dkey = (route, version, variant)
        buckets = self._durations.get(dkey)
        if buckets is None:
            buckets = self._durations[dkey] = [0.0] * (len(_BOUNDS) + 1)
        buckets[0] += seconds
        buckets[1 + bisect_left(_BOUNDS, seconds)] += 1
        if not self._scheduled:
            self._schedule()

    def predicted(self, version: str, variant: str, class_name: str, n: int = 1) -> None:
        key = (version, variant, class_name)
        self._predictions[key] = self._predictions.get(key, 0) + n

    def out_of_range(self, version: str, n: int) -> None:
        self._out_of_range[version] = self._out_of_range.get(version, 0) + n

    def value_checks(self, counts: dict[tuple[str, str, str], int]) -> None:
        """Add ``{(version, feature, check): n}`` to the pending input-value counts."""
        values = self.values
        for key, n in counts.items():
            values[key] = values.get(key, 0) + n

    def keyed(self, name: str, outcome: str) -> None:
        key = (name, outcome)
        self._keyed[key] = self._keyed.get(key, 0) + 1

    def auth_failed(self, scope: str, reason: str) -> None:
        """Count a refused credential (rare next to requests: not batched)."""
        AUTH_FAILURES.labels(scope, reason).inc()

    def _schedule(self) -> None:
        try:
            asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            self._scheduled = True
        except RuntimeError:  # no event loop (tests, threads): flush now
            self.flush()

    def _child(self, metric: Any, labels: tuple[Any, ...]) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def flush(self) -> None:
        """Hand the pending counts to prometheus-client."""
        self._scheduled = False
        requests, self._requests = self._requests, {}
        durations, self._durations = self._durations, {}
        predictions, self._predictions = self._predictions, {}
        out_of_range, self._out_of_range = self._out_of_range, {}
        values, self.values = self.values, {}
        keyed, self._keyed = self._keyed, {}
        for (route, status, version, variant), n in requests.items():
            self._child(REQUESTS, (route, str(status), version, variant)).inc(n)
        for labels, buckets in durations.items():
            histogram = self._child(DURATION, labels)
            # observe() once per request would undo the batching; these two attributes
            # are what observe() itself updates (prometheus-client pinned in constraints).
            histogram._sum.inc(buckets[0])
            for i, count in enumerate(buckets[1:]):
                if count:
                    histogram._buckets[i].inc(count)
        for labels, n in predictions.items():
            self._child(PREDICTIONS, labels).inc(n)
        for version, n in out_of_range.items():
            self._child(OUT_OF_RANGE, (version,)).inc(n)
        for labels, n in values.items():
            self._child(INPUT_VALUES, labels).inc(n)
        for key_outcome, n in keyed.items():
            self._child(KEY_REQUESTS, key_outcome).inc(n)


_BOUNDS = (*LATENCY_BUCKETS, math.inf)
# prometheus-client ships these two without annotations; typed here for mypy --strict.
_merge_workers: Callable[..., object] = multiprocess.MultiProcessCollector
_mark_process_dead: Callable[[int], None] = multiprocess.mark_process_dead


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The Prometheus text body and its content type, merged across workers if needed."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        _merge_workers(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def use_worker_files() -> bool:
    """In a worker forked from `petalops serve` (``serve.worker_start=fork``): move this
    process's metrics onto its own multiprocess files. True if it had to.

    prometheus-client picks in-memory or mmap-file values once, when it is imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; the parent imports it (with every metric above) before it
    may set that variable, since the preflight must find the port free before the
    directory is cleared. A spawned worker imports afresh and gets files; a forked one
    inherits in-memory values, which ``/metrics`` would never see. So the value class is
    switched here and each metric's values rebuilt, as a fresh import would build them.
    prometheus-client has no public call for this (it is pinned in constraints.txt; the
    multiprocess tests under tests/integration fail if this stops working)."""
    from prometheus_client import values
    from prometheus_client.metrics import MetricWrapperBase

    if not multiprocess_dir() or getattr(values.ValueClass, "_multiprocess", False):
        return False
    file_values: Callable[[], Any] = values.MultiProcessValue
    values.ValueClass = file_values()
    for collector in list(REGISTRY._collector_to_names):
        if not isinstance(collector, MetricWrapperBase):
            continue  # the process / platform / GC collectors hold no values
        metric: Any = collector
        if metric._is_parent():
            with metric._lock:
                metric._metrics.clear()  # labelled children are made again on first use
        else:
            metric._metric_init()
    return True


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges (multiprocess mode only)."""
    if multiprocess_dir():
        _mark_process_dead(pid)
