"""The control room at ``/ui``: serving mounts `petalops.ui` (the page, its assets, its
state document and its actions); the control room knows nothing of serving.

The state and the actions are hot routes (the page polls the state from every open tab).
The page and its files, fetched once per visit, are answered by FastAPI (``router``,
mounted on `petalops.serving.fallback`); everything ships in the package (`petalops.ui`),
so the page works offline. Under `petalops serve` the state document is built by one
process for the machine (`petalops.ui.builder`, started by `serving.runner`) and a worker
answers the published file with its own slots filled in (`petalops.ui.document`), with an
ETag; an app run in one process builds it itself (`petalops.ui.state.StateCache`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from petalops.security.audit import acting_as
from petalops.serving.codec import Codec, Route
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs
from petalops.serving.reply import Reply
from petalops.serving.server import Server
from petalops.ui import assets
from petalops.ui.actions import ACTIONS, parse_action, run_action
from petalops.ui.document import DOCUMENT_ENV, PublishedDocument

_ACTION_SCHEMA = {
    "type": "object",
    "required": ["action"],
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "reason": {"type": "string", "maxLength": 500},
        "alias": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"},
        "version": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
}
_ERROR = {"type": "object"}


class ControlRoom(Codec[None]):
    """The routes of the control room page; no prediction route."""

    order = 90

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        published = os.environ.get(DOCUMENT_ENV)
        self.published = PublishedDocument(Path(published), self._serving) if published else None
        self._cache: Any = None
        self.example = {"action": "promote", "reason": "looks good"}

    def routes(self, docs: Docs) -> list[Route]:
        return [
            Route(
                method="GET",
                path="/ui/state",
                handler=self.state,
                summary="Control room: the state document",
                tag="control room",
                responses={200: ("Registry, rollout, traffic, drift, quality, alerts", _ERROR)},
            ),
            Route(
                method="POST",
                path="/ui/actions",
                handler=self.action,
                summary="Control room: promote, abort, pause, resume, set an alias",
                tag="control room",
                request_schema=_ACTION_SCHEMA,
                request_example=self.example,
                scope="admin",
                responses={
                    200: ("What the action did, and the resulting plan", _ERROR),
                    400: ("Malformed action", _ERROR),
                    401: ("Missing or wrong admin token or admin key", _ERROR),
                    403: (
                        "Actions disabled (no admin token nor admin key), or a key of "
                        "another scope",
                        _ERROR,
                    ),
                    409: ("The rollout refused the action", _ERROR),
                },
            ),
        ]

    def _serving(self) -> dict[str, Any] | None:
        snapshot = self.server.holder.snapshot
        slots = {
            slot: {"version": served.version, "sha256": served.sha256} if served else None
            for slot, served in (
                ("champion", snapshot.champion),
                ("challenger", snapshot.challenger),
                ("previous", snapshot.previous),
            )
        }
        return {"slots": slots, "traffic": snapshot.policy.to_dict()}

    async def state(self, call: Call, receive: Receive) -> Reply:
        """The control room's state document, built once per refresh for every tab and
        worker; ``If-None-Match`` with the last ETag is answered 304 without a body."""
        if self.published is None:
            body = await self._in_process().get()
            return Reply(body=body, headers=[(b"cache-control", b"no-store")])
        answer = await self.published.get()
        if answer is None:
            raise HttpError(
                503,
                "the control room's state is not built yet; retry in a few seconds",
                headers=[(b"retry-after", b"2")],
            )
        body, etag = answer
        headers = [(b"etag", etag), (b"cache-control", b"no-cache")]
        if call.if_none_match == etag:
            return Reply(body=b"", status=304, headers=headers)
        return Reply(body=body, headers=headers)

    def _in_process(self) -> Any:
        """The document built in this process (no builder: an app run in one process)."""
        if self._cache is None:
            # Here, not at the top: the read models load SQLAlchemy and scipy, which a
            # worker of `petalops serve` (whose builder builds the document) never needs.
            from petalops.ui.state import StateCache

            self._cache = StateCache(self.server.settings, serving=self._serving)
        return self._cache

    async def action(self, call: Call, receive: Receive) -> Reply:
        """Promote, abort, pause or resume the rollout, or set an alias, with the admin token
        or an admin API key (``Authorization: Bearer …``; checked by the dispatcher for the
        route's ``admin`` scope); answers what was done and the resulting plan."""
        body = await json_body(call, receive, self.max_body, self.example)
        action, arguments = parse_action(body)
        with acting_as(call.key_name or "admin-token"):  # the audit trail's "who"
            done = await asyncio.to_thread(run_action, self.server.settings, action, arguments)
        holder = self.server.holder
        holder.poke_all()  # the other workers pick the change up at once, this one now
        await holder.reconcile()
        if self.published is not None:
            self.published.invalidate()
        elif self._cache is not None:
            self._cache.invalidate()
        return Reply(body=orjson.dumps(done))


CODEC = ControlRoom

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/{name}")
@router.get("", name="page")
async def page(name: str = "") -> Response:
    """The control room page (``/ui``) and the files it loads (``/ui/<file>``)."""
    shipped = assets.ROUTES.get(f"/ui/{name}" if name else "/ui")
    if shipped is None:
        raise HTTPException(404)
    return Response(
        assets.read(shipped),
        media_type=assets.content_type(shipped).decode(),
        headers={"cache-control": "no-cache"},
    )
