"""The loop's side of a rollout: the outcome of one it started is recorded once."""

from __future__ import annotations

from petalops.config import Settings
from petalops.loop import events
from petalops.loop.rollouts import track_rollouts
from petalops.monitoring.store import MonitorStore


def test_a_rollout_no_longer_in_the_registry_is_recorded_as_superseded(
    trained_settings: Settings,
) -> None:
    store = MonitorStore.from_settings(trained_settings)
    store.add_event(
        "c-1",
        events.ROLLOUT_STARTED,
        "canary rollout r-gone of version 2",
        model_name="iris",
        model_version="2",
        run_id="run2",
        rollout_id="r-gone",
    )
    track_rollouts(trained_settings, store)
    track_rollouts(trained_settings, store)  # recorded once, not once per check
    outcomes = store.events(kind=events.ROLLOUT_OUTCOME)
    assert len(outcomes) == 1
    [outcome] = outcomes
    assert (outcome["cycle"], outcome["rollout_id"], outcome["model_version"]) == (
        "c-1",
        "r-gone",
        "2",
    )
    assert outcome["detail"]["outcome"] == "superseded"
    store.close()


def test_nothing_to_track_reads_nothing(trained_settings: Settings) -> None:
    store = MonitorStore.from_settings(trained_settings)
    track_rollouts(trained_settings, store)
    assert store.events() == []
    store.close()
