"""The loop's side of a rollout: start the one the policy names, and record how it ended once
the rollout controller (which carries it out) is done with it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from petalops.config import Settings
from petalops.loop.events import ROLLOUT_OUTCOME
from petalops.monitoring.store import MonitorStore
from petalops.rollout.api import start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.plan import RolloutPlan

log = logging.getLogger(__name__)

# (settings, version, strategy) → the rollout id, or None when no rollout could be started.
RolloutStarter = Callable[[Settings, str, str], str | None]


def default_rollout_starter(settings: Settings, version: str, strategy: str) -> str | None:
    """Start the rollout the policy names through the rollout block's library function."""
    return start_rollout(settings, version=version, strategy=strategy)


def track_rollouts(settings: Settings, store: MonitorStore) -> None:
    """Record the outcome of rollouts this loop started once the controller ends them."""
    name = settings.project
    try:
        pending = store.open_rollouts(name)
        if not pending:
            return
        plan = RolloutPlan.parse(ControlPlane(settings).read().plan_raw)
    except Exception:  # the registry may be down; try again next tick
        log.warning("could not read the rollout state", exc_info=True)
        return
    for event in pending:
        outcome: str
        if plan is not None and plan.rollout_id == event["rollout_id"]:
            if plan.active:
                continue
            outcome, reason = plan.phase, plan.reason
        else:
            outcome = "superseded"
            reason = "another rollout replaced it before it finished"
        store.add_event(
            event["cycle"],
            ROLLOUT_OUTCOME,
            f"rollout {event['rollout_id']} of version {event['model_version']}: {outcome}"
            + (f" ({reason})" if reason else ""),
            model_name=name,
            model_version=event["model_version"],
            run_id=event["run_id"],
            rollout_id=event["rollout_id"],
            detail={"outcome": outcome, "reason": reason},
        )
