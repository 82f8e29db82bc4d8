"""The rollout block's read model for pages that watch it (the control room).

What `petalops rollout status` shows, plus the plan's step, weight and pause, and the
rollout's decisions, from the registered model's aliases and tags as the caller read them
(the registry catalog has them already: no second registry read). One open store is kept
between reads, so a poller pays no connection per read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from petalops.config import Settings
from petalops.rollout.control_plane import PLAN_TAG, RegistryState
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TRAFFIC_TAG, TrafficPolicy

if TYPE_CHECKING:
    from petalops.rollout.store import RolloutStore

# Decisions of the current rollout a view lists, newest kept.
HISTORY = 50


def plan_text(tags: dict[str, str]) -> str:
    """The registered model's rollout plan tag as it is written: it changes with every
    controller decision, so a poller can tell from it alone whether to read again."""
    return tags.get(PLAN_TAG, "")


def has_rollout(tags: dict[str, str]) -> bool:
    """Whether the registered model carries a rollout plan (running or ended)."""
    return bool(plan_text(tags))


class RolloutView:
    """Reads the rollout of one registered model; ``close`` when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: RolloutStore | None = None

    @property
    def store(self) -> RolloutStore:
        if self._store is None:
            # Here, not at the top: SQLAlchemy (~300 ms), which a serving worker asking
            # `has_rollout` never needs.
            from petalops.rollout.store import RolloutStore

            self._store = RolloutStore(self.settings.monitor_url)
        return self._store

    def status(self, aliases: dict[str, str], tags: dict[str, str]) -> dict[str, Any]:
        """`rollout_status` of the state the caller read, with the plan's ``weight``,
        ``n_steps``, ``paused`` and ``active``."""
        raw = plan_text(tags)
        state = RegistryState(
            aliases=aliases,
            traffic=TrafficPolicy.parse(tags.get(TRAFFIC_TAG, "")),
            traffic_raw=tags.get(TRAFFIC_TAG, ""),
            plan_raw=raw,
        )
        from petalops.rollout.api import rollout_status  # the controller: as the store

        status = rollout_status(self.settings, state=state, store=self.store)
        plan = RolloutPlan.parse(raw)
        if plan is not None and status.get("plan"):
            status["plan"].update(
                weight=plan.weight, n_steps=plan.n_steps, paused=plan.paused, active=plan.active
            )
        return status

    def history(self, rollout_id: str) -> list[dict[str, Any]]:
        """The rollout's decisions, oldest first, without their bulky verdict detail."""
        rows = self.store.history(self.settings.project, rollout_id=rollout_id, limit=HISTORY)
        return [{k: v for k, v in row.items() if k not in ("detail", "model_name")} for row in rows]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
