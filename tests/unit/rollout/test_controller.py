"""The controller against a real MLflow registry and a real monitoring database.

Time is a hand-moved clock; prediction rows are written straight into the log, exactly as
the server's logger writes them.
"""

from __future__ import annotations

import time

import pytest
from tests.utils.rollout import TEST_LIMITS, Clock, actions, log_rows, plan_of

from petalops.config import Settings
from petalops.errors import ConflictError
from petalops.rollout.api import rollout_history, start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import Controller, start_in_background
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.smoke import SmokeResult
from petalops.rollout.store import RolloutStore

pytestmark = pytest.mark.slow  # trains two versions into MLflow once per session


def test_canary_walks_the_steps_and_promotes(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    rid = start_rollout(
        settings,
        "2",
        "canary",
        steps="10,100",
        interval_s=10,
        warm_s=0,
        thresholds=TEST_LIMITS,
        clock=clock,
    )
    state = ControlPlane(settings).read()
    assert state.challenger == "2"
    assert state.traffic.strategy == "canary"
    assert state.traffic.weight == 0  # warming: loaded everywhere before it answers

    plan = controller.tick()
    assert plan is not None
    assert (plan.phase, plan.weight) == ("running", 10.0)
    assert ControlPlane(settings).read().traffic == TrafficPolicy(
        "canary", 10.0, 0, rid, ControlPlane(settings).read().traffic.updated
    )

    log_rows(settings, clock, "champion", "1", 80)
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(5)
    plan = controller.tick()
    assert plan is not None
    assert plan.step == 0

    clock.advance(6)
    plan = controller.tick()
    assert plan is not None
    assert (plan.step, plan.weight) == (1, 100.0)
    assert ControlPlane(settings).read().traffic.weight == 100

    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "promoted"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "2", "previous": "1"}
    assert state.traffic.strategy == "none"
    assert actions(settings) == ["start", "advance", "advance", "promote"]
    promote = rollout_history(settings)[-1]
    assert promote["detail"]["verdict"]["challenger"]["requests"] == 60


@pytest.mark.parametrize(
    ("rows", "failing"),
    [
        ({"status": 500}, "error_rate"),
        ({"latency_ms": 400.0}, "p99_ms"),
        ({"prediction": 2, "reference": 1}, "disagreement"),
    ],
)
def test_breach_rolls_back_at_once(
    settings: Settings, controller: Controller, clock: Clock, rows: dict, failing: str
) -> None:
    start_rollout(
        settings, "2", "canary", interval_s=60, warm_s=0, thresholds=TEST_LIMITS, clock=clock
    )
    controller.tick()
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "challenger", "2", 60, **rows)
    clock.advance(1)  # well inside the 60 s interval
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    assert failing in plan.reason
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "1"}
    assert state.traffic.strategy == "none"
    event = rollout_history(settings)[-1]
    assert (event["action"], event["verdict"]) == ("rollback", "fail")
    assert event["detail"]["verdict"]["challenger"]["requests"] == 60
    assert "registry_write_ms" in event["detail"]


def test_inconclusive_holds_then_rolls_back(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings, "2", "canary", interval_s=10, warm_s=0, thresholds=TEST_LIMITS, clock=clock
    )
    controller.tick()
    log_rows(settings, clock, "challenger", "2", 5)
    clock.advance(11)
    plan = controller.tick()
    assert plan is not None
    assert (plan.phase, plan.inconclusive) == ("running", 1)
    clock.advance(5)
    assert controller.tick().inconclusive == 1  # type: ignore[union-attr]
    clock.advance(6)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    assert "inconclusive 2 times" in plan.reason
    assert actions(settings) == ["start", "advance", "hold", "rollback"]


def test_restarted_controller_resumes_from_the_registry(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings,
        "2",
        "canary",
        steps="10,100",
        interval_s=10,
        warm_s=0,
        thresholds=TEST_LIMITS,
        clock=clock,
    )
    controller.tick()
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    controller.tick()
    controller.lease.release()  # it "crashed"
    # A crash between the plan write and the traffic write leaves a stale traffic tag.
    ControlPlane(settings).set_traffic(TrafficPolicy("canary", 10, 0, "junk"))

    second = Controller(settings, clock=clock, holder="second")
    plan = second.tick()
    assert plan is not None
    assert (plan.step, plan.weight) == (1, 100.0)
    assert ControlPlane(settings).read().traffic.weight == 100  # repaired from the plan
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    assert second.tick().phase == "promoted"  # type: ignore[union-attr]


def test_resume_half_done_promotion(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    plane = ControlPlane(settings)
    plane.set_plan(plan_of(settings).evolve(phase="promoting").serialize())
    plane.set_alias("previous", "1")  # died after its first write
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "promoted"
    assert plane.read().aliases == {"champion": "2", "previous": "1"}


def test_aliases_moved_by_hand_abort_the_rollout(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    controller.tick()
    ControlPlane(settings).set_alias("champion", "2")
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "aborted"
    assert "champion=2 (plan: 1)" in plan.reason


def test_bluegreen_smoke_flip_then_promote(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings,
        "2",
        "bluegreen",
        interval_s=10,
        keep_warm_s=20,
        warm_s=3,
        thresholds=TEST_LIMITS,
        clock=clock,
    )
    assert controller.tick().phase == "warming"  # type: ignore[union-attr]
    clock.advance(3)
    plan = controller.tick()  # real smoke test: both bundles loaded and compared
    assert plan is not None
    assert plan.phase == "flipped"
    assert ControlPlane(settings).read().traffic == TrafficPolicy(
        "bluegreen", 100.0, 0, plan.rollout_id, ControlPlane(settings).read().traffic.updated
    )
    flip = rollout_history(settings)[-1]
    assert flip["action"] == "flip"
    assert flip["detail"]["smoke"]["rows"] > 0
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    assert controller.tick().phase == "flipped"  # type: ignore[union-attr]  # keep-warm window
    clock.advance(10)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "promoted"
    assert ControlPlane(settings).read().aliases == {"champion": "2", "previous": "1"}


def test_bluegreen_breach_after_flip_flips_back(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "bluegreen", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    assert controller.tick().phase == "flipped"  # type: ignore[union-attr]
    log_rows(settings, clock, "challenger", "2", 60, status=503)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "1"}
    assert state.traffic.strategy == "none"


def test_bluegreen_failed_smoke_test_never_flips(settings: Settings, clock: Clock) -> None:
    def failing(*_args: object) -> SmokeResult:
        return SmokeResult(False, ("disagreement 0.6 > 0.1 on 200 profile rows",), {"rows": 200})

    ctl = Controller(settings, clock=clock, smoke=failing)
    start_rollout(settings, "2", "bluegreen", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    plan = ctl.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    assert "smoke test failed" in plan.reason
    assert ControlPlane(settings).read().traffic.weight == 0


def test_shadow_then_canary(settings: Settings, controller: Controller, clock: Clock) -> None:
    start_rollout(
        settings,
        "2",
        "shadow-canary",
        duration_s=30,
        interval_s=10,
        thresholds=TEST_LIMITS,
        clock=clock,
    )
    assert ControlPlane(settings).read().traffic.strategy == "shadow"
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "shadow", "2", 60)
    clock.advance(15)
    assert controller.tick().strategy == "shadow"  # type: ignore[union-attr]
    clock.advance(16)
    plan = controller.tick()
    assert plan is not None
    assert (plan.strategy, plan.phase, plan.weight) == ("canary", "running", 5)
    assert ControlPlane(settings).read().traffic.weight == 5


def test_shadow_alone_passes_without_touching_traffic(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "shadow", duration_s=30, thresholds=TEST_LIMITS, clock=clock)
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "shadow", "2", 60)
    clock.advance(31)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "passed"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "1", "challenger": "2"}
    assert state.traffic.strategy == "none"


def test_embedded_controllers_in_two_workers_share_one_lease(settings: Settings) -> None:
    start_rollout(settings, "2", "canary", interval_s=3600, warm_s=0, thresholds=TEST_LIMITS)
    workers = [start_in_background(settings), start_in_background(settings)]
    try:
        deadline = time.time() + 15
        while plan_of(settings).phase != "running" and time.time() < deadline:
            time.sleep(0.05)
        assert plan_of(settings).phase == "running"
        holder = RolloutStore(settings.monitor_url).lease(f"rollout:{settings.project}")
        assert holder is not None
        assert holder["expires"] > time.time()
    finally:
        for worker in workers:
            worker.stop()
    assert not any(w.alive for w in workers)
    # One decision, not two: the second controller stood by.
    assert actions(settings) == ["start", "advance"]
    lease = RolloutStore(settings.monitor_url).lease(f"rollout:{settings.project}")
    assert lease is not None
    assert lease["expires"] <= time.time()  # released on stop


def test_a_paused_canary_holds_its_step_judges_nothing_and_resumes_there(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(
        settings,
        "2",
        "canary",
        steps="10,50,100",
        interval_s=10,
        warm_s=0,
        thresholds=TEST_LIMITS,
        clock=clock,
    )
    controller.tick()
    log_rows(settings, clock, "champion", "1", 80)
    log_rows(settings, clock, "challenger", "2", 60)
    plan = controller.apply_command(plan_of(settings), "pause", "incident elsewhere")
    assert plan.paused
    assert (plan.step, plan.weight) == (0, 10.0)

    # A breach and a due step while paused: nothing is judged, the weights stay.
    log_rows(settings, clock, "challenger", "2", 60, status=500)
    clock.advance(30)
    plan = controller.tick()  # type: ignore[assignment]
    assert plan is not None
    assert (plan.phase, plan.step, plan.paused) == ("running", 0, True)
    assert ControlPlane(settings).read().traffic.weight == 10
    with pytest.raises(ConflictError, match="already paused"):
        controller.apply_command(plan, "pause", "")

    plan = controller.apply_command(plan, "resume", "")
    assert not plan.paused
    assert (plan.step, plan.weight, plan.step_started) == (0, 10.0, clock.now)
    # The window starts again at the resume: the failures logged while paused do not count.
    log_rows(settings, clock, "champion", "1", 80)
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    plan = controller.tick()  # type: ignore[assignment]
    assert plan is not None
    assert (plan.phase, plan.step, plan.weight) == ("running", 1, 50.0)
    assert actions(settings) == ["start", "advance", "pause", "resume", "advance"]
    resume = rollout_history(settings)[-2]
    assert resume["detail"]["paused_s"] == pytest.approx(30.0)
    with pytest.raises(ConflictError, match="not paused"):
        controller.apply_command(plan, "resume", "")


def test_a_paused_rollout_can_still_be_promoted_or_aborted(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    controller.tick()
    paused = controller.apply_command(plan_of(settings), "pause", "")
    done = controller.apply_command(paused, "abort", "")
    assert done.phase == "aborted"
    assert ControlPlane(settings).read().traffic.strategy == "none"
