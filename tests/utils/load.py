"""Bounded client load for failure tests: a few threads on 127.0.0.1, every answer tallied.

Each request carries its own ``X-Request-ID`` so that a test can compare the rows it got an
answer for with the rows in the prediction log. By default every request opens a new
connection: the kernel then spreads them over all the workers of a server.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass
class LoadReport:
    """What the load saw: ids answered 200, and every other outcome counted."""

    answered: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.sent - self.outcomes["200"]


class Load:
    """``threads`` threads posting ``/predict`` until stopped, ``seconds`` or ``max_requests``."""

    def __init__(
        self,
        url: str,
        *,
        threads: int = 4,
        prefix: str = "load",
        new_connections: bool = True,
        max_requests: int = 200_000,
        seconds: float = 120.0,
        pause: float = 0.0,
    ) -> None:
        assert url.startswith("http://127.0.0.1:"), url
        self.url = url
        self.threads = threads
        self.prefix = prefix
        self.new_connections = new_connections
        self.max_requests = max_requests
        self.seconds = seconds
        self.pause = pause
        self.report = LoadReport()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _next_id(self) -> str | None:
        n = next(self._ids)
        return f"{self.prefix}-{n}" if n < self.max_requests else None

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        client = httpx.Client(base_url=self.url, timeout=10)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                request_id = self._next_id()
                if request_id is None:
                    return
                outcome = self._send(client, request_id)
                with self._lock:
                    self.report.outcomes[outcome] += 1
                    if outcome == "200":
                        self.report.answered.append(request_id)
                if self.pause:
                    self._stop.wait(self.pause)
        finally:
            client.close()

    def _send(self, client: httpx.Client, request_id: str) -> str:
        headers = {"X-Request-ID": request_id}
        if self.new_connections:
            headers["Connection"] = "close"
        try:
            response = client.post("/predict", json={"features": ROW}, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return str(response.status_code)

    def start(self) -> Load:
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> LoadReport:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)
        return self.report


class Poller:
    """Polls one path every ``every`` seconds on a new connection; counts the statuses."""

    def __init__(self, url: str, path: str = "/readyz", every: float = 0.05) -> None:
        self.url = url + path
        self.every = every
        self.statuses: Counter[str] = Counter()
        self.samples: list[tuple[float, str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                response = httpx.get(self.url, timeout=5)
                status, body = str(response.status_code), response.text[:200]
            except httpx.HTTPError as exc:
                status, body = type(exc).__name__, str(exc)[:200]
            self.statuses[status] += 1
            self.samples.append((time.time(), status, body))

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> Counter[str]:
        self._stop.set()
        self._thread.join(15)
        return self.statuses
