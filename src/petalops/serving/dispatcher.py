"""The one request path of every hot route, whatever its protocol.

A prediction goes read → choose → decode → predict → encode → send → metrics, request log,
side channel, with the codec supplying only read/decode/encode. A failure the codec or the
model raises on purpose (`petalops.errors.PetalopsError`, `HttpError`) is answered with the
status its class carries; any other failure of a challenger is answered again by the
champion, so a bad challenger never fails a caller; anything else is a plain 500 with the
traceback in the log. The path is written out flat, without helpers per step: it runs
thousands of times a second (see bench/dispatch_cost.py).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Coroutine
from typing import Any

from petalops.errors import PetalopsError
from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import (
    JSON,
    Call,
    Exchange,
    HttpError,
    Message,
    Receive,
    Scope,
    Send,
    new_call,
    parse_call,
    send_response,
)
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.router import Endpoint
from petalops.serving.rows import predict_rows
from petalops.serving.server import Server

CHALLENGER = "challenger"


class Dispatcher:
    """Answers the requests of one worker's hot routes."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def dispatch(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint, params: dict[str, str]
    ) -> Coroutine[Any, Any, None]:
        """Answer one request on ``endpoint`` (what the router matched for its path): `answer`'s
        coroutine, handed back to be awaited (not awaited in one more coroutine here)."""
        return self.answer(parse_call(scope, params), receive, send, endpoint)

    def answer_now(
        self,
        endpoint: Endpoint,
        params: dict[str, str],
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        exchange: Exchange,
    ) -> Coroutine[Any, Any, None] | None:
        """`answer`'s coroutine for a prediction whose whole body is in ``exchange``, to
        answer it through ``exchange`` without the event loop: what
        `petalops.serving.protocol` asks of a hot request that arrived whole, instead of an
        ASGI request cycle and a task. Nothing on that path waits once the body is in and
        no version has to be loaded. None, having done nothing, for a request that might
        wait (any route but a prediction's, or one naming a version, which may have to be
        loaded): the server runs that one as ASGI."""
        route = endpoint.methods.get(method)
        if route is None or route.codec is None or route.versioned:
            return None
        call = new_call(method, path, params, headers, exchange)
        if call.model_version is not None:
            return None
        return self.answer(call, _no_receive, _no_send, endpoint)

    async def answer(self, call: Call, receive: Receive, send: Send, endpoint: Endpoint) -> None:
        """Answer ``call``, a request on ``endpoint``."""
        label = call.route = endpoint.label
        route = endpoint.methods.get(call.method)
        if route is None:
            allowed = endpoint.allowed
            refusal = HttpError(
                405,
                f"method {call.method} is not allowed on {label}; use {allowed}",
                "method",
                headers=[(b"allow", allowed.encode())],
            )
            await self._send(call, send, Reply.error(refusal, call.request_id))
            return
        needed = route.scope
        if needed is not None:
            keys = self.server.keys
            # One set lookup when no key of the scope exists (the common local case).
            if needed == "admin" or needed in keys.guarded:
                try:
                    if needed == "admin":
                        keys.admin(call)
                    else:
                        keys.check(call, needed)
                except PetalopsError as exc:
                    await self._send(call, send, Reply.error(exc, call.request_id))
                    return
        codec = route.codec
        if codec is not None:
            await self._predict(route, codec, call, receive, send)
            return
        handler = route.handler
        assert handler is not None  # a Route has a codec or a handler (checked when built)
        try:
            reply = await handler(call, receive)
        except PetalopsError as exc:
            reply = Reply.error(exc, call.request_id)
        except Exception as exc:
            self._unhandled(call, exc)
            reply = Reply.internal(call.request_id)
        await self._send(call, send, reply)

    async def _predict(
        self, route: Route, codec: Codec[Any], call: Call, receive: Receive, send: Send
    ) -> None:
        server = self.server
        version = call.params["version"] if route.versioned else None
        variant = ""
        served: Served | None = None
        try:
            request = await codec.read(call, receive)
            snapshot, served, variant = await server.choose(call, version)
            rows = codec.decode(request, served)
            labels, probas = predict_rows(served.runtime, rows)
            prediction = Prediction(snapshot, served, variant, rows, labels, probas)
            answer = codec.encode(request, prediction, call)
        except PetalopsError as exc:
            await self._send(call, send, Reply.error(exc, call.request_id))
            seconds = time.perf_counter() - call.started
            server.side.refused(call.request_id, call.route, served, variant, exc, seconds)
            return
        except Exception as exc:
            retried = None
            if (
                variant == CHALLENGER
                and served is not None
                and version is None
                and call.model_version is None
            ):
                retried = await self._champion_retry(codec, request, call, served, exc)
            if retried is None:
                self._unhandled(call, exc)
                await self._send(call, send, Reply.internal(call.request_id))
                return
            if isinstance(retried, Reply):
                await self._send(call, send, retried)
                return
            prediction, answer = retried
        if isinstance(answer, Reply):
            body, status, content_type = answer.body, answer.status, answer.content_type
            extra = answer.headers
        else:
            body, status, content_type, extra = answer, 200, JSON, None
        served = prediction.served
        variant = prediction.variant
        model_version = served.version
        request_id = call.request_id
        # Every prediction names the version that answered, in any protocol.
        headers = [
            (b"content-type", content_type),
            (b"content-length", b"%d" % len(body)),
            (b"x-request-id", request_id.encode("latin-1")),
            (b"x-model-version", model_version.encode()),
        ]
        if extra:
            headers.extend(extra)
        exchange = call.exchange
        if exchange is None or not exchange.respond(status, headers, body):
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - call.started
        label = call.route
        server.metrics.request(label, status, model_version, variant, seconds)
        server.log.request(request_id, call.method, label, status, seconds, model_version, variant)
        server.side.predicted(request_id, label, prediction, seconds)

    async def _champion_retry(
        self, codec: Codec[Any], request: Any, call: Call, served: Served, failure: Exception
    ) -> tuple[Prediction, bytes | Reply] | Reply | None:
        """A challenger that fails a request must not fail the caller: the champion answers
        the same request again, and the challenger's failure is logged (status 500) for the
        rollout analysis. None when the champion fails it too (the caller gets the 500)."""
        server = self.server
        server.side.variant_failed(call.request_id, call.route, served, CHALLENGER, failure)
        call.champion_only = True
        try:
            snapshot, champion, variant = await server.choose(call)
            rows = codec.decode(request, champion)
            labels, probas = predict_rows(champion.runtime, rows)
            prediction = Prediction(snapshot, champion, variant, rows, labels, probas)
            return prediction, codec.encode(request, prediction, call)
        except PetalopsError as exc:
            return Reply.error(exc, call.request_id)
        except Exception:
            return None

    async def _send(self, call: Call, send: Send, reply: Reply) -> None:
        """Send a plain answer (no prediction), count it and log it."""
        server = self.server
        await send_response(
            send,
            reply.status,
            reply.body,
            call.request_id,
            reply.content_type,
            reply.headers,
            call.exchange,
        )
        seconds = time.perf_counter() - call.started
        server.metrics.request(call.route, reply.status, reply.version, "", seconds)
        server.log.request(
            call.request_id, call.method, call.route, reply.status, seconds, reply.version, ""
        )

    def _unhandled(self, call: Call, failure: BaseException) -> None:
        self.server.log.event(
            "unhandled_error",
            request_id=call.request_id,
            route=call.route,
            error=repr(failure),
            traceback="".join(traceback.format_exception(failure)),
        )


async def _no_receive() -> Message:
    raise RuntimeError("a request answered directly has its whole body in its exchange")


async def _no_send(message: Message) -> None:
    raise RuntimeError("a request answered directly answers through its exchange")
