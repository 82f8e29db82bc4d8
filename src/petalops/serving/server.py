"""The state one worker shares between its routes, and the one place a request's model
version and variant are chosen."""

from __future__ import annotations

from dataclasses import dataclass

from petalops.config import Settings
from petalops.serving.accesslog import JsonLog
from petalops.serving.guard import KeyGuard
from petalops.serving.holder import RuntimeHolder, Served, Snapshot
from petalops.serving.http import Call, HttpError
from petalops.serving.metrics import RequestMetrics
from petalops.serving.shape import ApiShape
from petalops.serving.sidechannel import SideChannel


@dataclass
class Server:
    """Everything the routes of one worker need."""

    settings: Settings
    shape: ApiShape
    holder: RuntimeHolder
    metrics: RequestMetrics
    log: JsonLog
    side: SideChannel
    keys: KeyGuard  # the API keys and the check of guarded routes

    async def choose(self, call: Call, version: str | None = None) -> tuple[Snapshot, Served, str]:
        """The snapshot, the runtime and the variant that answer this request.

        ``version`` (a path's ``{version}``), else the ``X-Model-Version`` header, addresses a
        registered version; otherwise the traffic policy picks (`Snapshot.pick`), by
        ``X-Petalops-Key`` or the request id. The dispatcher calls this for every prediction,
        and again, with ``call.champion_only`` set, when a challenger failed one.
        """
        snapshot = self.holder.snapshot
        if version is None:
            version = call.model_version
            if version is None:
                served, variant = snapshot.pick(
                    call.routing_key or call.request_id, call.champion_only
                )
                return snapshot, served, variant
            if not version.isdigit() or len(version) > 9:
                raise HttpError(
                    400,
                    f"X-Model-Version must be a registered version number, got {version!r}",
                    "X-Model-Version",
                    "3",
                )
        served, variant = await self.holder.version(version)
        return snapshot, served, variant
