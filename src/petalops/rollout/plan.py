"""The rollout plan: the controller's whole state, stored as the registered-model tag
``petalops.rollout`` so that a restarted controller resumes exactly where it stopped.

``traffic_for(plan)`` derives the serving policy (tag ``petalops.traffic``) from the plan;
the controller rewrites that tag whenever it differs, which also repairs a crash between
the two writes. What the numbers of a plan mean (its weight, steps, step length) depends on
its strategy, which the plan looks up in `petalops.rollout.strategies.registry`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from petalops.rollout.analysis import Thresholds
from petalops.rollout.routing import TrafficPolicy, utc_now_iso
from petalops.rollout.strategies.registry import of as strategy_of

Phase = Literal[
    "warming",  # the challenger is being loaded everywhere; it answers nothing yet
    "running",  # canary steps, or shadow copies
    "flipped",  # blue-green: the challenger answers everything, the champion is kept warm
    "promoting",  # moving the aliases (resumed if the controller dies half-way)
    "rolling_back",
    "promoted",
    "rolled_back",
    "aborted",
    "passed",  # shadow finished clean: the challenger stays registered, out of traffic
]
ACTIVE_PHASES = frozenset({"warming", "running", "flipped", "promoting", "rolling_back"})


def new_rollout_id(now: float) -> str:
    """``r-YYYYmmdd-HHMMSS`` (UTC) of ``now``."""
    return "r-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class RolloutPlan:
    """One rollout of ``version`` against the champion ``baseline``."""

    rollout_id: str
    strategy: str  # a registered strategy's ``stored_as``
    version: str
    baseline: str
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    interval_s: float = 60.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    phase: Phase = "running"
    step: int = 0
    started: float = 0.0
    step_started: float = 0.0
    judged_at: float = 0.0
    inconclusive: int = 0
    duration_s: float = 600.0
    keep_warm_s: float = 600.0
    warm_s: float = 0.0
    then: str = ""  # the strategy a plan that passes continues as ("canary" after a shadow)
    ended: float = 0.0
    reason: str = ""
    # When `petalops rollout pause` held the plan (0: not paused). A paused plan keeps its
    # step and weights and is not judged until it is resumed.
    paused_at: float = 0.0

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def paused(self) -> bool:
        return self.paused_at > 0

    @property
    def weight(self) -> float:
        """The challenger's share of live traffic in this phase, in percent."""
        return strategy_of(self).weight(self)

    @property
    def n_steps(self) -> int:
        return strategy_of(self).n_steps(self)

    @property
    def step_length(self) -> float:
        """How long a judged step lasts before its verdict counts."""
        return strategy_of(self).step_length(self)

    @property
    def challenger_variant(self) -> str:
        """The ``variant`` the challenger's rows carry in the prediction log."""
        return strategy_of(self).challenger_variant

    def evolve(self, **changes: Any) -> RolloutPlan:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        return data

    def serialize(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> RolloutPlan | None:
        """The plan in the tag, or None when there is none or it cannot be read."""
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError, AttributeError):
            return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutPlan:
        """The plan ``to_dict`` wrote; unknown keys are ignored (a newer writer's fields)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["steps"] = tuple(float(s) for s in values.get("steps", ()))
        limits = {f.name for f in fields(Thresholds)}
        values["thresholds"] = Thresholds(
            **{k: v for k, v in (data.get("thresholds") or {}).items() if k in limits}
        )
        return cls(**values)


def traffic_for(plan: RolloutPlan | None) -> TrafficPolicy:
    """The serving policy a plan asks for (``updated`` left empty)."""
    if plan is None or not plan.active or plan.phase == "rolling_back":
        return TrafficPolicy.none()
    return strategy_of(plan).traffic(plan)


def same_traffic(a: TrafficPolicy, b: TrafficPolicy) -> bool:
    """Equal apart from the ``updated`` stamp."""
    return replace(a, updated="") == replace(b, updated="")


def stamp(policy: TrafficPolicy) -> TrafficPolicy:
    """``policy`` with ``updated`` set to now."""
    return replace(policy, updated=utc_now_iso())
