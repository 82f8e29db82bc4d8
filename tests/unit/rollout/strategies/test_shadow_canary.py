"""Shadow, then canary: stored as a shadow plan with ``then: canary``; passing hands over."""

from __future__ import annotations

from tests.utils.rollout import RecordingMoves, passing_verdict

from petalops.rollout.analysis import StepDecision
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies.shadow_canary import ShadowCanary


def plan(**changes: object) -> RolloutPlan:
    base = RolloutPlan(
        "r-1", "shadow", "2", "1", steps=(5.0, 50.0, 100.0), duration_s=30.0, then="canary"
    )
    return base.evolve(**changes)


def test_it_is_stored_as_a_shadow_that_continues_as_a_canary() -> None:
    s = ShadowCanary()
    assert (s.name, s.stored_as, s.then, s.initial_phase) == (
        "shadow-canary",
        "shadow",
        "canary",
        "running",
    )
    assert s.traffic(plan(phase="running")) == TrafficPolicy("shadow", 0.0, 0, "r-1")
    assert s.step_length(plan()) == 30.0


def test_passing_hands_over_to_the_canary_at_its_first_step() -> None:
    moves = RecordingMoves()
    shadowing = plan(phase="running", inconclusive=1, step_started=1.0)
    decision = StepDecision("promote", "last step passed", 0)
    canary = ShadowCanary().on_step_passed(moves, shadowing, decision, passing_verdict(), 40.0)
    assert (canary.strategy, canary.then, canary.phase, canary.step) == ("canary", "", "running", 0)
    assert (canary.step_started, canary.judged_at, canary.inconclusive) == (40.0, 40.0, 0)
    assert canary.weight == 5.0
    [(kind, written, reason, extra)] = moves.calls
    assert (kind, written, extra["action"]) == ("step_to", canary, "advance")
    assert reason == "shadow passed; canary at 5%"
