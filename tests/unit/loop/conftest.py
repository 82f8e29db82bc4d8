"""Loop fixtures: settings on a real registry (iris v1 champion, v2 challenger) and a
monitoring store whose labelled live traffic has drifted."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.datasets import load_iris

from petalops.config import Settings
from petalops.monitoring.store import MonitorStore


@pytest.fixture
def settings(trained_settings: Settings) -> Settings:
    trained_settings.monitor.retrain_cooldown_seconds = 600
    trained_settings.monitor.drift_window = 300
    return trained_settings


@pytest.fixture
def shifted_store(settings: Settings) -> MonitorStore:
    """300 labelled live rows, every feature scaled up 40 %: drift and an accuracy drop."""
    store = MonitorStore.from_settings(settings)
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, 150, 300)
    now = time.time()
    store.log_predictions(
        {
            "request_id": f"s{i}",
            "ts": now - 300 + i,
            "model_name": "iris",
            "model_version": "1",
            "variant": "champion",
            "status": 200,
            "latency_ms": 1.0,
            "features": (x[j] * 1.4).tolist(),
            "prediction": 2,
            "label": int(y[j]),
        }
        for i, j in enumerate(pick)
    )
    return store
