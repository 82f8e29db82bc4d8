"""Monitoring fixtures: a fresh SQLite monitoring store per test, and a record factory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from petalops.monitoring.store import MonitorStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitorStore]:
    monitor = MonitorStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield monitor
    monitor.close()


def record(request_id: str, **extra: Any) -> dict[str, Any]:
    """One prediction record shaped as the server logs it."""
    base: dict[str, Any] = {
        "request_id": request_id,
        "row": 0,
        "ts": time.time(),
        "model_name": "iris",
        "model_version": "1",
        "variant": "champion",
        "route": "/v1/predict",
        "status": 200,
        "latency_ms": 1.5,
        "features": [5.1, 3.5, 1.4, 0.2],
        "prediction": 0,
        "class_name": "setosa",
        "probabilities": [0.9, 0.08, 0.02],
    }
    base.update(extra)
    return base


@pytest.fixture
def make_record() -> Callable[..., dict[str, Any]]:
    return record
