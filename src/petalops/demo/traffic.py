"""Synthetic, bounded traffic against a petalops server, for demos and rollout tests.

Iris-like rows (training rows with 5 % jitter) sent to ``POST /v1/predict`` from a fixed
set of callers (``X-Petalops-Key``), at a capped rate, for a fixed time or until stopped.
Every answer is tallied by the version and variant it names; every failure is kept.
Only loopback addresses are accepted: this is a test tool, not a load tester.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from sklearn.datasets import load_iris

from petalops.errors import ConfigError

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASSES = ("setosa", "versicolor", "virginica")


LABEL_QUEUE = 10_000
LABEL_BATCH = 100


@dataclass
class TrafficReport:
    """What a traffic run saw."""

    sent: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    served: Counter[tuple[str, str]] = field(default_factory=Counter)
    labelled: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # (epoch seconds, version, variant, caller) of every answer: to time a flip or a
    # rollback, and to check that a caller stays on one variant.
    timeline: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def share(self, variant: str) -> float:
        total = sum(self.served.values())
        return sum(n for (_, v), n in self.served.items() if v == variant) / total if total else 0.0

    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else 0.0

    def first_answer_after(self, since: float, version: str) -> float | None:
        """Epoch time of the first answer from ``version`` at or after ``since``."""
        return next((t for t, v, _, _ in self.timeline if t >= since and v == version), None)

    def last_answer_from(self, version: str) -> float | None:
        return max((t for t, v, _, _ in self.timeline if v == version), default=None)


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"synthetic traffic only targets 127.0.0.1; got {url!r}")


class Traffic:
    """Send requests from ``threads`` threads at up to ``rate`` requests/s in total."""

    def __init__(
        self,
        url: str,
        *,
        rate: float = 100.0,
        threads: int = 2,
        callers: int = 500,
        feedback: bool = False,
        seed: int = 0,
        timeout: float = 10.0,
    ) -> None:
        _check_loopback(url)
        if rate <= 0 or rate > 2000:
            raise ConfigError(f"rate {rate} must be in (0, 2000] requests/s")
        self.url = url.rstrip("/")
        self.rate = rate
        self.threads = max(1, threads)
        self.callers = callers
        self.feedback = feedback
        self.seed = seed
        self.timeout = timeout
        self.report = TrafficReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        # Labels go out from one thread of their own, in batches: a traffic thread that
        # waited on each feedback call could not keep its rate (the rollout then judged
        # too few requests on a 2-core machine).
        self._labels: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=LABEL_QUEUE)
        self._labeller: threading.Thread | None = None
        self._sent_all = threading.Event()

    def _rows(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = load_iris(return_X_y=True)
        pick = rng.integers(0, len(y), n)
        rows = x[pick] + rng.normal(0.0, 0.05, (n, x.shape[1])) * x.std(axis=0)
        return np.round(np.clip(rows, 0.1, None), 2), y[pick]

    def _worker(self, index: int, deadline: float, rows: np.ndarray, labels: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed + index)
        interval = self.threads / self.rate
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            i = 0
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                row = rows[i % len(rows)]
                caller = f"caller-{int(rng.integers(0, self.callers))}"
                try:
                    data = self._predict(client, row, caller)
                    if data is not None and self.feedback:
                        self._queue_label(data, int(labels[i % len(labels)]))
                except httpx.HTTPError as exc:
                    self._fail(f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.report.sent += 1
                i += 1
                next_at = self._pace(next_at + interval)

    def _predict(self, client: httpx.Client, row: np.ndarray, caller: str) -> dict[str, Any] | None:
        """Send one row as ``caller`` and tally the answer; None when it was not a 200."""
        body = dict(zip(FEATURES, (float(v) for v in row), strict=True))
        start = time.monotonic()
        sent_at = time.time()
        reply = client.post("/v1/predict", json=body, headers={"x-petalops-key": caller})
        elapsed = (time.monotonic() - start) * 1000
        if reply.status_code != 200:
            self._fail(f"HTTP {reply.status_code}: {reply.text[:200]}")
            return None
        data: dict[str, Any] = reply.json()
        version, variant = str(data["model_version"]), str(data["variant"])
        with self._lock:
            r = self.report
            r.ok += 1
            r.served[(version, variant)] += 1
            r.latencies_ms.append(elapsed)
            r.timeline.append((sent_at, version, variant, caller))
        return data

    def _queue_label(self, data: dict[str, Any], label: int) -> None:
        """Hand an answer's true label to the labeller thread; dropped if it falls behind."""
        try:
            self._labels.put_nowait((str(data["request_id"]), CLASSES[label]))
        except queue.Full:
            self._fail("feedback queue full: a label was dropped")

    def _labeller_loop(self) -> None:
        """Send queued labels in batches until the traffic is over and the queue empty."""
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while True:
                try:
                    first = self._labels.get(timeout=0.1)
                except queue.Empty:
                    if self._sent_all.is_set():
                        return
                    continue
                batch = [first]
                while len(batch) < LABEL_BATCH:
                    try:
                        batch.append(self._labels.get_nowait())
                    except queue.Empty:
                        break
                if not self._label(client, batch):
                    self.feedback = False  # no feedback route on this server
                    return

    def _label(self, client: httpx.Client, batch: list[tuple[str, str]]) -> bool:
        """Send true labels; False when this server has no feedback route."""
        items = [{"request_id": request_id, "label": label} for request_id, label in batch]
        try:
            sent = client.post("/v1/feedback", json={"items": items})
        except httpx.HTTPError as exc:
            self._fail(f"feedback: {type(exc).__name__}: {exc}")
            return True
        if sent.status_code == 404 and "request" not in sent.text:
            return False
        if sent.status_code < 300:
            with self._lock:
                self.report.labelled += len(batch)
        else:
            self._fail(f"feedback HTTP {sent.status_code}: {sent.text[:200]}")
        return True

    def _pace(self, next_at: float) -> float:
        """Wait until ``next_at``; when behind, carry on from now (no burst to catch up)."""
        pause = next_at - time.monotonic()
        if pause > 0:
            self._stop.wait(pause)
            return next_at
        return time.monotonic()

    def _fail(self, message: str) -> None:
        with self._lock:
            self.report.failures.append(message)

    def start(self, seconds: float) -> Traffic:
        """Run in the background for at most ``seconds`` (it always stops by itself)."""
        data = [self._rows(np.random.default_rng(self.seed + i), 2048) for i in range(self.threads)]
        deadline = time.monotonic() + seconds  # counted from the first request, not the setup
        self._workers = [
            threading.Thread(target=self._worker, args=(i, deadline, *data[i]), daemon=True)
            for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        if self.feedback:
            self._labeller = threading.Thread(target=self._labeller_loop, daemon=True)
            self._labeller.start()
        return self

    def _finish_labels(self) -> None:
        self._sent_all.set()
        if self._labeller is not None:
            self._labeller.join(self.timeout + 5)

    def stop(self) -> TrafficReport:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        self._finish_labels()
        return self.report

    def run(self, seconds: float) -> TrafficReport:
        """Send traffic for ``seconds`` in the foreground."""
        self.start(seconds)
        for worker in self._workers:
            worker.join()
        self._finish_labels()
        return self.report
