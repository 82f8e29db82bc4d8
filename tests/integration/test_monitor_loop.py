"""The closed loop end to end on shifted data: real logger, feedback, drift, pipeline, registry
and rollout. Drift detected → retrained on training + labelled data → gated → registered as
challenger → rollout started, every step in loop_events."""

from __future__ import annotations

import numpy as np
import pytest

from petalops.config import Settings, SigningSettings
from petalops.demo.drift import shifted_traffic
from petalops.loop.watcher import Watcher
from petalops.monitoring.feedback import record_feedback_batch
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.store import MonitorStore
from petalops.registry import load_runtime
from petalops.registry.store import alias_version
from petalops.rollout.api import request
from petalops.runtime.signing import KeyPair

pytestmark = pytest.mark.slow


def test_shifted_traffic_closes_the_loop(trained_settings: Settings, trainer_key: KeyPair) -> None:
    # The loop retrains as a signing trainer, and everything it loads must be signed by it.
    signing = SigningSettings(key_file=trainer_key.private, trusted_keys=[trainer_key.public])
    settings = trained_settings.model_copy(update={"signing": signing})
    champion = load_runtime(settings, "iris@champion")
    store = MonitorStore.from_settings(settings)
    x_normal, y_normal = shifted_traffic(200, 1.0, [0, 1, 2, 3], seed=1)
    x_shift, y_shift = shifted_traffic(400, 1.3, [0, 1, 2, 3], seed=2)
    x = np.vstack([x_normal, x_shift])
    y = np.concatenate([y_normal, y_shift])
    with PredictionLogger.from_settings(settings, store) as logger:
        for i, row in enumerate(x):
            index, proba = champion.predict_one(row.tolist())
            logger.log(
                {
                    "request_id": f"q{i}",
                    "model_name": "iris",
                    "model_version": champion.version,
                    "variant": "champion",
                    "route": "/v1/predict",
                    "status": 200,
                    "latency_ms": 0.3,
                    "features": row.tolist(),
                    "prediction": index,
                    "class_name": champion.classes[index],
                    "probabilities": proba,
                }
            )
    assert logger.dropped == 0
    labelled = record_feedback_batch(
        store,
        [{"request_id": f"q{i}", "label": int(label)} for i, label in enumerate(y)],
        champion.classes,
    ).labelled
    assert labelled == len(y)

    result = Watcher(settings, store, retrain=True).tick()

    assert "PetalopsDatasetDrift" in result.evaluation.names
    cycle = result.cycle
    assert cycle is not None
    assert cycle.outcome == "rollout_started", cycle.message
    assert cycle.version not in (None, "1", "2")
    assert alias_version(settings, "challenger") == cycle.version
    assert alias_version(settings, "champion") == "1"
    kinds = [e["kind"] for e in store.events()]
    assert kinds == ["trigger", "data", "trained", "registered", "rollout_started"]
    registered = next(e for e in store.events() if e["kind"] == "registered")
    assert registered["detail"]["signed_by"] == trainer_key.key_id
    assert cycle.rollout_id is not None
    assert store.events()[-1]["rollout_id"] == cycle.rollout_id

    # A person aborts the rollout; the next tick records its outcome once (and is in cooldown).
    request(settings, "abort", "integration test")
    again = Watcher(settings, store, retrain=True).tick()
    assert again.cycle is not None
    assert again.cycle.outcome == "cooldown"
    [outcome] = [e for e in store.events() if e["kind"] == "rollout_outcome"]
    assert outcome["cycle"] == cycle.cycle
    assert outcome["detail"]["outcome"] in {"aborted", "rolled_back"}
    Watcher(settings, store, retrain=True).tick()
    assert [e["kind"] for e in store.events()].count("rollout_outcome") == 1

    # The retrained challenger learned the new data: better than the champion on it.
    challenger = load_runtime(settings, f"iris/{cycle.version}")
    recent_x, recent_y = x[-150:], y[-150:]
    old = float(np.mean(champion.predict(recent_x) == recent_y))
    new = float(np.mean(challenger.predict(recent_x) == recent_y))
    assert new > old
    assert new >= 0.9
    store.close()
