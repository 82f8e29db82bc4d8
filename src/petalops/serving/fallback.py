"""The FastAPI app behind the hot routes: ``/docs``, ``/openapi.json``, ``/admin/*``, the
control room's page (``/ui``) and unknown paths, with the OpenAPI document describing the
hot routes too.

``/docs`` is Swagger UI 5 (npm ``swagger-ui-dist``, vendored into the package by `make
vendor-ui`), served from the installed files (``/docs/static/*``): it works offline, where
FastAPI's default loads it from a CDN and stays blank. ``/redoc`` is not served (ReDoc
would be a second vendored copy of the same document's viewer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from petalops import __version__
from petalops.data.schema import Schema
from petalops.errors import PetalopsError
from petalops.serving.http import (
    HttpError,
    Message,
    Receive,
    Scope,
    Send,
    error_document,
    new_request_id,
)
from petalops.serving.server import Server
from petalops.ui import assets

# The hot routes' OpenAPI ``paths`` and ``components.schemas``, for a model's data schema.
HotDocument = tuple[dict[str, Any], dict[str, Any]]
UNMATCHED = "unmatched"
_KNOWN = ("/docs", "/openapi.json", "/docs/oauth2-redirect")
SWAGGER_STATIC = "/docs/static"


class Fallback:
    """The FastAPI app, wrapped so its requests still get one log line, metrics and the
    X-Request-ID echo."""

    def __init__(self, server: Server, api: FastAPI) -> None:
        self.server = server
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and 0 < len(value) <= 128:
                request_id = value.decode("latin-1")
        request_id = request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        path = scope["path"]
        # Labels stay few: any other path is "unmatched" (no label per scanned URL).
        known = path in _KNOWN or path in assets.ROUTES or path.startswith("/admin/")
        if path.startswith(SWAGGER_STATIC + "/"):
            known, path = True, SWAGGER_STATIC  # one label for Swagger UI's files
        label = path if known else UNMATCHED

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.api(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.server.metrics.request(label, status, "", "", seconds)
            self.server.log.request(
                request_id, scope.get("method", ""), label, status, seconds, "", ""
            )


def _error(request: Request, error: PetalopsError) -> JSONResponse:
    """The same JSON error answer as the hot routes', with the status its class carries."""
    request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse(error_document(error, request_id), status_code=error.http_status)


def build_api(
    server: Server,
    routers: Sequence[APIRouter],
    hot_document: Callable[[Schema | None], HotDocument],
) -> FastAPI:
    """The FastAPI app: ``routers`` mounted, errors as JSON, OpenAPI for every route.

    The hot routes are described by ``hot_document`` for the data schema of the champion
    being served (numbers named by the settings before a model is loaded); the document is
    built again when another version becomes champion."""
    api = FastAPI(
        title="petalops model server",
        version=__version__,
        description=(
            "One model behind every protocol clients already speak: the tutorial API, "
            "petalops v1, MLflow scoring, KServe v1 and the Open Inference Protocol v2. "
            'Errors are JSON `{"error", "field", "example"}`; send `X-Request-ID` to '
            "choose the request id, `X-Model-Version` to ask a registered version."
        ),
        docs_url=None,
        redoc_url=None,
    )
    api.state.server = server
    api.mount(SWAGGER_STATIC, StaticFiles(directory=assets.swagger_dir()), name="swagger-ui")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_STATIC}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    for router in routers:
        api.include_router(router)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404:
            message = (
                f"no route {request.url.path}; see /docs for the routes (for example POST /predict)"
            )
        response = _error(request, HttpError(exc.status_code, message))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(request, HttpError(400, f"{where}: {first.get('msg', 'invalid')}", where))

    @api.exception_handler(PetalopsError)
    async def refused(request: Request, exc: PetalopsError) -> JSONResponse:
        return _error(request, exc)

    described: list[Any] = [()]  # the champion (version, digest) the cached document describes

    def openapi() -> dict[str, Any]:
        champion = server.holder.snapshot.champion
        key = None if champion is None else (champion.version, champion.sha256)
        if api.openapi_schema is None or described[0] != key:
            schema = None if champion is None else champion.runtime.schema
            hot_paths, components = hot_document(schema)
            document = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            document["paths"] = {**hot_paths, **document.get("paths", {})}
            api.openapi_schema = document
            described[0] = key
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api
