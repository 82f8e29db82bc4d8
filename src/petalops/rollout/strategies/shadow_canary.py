"""Shadow, then canary: a shadow that, when it passes, continues as a canary from its first
step (what ``monitor.rollout_strategy`` names by default for retrained models).

Stored as a shadow plan with ``then: canary``, so a controller reads it as before.
"""

from __future__ import annotations

from typing import ClassVar

from petalops.rollout.analysis import Verdict
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.strategies.base import Moves
from petalops.rollout.strategies.registry import register
from petalops.rollout.strategies.shadow import Shadow


@register
class ShadowCanary(Shadow):
    name: ClassVar[str] = "shadow-canary"
    rank: ClassVar[int] = 40
    then: ClassVar[str] = "canary"

    @property
    def stored_as(self) -> str:
        return Shadow.name

    def on_last_step_passed(
        self, moves: Moves, plan: RolloutPlan, reason: str, verdict: Verdict, now: float
    ) -> RolloutPlan:
        canary = plan.evolve(
            strategy=self.then,
            phase="running",
            step=0,
            step_started=now,
            judged_at=now,
            inconclusive=0,
            then="",
        )
        return moves.step_to(
            canary, "advance", f"shadow passed; canary at {canary.weight:g}%", verdict=verdict
        )
