"""The interface of a rollout strategy, and the moves it may ask of the controller.

A strategy is the part of a rollout that differs from one kind to another: where a new
plan starts, what share of live traffic a step gives the challenger, how many steps there
are and how long each lasts, which rows of the prediction log are the challenger's, and
what happens once the warm-up is over and when a step passes. Everything else (the lease,
the commands, judging a window, holding, rolling back, promoting) is the controller's and
the same for all of them.

The defaults below are a one-step rollout that warms the challenger up, gives it nothing,
and promotes it when its step passes; a strategy overrides what it does differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from petalops.rollout.analysis import StepDecision, Verdict
from petalops.rollout.plan import Phase, RolloutPlan
from petalops.rollout.routing import Strategy as TrafficStrategy
from petalops.rollout.routing import TrafficPolicy

if TYPE_CHECKING:
    # Only the annotation: the smoke test imports numpy, which nothing else here needs.
    from petalops.rollout.smoke import SmokeResult


class Moves(Protocol):
    """What a strategy may ask the controller to do; every registry write is fenced."""

    def step_to(
        self,
        plan: RolloutPlan,
        action: str,
        reason: str,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        """Save ``plan``, route traffic as it asks, record ``action``; returns ``plan``."""
        ...

    def stand_down(
        self, plan: RolloutPlan, action: str, reason: str, *, verdict: Verdict | None = None
    ) -> RolloutPlan:
        """Save a finished ``plan`` and take the challenger out of traffic (its alias stays)."""
        ...

    def promote(
        self, plan: RolloutPlan, reason: str, *, verdict: Verdict | None = None
    ) -> RolloutPlan:
        """Make the challenger the champion (the old one becomes ``previous``)."""
        ...

    def roll_back(
        self,
        plan: RolloutPlan,
        reason: str,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        """All traffic back to the champion, the challenger alias removed."""
        ...

    def smoke_test(self, plan: RolloutPlan) -> SmokeResult:
        """Load the challenger as a server would and try it against the champion."""
        ...


class Strategy:
    """One kind of rollout. Subclass, set ``name``, override what differs, ``@register``."""

    name: ClassVar[str] = ""
    """What `--strategy`, ``rollout.strategy`` and ``monitor.rollout_strategy`` take."""
    rank: ClassVar[int] = 100
    """Position in the lists shown to people (help, error messages)."""
    then: ClassVar[str] = ""
    """The strategy the plan continues as once this one passes ("" for none)."""
    initial_phase: ClassVar[Phase] = "warming"
    """Where a new plan starts: ``warming`` loads the challenger everywhere first."""
    challenger_variant: ClassVar[str] = "challenger"
    """The ``variant`` the challenger's rows carry in the prediction log."""
    steps_are_weights: ClassVar[bool] = False
    """Whether the plan's ``steps`` are the challenger's weights, one judged step each."""
    live_mode: ClassVar[TrafficStrategy] = "bluegreen"
    """How serving workers split traffic while the challenger answers a share of it."""
    reads_champion: ClassVar[bool] = True
    """Whether the champion answers during a step, so the challenger is compared with it."""

    @property
    def stored_as(self) -> str:
        """The plan's ``strategy`` field for this strategy (its name unless it shares one)."""
        return self.name

    def weight(self, plan: RolloutPlan) -> float:
        """The challenger's share of live traffic in the plan's phase, in percent."""
        if plan.phase in ("flipped", "promoting"):
            return 100.0
        if plan.phase == "running":
            return self.running_weight(plan)
        return 0.0

    def running_weight(self, plan: RolloutPlan) -> float:
        """The challenger's share while the plan is ``running`` (step ``plan.step``)."""
        return 0.0

    def n_steps(self, plan: RolloutPlan) -> int:
        """How many judged steps the plan has."""
        return len(plan.steps) if self.steps_are_weights else 1

    def step_length(self, plan: RolloutPlan) -> float:
        """How long a judged step lasts before its verdict counts, in seconds."""
        return plan.interval_s

    def traffic(self, plan: RolloutPlan) -> TrafficPolicy:
        """The serving policy an active plan asks for (``updated`` left empty)."""
        return TrafficPolicy(self.live_mode, self.weight(plan), plan.step, plan.rollout_id)

    def after_warm(self, moves: Moves, plan: RolloutPlan, now: float) -> RolloutPlan:
        """Every worker has loaded the challenger: start the first step."""
        first = plan.evolve(phase="running", step=0, step_started=now, judged_at=now)
        return moves.step_to(first, "advance", f"warm; challenger at {self.weight(first):g}%")

    def on_step_passed(
        self,
        moves: Moves,
        plan: RolloutPlan,
        decision: StepDecision,
        verdict: Verdict,
        now: float,
    ) -> RolloutPlan:
        """A judged step passed (``decision.action`` is advance or promote)."""
        if decision.action != "advance":
            return self.on_last_step_passed(moves, plan, decision.reason, verdict, now)
        nxt = plan.evolve(step=decision.next_step, step_started=now, judged_at=now, inconclusive=0)
        return moves.step_to(
            nxt,
            "advance",
            f"{decision.reason}; challenger at {self.weight(nxt):g}%",
            verdict=verdict,
        )

    def on_last_step_passed(
        self, moves: Moves, plan: RolloutPlan, reason: str, verdict: Verdict, now: float
    ) -> RolloutPlan:
        """The last step passed: by default the challenger is promoted."""
        return moves.promote(plan, reason, verdict=verdict)
