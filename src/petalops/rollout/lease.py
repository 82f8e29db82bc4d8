"""Who may act on a model's rollout: one lease in the monitoring database, and a control
plane that renews it before every registry write.

The lease row is taken with one atomic compare-and-set (see ``RolloutStore.acquire``), so
of several controllers (standbys, or one embedded in every server worker) exactly one acts;
the others stand by until it stops renewing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.rollout.control_plane import ControlPlane, RegistryState
from petalops.rollout.routing import TrafficPolicy

if TYPE_CHECKING:  # SQLAlchemy: `rollout status` reads the lease without it
    from petalops.rollout.store import RolloutStore


def holder_id(prefix: str = "") -> str:
    """A name for this process that no other holder has: host, pid and a random suffix."""
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lease_name(settings: Settings) -> str:
    """The name of the rollout lease of the settings' registered model."""
    return f"rollout:{settings.project}"


class Lease:
    """The rollout lease of one model, as seen by one holder."""

    def __init__(self, store: RolloutStore, settings: Settings, holder: str) -> None:
        self.store = store
        self.settings = settings
        self.name = lease_name(settings)
        self.holder = holder

    def renew(self) -> bool:
        """Take or renew the lease for ``rollout.lease_seconds``; False if another holds it."""
        return self.store.acquire(self.name, self.holder, self.settings.rollout.lease_seconds)

    def release(self) -> None:
        """Give the lease up at once (it would expire by itself)."""
        self.store.release(self.name, self.holder)


class LeaseLostError(PetalopsError):
    """Another controller took the lease while this one was busy: it must not write."""

    exit_code = 1
    http_status = 409


class FencedPlane(ControlPlane):
    """A control plane whose every registry write is preceded by renewing the lease.

    MLflow has no conditional writes, so the registry cannot check a fencing token. Renewing
    (an atomic compare-and-set on the holder, see ``RolloutStore.acquire``) right before each
    write shrinks the window in which a controller that lost its lease (paused past expiry
    while a standby took over) could still write, from a whole tick (a smoke test or a warm
    window can take seconds) to one registry call.
    """

    def __init__(self, inner: ControlPlane, renew: Callable[[], bool], holder: str) -> None:
        super().__init__(inner.settings, inner.name)
        self.inner = inner
        self.renew = renew
        self.holder = holder

    def _fence(self, what: str) -> None:
        if not self.renew():
            raise LeaseLostError(
                f"rollout controller {self.holder} lost its lease before writing {what}; "
                "the controller now holding it carries on"
            )

    def read(self) -> RegistryState:
        return self.inner.read()

    def version_exists(self, version: str) -> bool:
        return self.inner.version_exists(version)

    def set_alias(self, alias: str, version: str) -> None:
        self._fence(f"alias {alias}")
        self.inner.set_alias(alias, version)

    def delete_alias(self, alias: str) -> None:
        self._fence(f"alias {alias}")
        self.inner.delete_alias(alias)

    def set_traffic(self, policy: TrafficPolicy) -> None:
        self._fence("the traffic policy")
        self.inner.set_traffic(policy)

    def set_plan(self, text: str) -> None:
        self._fence("the rollout plan")
        self.inner.set_plan(text)
