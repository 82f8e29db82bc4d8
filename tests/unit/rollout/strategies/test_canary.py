"""Canary: the plan's steps are the challenger's weights, one judged step each."""

from __future__ import annotations

import pytest
from tests.utils.rollout import RecordingMoves, passing_verdict

from petalops.rollout.analysis import StepDecision
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies.canary import Canary

STEPS = (5.0, 25.0, 50.0, 100.0)


def plan(**changes: object) -> RolloutPlan:
    base = RolloutPlan("r-1", "canary", "2", "1", steps=STEPS, interval_s=60.0)
    return base.evolve(**changes)


@pytest.mark.parametrize(("step", "weight"), [(0, 5.0), (1, 25.0), (3, 100.0), (9, 100.0)])
def test_running_weight_is_the_steps_weight(step: int, weight: float) -> None:
    assert Canary().weight(plan(phase="running", step=step)) == weight


def test_warming_gives_nothing_yet_and_every_step_lasts_an_interval() -> None:
    c = Canary()
    assert c.weight(plan(phase="warming")) == 0.0
    assert c.initial_phase == "warming"
    assert c.n_steps(plan()) == 4
    assert c.step_length(plan(keep_warm_s=600.0, duration_s=900.0)) == 60.0
    assert c.traffic(plan(phase="running", step=2)) == TrafficPolicy("canary", 50.0, 2, "r-1")


def test_after_warm_starts_at_the_first_weight() -> None:
    moves = RecordingMoves()
    first = Canary().after_warm(moves, plan(phase="warming"), now=10.0)
    assert (first.phase, first.step, first.weight) == ("running", 0, 5.0)
    assert moves.calls[0][2] == "warm; challenger at 5%"


def test_a_passed_step_names_the_next_weight() -> None:
    moves = RecordingMoves()
    decision = StepDecision("advance", "step 2/4 passed", 2)
    nxt = Canary().on_step_passed(
        moves, plan(phase="running", step=1), decision, passing_verdict(), 5.0
    )
    assert nxt.weight == 50.0
    assert moves.calls[0][2] == "step 2/4 passed; challenger at 50%"
