"""Admin routes (FastAPI, off the hot path): reload from the registry, status, the audit
trail.

They need ``Authorization: Bearer <PETALOPS_ADMIN_TOKEN>`` or an admin API key (``Bearer``
or ``X-API-Key``), compared in constant time; with neither configured they are disabled
(403), never open.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from petalops.security import audit
from petalops.serving.guard import DEFAULT_ADMIN_TOKEN
from petalops.serving.http import Call, HttpError
from petalops.serving.server import Server

__all__ = ["DEFAULT_ADMIN_TOKEN", "router"]  # the token's shipped example, kept importable

router = APIRouter(prefix="/admin", tags=["admin"])


class AdminStatus(BaseModel):
    pid: int
    ready: bool
    origin: str | None
    serving: dict[str, Any]
    pinned: list[str]
    last_reconcile: float | None
    last_error: str | None
    reconciles: int
    side_channel_failures: int
    api_keys: dict[str, Any]


def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def require_admin(request: Request, server: Annotated[Server, Depends(get_server)]) -> Server:
    """The admin token or an admin API key (`petalops.serving.guard.KeyGuard.admin`);
    the actor goes on ``request.state.actor`` for the audit trail."""
    call = Call(request.method, request.url.path, {}, "", 0.0)
    call.authorization = (request.headers.get("authorization") or "").encode("latin-1")
    call.api_key = (request.headers.get("x-api-key") or "").encode("latin-1")
    try:
        request.state.actor = server.keys.admin(call)
    except HttpError as exc:
        headers = {name.decode(): value.decode() for name, value in exc.headers}
        raise HTTPException(exc.http_status, exc.message, headers=headers or None) from None
    return server


AdminServer = Annotated[Server, Depends(require_admin)]


def _status(server: Server) -> AdminStatus:
    return AdminStatus(
        pid=os.getpid(),
        side_channel_failures=server.side.failures,
        api_keys=server.keys.status(),
        **server.holder.status(),
    )


@router.post("/reload", response_model=AdminStatus, responses={401: {}, 403: {}})
async def reload(server: AdminServer) -> AdminStatus:
    """Reconcile with the registry now: this worker at once, the others within 0.25 s.

    The new version is loaded, checksum-verified and warmed before the swap; on failure
    the last good version keeps serving and `last_error` says why.
    """
    server.holder.poke_all()
    await server.holder.reconcile()
    return _status(server)


@router.get("/status", response_model=AdminStatus, responses={401: {}, 403: {}})
async def status(server: AdminServer) -> AdminStatus:
    """What this worker serves, the traffic policy and the last reconciliation."""
    return _status(server)


class AuditEvent(BaseModel):
    id: int
    ts: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    detail: str


class AuditTrail(BaseModel):
    events: list[AuditEvent]


@router.get(
    "/audit",
    response_model=AuditTrail,
    responses={400: {"description": "`limit` or `action` out of range"}, 401: {}, 403: {}},
)
async def audit_trail(
    server: AdminServer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    action: Annotated[str | None, Query(pattern=r"^[a-z][a-z._]{0,63}$")] = None,
) -> AuditTrail:
    """The newest admin actions, oldest first: alias moves, rollout commands, key changes,
    each with its time, who acted (an API key's name) and the state before and after.
    ``action`` keeps one action (``alias.set``) or one family (``rollout``)."""
    events = await asyncio.to_thread(audit.entries, server.settings, limit, action)
    return AuditTrail(events=[AuditEvent(**event) for event in events])
