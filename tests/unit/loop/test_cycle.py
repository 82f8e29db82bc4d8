"""A retraining cycle: what triggers it, the cooldown, and the recorded steps.

The registry and the monitoring store are real; the trainer and the rollout starter are
recording stand-ins (tests/integration/test_monitor_loop.py runs the real pipeline).
"""

from __future__ import annotations

import pytest
from sklearn.datasets import load_iris
from tests.utils.loop import Clock, RecordingStarter, RecordingTrainer, kinds

from petalops.config import Settings
from petalops.errors import ConflictError
from petalops.loop import cycle, events
from petalops.loop.watcher import Watcher
from petalops.monitoring.store import MonitorStore

CLASSES = ["setosa", "versicolor", "virginica"]


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
    recorded = shifted_store.events()
    assert {e["cycle"] for e in recorded} == {result.cycle.cycle}
    trigger = recorded[0]
    assert trigger["model_version"] == "1"  # the champion whose traffic drifted
    assert "PetalopsDatasetDrift" in trigger["detail"]["reasons"]
    assert trigger["detail"]["drift"]["dataset_drift"] is True
    assert recorded[1]["detail"]["labelled_rows"] == 300
    assert recorded[4]["rollout_id"] == "r-1"


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
        result = watcher.tick().cycle
        assert result is not None
        assert result.outcome == "cooldown"
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
    result = Watcher(settings, store, retrain=True, trainer=trainer).tick().cycle
    assert result is not None
    assert result.outcome == "no_labels"
    assert trainer.calls == []
    assert kinds(store) == ["trigger", "skipped"]


def test_gate_failure_and_missing_rollout_controller_are_recorded(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    clock = Clock()
    failing = Watcher(
        settings, shifted_store, retrain=True, trainer=RecordingTrainer(fail=True), clock=clock
    )
    result = failing.tick().cycle
    assert result is not None
    assert result.outcome == "gate_failed"
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
    result = pending.tick().cycle
    assert result is not None
    assert result.outcome == "rollout_pending"
    last = shifted_store.events()[-1]
    assert last["kind"] == events.ROLLOUT_PENDING
    assert last["detail"] == {"strategy": "shadow-canary"}


def test_the_steps_run_in_the_order_of_the_loop() -> None:
    assert [name for name, _ in cycle.STEPS] == [
        "cooldown",
        "trigger",
        "data",
        "train",
        "register",
        "rollout",
    ]


def test_a_first_version_is_champion_and_starts_no_rollout(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    starter = RecordingStarter()
    watcher = Watcher(
        settings,
        shifted_store,
        retrain=True,
        trainer=RecordingTrainer(alias="champion"),
        rollout_starter=starter,
    )
    result = watcher.tick().cycle
    assert result is not None
    assert (result.outcome, result.version) == ("champion", "11")
    assert starter.calls == []
    assert kinds(shifted_store)[-1] == "registered"
    assert shifted_store.events()[-1]["detail"] == {"alias": "champion"}


def test_rollout_strategy_none_leaves_the_challenger_waiting(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    settings.monitor.rollout_strategy = "none"
    starter = RecordingStarter()
    result = (
        Watcher(
            settings,
            shifted_store,
            retrain=True,
            trainer=RecordingTrainer(),
            rollout_starter=starter,
        )
        .tick()
        .cycle
    )
    assert result is not None
    assert result.outcome == "registered"
    assert "waits for a person" in result.message
    assert starter.calls == []


def test_a_refused_rollout_is_recorded_as_failed(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    def refusing(_settings: Settings, version: str, strategy: str) -> str | None:
        raise ConflictError("rollout r-0 is still running; `petalops rollout abort` it first")

    watcher = Watcher(
        settings, shifted_store, retrain=True, trainer=RecordingTrainer(), rollout_starter=refusing
    )
    result = watcher.tick().cycle
    assert result is not None
    assert result.outcome == "rollout_failed"
    assert result.message.startswith("rollout r-0 is still running")
    last = shifted_store.events()[-1]
    assert last["kind"] == events.FAILED
    assert last["model_version"] == "11"
    assert "could not start the shadow-canary rollout" in last["message"]


def test_an_unexpected_error_names_the_step_it_came_from(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    def broken(_settings: Settings, _path: object) -> object:
        raise RuntimeError("disk full")

    watcher = Watcher(settings, shifted_store, retrain=True, trainer=broken)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="disk full") as caught:
        watcher.tick()
    [note] = caught.value.__notes__
    assert note.startswith(cycle.CYCLE_NOTE + "'train'")
    assert kinds(shifted_store) == ["trigger", "data"]


def test_cooldown_left_counts_from_the_last_trigger(
    settings: Settings, shifted_store: MonitorStore
) -> None:
    now = 1_000_000.0
    assert cycle.cooldown_left(settings, shifted_store, now) == 0.0
    shifted_store.add_event("c-1", events.TRIGGER, "drift", model_name="iris", ts=now)
    assert cycle.cooldown_left(settings, shifted_store, now + 100) == pytest.approx(500.0)
    assert cycle.cooldown_left(settings, shifted_store, now + 900) == 0.0
    assert cycle.cooldown_left(settings, shifted_store, now) == pytest.approx(600.0)
