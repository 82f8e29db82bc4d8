"""Admin routes (FastAPI, off the hot path): reload from the registry, status.

They need ``Authorization: Bearer <PETALOPS_ADMIN_TOKEN>``, compared in constant time;
with no token configured they are disabled (403), never open.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from petalops.serving.server import Server

router = APIRouter(prefix="/admin", tags=["admin"])
# The example value shipped in .env.example and the k8s Secret: never a real secret.
DEFAULT_ADMIN_TOKEN = "change-me"


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


def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def require_admin(request: Request, server: Annotated[Server, Depends(get_server)]) -> Server:
    token = server.settings.admin_token
    if not token:
        raise HTTPException(
            403, "admin routes are disabled: set PETALOPS_ADMIN_TOKEN to enable them"
        )
    if token == DEFAULT_ADMIN_TOKEN:
        raise HTTPException(
            403,
            f"admin routes are disabled: PETALOPS_ADMIN_TOKEN is the shipped example "
            f"{DEFAULT_ADMIN_TOKEN!r}; set it to a secret of your own",
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise HTTPException(
            401,
            "missing or wrong admin token; send 'Authorization: Bearer <PETALOPS_ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return server


AdminServer = Annotated[Server, Depends(require_admin)]


def _status(server: Server) -> AdminStatus:
    return AdminStatus(
        pid=os.getpid(), side_channel_failures=server.side.failures, **server.holder.status()
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
