"""The closed loop: what triggers a retrain, the cooldown, and the recorded steps.

The registry and the monitoring store are real; the trainer and the rollout starter are
recording stand-ins here (tests/integration/test_monitor_loop.py runs the real pipeline).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from petalops.config import Settings
from petalops.errors import GateFailedError
from petalops.monitoring import loop
from petalops.monitoring.loop import Watcher
from petalops.monitoring.store import MonitorStore

CLASSES = ["setosa", "versicolor", "virginica"]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class RecordingTrainer:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[pd.DataFrame] = []
        self.fail = fail

    def __call__(self, settings: Any, data_path: Path) -> Any:
        self.calls.append(pd.read_csv(data_path))
        if self.fail:
            raise GateFailedError("quality gate failed, nothing registered: accuracy 0.5 < 0.9")
        return SimpleNamespace(
            version=str(10 + len(self.calls)),
            run_id=f"run{len(self.calls)}",
            alias="challenger",
            metrics={"accuracy": 0.97},
            gate=None,
        )


class RecordingStarter:
    def __init__(self, rollout_id: str | None = "r-1") -> None:
        self.calls: list[tuple[str, str]] = []
        self.rollout_id = rollout_id

    def __call__(self, settings: Any, version: str, strategy: str) -> str | None:
        self.calls.append((version, strategy))
        return self.rollout_id


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


def kinds(store: MonitorStore) -> list[str]:
    return [e["kind"] for e in store.events(limit=100)]


def test_drift_triggers_retrain_register_and_rollout(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    trainer, starter, clock = RecordingTrainer(), RecordingStarter(), Clock()
    watcher = Watcher(
        settings, shifted_store, retrain=True, trainer=trainer, rollout_starter=starter, clock=clock
    )
    result = watcher.tick()
    assert {"PetalopsDatasetDrift", "PetalopsAccuracyDrop"} <= result.evaluation.names
    assert result.cycle is not None
    assert result.cycle.outcome == "rollout_started"
    assert result.cycle.version == "11"
    assert result.cycle.rollout_id == "r-1"
    assert starter.calls == [("11", "shadow-canary")]
    [data] = trainer.calls
    assert len(data) == 150 + 300  # the training set plus every labelled live row
    assert set(data["species"]) == set(CLASSES)
    assert kinds(shifted_store) == ["trigger", "data", "trained", "registered", "rollout_started"]
    events = shifted_store.events()
    assert {e["cycle"] for e in events} == {result.cycle.cycle}
    trigger = events[0]
    assert trigger["model_version"] == "1"  # the champion whose traffic drifted
    assert "PetalopsDatasetDrift" in trigger["detail"]["reasons"]
    assert trigger["detail"]["drift"]["dataset_drift"] is True
    assert events[1]["detail"]["labelled_rows"] == 300
    assert events[4]["rollout_id"] == "r-1"


def test_cooldown_stops_a_retraining_storm(settings: Settings, shifted_store: MonitorStore) -> None:
    trainer, clock = RecordingTrainer(), Clock()
    watcher = Watcher(
        settings,
        shifted_store,
        retrain=True,
        trainer=trainer,
        rollout_starter=RecordingStarter(),
        clock=clock,
    )
    assert watcher.tick().cycle.outcome == "rollout_started"  # type: ignore[union-attr]
    for _ in range(3):
        clock.now += 60
        cycle = watcher.tick().cycle
        assert cycle is not None
        assert cycle.outcome == "cooldown"
    assert len(trainer.calls) == 1
    assert kinds(shifted_store).count("skipped") == 1  # one row per cooldown, not per tick
    clock.now += 600
    assert watcher.tick().cycle.outcome == "rollout_started"  # type: ignore[union-attr]
    assert len(trainer.calls) == 2


def test_cooldown_survives_a_restart(settings: Settings, shifted_store: MonitorStore) -> None:
    trainer, clock = RecordingTrainer(), Clock()
    first = Watcher(
        settings,
        shifted_store,
        retrain=True,
        trainer=trainer,
        rollout_starter=RecordingStarter(),
        clock=clock,
    )
    first.tick()
    clock.now += 30
    second = Watcher(
        settings,
        shifted_store,
        retrain=True,
        trainer=trainer,
        rollout_starter=RecordingStarter(),
        clock=clock,
    )
    assert second.tick().cycle.outcome == "cooldown"  # type: ignore[union-attr]
    assert len(trainer.calls) == 1


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


def test_drift_without_labels_does_not_retrain(settings: Settings) -> None:
    store = MonitorStore.from_settings(settings)
    x, _ = load_iris(return_X_y=True)
    store.log_predictions(
        {
            "request_id": f"u{i}",
            "model_name": "iris",
            "model_version": "1",
            "features": (x[i] * 1.5).tolist(),
            "prediction": 2,
        }
        for i in range(150)
    )
    trainer = RecordingTrainer()
    cycle = Watcher(settings, store, retrain=True, trainer=trainer).tick().cycle
    assert cycle is not None
    assert cycle.outcome == "no_labels"
    assert trainer.calls == []
    assert kinds(store) == ["trigger", "skipped"]


def test_gate_failure_and_missing_rollout_controller_are_recorded(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    clock = Clock()
    failing = Watcher(
        settings, shifted_store, retrain=True, trainer=RecordingTrainer(fail=True), clock=clock
    )
    cycle = failing.tick().cycle
    assert cycle is not None
    assert cycle.outcome == "gate_failed"
    assert kinds(shifted_store)[-1] == "gate_failed"

    clock.now += 601
    pending = Watcher(
        settings,
        shifted_store,
        retrain=True,
        trainer=RecordingTrainer(),
        rollout_starter=RecordingStarter(rollout_id=None),
        clock=clock,
    )
    cycle = pending.tick().cycle
    assert cycle is not None
    assert cycle.outcome == "rollout_pending"
    last = shifted_store.events()[-1]
    assert last["kind"] == loop.ROLLOUT_PENDING
    assert last["detail"] == {"strategy": "shadow-canary"}


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
    clock.now += loop.REPEAT_SECONDS
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
