"""Shadow: the challenger gets a copy of every request off the response path; its answers
are logged (variant ``shadow``) and compared with the champion's, never returned. A clean
run ends ``passed``, the challenger still registered and out of traffic.
"""

from __future__ import annotations

from typing import ClassVar

from petalops.rollout.analysis import Verdict
from petalops.rollout.plan import Phase, RolloutPlan
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies.base import Moves, Strategy
from petalops.rollout.strategies.registry import register


@register
class Shadow(Strategy):
    name: ClassVar[str] = "shadow"
    rank: ClassVar[int] = 30
    # Copies answer no caller, so there is nothing to warm up before they start.
    initial_phase: ClassVar[Phase] = "running"
    challenger_variant: ClassVar[str] = "shadow"

    def step_length(self, plan: RolloutPlan) -> float:
        return plan.duration_s

    def traffic(self, plan: RolloutPlan) -> TrafficPolicy:
        if plan.phase == "running":
            return TrafficPolicy("shadow", 0.0, 0, plan.rollout_id)
        return super().traffic(plan)  # promoting by hand: it answers everything, as in any other

    def on_last_step_passed(
        self, moves: Moves, plan: RolloutPlan, reason: str, verdict: Verdict, now: float
    ) -> RolloutPlan:
        passed = plan.evolve(phase="passed", ended=now, reason="shadow passed")
        return moves.stand_down(
            passed,
            "passed",
            "shadow passed; the challenger stays registered, out of traffic",
            verdict=verdict,
        )
