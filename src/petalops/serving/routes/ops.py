"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import orjson

from petalops.serving import metrics
from petalops.serving.http import Call, Receive
from petalops.serving.server import Reply, Server

_LIVE = orjson.dumps({"status": "ok"})


async def healthz(server: Server, call: Call, receive: Receive) -> Reply:
    """Liveness: 200 while the worker's event loop answers."""
    return Reply(_LIVE)


async def readyz(server: Server, call: Call, receive: Receive) -> Reply:
    """Readiness: 503 until a model is loaded, checksum-verified and warmed; then 200.

    Stays 200 when the registry becomes unreachable: the last good model keeps serving.
    """
    holder = server.holder
    champion = holder.snapshot.champion
    if champion is None:
        body = {"ready": False, "model_version": None, "error": holder.last_error}
        return Reply(orjson.dumps(body), status=503)
    body = {"ready": True, "model_version": champion.version, "error": holder.last_error}
    return Reply(orjson.dumps(body), version=champion.version)


async def scrape(server: Server, call: Call, receive: Receive) -> Reply:
    """Prometheus metrics in the text exposition format (merged across workers)."""
    server.metrics.flush()
    body, content_type = metrics.exposition()
    return Reply(body, content_type=content_type.encode())
