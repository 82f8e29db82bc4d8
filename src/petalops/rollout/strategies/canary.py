"""Canary: after a warm-up the challenger answers ``steps[i]`` % of live requests, a step
at a time, each judged against the champion before the next; promoted after the 100 % step.
"""

from __future__ import annotations

from typing import ClassVar

from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import Strategy as TrafficStrategy
from petalops.rollout.strategies.base import Strategy
from petalops.rollout.strategies.registry import register


@register
class Canary(Strategy):
    name: ClassVar[str] = "canary"
    rank: ClassVar[int] = 10
    steps_are_weights: ClassVar[bool] = True
    live_mode: ClassVar[TrafficStrategy] = "canary"

    def running_weight(self, plan: RolloutPlan) -> float:
        return plan.steps[min(plan.step, len(plan.steps) - 1)]
