"""``create_app(settings)``: a thin raw-ASGI front in front of a FastAPI app.

The hot routes (every codec's, found under `petalops.serving.routes`) are answered by
`petalops.serving.dispatcher.Dispatcher` itself: one dict lookup, no middleware stack, no
pydantic. That is what keeps a prediction near the cost of Python HTTP itself. Everything
else (``/docs``, ``/openapi.json``, ``/admin/*``, unknown paths) goes to FastAPI
(`petalops.serving.fallback`), whose OpenAPI document also describes the hot routes.
"""

from __future__ import annotations

import fcntl
import gc
import os
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson

from petalops.config import Settings, load_settings
from petalops.data.schema import Schema
from petalops.monitoring.metrics import start_gauge_refresher
from petalops.monitoring.sink import PredictionSink
from petalops.monitoring.spool import SPOOL_ENV, SpoolWriter, gauges_in_loader
from petalops.serving import routes
from petalops.serving.accesslog import JsonLog
from petalops.serving.codec import Codec
from petalops.serving.dispatcher import Dispatcher
from petalops.serving.fallback import Fallback, HotDocument, build_api
from petalops.serving.guard import KeyGuard
from petalops.serving.holder import RuntimeHolder
from petalops.serving.http import Exchange, Receive, Scope, Send
from petalops.serving.inputquality import InputQuality
from petalops.serving.lifeline import follow_parent
from petalops.serving.metrics import RequestMetrics, use_worker_files, worker_exited
from petalops.serving.openapi import Docs, paths
from petalops.serving.router import Router
from petalops.serving.server import Server
from petalops.serving.shape import ApiShape
from petalops.serving.sidechannel import SideChannel
from petalops.serving.source import ModelSource, RegistrySource

SETTINGS_ENV = "_PETALOPS_SERVE_SETTINGS"
STARTUP_WAIT_SECONDS = 30.0


class PetalopsApp:
    """The ASGI application uvicorn runs."""

    def __init__(
        self, server: Server, router: Router, fallback: Fallback, open_sink: bool = True
    ) -> None:
        self.server = server
        self.router = router
        self.fallback = fallback
        self.open_sink = open_sink
        dispatcher = Dispatcher(server)
        self.dispatch = dispatcher.dispatch
        self._answer_now = dispatcher.answer_now
        self._background: list[Any] = []

    def answer_now(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], exchange: Exchange
    ) -> Coroutine[Any, Any, None] | None:
        """For a request that arrived whole, the coroutine that answers it through
        ``exchange`` (its body and its one write) without waiting, and without an ASGI
        scope, cycle or task; None, having done nothing, when it has to go through ASGI
        (`Dispatcher.answer_now`). The server asks it of the hot routes' requests
        (`petalops.serving.protocol`)."""
        endpoint, params = self.router.match(path)
        if endpoint is None:
            return None
        return self._answer_now(endpoint, params, method, path, headers, exchange)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            endpoint, params = self.router.match(scope["path"])
            if endpoint is None:
                await self.fallback(scope, receive, send)
                return
            await self.dispatch(scope, receive, send, endpoint, params)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.fallback.api(scope, receive, send)

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
        # The keys before the first request: until they are in, guarded routes answer 503.
        await server.keys.refresh()
        server.keys.start()
        self._background = start_background(server.settings, server.side.sink, server.log)
        # Take traffic once the first model is in (bounded): with several workers on one
        # socket, a cold worker would otherwise answer 503 beside ready ones.
        await server.holder.wait_first_reconcile(STARTUP_WAIT_SECONDS)
        # Everything alive now (modules, the model, FastAPI's routes: ~10^5 objects) lives as
        # long as the worker: out of the collector's sight, a full collection under load
        # walks only what requests left behind (see docs/serving.md, "Performance").
        gc.freeze()

    async def shutdown(self) -> None:
        server = self.server
        await server.holder.stop()
        await server.keys.stop()
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
    if (
        store is not None
        and settings.monitor.gauge_seconds > 0
        and not gauges_in_loader(os.environ)  # `petalops serve`'s loader refreshes them
        and _elected(settings, "gauges")
    ):
        try:
            started.append(
                start_gauge_refresher(settings, store, interval=settings.monitor.gauge_seconds)
            )
        except Exception as exc:
            log.event("gauge_refresher_unavailable", error=repr(exc))
    if settings.rollout.embedded:
        try:
            # Imported here: the controller's store brings SQLAlchemy (~300 ms measured),
            # which only a worker with rollout.embedded needs.
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
        spool = os.environ.get(SPOOL_ENV)
        sink: PredictionSink
        if spool:
            sink = SpoolWriter.from_settings(settings, Path(spool))
        else:
            # Imported here: it brings SQLAlchemy (~300 ms measured), which a worker that
            # spools (every worker under `petalops serve`) never needs.
            from petalops.monitoring.logger import PredictionLogger

            sink = PredictionLogger.from_settings(settings)
        return sink
    except Exception as exc:
        log.event("prediction_log_unavailable", error=repr(exc))
        return None


def create_app(
    settings: Settings,
    source: ModelSource | None = None,
    log_fd: int | None = None,
    open_sink: bool = True,
    codecs: Sequence[type[Codec[Any]]] = (),
) -> PetalopsApp:
    """The whole server for one worker: routes, model holder, metrics, logs.

    Serves every codec under `petalops.serving.routes`, and ``codecs`` beside them (a
    protocol defined elsewhere, for example in a test).
    """
    log = JsonLog(fd=log_fd, enabled=settings.serve.log_requests)
    holder = RuntimeHolder(
        source or RegistrySource(settings),
        log,
        settings.reconcile_seconds,
        trigger=settings.home_dir / "serve" / "reload",
    )
    request_metrics = RequestMetrics()
    shape = ApiShape.from_settings(settings)
    quality = InputQuality.from_settings(settings, request_metrics, shape.features)
    server = Server(
        settings=settings,
        shape=shape,
        holder=holder,
        metrics=request_metrics,
        log=log,
        side=SideChannel(request_metrics, log, None, quality),
        keys=KeyGuard(settings, request_metrics),
    )
    shipped, routers = routes.shipped()
    # Stable: codecs of one order keep the package's (alphabetical) order, extras last.
    ordered = sorted([*shipped, *codecs], key=lambda codec: codec.order)
    answering = [codec(server) for codec in ordered]
    docs = Docs(server.shape, settings.serve.max_batch)
    table = [route for codec in answering for route in codec.routes(docs)]

    def document(schema: Schema | None) -> HotDocument:
        # The routes described again for the served model's schema; only the router's
        # table (above) answers requests.
        described = Docs(server.shape, settings.serve.max_batch, schema)
        table = [route for codec in answering for route in codec.routes(described)]
        return paths(table, server.shape.name), described.components

    api = build_api(server, routers, document)
    return PetalopsApp(server, Router(table), Fallback(server, api), open_sink)


def app_from_env() -> PetalopsApp:
    """uvicorn's factory in each worker: the settings `petalops serve` resolved, as JSON."""
    follow_parent()  # a worker of `petalops serve --workers N` dies with its parent
    use_worker_files()  # forked from that parent: its metrics onto this worker's files
    payload = os.environ.get(SETTINGS_ENV)
    settings = Settings(**orjson.loads(payload)) if payload else load_settings()
    return create_app(settings)
