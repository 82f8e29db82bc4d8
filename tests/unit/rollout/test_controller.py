"""The controller against a real MLflow registry and a real monitoring database.

Time is a hand-moved clock; prediction rows are written straight into the log, exactly as
the server's logger writes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from petalops.config import Settings
from petalops.errors import ConflictError, NotFoundError
from petalops.monitoring.store import MonitorStore
from petalops.rollout.analysis import Thresholds
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import (
    Controller,
    LeaseLostError,
    parse_steps,
    request,
    rollout_history,
    rollout_status,
    start_rollout,
)
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.store import RolloutStore

pytestmark = pytest.mark.slow  # trains two versions into MLflow once per session

T = Thresholds(min_samples=50, min_labels=10, max_inconclusive=2)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def settings(trained_settings: Settings) -> Settings:
    trained_settings.rollout.lease_seconds = 5.0
    trained_settings.rollout.tick_seconds = 0.05
    return trained_settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller(settings: Settings, clock: Clock) -> Iterator[Controller]:
    ctl = Controller(settings, clock=clock, holder="test-controller")
    yield ctl
    ctl.store.close()


def log_rows(
    settings: Settings,
    clock: Clock,
    variant: str,
    version: str,
    n: int,
    *,
    status: int = 200,
    latency_ms: float = 2.0,
    prediction: int = 1,
    reference: int | None = 1,
) -> None:
    store = MonitorStore(settings.monitor_url)
    store.log_predictions(
        {
            "request_id": f"{variant}-{version}-{clock.now}-{i}",
            "ts": clock.now + 0.001 * i,
            "model_name": settings.project,
            "model_version": version,
            "variant": variant,
            "route": "/v1/predict",
            "status": status,
            "latency_ms": latency_ms,
            "features": [5.1, 3.5, 1.4, 0.2],
            "prediction": prediction if status < 400 else None,
            "reference_prediction": reference if variant != "champion" else None,
        }
        for i in range(n)
    )
    store.close()


def plan_of(settings: Settings) -> RolloutPlan:
    plan = RolloutPlan.parse(ControlPlane(settings).read().plan_raw)
    assert plan is not None
    return plan


def actions(settings: Settings) -> list[str]:
    return [e["action"] for e in rollout_history(settings)]


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
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T)
    with pytest.raises(ConflictError, match="still running"):
        start_rollout(settings, "2", "canary")


def test_canary_walks_the_steps_and_promotes(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    rid = start_rollout(
        settings, "2", "canary", steps="10,100", interval_s=10, warm_s=0, thresholds=T, clock=clock
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
    start_rollout(settings, "2", "canary", interval_s=60, warm_s=0, thresholds=T, clock=clock)
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
    start_rollout(settings, "2", "canary", interval_s=10, warm_s=0, thresholds=T, clock=clock)
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
        settings, "2", "canary", steps="10,100", interval_s=10, warm_s=0, thresholds=T, clock=clock
    )
    controller.tick()
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    controller.tick()
    controller.store.release(controller.lease, controller.holder)  # it "crashed"
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
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T, clock=clock)
    plane = ControlPlane(settings)
    plane.set_plan(plan_of(settings).evolve(phase="promoting").serialize())
    plane.set_alias("previous", "1")  # died after its first write
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "promoted"
    assert plane.read().aliases == {"champion": "2", "previous": "1"}


def test_only_one_controller_acts(settings: Settings, clock: Clock) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T, clock=clock)
    settings.rollout.lease_seconds = 0.5
    a = Controller(settings, clock=clock, holder="a")
    b = Controller(settings, clock=clock, holder="b")
    assert a.tick() is not None
    assert b.tick() is None  # standby
    assert a.tick() is not None  # renews
    time.sleep(0.6)
    assert b.tick() is not None  # a's lease expired: b takes over
    assert a.tick() is None


def test_a_controller_paused_past_its_lease_does_not_write(
    settings: Settings, clock: Clock
) -> None:
    """a reads the plan and is paused past its lease's expiry; b takes over; a resumes mid-tick
    and tries to move the canary: every registry write is fenced, so nothing changes."""
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T, clock=clock)
    a = Controller(settings, clock=clock, holder="a")
    b = Controller(settings, clock=clock, holder="b")
    assert a.store.acquire(a.lease, "a", 0.3)
    state = a.plane.read()
    plan = RolloutPlan.parse(state.plan_raw)
    assert plan is not None
    time.sleep(0.4)
    assert b.store.acquire(b.lease, "b", 30)
    before = ControlPlane(settings).read()
    with pytest.raises(LeaseLostError, match="lost its lease"):
        a.advance(plan, state)
    after = ControlPlane(settings).read()
    assert (after.plan_raw, after.traffic_raw, after.aliases) == (
        before.plan_raw,
        before.traffic_raw,
        before.aliases,
    )
    # The holder's own writes go through: b moves the canary to its first step.
    moved = b.advance(plan, state)
    assert moved.phase == "running"
    assert ControlPlane(settings).read().traffic.weight > 0


def test_lease_is_atomic_under_contention(settings: Settings) -> None:
    store = RolloutStore(settings.monitor_url)
    store.acquire("race", "warmup", 0.0)
    time.sleep(0.01)
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def contend(name: str) -> None:
        barrier.wait()
        if RolloutStore(settings.monitor_url).acquire("race", name, 30):
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert store.lease("race")["holder"] == winners[0]  # type: ignore[index]


def test_aliases_moved_by_hand_abort_the_rollout(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T, clock=clock)
    controller.tick()
    ControlPlane(settings).set_alias("champion", "2")
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "aborted"
    assert "champion=2 (plan: 1)" in plan.reason


def test_abort_without_a_controller_is_applied_directly(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=T, clock=clock)
    controller.tick()
    controller.store.release(controller.lease, controller.holder)
    out = request(settings, "abort", "operator said so")
    assert out["plan"]["phase"] == "aborted"
    state = ControlPlane(settings).read()
    assert state.traffic.strategy == "none"
    assert "challenger" not in state.aliases
    with pytest.raises(ConflictError, match="no rollout is running"):
        request(settings, "abort")


def test_promote_is_handed_to_the_running_controller(settings: Settings) -> None:
    start_rollout(settings, "2", "canary", interval_s=3600, warm_s=0, thresholds=T)
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
        thresholds=T,
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
    start_rollout(settings, "2", "bluegreen", warm_s=0, thresholds=T, clock=clock)
    assert controller.tick().phase == "flipped"  # type: ignore[union-attr]
    log_rows(settings, clock, "challenger", "2", 60, status=503)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "1"}
    assert state.traffic.strategy == "none"


def test_bluegreen_failed_smoke_test_never_flips(settings: Settings, clock: Clock) -> None:
    from petalops.rollout.smoke import SmokeResult

    def failing(*_args: object) -> SmokeResult:
        return SmokeResult(False, ("disagreement 0.6 > 0.1 on 200 profile rows",), {"rows": 200})

    ctl = Controller(settings, clock=clock, smoke=failing)
    start_rollout(settings, "2", "bluegreen", warm_s=0, thresholds=T, clock=clock)
    plan = ctl.tick()
    assert plan is not None
    assert plan.phase == "rolled_back"
    assert "smoke test failed" in plan.reason
    assert ControlPlane(settings).read().traffic.weight == 0


def test_shadow_then_canary(settings: Settings, controller: Controller, clock: Clock) -> None:
    start_rollout(
        settings, "2", "shadow-canary", duration_s=30, interval_s=10, thresholds=T, clock=clock
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
    start_rollout(settings, "2", "shadow", duration_s=30, thresholds=T, clock=clock)
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "shadow", "2", 60)
    clock.advance(31)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "passed"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "1", "challenger": "2"}
    assert state.traffic.strategy == "none"


def test_status_reports_window_and_next_step(
    settings: Settings, controller: Controller, clock: Clock
) -> None:
    start_rollout(settings, "2", "canary", interval_s=60, warm_s=0, thresholds=T, clock=clock)
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


def test_embedded_controllers_in_two_workers_share_one_lease(settings: Settings) -> None:
    from petalops.rollout.controller import start_in_background

    start_rollout(settings, "2", "canary", interval_s=3600, warm_s=0, thresholds=T)
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
