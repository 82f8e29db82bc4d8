"""Blue-green: the challenger is warmed everywhere and smoke-tested by the controller, then
takes all traffic at once; the old champion stays loaded for the keep-warm window, in which
a breach or an abort flips straight back.
"""

from __future__ import annotations

from typing import ClassVar

from petalops.rollout.plan import RolloutPlan
from petalops.rollout.strategies.base import Moves, Strategy
from petalops.rollout.strategies.registry import register


@register
class BlueGreen(Strategy):
    name: ClassVar[str] = "bluegreen"
    rank: ClassVar[int] = 20
    # After the flip the champion answers nothing: the challenger is judged on its own.
    reads_champion: ClassVar[bool] = False

    def step_length(self, plan: RolloutPlan) -> float:
        return max(plan.keep_warm_s, plan.interval_s)

    def after_warm(self, moves: Moves, plan: RolloutPlan, now: float) -> RolloutPlan:
        """Smoke-test the warmed challenger; flip all traffic to it only if it passes."""
        result = moves.smoke_test(plan)
        detail = {"smoke": {"passed": result.passed, **result.numbers}}
        if not result.passed:
            return moves.roll_back(
                plan, "smoke test failed: " + "; ".join(result.reasons), detail=detail
            )
        flipped = plan.evolve(phase="flipped", step_started=now, judged_at=now)
        return moves.step_to(
            flipped, "flip", "smoke test passed; all traffic to the challenger", detail=detail
        )
