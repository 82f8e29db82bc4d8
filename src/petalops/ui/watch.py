"""The control room alone, for a host that only watches (`petalops ui --control-room`).

The same page, state document and guarded actions as ``/ui`` under `petalops serve`,
without a model: it reads the registry and the monitoring database the settings name (a
shared MLflow server and PostgreSQL in production). What each version's checksum status
can say is then ``registered`` at most: no bundle is loaded here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from petalops.config import Settings
from petalops.errors import NotFoundError, PetalopsError
from petalops.ui import assets
from petalops.ui.actions import ActionError, check_token, parse_action, parse_body, run_action
from petalops.ui.state import StateCache

# The request body an action may have (the same limit as the server's default).
MAX_BODY = 64 * 1024


def create_watch_app(settings: Settings) -> FastAPI:
    """The watch-only control room: ``/ui``, ``/ui/state``, ``/ui/actions``."""
    cache = StateCache(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        cache.close()

    api = FastAPI(title="petalops control room", docs_url=None, redoc_url=None, lifespan=lifespan)

    @api.exception_handler(PetalopsError)
    async def refused(request: Request, exc: PetalopsError) -> JSONResponse:
        headers = {k.decode(): v.decode() for k, v in getattr(exc, "headers", None) or []}
        document: dict[str, Any] = {"error": exc.message}
        if exc.field is not None:
            document["field"] = exc.field
        if getattr(exc, "example", None) is not None:
            document["example"] = exc.example  # type: ignore[attr-defined]
        return JSONResponse(document, exc.http_status, headers=headers)

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    @api.get("/ui/state")
    async def state() -> Response:
        return Response(
            await cache.get(), media_type="application/json", headers={"cache-control": "no-store"}
        )

    @api.post("/ui/actions")
    async def action(request: Request) -> Response:
        check_token(settings, request.headers.get("authorization", ""))
        body = await request.body()
        if len(body) > MAX_BODY:
            raise ActionError(413, f"the body is over {MAX_BODY} bytes")
        action, arguments = parse_action(parse_body(body))
        done: dict[str, Any] = await asyncio.to_thread(run_action, settings, action, arguments)
        cache.invalidate()
        return Response(orjson.dumps(done), media_type="application/json")

    @api.get("/ui/{name}")
    @api.get("/ui")
    async def page(name: str = "") -> Response:
        shipped = assets.ROUTES.get(f"/ui/{name}" if name else "/ui")
        if shipped is None:
            raise NotFoundError(f"no file /ui/{name}; the page is at /ui")
        return Response(
            assets.read(shipped),
            media_type=assets.content_type(shipped).decode(),
            headers={"cache-control": "no-cache"},
        )

    return api
