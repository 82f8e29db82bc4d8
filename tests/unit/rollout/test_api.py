"""The CLI-facing rollout functions against a real MLflow registry and monitoring database."""

from __future__ import annotations

import threading
import time

import pytest
from tests.utils.rollout import TEST_LIMITS, Clock, log_rows, plan_of

from petalops.config import Settings
from petalops.errors import ConfigError, ConflictError, NotFoundError
from petalops.rollout.api import (
    parse_steps,
    request,
    rollout_history,
    rollout_status,
    start_rollout,
    thresholds_from,
)
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import Controller
from petalops.security import audit

pytestmark = pytest.mark.slow  # a registry of two trained versions per test


def test_parse_steps() -> None:
    assert parse_steps("5,25,50,100") == (5.0, 25.0, 50.0, 100.0)
    for bad in ("", "50,25,100", "5,50", "0,100", "a,100"):
        with pytest.raises(Exception, match="example"):
            parse_steps(bad)


def test_start_validates(settings: Settings) -> None:
    with pytest.raises(NotFoundError):
        start_rollout(settings, "99")
    with pytest.raises(ConflictError, match="already the champion"):
        start_rollout(settings, "1")
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS)
    with pytest.raises(ConflictError, match="still running"):
        start_rollout(settings, "2", "canary")


def test_abort_without_a_controller_is_applied_directly(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    controller.tick()
    controller.lease.release()
    out = request(settings, "abort", "operator said so")
    assert out["plan"]["phase"] == "aborted"
    state = ControlPlane(settings).read()
    assert state.traffic.strategy == "none"
    assert "challenger" not in state.aliases
    with pytest.raises(ConflictError, match="no rollout is running"):
        request(settings, "abort")
    # The audit trail: the challenger alias the start moved, the abort with before/after
    # (the refused second abort changed nothing and is not there).
    put, removed = audit.entries(settings, action="alias")[-2:]
    assert (put["action"], put["target"], put["after"]) == (
        "alias.set",
        "iris@challenger",
        {"version": "2"},
    )
    assert (removed["action"], removed["before"]) == ("alias.delete", {"version": "2"})
    [aborted] = audit.entries(settings, action="rollout")
    assert aborted["action"] == "rollout.abort" and aborted["detail"] == "operator said so"
    assert (aborted["before"]["phase"], aborted["after"]["phase"]) == ("running", "aborted")


def test_promote_is_handed_to_the_running_controller(settings: Settings) -> None:
    start_rollout(settings, "2", "canary", interval_s=3600, warm_s=0, thresholds=TEST_LIMITS)
    ctl = Controller(settings, holder="loop")
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,))
    thread.start()
    try:
        deadline = time.time() + 10
        while plan_of(settings).phase != "running" and time.time() < deadline:
            time.sleep(0.05)
        out = request(settings, "promote", timeout=10)
    finally:
        stop.set()
        thread.join(10)
    assert out["result"] == "promote applied by loop"
    assert out["plan"]["phase"] == "promoted"
    assert ControlPlane(settings).read().champion == "2"
    assert rollout_history(settings)[-1]["actor"] == "loop"


def test_status_reports_window_and_next_step(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings, "2", "canary", interval_s=60, warm_s=0, thresholds=TEST_LIMITS, clock=clock
    )
    controller.tick()
    log_rows(settings, clock, "champion", "1", 30)
    log_rows(settings, clock, "challenger", "2", 20)
    status = rollout_status(settings)
    assert status["plan"]["phase"] == "running"
    assert status["traffic"]["weight"] == 5
    assert status["window"]["challenger"]["requests"] == 20
    assert status["window"]["champion"]["requests"] == 30
    assert status["window"]["decision"] == "inconclusive"
    assert 0 < status["next_step_in_s"] <= 60
    assert status["controller"]["holder"] == "test-controller"


def test_thresholds_come_from_settings_with_given_overrides(settings: Settings) -> None:
    settings.rollout.max_p99_ms = 80.0
    limits = thresholds_from(settings, min_samples=7, max_error_rate=None)
    assert (limits.max_p99_ms, limits.min_samples) == (80.0, 7)
    assert limits.max_error_rate == settings.rollout.max_error_rate


def test_an_unknown_strategy_is_refused_before_anything_is_written(settings: Settings) -> None:
    before = ControlPlane(settings).read()
    with pytest.raises(ConfigError, match="'ramp' is not one of canary, bluegreen, shadow"):
        start_rollout(settings, "2", "ramp")
    assert ControlPlane(settings).read() == before
    assert rollout_history(settings) == []


def test_a_shadow_canary_is_stored_as_a_shadow_that_continues_as_a_canary(
    settings: Settings,
) -> None:
    rid = start_rollout(settings, "2", "shadow-canary", thresholds=TEST_LIMITS)
    plan = plan_of(settings)
    assert (plan.rollout_id, plan.strategy, plan.then, plan.phase) == (
        rid,
        "shadow",
        "canary",
        "running",
    )
    state = ControlPlane(settings).read()
    assert (state.traffic.strategy, state.traffic.rollout_id, state.challenger) == (
        "shadow",
        rid,
        "2",
    )
    [event] = rollout_history(settings)
    assert (event["action"], event["strategy"], event["reason"]) == (
        "start",
        "shadow",
        "shadow-canary of version 2 against champion 1",
    )
    assert event["actor"].startswith("cli:")
    assert event["detail"]["plan"] == plan.to_dict()


def test_the_default_strategy_and_warm_up_come_from_settings(settings: Settings) -> None:
    settings.rollout.strategy = "bluegreen"
    settings.rollout.warm_seconds = None
    settings.reconcile_seconds = 2.0
    start_rollout(settings, "2")
    plan = plan_of(settings)
    assert (plan.strategy, plan.phase, plan.warm_s) == ("bluegreen", "warming", 5.0)


def test_pause_and_resume_go_through_request_like_promote(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings, "2", "canary", interval_s=60, warm_s=0, thresholds=TEST_LIMITS, clock=clock
    )
    controller.tick()
    controller.lease.release()
    out = request(settings, "pause", "looking at it")
    assert out["plan"]["paused_at"] > 0
    status = rollout_status(settings)
    assert status["plan"]["paused_at"] == out["plan"]["paused_at"]
    assert status["next_step_in_s"] is None  # nothing is decided while paused
    assert status["traffic"]["weight"] == 5
    out = request(settings, "resume")
    assert out["plan"]["paused_at"] == 0
    assert [e["action"] for e in rollout_history(settings)][-2:] == ["pause", "resume"]
    with pytest.raises(ConfigError, match="pause or resume|pause, resume"):
        request(settings, "hold")


def test_status_takes_the_registry_state_and_store_a_poller_holds(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    from petalops.rollout.store import RolloutStore

    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    controller.tick()
    state = ControlPlane(settings).read()
    store = RolloutStore(settings.monitor_url)
    try:
        status = rollout_status(settings, state=state, store=store)
    finally:
        store.close()
    assert status["plan"]["version"] == "2"
    assert status["aliases"] == state.aliases
