"""``create_app(settings)``: a thin raw-ASGI dispatcher in front of a FastAPI app.

The dispatcher answers the protocol routes itself (one dict lookup, no middleware stack,
no pydantic): that is what keeps a prediction near the cost of Python HTTP itself.
Everything else (``/docs``, ``/openapi.json``, ``/admin/*``, unknown paths) goes to FastAPI,
whose OpenAPI document also describes the hot routes from `petalops.serving.routes`.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from petalops import __version__
from petalops.config import Settings, load_settings
from petalops.errors import PetalopsError
from petalops.serving.accesslog import JsonLog
from petalops.serving.holder import RuntimeHolder
from petalops.serving.http import (
    HttpError,
    Message,
    Receive,
    Scope,
    Send,
    new_request_id,
    parse_call,
    send_response,
)
from petalops.serving.metrics import RequestMetrics, worker_exited
from petalops.serving.openapi import raw_paths
from petalops.serving.routes import admin, all_routes
from petalops.serving.server import LABEL, ApiShape, Reply, Router, Server
from petalops.serving.sidechannel import PredictionSink, SideChannel
from petalops.serving.source import ModelSource, RegistrySource

SETTINGS_ENV = "_PETALOPS_SERVE_SETTINGS"
UNMATCHED = "unmatched"
STARTUP_WAIT_SECONDS = 30.0


class PetalopsApp:
    """The ASGI application uvicorn runs."""

    def __init__(
        self, server: Server, router: Router, fallback: FastAPI, open_sink: bool = True
    ) -> None:
        self.server = server
        self.router = router
        self.fallback = fallback
        self.open_sink = open_sink
        self._background: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            candidates, params = self.router.match(scope["path"])
            if candidates is None:
                await self._fallback(scope, receive, send)
                return
            await self._hot(scope, receive, send, candidates, params)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.fallback(scope, receive, send)

    async def _hot(
        self, scope: Scope, receive: Receive, send: Send, candidates: Any, params: dict[str, str]
    ) -> None:
        server = self.server
        call = parse_call(scope, params)
        route = candidates.get(call.method)
        label = candidates[LABEL].path
        call.route = label
        if route is None:
            allowed = ", ".join(sorted(m for m in candidates if m != LABEL))
            reply = Reply(
                HttpError(
                    405, f"method {call.method} is not allowed on {label}; use {allowed}", "method"
                ).body(call.request_id),
                status=405,
                headers=[(b"allow", allowed.encode())],
            )
        else:
            messages: list[Message] = []

            async def recording() -> Message:
                message = await receive()
                messages.append(message)
                return message

            # Only a request a challenger may answer can need replaying for the champion.
            may_retry = server.holder.snapshot.challenger is not None
            reply, failure = await self._run(route, call, recording if may_retry else receive)
            if failure is not None:
                retried = await self._champion_retry(route, call, messages, failure)
                if retried is not None:
                    reply = retried
                else:
                    server.log.event(
                        "unhandled_error",
                        request_id=call.request_id,
                        route=label,
                        error=repr(failure),
                        traceback="".join(traceback.format_exception(failure)),
                    )
        headers = reply.headers
        if reply.variant:  # every prediction names the version that answered, in any protocol
            version_header = (b"x-model-version", reply.version.encode())
            headers = [version_header, *headers] if headers else [version_header]
        await send_response(
            send, reply.status, reply.body, call.request_id, reply.content_type, headers
        )
        seconds = time.perf_counter() - call.started
        server.metrics.request(label, reply.status, reply.version, reply.variant, seconds)
        server.log.request(
            call.request_id, call.method, label, reply.status, seconds, reply.version, reply.variant
        )
        if reply.rows is not None:
            server.side.predicted(call.request_id, label, reply, seconds)

    async def _run(
        self, route: Any, call: Any, receive: Receive
    ) -> tuple[Reply, BaseException | None]:
        """Run a hot handler; expected failures become their 4xx/5xx JSON reply."""
        try:
            return await route.handler(self.server, call, receive), None
        except HttpError as exc:
            return Reply(exc.body(call.request_id), status=exc.status, headers=exc.headers), None
        except PetalopsError as exc:
            body = HttpError(exc.http_status, exc.message).body(call.request_id)
            return Reply(body, status=exc.http_status), None
        except Exception as exc:
            body = HttpError(500, "internal error; see the server log for this request_id").body(
                call.request_id
            )
            return Reply(body, status=500), exc

    async def _champion_retry(
        self, route: Any, call: Any, messages: list[Message], failure: BaseException
    ) -> Reply | None:
        """A challenger that fails a request must not fail the caller: the champion answers
        it again, and the challenger's failure is logged (status 500) for the rollout
        analysis. Returns None when the failure was not the challenger's."""
        server = self.server
        snapshot = server.holder.snapshot
        challenger = snapshot.challenger
        if call.champion_only or call.model_version is not None or challenger is None:
            return None
        try:
            _, variant = snapshot.pick(call.routing_key or call.request_id)
        except Exception:
            return None
        if variant != "challenger":
            return None
        server.side.variant_failed(call.request_id, call.route, challenger, variant, failure)
        call.champion_only = True
        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        reply, again = await self._run(route, call, replay)
        return None if again is not None else reply

    async def _fallback(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI routes: still one log line, metrics and the X-Request-ID echo."""
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and 0 < len(value) <= 128:
                request_id = value.decode("latin-1")
        request_id = request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        path = scope["path"]
        known = path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect") or (
            path.startswith("/admin/")
        )
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
            await self.fallback(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.server.metrics.request(label, status, "", "", seconds)
            self.server.log.request(
                request_id, scope.get("method", ""), label, status, seconds, "", ""
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        server = self.server
        if self.open_sink and server.settings.serve.log_predictions:
            server.side.sink = open_prediction_log(server.settings, server.log)
        server.log.event(
            "worker_started", model=server.settings.model_ref, workers=server.settings.serve.workers
        )
        server.holder.start()
        self._background = start_background(server.settings, server.side.sink, server.log)
        # Take traffic once the first model is in (bounded): with several workers on one
        # socket, a cold worker would otherwise answer 503 beside ready ones.
        await server.holder.wait_first_reconcile(STARTUP_WAIT_SECONDS)

    async def shutdown(self) -> None:
        server = self.server
        await server.holder.stop()
        for worker in self._background:
            worker.stop()
        server.side.close()
        server.metrics.flush()
        server.log.event("worker_stopped")
        server.log.flush()
        worker_exited(os.getpid())


def start_background(settings: Settings, sink: Any, log: JsonLog) -> list[Any]:
    """Side jobs of a worker that never touch a request: the drift / live-quality gauges
    (with the prediction log) and, with rollout.embedded, the rollout controller (every
    worker may run one: the lease lets exactly one act)."""
    started: list[Any] = []
    store = getattr(sink, "store", None)
    if store is not None and settings.monitor.gauge_seconds > 0 and _elected(settings, "gauges"):
        try:
            from petalops.monitoring.metrics import start_gauge_refresher

            started.append(
                start_gauge_refresher(settings, store, interval=settings.monitor.gauge_seconds)
            )
        except Exception as exc:
            log.event("gauge_refresher_unavailable", error=repr(exc))
    if settings.rollout.embedded:
        try:
            from petalops.rollout.controller import start_in_background

            started.append(start_in_background(settings))
        except Exception as exc:
            log.event("embedded_controller_unavailable", error=repr(exc))
    return started


_ELECTIONS: list[Any] = []  # open lock files: the lock lasts as long as the worker


def _elected(settings: Settings, job: str) -> bool:
    """True in exactly one worker of this machine's server (an flock on a file in home).

    The drift statistics cost a burst of CPU under the worker's GIL; one worker paying it
    keeps the others' tail latency clean (the gauges are shared in multiprocess mode)."""
    import fcntl

    path = settings.home_dir / "serve" / f"{job}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    _ELECTIONS.append(handle)
    return True


def open_prediction_log(settings: Settings, log: JsonLog) -> PredictionSink | None:
    """The worker's prediction sink: under `petalops serve`, a spool the loader process
    puts in the store; else (the app run some other way, tests) a PredictionLogger that
    writes the store from a thread. The server runs without one if it fails."""
    try:
        from petalops.monitoring.spool import SPOOL_ENV

        spool = os.environ.get(SPOOL_ENV)
        sink: PredictionSink
        if spool:
            from petalops.monitoring.spool import SpoolWriter

            sink = SpoolWriter.from_settings(settings, Path(spool))
        else:
            from petalops.monitoring.logger import PredictionLogger

            sink = PredictionLogger.from_settings(settings)
        return sink
    except Exception as exc:
        log.event("prediction_log_unavailable", error=repr(exc))
        return None


def _json_error(request: Request, status: int, message: str, **extra: Any) -> JSONResponse:
    body = {
        "error": message,
        **extra,
        "request_id": request.scope.get("state", {}).get("request_id"),
    }
    return JSONResponse(body, status_code=status)


def build_fallback(server: Server, raw: Any) -> FastAPI:
    api = FastAPI(
        title="petalops model server",
        version=__version__,
        description=(
            "One model behind every protocol clients already speak: the tutorial API, "
            "petalops v1, MLflow scoring, KServe v1 and the Open Inference Protocol v2. "
            'Errors are JSON `{"error", "field", "example"}`; send `X-Request-ID` to '
            "choose the request id, `X-Model-Version` to ask a registered version."
        ),
    )
    api.state.server = server
    api.include_router(admin.router)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404:
            message = (
                f"no route {request.url.path}; see /docs for the routes (for example POST /predict)"
            )
        response = _json_error(request, exc.status_code, message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json_error(request, 400, f"{where}: {first.get('msg', 'invalid')}", field=where)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            components: dict[str, Any] = raw["components"]
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            document["paths"] = {**raw["paths"], **document.get("paths", {})}
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def create_app(
    settings: Settings,
    source: ModelSource | None = None,
    log_fd: int | None = None,
    open_sink: bool = True,
) -> PetalopsApp:
    """The whole server for one worker: routes, model holder, metrics, logs."""
    log = JsonLog(fd=log_fd, enabled=settings.serve.log_requests)
    holder = RuntimeHolder(
        source or RegistrySource(settings),
        log,
        settings.reconcile_seconds,
        trigger=settings.home_dir / "serve" / "reload",
    )
    request_metrics = RequestMetrics()
    server = Server(
        settings=settings,
        shape=ApiShape.from_settings(settings),
        holder=holder,
        metrics=request_metrics,
        log=log,
        side=SideChannel(request_metrics, log, None),
    )
    components: dict[str, Any] = {}
    routes = all_routes(server.shape, settings.serve.max_batch, components)
    raw = {"paths": raw_paths(routes, server.shape.name), "components": components}
    return PetalopsApp(server, Router(routes), build_fallback(server, raw), open_sink)


def app_from_env() -> PetalopsApp:
    """uvicorn's factory in each worker: the settings `petalops serve` resolved, as JSON."""
    payload = os.environ.get(SETTINGS_ENV)
    settings = Settings(**orjson.loads(payload)) if payload else load_settings()
    return create_app(settings)
