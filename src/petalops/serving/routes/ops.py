"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import orjson

from petalops.serving import metrics
from petalops.serving.codec import Codec, Route
from petalops.serving.http import Call, Receive
from petalops.serving.openapi import Docs, Health, Ready
from petalops.serving.reply import Reply

_LIVE = orjson.dumps({"status": "ok"})


class Operations(Codec[None]):
    """The routes an orchestrator and Prometheus call; no prediction route."""

    order = 20

    def routes(self, docs: Docs) -> list[Route]:
        ready = docs.ref(Ready)
        return [
            Route(
                method="GET",
                path="/healthz",
                handler=self.healthz,
                summary="Liveness",
                tag="operations",
                responses={200: ("Up", docs.ref(Health))},
            ),
            Route(
                method="GET",
                path="/readyz",
                handler=self.readyz,
                summary="Readiness",
                tag="operations",
                responses={200: ("Ready", ready), 503: ("Not ready", ready)},
            ),
            Route(
                method="GET",
                path="/metrics",
                handler=self.scrape,
                summary="Prometheus metrics",
                tag="operations",
                responses={200: ("Text exposition format", None)},
                text_response=True,
                # Open unless security.metrics_scope names the scope whose keys it needs.
                scope=self.server.settings.security.metrics_scope or None,
            ),
        ]

    async def healthz(self, call: Call, receive: Receive) -> Reply:
        """Liveness: 200 while the worker's event loop answers."""
        return Reply(body=_LIVE)

    async def readyz(self, call: Call, receive: Receive) -> Reply:
        """Readiness: 503 until a model is loaded, checksum-verified and warmed; then 200.

        Stays 200 when the registry becomes unreachable: the last good model keeps serving.
        """
        holder = self.server.holder
        champion = holder.snapshot.champion
        if champion is None:
            body = {"ready": False, "model_version": None, "error": holder.last_error}
            return Reply(body=orjson.dumps(body), status=503)
        body = {"ready": True, "model_version": champion.version, "error": holder.last_error}
        return Reply(body=orjson.dumps(body), version=champion.version)

    async def scrape(self, call: Call, receive: Receive) -> Reply:
        """Prometheus metrics in the text exposition format (merged across workers)."""
        self.server.metrics.flush()
        body, content_type = metrics.exposition()
        return Reply(body=body, content_type=content_type.encode())


CODEC = Operations
