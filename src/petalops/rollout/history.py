"""The record of rollout decisions: a row of ``rollout_events`` with every number the
decision was based on (`petalops rollout history`), a count in
``petalops_rollout_decisions_total`` and a line on the ``petalops.rollout`` log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from petalops.rollout import metrics
from petalops.rollout.analysis import Verdict
from petalops.rollout.plan import RolloutPlan

if TYPE_CHECKING:  # SQLAlchemy: `rollout history` reads without it
    from petalops.rollout.store import RolloutStore

log = logging.getLogger("petalops.rollout")


def record(
    store: RolloutStore,
    model_name: str,
    plan: RolloutPlan,
    action: str,
    reason: str,
    *,
    actor: str,
    verdict: Verdict | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one decision about ``plan`` (as it is after it) to ``rollout_events``."""
    data = dict(detail or {})
    if verdict is not None:
        data["verdict"] = verdict.to_dict()
    store.record(
        model_name=model_name,
        rollout_id=plan.rollout_id,
        strategy=plan.strategy,
        phase=plan.phase,
        step=plan.step,
        weight=100.0 if plan.phase == "promoted" else plan.weight,
        action=action,
        verdict=verdict.decision if verdict else None,
        reason=reason,
        champion_version=plan.baseline,
        challenger_version=plan.version,
        actor=actor,
        detail=data,
    )


def announce(plan: RolloutPlan, action: str, reason: str, verdict: Verdict | None = None) -> None:
    """Count a controller's decision and log it with the challenger's numbers."""
    metrics.count_decision(action)
    numbers = ""
    if verdict is not None:
        c = verdict.challenger
        numbers = (
            f" challenger n={c.requests} err={c.error_rate} p99={c.p99_ms}ms "
            f"disagree={c.disagreement_rate} acc={c.accuracy}"
        )
    log.info(
        "rollout %s %s: %s step %d weight %g%% — %s%s",
        plan.rollout_id,
        action,
        plan.strategy,
        plan.step + 1,
        plan.weight,
        reason,
        numbers,
    )
