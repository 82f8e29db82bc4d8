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
arrives in one read (nearly all of them) costs no timer at all; the keep-alive timeout is a
deadline a once-a-second sweep reads (`KeepAliveSweeper`), not uvicorn's timer per answer.

A hot route's request that arrives whole (its body in the read that completes its head,
nearly every prediction) is answered without ASGI: the app's ``answer_now``
(`petalops.serving.app.PetalopsApp.answer_now`) takes it in that read and hands back the
coroutine that answers it through a `DirectExchange`, which runs on the loop's next turn
(`loop.call_soon`, in order, in a copy of the context, as a task's first step would run):
no ASGI scope, no request cycle, no task, no ASGI call chain. That is ~37,000 of the
~224,000 instructions a `/predict` cost in process (bench/dispatch_cost.py, http row:
223,878 before, 186,582 after), and 13 % less CPU a request in a worker on a core of its
own (docs/serving.md, Round 6). Answered inside the read instead (6,000 instructions
fewer still), it was no faster than the ASGI path on a real server: the loop then
answers each connection before reading the next one. Whatever might wait goes through
ASGI as before, with uvicorn's own scope and cycle: the app declines a request it cannot
finish without waiting (naming a version, which may have to be loaded; any route but a
prediction's), and the protocol hands to ASGI a body that is not all in after a read or
passes uvicorn's high-water mark, a request expecting 100-continue or asking to upgrade,
one behind a request still being answered through ASGI (pipelining keeps its order), and
every request while the socket's buffer is full. A direct answer that fails (or waits,
which nothing on its path does) is logged and answered 500, as uvicorn answers a failed
app; a graceful shutdown lets the direct answers already taken go out first.

A hot request that goes through ASGI carries an `Exchange` (``scope["extensions"]``, see
`petalops.serving.http.EXCHANGE`): the dispatcher takes the body from it once it is all
in and sends the whole answer through it in one write, without ASGI's message dicts and
uvicorn's per-header checks. Everything else about the request is uvicorn's: its task,
its cycle, its 500 and keep-alive handling.

Tried before, and superseded by the direct answer: running a hot request right in the
read that completed its body, still with its cycle and scope, up to its first wait. It
saved only the task (215,659 instructions a request against 223,915), and it answered
inside the read: no more requests a second on a real server in six rotated rounds of
bench/serve.py (docs/serving.md, Round 5).
"""

from __future__ import annotations

import asyncio
import contextvars
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from petalops.serving.http import EXCHANGE

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

    # Called for every request: spelled out, not through __getattr__.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    @property
    def raw(self) -> asyncio.Transport:
        return self._transport

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


def hot_paths(app: Any) -> Callable[[str], bool] | None:
    """Whether a path is one of the app's hot routes (`PetalopsApp`'s router, perhaps inside
    uvicorn's middleware); None for any other app."""
    for _ in range(4):
        router = getattr(app, "router", None)
        match = getattr(router, "match", None)
        if callable(match) and hasattr(router, "exact"):
            return lambda path: match(path)[0] is not None
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


AnswerNow = Callable[[str, str, list[tuple[bytes, bytes]], Any], Coroutine[Any, Any, None] | None]
_FAILED = object()  # an answer_now that raised: a 500 in its turn


def run_now(answer: Coroutine[Any, Any, None]) -> None:
    """Run a direct answer (`DirectExchange`) to its end: it never waits (its body is in and
    its answer goes out through its exchange). One that does wait is failed where it
    waits (RuntimeError), which the app answers 500 with the traceback in its log: never
    left hanging."""
    try:
        answer.send(None)
    except StopIteration:
        return
    try:
        answer.throw(RuntimeError("a direct answer waited: nothing on its path may"))
    except StopIteration:
        return
    answer.close()
    raise RuntimeError("a direct answer waited, and again when it was failed")


def direct_answers(app: Any) -> AnswerNow | None:
    """The app's ``answer_now`` (`PetalopsApp.answer_now`, perhaps inside uvicorn's
    middleware): given a hot request that arrived whole, the coroutine that answers it
    through its `DirectExchange` without waiting, or None (declined, nothing done); None
    for any other app."""
    for _ in range(4):
        answer_now = getattr(app, "answer_now", None)
        if callable(answer_now):
            return answer_now  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


class DirectRequest:
    """A hot request being answered without ASGI: what its head said, and its body so far."""

    __slots__ = ("body", "keep_alive", "method", "path")

    def __init__(self, method: str, path: str, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.keep_alive = keep_alive
        self.body = b""


class DirectExchange:
    """The `petalops.serving.http.Exchange` of a request answered without ASGI: its whole
    body, and its answer written at once (as `Exchange.respond` writes one)."""

    __slots__ = ("_protocol", "_request")

    def __init__(self, protocol: CoalescingHttpToolsProtocol, request: DirectRequest) -> None:
        self._protocol: CoalescingHttpToolsProtocol | None = protocol  # None once answered
        self._request = request

    @property
    def answered(self) -> bool:
        return self._protocol is None

    def take_body(self) -> bytes:
        request = self._request
        body, request.body = request.body, b""
        return body

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        protocol = self._protocol
        if protocol is None:
            return False
        self._protocol = None
        request = self._request
        parts = [STATUS_LINE[status], _defaults(protocol.server_state.default_headers)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not request.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if request.method != "HEAD":
            parts.append(body)
        protocol.write_answer(b"".join(parts), request.keep_alive)
        return True


class Exchange:
    """A hot route's request as the protocol hands it over (`petalops.serving.http.EXCHANGE`):
    its body once it is all in (`take_body`), and its whole answer in one write (`respond`)."""

    __slots__ = ("cycle", "transport")

    def __init__(self, cycle: RequestResponseCycle, transport: asyncio.Transport) -> None:
        self.cycle: RequestResponseCycle | None = cycle  # None once answered (`respond`)
        self.transport = transport  # the socket's own (the answer is whole: nothing to join)

    def take_body(self) -> bytes | None:
        """The whole body if it is in (taken: ``receive`` would see it no more), else None
        (the caller reads it through ``receive``, which waits for it)."""
        cycle = self.cycle
        if cycle is None or cycle.more_body or cycle.disconnected or cycle.waiting_for_100_continue:
            return None
        body = bytes(cycle.body)
        cycle.body = bytearray()
        return body

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        """Send a whole response (status, headers with Content-Length, body) in one write,
        as uvicorn's ``send`` would with ``http.response.start`` and one
        ``http.response.body``; False (nothing sent) where that has to wait or is not
        allowed, for the caller to send through ASGI instead: the socket's buffer is full,
        the client is gone, or a response was started already.

        The headers are the server's own (the dispatcher's: names it writes, values it made
        or checked, see `petalops.serving.http.parse_call`), so uvicorn's two regular
        expressions per header, its ASGI message dicts and its two writes are skipped."""
        cycle = self.cycle
        if cycle is None:
            return False
        if cycle.response_started or cycle.disconnected or cycle.flow.write_paused:
            # The caller answers through ASGI now, and never comes back here: let go of the
            # cycle (see the end of this method) on this path too.
            self.cycle = None
            return False
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        parts = [STATUS_LINE[status], _defaults(cycle.default_headers)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        keep_alive = cycle.keep_alive
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if cycle.scope["method"] != "HEAD":
            parts.append(body)
        self.transport.write(b"".join(parts))
        cycle.response_complete = True
        cycle.message_event.set()
        if not keep_alive:
            cycle.transport.close()
        # The cycle's scope holds this Exchange, which holds the cycle: a reference cycle
        # that refcounting cannot free. Left to the collector, it was ~11 objects a request
        # (bench/dispatch_cost.py prints them) and, under wrk, a generation-1 collection of
        # ~3,300 every ~0.15 s per worker (2 to 7 ms each: a stall of every request then in
        # flight). Answered, the request needs neither again.
        self.cycle = None
        cycle.on_response()
        return True


# uvicorn's answer to an app that failed before answering (RequestResponseCycle's).
_INTERNAL_ERROR = (
    STATUS_LINE[500]
    + b"%s"
    + b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
    + b"connection: close\r\n\r\nInternal Server Error"
)

_joined_defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _defaults(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (date, server) as header lines; uvicorn makes a new list
    each second (the date), so the lines are joined once per list."""
    global _joined_defaults
    known, joined = _joined_defaults
    if headers is not known:
        joined = b"".join(b"%s: %s\r\n" % pair for pair in headers)
        _joined_defaults = (headers, joined)
    return joined


SWEEP_SECONDS = 1.0


class KeepAliveSweeper:
    """Closes a worker's keep-alive connections idle past the keep-alive timeout, once a
    second, instead of uvicorn's timer per answer (one armed and one cancelled per
    request). A connection goes between ``timeout`` and ``timeout`` + `SWEEP_SECONDS` after
    its last answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self.loop = loop
        self.connections = connections
        self.handle = loop.call_later(SWEEP_SECONDS, self.sweep)

    def sweep(self) -> None:
        now = self.loop.time()
        for protocol in list(self.connections):
            deadline = getattr(protocol, "idle_deadline", None)
            if deadline is not None and now >= deadline:
                protocol.idle_deadline = None
                protocol.timeout_keep_alive_handler()
        self.handle = self.loop.call_later(SWEEP_SECONDS, self.sweep)


# One sweeper per worker's connection set (keyed by uvicorn's ServerState).
_SWEEPERS: weakref.WeakKeyDictionary[Any, KeepAliveSweeper] = weakref.WeakKeyDictionary()

_HEADERS, _BODY, _IDLE = 0, 1, 2


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through a `CoalescingTransport`, with `Limits`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = Limits.of(self.app)
        self.limits = limits
        # Looked up before the deadline wraps the app (the wrapper has no router): with
        # serve.request_deadline_seconds set, the hot routes keep their `Exchange` too.
        self._hot = hot_paths(self.app)
        # A direct answer never waits, so the request deadline (which answers a request
        # still waiting) has nothing to bound there: looked up before the deadline wraps
        # the app, too.
        self._answer_now = direct_answers(self.app) if self._hot is not None else None
        self._direct: DirectRequest | None = None  # set only inside one data_received
        self._pending = 0  # direct answers taken, to run on the loop's next turn
        self._shutdown_after = False
        if limits.deadline_seconds is not None:
            self.app = with_deadline(self.app, limits.deadline_seconds, limits.retry_after)
        self._phase = _HEADERS  # a new connection owes its first header block
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = _IDLE
        self._over_capacity = False
        self.idle_deadline: float | None = None  # when the KeepAliveSweeper closes it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        state = self.server_state
        sweeper = _SWEEPERS.get(state)
        if sweeper is None or sweeper.loop is not self.loop:
            _SWEEPERS[state] = KeepAliveSweeper(self.loop, self.connections)
        self._over_capacity = len(self.connections) > self.limits.max_connections
        self._arm(_HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.idle_deadline = None
        super().data_received(data)
        direct = self._direct
        if direct is not None:  # its body is not all in: the rest comes through ASGI
            self._direct = None
            if not self.transport.is_closing():  # (closed: the parser refused the rest)
                self._through_asgi(direct)
        # Only a read that ends inside a request leaves something to time.
        if self._phase != self._timer_phase:
            self._disarm()
            if self._phase != _IDLE and not self.transport.is_closing():
                self._arm(self._phase)

    def on_message_begin(self) -> None:
        # uvicorn's, but for its ASGI scope, built only for a request that goes through
        # ASGI (`_asgi_scope`): a direct answer needs none (a dict of 9 keys and a copy of
        # the app state a request).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._phase = _HEADERS
        self.idle_deadline = None  # (a request pipelined behind a direct answer)

    def _asgi_scope(self) -> None:
        """uvicorn's scope of this request (its ``on_message_begin``), over the url and the
        headers read since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        HttpToolsProtocol.on_message_begin(self)
        self.url, self.expect_100_continue = url, expect
        self.headers = self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        reason = self._shed_reason()
        if reason is None:
            if self._answer_now is not None:
                self._direct = self._direct_request()
                if self._direct is not None:
                    return
            self._asgi_scope()
            super().on_headers_complete()
            return
        app, self.app = self.app, shed(reason, self.limits.retry_after)
        try:
            self._asgi_scope()
            super().on_headers_complete()
        finally:
            self.app = app

    def on_body(self, body: bytes) -> None:
        direct = self._direct
        if direct is None:
            super().on_body(body)
            return
        direct.body += body
        if len(direct.body) > HIGH_WATER_LIMIT:  # uvicorn's flow control takes it from here
            self._direct = None
            self._through_asgi(direct)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        direct = self._direct
        if direct is not None:
            self._direct = None
            if self._answer_directly(direct):
                return
            self._through_asgi(direct)
        super().on_message_complete()

    # -- hot requests answered without ASGI ----------------------------------------------

    def _direct_request(self) -> DirectRequest | None:
        """This request, to be answered without ASGI once its body is in, if it is on a
        hot path and nothing about it or the connection needs uvicorn's request cycle: no
        100-continue, no upgrade, no earlier request still being answered, a writable
        socket. Its method and path are computed as uvicorn's ``on_headers_complete``
        computes them."""
        if self.expect_100_continue or self.pipeline or self.limit_concurrency is not None:
            return None
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.flow.write_paused:
            return None
        parser = self.parser
        if parser.should_upgrade() or self.transport.is_closing():
            return None
        path = httptools.parse_url(self.url).path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        path = self.root_path + path
        hot = self._hot
        if hot is None or not hot(path):
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return DirectRequest(parser.get_method().decode("ascii"), path, keep_alive)

    def _answer_directly(self, direct: DirectRequest) -> bool:
        """Have the app's ``answer_now`` take ``direct`` (its body all in), and run its
        answer on the loop's next turn, as a task's first step would run (after the other
        connections' reads of this turn: answering inside each read instead measured no
        faster on a real server, docs/serving.md, Round 6), in a copy of the context as a
        task would. False, nothing done, when the app declines it. A failure is answered
        as uvicorn answers an ASGI app's: logged, and a 500."""
        answer_now = self._answer_now
        assert answer_now is not None
        exchange = DirectExchange(self, direct)
        context = (
            contextvars.Context() if self.config.reset_contextvars else contextvars.copy_context()
        )
        answer: Coroutine[Any, Any, None] | object | None
        try:
            answer = context.run(answer_now, direct.method, direct.path, self.headers, exchange)
        except Exception as exc:
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            answer = _FAILED
        if answer is None:
            return False
        # Answered in order: the loop runs its callbacks (and a later request's task) FIFO.
        self._pending += 1
        self.loop.call_soon(self._run_answer, answer, exchange, context=context)
        return True

    def _run_answer(
        self, answer: Coroutine[Any, Any, None] | object, exchange: DirectExchange
    ) -> None:
        self._pending -= 1
        if answer is not _FAILED:
            try:
                run_now(answer)  # type: ignore[arg-type]
            except Exception as exc:
                self.logger.error("Exception in ASGI application\n", exc_info=exc)
            else:
                if not exchange.answered:
                    self.logger.error("ASGI callable returned without starting response.")
        if not exchange.answered:
            self.write_answer(_INTERNAL_ERROR % _defaults(self.server_state.default_headers), False)
        if self._shutdown_after and not self._pending:
            super().shutdown()

    def write_answer(self, data: bytes, keep_alive: bool) -> None:
        """A direct answer's bytes to the socket, and what uvicorn does at a response's end
        (`on_response_complete`: the count, and the keep-alive deadline or the close)."""
        transport = self.transport
        self.server_state.total_requests += 1
        if transport.is_closing():  # the client left, or an earlier answer closed it
            return
        getattr(transport, "raw", transport).write(data)
        if not keep_alive:
            transport.close()
        elif not self._pending and self._phase == _IDLE:
            cycle = self.cycle  # (a request read since may be answering through ASGI)
            if cycle is None or cycle.response_complete:
                self.idle_deadline = self.loop.time() + self.timeout_keep_alive

    def shutdown(self) -> None:
        """uvicorn's (close when idle, else after the answer in progress), once the direct
        answers already taken are out."""
        if self._pending:
            self._shutdown_after = True
            return
        super().shutdown()

    def _through_asgi(self, direct: DirectRequest) -> None:
        """Hand ``direct`` to uvicorn's request cycle, as if it had gone there from its
        head: its headers complete, then the body so far (the parser still holds the
        request's method, version and keep-alive, and uvicorn its url and headers)."""
        self._asgi_scope()
        super().on_headers_complete()
        if direct.body:
            super().on_body(direct.body)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: App) -> None:  # type: ignore[override]
        """uvicorn's, a hot route's request carrying its `Exchange`."""
        hot = self._hot
        if hot is not None and hot(cycle.scope["path"]):
            scope: Scope = cycle.scope  # type: ignore[assignment]
            transport = getattr(self.transport, "raw", self.transport)
            scope["extensions"] = {EXCHANGE: Exchange(cycle, transport)}
        super()._start_asgi_task(cycle, app)  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        flush = getattr(self.transport, "flush", None)
        if flush is not None:
            flush()  # a body-less response (HEAD, 204, 304) has nothing to join with
        # uvicorn's (0.54, pinned in constraints.txt), but the keep-alive timeout is a
        # deadline the worker's KeepAliveSweeper reads instead of a timer per answer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)  # type: ignore[arg-type]
        else:
            self.idle_deadline = self.loop.time() + self.timeout_keep_alive

    # -- limits ---------------------------------------------------------------------------

    def _shed_reason(self) -> str | None:
        if self._over_capacity:
            return (
                f"this worker has more than serve.max_connections="
                f"{self.limits.max_connections} open connections; retry after the "
                "Retry-After seconds"
            )
        if len(self.tasks) + self._pending >= self.limits.max_in_flight:
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
