"""The rollout lease: one controller acts, a paused one cannot write, the CAS is atomic."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.utils.rollout import TEST_LIMITS, Clock

from petalops.config import Settings
from petalops.rollout.api import start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import Controller
from petalops.rollout.lease import Lease, LeaseLostError, holder_id, lease_name
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore

pytestmark = pytest.mark.slow  # a registry of two trained versions per test


def test_only_one_controller_acts(settings: Settings, clock: Clock) -> None:
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
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
    start_rollout(settings, "2", "canary", warm_s=0, thresholds=TEST_LIMITS, clock=clock)
    a = Controller(settings, clock=clock, holder="a")
    b = Controller(settings, clock=clock, holder="b")
    assert a.store.acquire(a.lease.name, "a", 0.3)
    state = a.plane.read()
    plan = RolloutPlan.parse(state.plan_raw)
    assert plan is not None
    time.sleep(0.4)
    assert b.store.acquire(b.lease.name, "b", 30)
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


def test_holders_are_unique_and_the_lease_is_per_model(settings: Settings) -> None:
    assert holder_id("cli:").startswith("cli:")
    assert holder_id() != holder_id()
    assert lease_name(settings) == f"rollout:{settings.project}"


def test_a_lease_is_held_by_one_until_released(tmp_path: Path, settings: Settings) -> None:
    store = RolloutStore(f"sqlite:///{tmp_path / 'lease.db'}")
    a, b = Lease(store, settings, "a"), Lease(store, settings, "b")
    assert a.renew()
    assert a.renew()  # renewing one's own lease
    assert not b.renew()
    a.release()
    assert b.renew()
    assert store.lease(lease_name(settings))["holder"] == "b"  # type: ignore[index]
    store.close()
