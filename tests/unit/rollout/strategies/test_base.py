"""The defaults of a strategy: a one-step rollout that warms up, gives the challenger nothing
and promotes it when its step passes."""

from __future__ import annotations

from typing import ClassVar

import pytest
from tests.utils.rollout import RecordingMoves, passing_verdict

from petalops.rollout.analysis import StepDecision
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies.base import Strategy


class Plain(Strategy):
    name: ClassVar[str] = "plain"


def plan(**changes: object) -> RolloutPlan:
    return RolloutPlan("r-1", "plain", "2", "1", steps=(50.0, 100.0), interval_s=30.0).evolve(
        **changes
    )


@pytest.mark.parametrize(
    ("phase", "weight"),
    [
        ("warming", 0.0),
        ("running", 0.0),
        ("flipped", 100.0),
        ("promoting", 100.0),
        ("aborted", 0.0),
    ],
)
def test_weight_by_phase(phase: str, weight: float) -> None:
    assert Plain().weight(plan(phase=phase)) == weight


def test_one_step_of_one_interval_named_after_itself() -> None:
    s = Plain()
    assert (s.stored_as, s.then, s.initial_phase, s.challenger_variant) == (
        "plain",
        "",
        "warming",
        "challenger",
    )
    assert s.n_steps(plan()) == 1
    assert s.step_length(plan()) == 30.0
    assert s.traffic(plan(phase="flipped", step=0)) == TrafficPolicy("bluegreen", 100.0, 0, "r-1")


def test_after_warm_starts_the_first_step() -> None:
    moves = RecordingMoves()
    first = Plain().after_warm(moves, plan(phase="warming", step=3), now=50.0)
    assert (first.phase, first.step, first.step_started, first.judged_at) == (
        "running",
        0,
        50.0,
        50.0,
    )
    [(kind, written, reason, extra)] = moves.calls
    assert (kind, written, reason, extra["action"]) == (
        "step_to",
        first,
        "warm; challenger at 0%",
        "advance",
    )


def test_a_passed_step_advances_and_the_last_one_promotes() -> None:
    moves = RecordingMoves()
    running = plan(phase="running", step=0, inconclusive=1)
    advance = StepDecision("advance", "step 1/2 passed", 1)
    nxt = Plain().on_step_passed(moves, running, advance, passing_verdict(), now=70.0)
    assert (nxt.step, nxt.step_started, nxt.judged_at, nxt.inconclusive) == (1, 70.0, 70.0, 0)
    assert moves.calls[-1][0] == "step_to"
    assert moves.calls[-1][2] == "step 1/2 passed; challenger at 0%"

    promote = StepDecision("promote", "last step passed", 1)
    done = Plain().on_step_passed(moves, nxt, promote, passing_verdict(), now=80.0)
    assert done.phase == "promoted"
    assert moves.calls[-1][:3:2] == ("promote", "last step passed")
