"""Blue-green: smoke test after the warm-up, then all traffic at once, judged alone."""

from __future__ import annotations

from tests.utils.rollout import RecordingMoves

from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.smoke import SmokeResult
from petalops.rollout.strategies.bluegreen import BlueGreen


def plan(**changes: object) -> RolloutPlan:
    base = RolloutPlan("r-1", "bluegreen", "2", "1", interval_s=10.0, keep_warm_s=20.0)
    return base.evolve(**changes)


def test_one_step_as_long_as_the_keep_warm_window_judged_without_the_champion() -> None:
    b = BlueGreen()
    assert b.n_steps(plan()) == 1
    assert b.step_length(plan()) == 20.0
    assert b.step_length(plan(keep_warm_s=0.0)) == 10.0  # never shorter than an interval
    assert not b.reads_champion
    assert b.traffic(plan(phase="warming")) == TrafficPolicy("bluegreen", 0.0, 0, "r-1")
    assert b.traffic(plan(phase="flipped")) == TrafficPolicy("bluegreen", 100.0, 0, "r-1")


def test_a_passed_smoke_test_flips_all_traffic() -> None:
    moves = RecordingMoves(smoke=SmokeResult(True, ("smoke test passed",), {"rows": 200}))
    flipped = BlueGreen().after_warm(moves, plan(phase="warming"), now=30.0)
    assert (flipped.phase, flipped.weight, flipped.step_started) == ("flipped", 100.0, 30.0)
    assert [c[0] for c in moves.calls] == ["smoke_test", "step_to"]
    _, _, reason, extra = moves.calls[1]
    assert (extra["action"], reason) == ("flip", "smoke test passed; all traffic to the challenger")
    assert extra["detail"] == {"smoke": {"passed": True, "rows": 200}}


def test_a_failed_smoke_test_rolls_back_before_any_traffic() -> None:
    failed = SmokeResult(False, ("features differ", "classes differ"), {"rows": 0})
    moves = RecordingMoves(smoke=failed)
    out = BlueGreen().after_warm(moves, plan(phase="warming"), now=30.0)
    assert out.phase == "rolled_back"
    assert [c[0] for c in moves.calls] == ["smoke_test", "roll_back"]
    _, _, reason, extra = moves.calls[1]
    assert reason == "smoke test failed: features differ; classes differ"
    assert extra["detail"] == {"smoke": {"passed": False, "rows": 0}}
