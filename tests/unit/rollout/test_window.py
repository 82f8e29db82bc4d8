"""The step's window: whose rows are read, and whether the champion must have answered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.utils.rollout import Clock, log_rows

from petalops.config import Settings
from petalops.rollout.analysis import Thresholds
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore
from petalops.rollout.window import judge_window

LIMITS = Thresholds(min_samples=20, min_labels=5)


@pytest.fixture
def local(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]


@pytest.fixture
def store(local: Settings) -> Iterator[RolloutStore]:
    store = RolloutStore(local.monitor_url)
    yield store
    store.close()


def plan(clock: Clock, **changes: object) -> RolloutPlan:
    base = RolloutPlan("r-1", "canary", "2", "1", thresholds=LIMITS, step_started=clock.now)
    return base.evolve(**changes)


def test_a_canary_step_needs_the_champion_too(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    log_rows(local, clock, "challenger", "2", 30)
    verdict = judge_window(store, local.project, plan(clock, phase="running"))
    assert verdict.decision == "inconclusive"
    assert verdict.reasons == ("champion has 0/20 samples",)
    log_rows(local, clock, "champion", "1", 30)
    log_rows(local, clock, "champion", "3", 30)  # another version's rows are not the baseline's
    verdict = judge_window(store, local.project, plan(clock, phase="running"))
    assert verdict.decision == "pass"
    assert verdict.champion is not None
    assert (verdict.challenger.requests, verdict.champion.requests) == (30, 30)


def test_at_100_percent_the_challenger_is_judged_alone(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    log_rows(local, clock, "challenger", "2", 30)
    at_full = plan(clock, phase="running", step=3)
    assert at_full.weight == 100.0
    assert judge_window(store, local.project, at_full).decision == "pass"


def test_blue_green_does_not_read_the_champion(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    log_rows(local, clock, "champion", "1", 30)
    log_rows(local, clock, "challenger", "2", 30, status=500)
    verdict = judge_window(store, local.project, plan(clock, strategy="bluegreen", phase="warming"))
    assert verdict.champion is None
    assert verdict.decision == "fail"
    assert "error_rate" in verdict.reasons[0]


def test_a_shadow_is_judged_on_its_shadow_rows(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    log_rows(local, clock, "champion", "1", 30)
    log_rows(local, clock, "challenger", "2", 30, status=500)  # not the shadow's rows
    log_rows(local, clock, "shadow", "2", 25)
    verdict = judge_window(store, local.project, plan(clock, strategy="shadow", phase="running"))
    assert verdict.decision == "pass"
    assert verdict.challenger.requests == 25


def test_the_window_starts_with_the_step_and_ends_at_until(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    log_rows(local, clock, "challenger", "2", 10)  # before the step
    clock.advance(10)
    started = clock.now
    log_rows(local, clock, "challenger", "2", 7)
    clock.advance(10)
    log_rows(local, clock, "challenger", "2", 5)  # after ``until``
    step = plan(clock, phase="running", step_started=started)
    assert judge_window(store, local.project, step, until=started + 5).challenger.requests == 7
    assert judge_window(store, local.project, step).challenger.requests == 12


def test_the_estimated_accuracy_uses_each_versions_calibration(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    limits = Thresholds(min_samples=20, min_labels=5, max_accuracy_drop=0.05)
    log_rows(local, clock, "challenger", "2", 30, probabilities=[0.05, 0.9, 0.05])
    log_rows(local, clock, "champion", "1", 30, probabilities=[0.05, 0.9, 0.05])
    clock.now += 1
    same = judge_window(store, local.project, plan(clock, thresholds=limits, step_started=0.0))
    assert same.decision == "pass"
    # Version 2's calibration says its 0.9 means much less: without a label, it fails.
    overconfident = {"method": "temperature", "maps": [{"beta": 0.2}], "eps": 1e-6}
    verdict = judge_window(
        store,
        local.project,
        plan(clock, thresholds=limits, step_started=0.0),
        calibration_of=lambda version: overconfident if version == "2" else None,
    )
    assert verdict.decision == "fail"
    assert [c.name for c in verdict.failed_checks] == ["estimated_accuracy_drop"]


def test_the_callers_mistakes_do_not_fill_the_window(
    local: Settings, store: RolloutStore, clock: Clock
) -> None:
    # 4xx rows are logged for the data-quality counts; a client sending bad input must not
    # fill the challenger's sample floor or move its p99, while 5xx still count as errors.
    log_rows(local, clock, "champion", "1", 30)
    log_rows(local, clock, "challenger", "2", 10)
    log_rows(local, clock, "challenger", "2", 40, status=400, latency_ms=900.0)
    verdict = judge_window(store, local.project, plan(clock, phase="running"))
    assert verdict.decision == "inconclusive"
    assert verdict.challenger.requests == 10 and verdict.challenger.p99_ms == 2.0
    log_rows(local, clock, "challenger", "2", 15, status=503)
    verdict = judge_window(store, local.project, plan(clock, phase="running"))
    assert (verdict.challenger.requests, verdict.challenger.errors) == (25, 15)
