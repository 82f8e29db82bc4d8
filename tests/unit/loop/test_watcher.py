"""`monitor watch` checks: alerts without a retrain, and notifications that fire once."""

from __future__ import annotations

from sklearn.datasets import load_iris
from tests.utils.loop import Clock, RecordingTrainer, kinds

from petalops.config import Settings
from petalops.loop import watcher as watcher_module
from petalops.loop.watcher import Watcher
from petalops.monitoring.store import MonitorStore


def test_without_retrain_alerts_only(settings: Settings, shifted_store: MonitorStore) -> None:
    trainer = RecordingTrainer()
    result = Watcher(settings, shifted_store, retrain=False, trainer=trainer).tick()
    assert "PetalopsDatasetDrift" in result.evaluation.names
    assert result.cycle is None
    assert trainer.calls == []
    assert kinds(shifted_store) == []


def test_no_trigger_no_cycle(settings: Settings) -> None:
    store = MonitorStore.from_settings(settings)
    x, y = load_iris(return_X_y=True)
    store.log_predictions(
        {
            "request_id": f"n{i}",
            "model_name": "iris",
            "model_version": "1",
            "features": x[i].tolist(),
            "prediction": int(y[i]),
            "label": int(y[i]),
        }
        for i in range(150)
    )
    trainer = RecordingTrainer()
    result = Watcher(settings, store, retrain=True, trainer=trainer).tick()
    assert result.evaluation.alerts == []
    assert result.cycle is None
    assert trainer.calls == []


def test_alerts_notify_when_they_start_and_resolve_not_every_check(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    seen: list[str] = []
    clock = Clock()
    watcher = Watcher(
        settings,
        shifted_store,
        retrain=False,
        clock=clock,
        on_alert=lambda alert: seen.append(alert.name),
    )
    watcher.tick()
    assert "PetalopsDatasetDrift" in seen
    first = len(seen)
    clock.now += 30
    watcher.tick()
    assert len(seen) == first  # still firing: no new notification
    clock.now += watcher_module.REPEAT_SECONDS
    watcher.tick()
    assert len(seen) == 2 * first  # reminded after an hour

    x, y = load_iris(return_X_y=True)
    shifted_store.log_predictions(
        {
            "request_id": f"ok{i}",
            "ts": clock.now + i,
            "model_name": "iris",
            "model_version": "1",
            "features": x[i % 150].tolist(),
            "prediction": int(y[i % 150]),
            "label": int(y[i % 150]),
        }
        for i in range(600)
    )
    result = watcher.tick()
    assert "PetalopsDatasetDrift" not in result.evaluation.names
    assert watcher._notified == {}
