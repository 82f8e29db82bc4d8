"""The rollout's view of the registry: aliases and registered-model tags, nothing else.

Every registry call the rollout makes goes through this module, and this module goes
through `petalops.registry` (the only code that talks to MLflow), so the backing store
can be swapped in one place.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from petalops.config import Settings
from petalops.rollout.routing import TRAFFIC_TAG, TrafficPolicy

PLAN_TAG = "petalops.rollout"
ALIASES = ("champion", "challenger", "previous")


@dataclass(frozen=True)
class RegistryState:
    """Aliases and the two rollout tags of the registered model, read together."""

    aliases: dict[str, str] = field(default_factory=dict)
    traffic: TrafficPolicy = field(default_factory=TrafficPolicy)
    traffic_raw: str = ""
    plan_raw: str = ""

    @property
    def champion(self) -> str | None:
        return self.aliases.get("champion")

    @property
    def challenger(self) -> str | None:
        return self.aliases.get("challenger")

    @property
    def previous(self) -> str | None:
        return self.aliases.get("previous")


class ControlPlane:
    """Read and write the rollout state of one registered model."""

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or settings.project

    def read(self) -> RegistryState:
        from petalops.registry import model_state

        all_aliases, tags = model_state(self.settings, name=self.name)
        aliases = {alias: all_aliases[alias] for alias in ALIASES if alias in all_aliases}
        traffic_raw = tags.get(TRAFFIC_TAG, "")
        return RegistryState(
            aliases=aliases,
            traffic=TrafficPolicy.parse(traffic_raw),
            traffic_raw=traffic_raw,
            plan_raw=tags.get(PLAN_TAG, ""),
        )

    def version_exists(self, version: str) -> bool:
        from petalops.errors import NotFoundError
        from petalops.registry import resolve

        try:
            resolve(self.settings, f"{self.name}/{version}")
        except NotFoundError:
            return False
        return True

    def set_alias(self, alias: str, version: str) -> None:
        from petalops.registry import store

        store.set_alias(self.settings, alias, version, name=self.name)

    def delete_alias(self, alias: str) -> None:
        from petalops.errors import NotFoundError
        from petalops.registry import store

        # Already gone is fine: deleting is idempotent for the controller.
        with contextlib.suppress(NotFoundError):
            store.delete_alias(self.settings, alias, name=self.name)

    def set_traffic(self, policy: TrafficPolicy) -> None:
        from petalops.registry import store

        store.set_model_tag(self.settings, TRAFFIC_TAG, policy.serialize(), name=self.name)

    def set_plan(self, text: str) -> None:
        from petalops.registry import store

        store.set_model_tag(self.settings, PLAN_TAG, text, name=self.name)
