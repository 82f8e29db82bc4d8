from __future__ import annotations

import pytest

from petalops.errors import ConfigError
from petalops.rollout.analysis import Thresholds
from petalops.rollout.plan import RolloutPlan, same_traffic, stamp, traffic_for
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.traffic import Traffic, TrafficReport


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


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000", "http://[::2]"])
def test_traffic_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="127.0.0.1"):
        Traffic(url)


def test_traffic_rate_is_bounded() -> None:
    with pytest.raises(ConfigError):
        Traffic("http://127.0.0.1:1", rate=10_000)


def test_unreachable_server_counts_failures_and_stops_by_itself() -> None:
    report = Traffic("http://127.0.0.1:9", rate=20, threads=1, timeout=0.5).run(3.0)
    assert report.sent >= 1
    assert report.failed == report.sent
    assert report.ok == 0


def test_report_timing_helpers() -> None:
    report = TrafficReport()
    report.timeline = [
        (1.0, "1", "champion", "a"),
        (2.0, "2", "challenger", "b"),
        (3.0, "1", "champion", "a"),
    ]
    assert report.first_answer_after(1.5, "2") == 2.0
    assert report.last_answer_from("1") == 3.0
    assert report.last_answer_from("9") is None
