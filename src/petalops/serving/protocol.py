"""uvicorn's httptools protocol, sending each small response in one write instead of two,
and guarding the worker against slow and abusive clients.

uvicorn writes the header block on ``http.response.start`` and the body on
``http.response.body``: two ``send`` syscalls (and two TCP segments) per response, about a
third of a worker's time on the prediction routes. Here the header block is held until the
body arrives and both go out in one write. Nothing is held past the end of a response:
100-continue goes out at once, and the end of every response (and ``close``) flushes.

uvicorn has a keep-alive timeout (``serve.keep_alive_seconds`` is passed to it) but no
header or body timeout, and its ``limit_concurrency`` answers a bare text 503 without
Retry-After. Here, per worker (``serve.*`` settings, see `Limits`):

* a connection whose header block is not in within ``header_timeout_seconds`` is closed;
* a request whose body (per its Content-Length) is not in within ``body_timeout_seconds``
  is answered 408 and its connection closed;
* past ``max_connections`` open connections, or ``max_in_flight`` requests being served,
  a request is answered 503 with Retry-After (load shedding) without reaching the app;
* with ``request_deadline_seconds``, a request not answered by then is answered 503.

Timers are armed only when a read ends part-way through a request, so a request that
arrives in one read (nearly all of them) costs no timer at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_STATUS_LINE = b"HTTP/1.1 "


class CoalescingTransport:
    """A transport proxy that joins a response's header block with the write after it."""

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held + bytes(data))
        elif (
            isinstance(data, bytes)
            and data.startswith(_STATUS_LINE)
            and data.endswith(b"\r\n\r\n")
            and data[9:10] != b"1"  # 1xx (100-continue) must reach the client now
        ):
            self._held = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True)
class Limits:
    """One worker's limits on its clients (the ``serve.*`` settings of the same names)."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0
    max_connections: int = 1000
    max_in_flight: int = 256
    deadline_seconds: float | None = None
    retry_after: int = 1

    @classmethod
    def of(cls, app: Any) -> Limits:
        """The limits in the settings of the app uvicorn loaded (`PetalopsApp`, perhaps
        inside a middleware); the defaults for any other app."""
        for _ in range(4):
            serve = getattr(getattr(getattr(app, "server", None), "settings", None), "serve", None)
            if serve is not None:
                return cls(
                    header_seconds=serve.header_timeout_seconds,
                    body_seconds=serve.body_timeout_seconds,
                    max_connections=serve.max_connections,
                    max_in_flight=serve.max_in_flight,
                    deadline_seconds=serve.request_deadline_seconds,
                )
            app = getattr(app, "app", None)
            if app is None:
                break
        return cls()


def _answer(status: int, reason: bytes, message: str, retry_after: int | None) -> bytes:
    body = orjson.dumps({"error": message})
    head = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def shed(message: str, retry_after: int) -> App:
    """An ASGI app answering 503 + Retry-After and closing: the request never reaches the
    model (nor reads its body)."""
    body = orjson.dumps({"error": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"connection", b"close"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def with_deadline(app: App, seconds: float, retry_after: int) -> App:
    """``app`` with every HTTP request bounded by ``seconds``: one still running then is
    cancelled and answered 503 (if its answer had not started; else its connection closes)."""
    message = (
        f"the request was not answered within serve.request_deadline_seconds={seconds:g}; "
        "retry, or raise the setting"
    )
    late = shed(message, retry_after)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = False

        async def tracked(event: Message) -> None:
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await asyncio.wait_for(app(scope, receive, tracked), seconds)
        except TimeoutError:
            if started:
                raise
            await late(scope, receive, send)

    return guarded


_HEADERS, _BODY, _IDLE = 0, 1, 2


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through a `CoalescingTransport`, with `Limits`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = Limits.of(self.app)
        self.limits = limits
        if limits.deadline_seconds is not None:
            self.app = with_deadline(self.app, limits.deadline_seconds, limits.retry_after)
        self._phase = _HEADERS  # a new connection owes its first header block
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = _IDLE
        self._over_capacity = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        self._over_capacity = len(self.connections) > self.limits.max_connections
        self._arm(_HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Only a read that ends inside a request leaves something to time.
        if self._phase != self._timer_phase:
            self._disarm()
            if self._phase != _IDLE and not self.transport.is_closing():
                self._arm(self._phase)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEADERS

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        reason = self._shed_reason()
        if reason is None:
            super().on_headers_complete()
            return
        app, self.app = self.app, shed(reason, self.limits.retry_after)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        flush = getattr(self.transport, "flush", None)
        if flush is not None:
            flush()  # a body-less response (HEAD, 204, 304) has nothing to join with
        super().on_response_complete()

    # -- limits ---------------------------------------------------------------------------

    def _shed_reason(self) -> str | None:
        if self._over_capacity:
            return (
                f"this worker has more than serve.max_connections="
                f"{self.limits.max_connections} open connections; retry after the "
                "Retry-After seconds"
            )
        if len(self.tasks) >= self.limits.max_in_flight:
            return (
                f"this worker is serving serve.max_in_flight={self.limits.max_in_flight} "
                "requests already; retry after the Retry-After seconds"
            )
        return None

    def _arm(self, phase: int) -> None:
        seconds = self.limits.header_seconds if phase == _HEADERS else self.limits.body_seconds
        self._timer = self.loop.call_later(seconds, self._timed_out, phase)
        self._timer_phase = phase

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_phase = _IDLE

    def _timed_out(self, phase: int) -> None:
        self._timer = None
        self._timer_phase = _IDLE
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if phase == _BODY and cycle is not None and not cycle.response_started:
            seconds = self.limits.body_seconds
            self.transport.write(
                _answer(
                    408,
                    b"Request Timeout",
                    f"the request body did not arrive within serve.body_timeout_seconds="
                    f"{seconds:g} (fewer bytes than its Content-Length?)",
                    None,
                )
            )
            # The app waiting for the body sees a disconnect at once.
            cycle.response_started = cycle.response_complete = True
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
