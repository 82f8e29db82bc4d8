"""Helpers for rollout tests: a hand-moved clock, prediction rows written straight into the
log (as the server's logger writes them), the plan and history as the registry holds them,
and a recorder of the moves a strategy asks of the controller."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from petalops.config import Settings
from petalops.monitoring.store import MonitorStore
from petalops.rollout.analysis import Check, Thresholds, VariantStats, Verdict
from petalops.rollout.api import rollout_history
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.smoke import SmokeResult

# Small floors, so that a test decides on a few dozen rows.
TEST_LIMITS = Thresholds(min_samples=50, min_labels=10, max_inconclusive=2)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def log_rows(
    settings: Settings,
    clock: Clock,
    variant: str,
    version: str,
    n: int,
    *,
    status: int = 200,
    latency_ms: float = 2.0,
    prediction: int = 1,
    reference: int | None = 1,
    probabilities: list[float] | None = None,
) -> None:
    """Write ``n`` prediction rows of ``variant`` / ``version`` at the clock's time."""
    store = MonitorStore(settings.monitor_url)
    store.log_predictions(
        {
            "request_id": f"{variant}-{version}-{clock.now}-{i}",
            "ts": clock.now + 0.001 * i,
            "model_name": settings.project,
            "model_version": version,
            "variant": variant,
            "route": "/v1/predict",
            "status": status,
            "latency_ms": latency_ms,
            "features": [5.1, 3.5, 1.4, 0.2],
            "prediction": prediction if status < 400 else None,
            "reference_prediction": reference if variant != "champion" else None,
            "probabilities": probabilities,
        }
        for i in range(n)
    )
    store.close()


def plan_of(settings: Settings) -> RolloutPlan:
    """The plan in the registry (it must be readable)."""
    plan = RolloutPlan.parse(ControlPlane(settings).read().plan_raw)
    assert plan is not None
    return plan


def actions(settings: Settings) -> list[str]:
    """The recorded decisions' actions, oldest first."""
    return [e["action"] for e in rollout_history(settings)]


def passing_verdict() -> Verdict:
    """A pass on 100 clean challenger requests."""
    stats = VariantStats(requests=100, p50_ms=1.0, p99_ms=2.0)
    return Verdict("pass", ("all checks passed",), (Check("error_rate", 0.0, 0.01, True),), stats)


@dataclass
class RecordingMoves:
    """The controller's moves (``strategies.base.Moves``), recorded instead of written.

    For a strategy's own tests: what it asks for, in order. The real controller carrying
    them out is covered by tests/unit/rollout/test_controller.py.
    """

    smoke: SmokeResult = field(default_factory=lambda: SmokeResult(True, ("ok",), {"rows": 3}))
    calls: list[tuple[str, RolloutPlan, str, dict[str, Any]]] = field(default_factory=list)

    def step_to(
        self,
        plan: RolloutPlan,
        action: str,
        reason: str,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        self.calls.append(("step_to", plan, reason, {"action": action, "detail": detail}))
        return plan

    def stand_down(
        self, plan: RolloutPlan, action: str, reason: str, *, verdict: Verdict | None = None
    ) -> RolloutPlan:
        self.calls.append(("stand_down", plan, reason, {"action": action}))
        return plan

    def promote(
        self, plan: RolloutPlan, reason: str, *, verdict: Verdict | None = None
    ) -> RolloutPlan:
        done = plan.evolve(phase="promoted")
        self.calls.append(("promote", done, reason, {}))
        return done

    def roll_back(
        self,
        plan: RolloutPlan,
        reason: str,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        done = plan.evolve(phase="rolled_back", reason=reason)
        self.calls.append(("roll_back", done, reason, {"detail": detail}))
        return done

    def smoke_test(self, plan: RolloutPlan) -> SmokeResult:
        self.calls.append(("smoke_test", plan, "", {}))
        return self.smoke
