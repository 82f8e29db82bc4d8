"""Shadow: copies only, no warm-up, one step of ``duration_s``; passing ends it out of traffic."""

from __future__ import annotations

from tests.utils.rollout import RecordingMoves, passing_verdict

from petalops.rollout.analysis import StepDecision
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies.shadow import Shadow


def plan(**changes: object) -> RolloutPlan:
    base = RolloutPlan("r-1", "shadow", "2", "1", interval_s=10.0, duration_s=300.0)
    return base.evolve(**changes)


def test_copies_answer_nobody() -> None:
    s = Shadow()
    assert s.initial_phase == "running"
    assert s.challenger_variant == "shadow"
    assert (s.weight(plan(phase="running")), s.n_steps(plan()), s.step_length(plan())) == (
        0.0,
        1,
        300.0,
    )
    assert s.traffic(plan(phase="running")) == TrafficPolicy("shadow", 0.0, 0, "r-1")
    # Promoted by hand: for that moment the challenger answers everything, as in any strategy.
    assert s.traffic(plan(phase="promoting")) == TrafficPolicy("bluegreen", 100.0, 0, "r-1")


def test_passing_ends_the_rollout_with_the_challenger_out_of_traffic() -> None:
    moves = RecordingMoves()
    decision = StepDecision("promote", "last step passed", 0)
    out = Shadow().on_step_passed(moves, plan(phase="running"), decision, passing_verdict(), 99.0)
    assert (out.phase, out.ended, out.reason) == ("passed", 99.0, "shadow passed")
    [(kind, written, reason, extra)] = moves.calls
    assert (kind, written, extra["action"]) == ("stand_down", out, "passed")
    assert reason == "shadow passed; the challenger stays registered, out of traffic"
