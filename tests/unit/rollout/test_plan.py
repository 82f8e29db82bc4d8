"""The rollout plan: its tag round trip, and the traffic each phase asks for."""

from __future__ import annotations

import pytest

from petalops.errors import ConfigError
from petalops.rollout.analysis import Thresholds
from petalops.rollout.plan import RolloutPlan, same_traffic, stamp, traffic_for
from petalops.rollout.routing import TrafficPolicy


def plan(**changes: object) -> RolloutPlan:
    base = RolloutPlan("r-1", "canary", "2", "1", thresholds=Thresholds(min_samples=7))
    return base.evolve(**changes)


def test_plan_round_trips_through_the_tag() -> None:
    p = plan(phase="running", step=2, then="canary")
    again = RolloutPlan.parse(p.serialize())
    assert again == p
    assert again is not None
    assert again.thresholds.min_samples == 7


@pytest.mark.parametrize("text", [None, "", "{", "[]", '{"rollout_id": "r"}'])
def test_unreadable_plan_is_none(text: str | None) -> None:
    assert RolloutPlan.parse(text) is None


def test_plan_ignores_unknown_fields() -> None:
    data = plan().serialize().replace("{", '{"future_field": 1,', 1)
    assert RolloutPlan.parse(data) == plan()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"phase": "warming"}, TrafficPolicy("canary", 0.0, 0, "r-1")),
        ({"phase": "running", "step": 1}, TrafficPolicy("canary", 25.0, 1, "r-1")),
        ({"phase": "promoting"}, TrafficPolicy("canary", 100.0, 0, "r-1")),
        ({"phase": "rolling_back"}, TrafficPolicy.none()),
        ({"phase": "rolled_back"}, TrafficPolicy.none()),
        ({"strategy": "bluegreen", "phase": "warming"}, TrafficPolicy("bluegreen", 0.0, 0, "r-1")),
        ({"strategy": "bluegreen", "phase": "flipped"}, TrafficPolicy("bluegreen", 100, 0, "r-1")),
        ({"strategy": "shadow", "phase": "running"}, TrafficPolicy("shadow", 0.0, 0, "r-1")),
    ],
)
def test_traffic_for_each_phase(changes: dict[str, object], expected: TrafficPolicy) -> None:
    assert traffic_for(plan(**changes)) == expected


def test_same_traffic_ignores_the_stamp() -> None:
    policy = TrafficPolicy("canary", 5.0, 0, "r-1")
    assert same_traffic(stamp(policy), policy)
    assert not same_traffic(policy, TrafficPolicy("canary", 25.0, 1, "r-1"))


def test_from_dict_reads_what_to_dict_wrote() -> None:
    p = plan(phase="flipped", step=1, inconclusive=2, reason="x")
    assert RolloutPlan.from_dict(p.to_dict()) == p


def test_the_numbers_of_a_plan_come_from_its_strategy() -> None:
    canary = plan(phase="running", step=2, steps=(5.0, 25.0, 50.0, 100.0), interval_s=30.0)
    assert (canary.weight, canary.n_steps, canary.step_length) == (50.0, 4, 30.0)
    assert canary.challenger_variant == "challenger"
    shadow = plan(strategy="shadow", duration_s=120.0)
    assert (shadow.weight, shadow.n_steps, shadow.step_length) == (0.0, 1, 120.0)
    assert shadow.challenger_variant == "shadow"


def test_a_plan_of_a_strategy_this_install_lacks_is_readable_but_not_runnable() -> None:
    unknown = RolloutPlan.parse(plan(strategy="ramp").serialize())
    assert unknown is not None
    assert unknown.strategy == "ramp"
    with pytest.raises(ConfigError, match="'ramp', which this install does not have"):
        _ = unknown.weight
    assert traffic_for(unknown.evolve(phase="aborted")) == TrafficPolicy.none()
