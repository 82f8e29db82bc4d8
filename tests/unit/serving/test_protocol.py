"""One write per small response, and nothing held past the end of a response."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import orjson
import pytest

from petalops.config import Settings
from petalops.serving.protocol import App, CoalescingTransport, Limits, with_deadline

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """Records what reaches the socket (the test's stand-in for uvloop's transport)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_header_block_and_body_go_out_together() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(HEAD)
    assert raw.writes == []
    transport.write(b"{}")
    assert raw.writes == [HEAD + b"{}"]


def test_continue_and_plain_data_are_not_held() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"chunk")
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", b"chunk"]


def test_flush_and_close_never_lose_a_header_block() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(HEAD)  # a HEAD or 204 answer has no body write after it
    transport.flush()
    assert raw.writes == [HEAD]
    transport.write(HEAD)
    transport.close()
    assert raw.writes == [HEAD, HEAD]
    assert raw.closed
    assert transport.is_closing()  # everything else is the real transport's


def _run(app: App, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_request_past_its_deadline_is_answered_503_with_retry_after() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(30)

    sent = _run(with_deadline(slow, 0.05, retry_after=2), {"type": "http"})
    assert sent[0]["status"] == 503
    assert (b"retry-after", b"2") in sent[0]["headers"]
    assert "serve.request_deadline_seconds=0.05" in orjson.loads(sent[1]["body"])["error"]


def test_a_request_within_its_deadline_is_untouched() -> None:
    async def quick(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = _run(with_deadline(quick, 5.0, retry_after=1), {"type": "http"})
    assert [m.get("status") for m in sent] == [200, None] and sent[1]["body"] == b"ok"


def test_limits_come_from_the_served_apps_settings() -> None:
    settings = Settings(  # type: ignore[call-arg]
        serve={"header_timeout_seconds": 3, "max_in_flight": 7, "request_deadline_seconds": 1.5}
    )
    app = SimpleNamespace(server=SimpleNamespace(settings=settings))
    wrapped = SimpleNamespace(app=app)  # as inside a middleware
    limits = Limits.of(wrapped)
    assert (limits.header_seconds, limits.max_in_flight, limits.deadline_seconds) == (3, 7, 1.5)
    assert Limits.of(object()) == Limits()


# -- the Exchange of a hot route, and the keep-alive sweep --------------------------------


class ExchangeApp:
    """A stand-in for PetalopsApp: a router whose paths under /hot are hot, answering as the
    dispatcher does (the body from the exchange where it is in, the answer through it)."""

    class router:  # the attribute PetalopsApp has
        exact: ClassVar[dict[str, Any]] = {}

        @staticmethod
        def match(path: str) -> tuple[Any, dict[str, str]]:
            return (object() if path.startswith("/hot") else None), {}

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from petalops.serving.http import EXCHANGE

        exchange = scope.get("extensions", {}).get(EXCHANGE)
        body = exchange.take_body() if exchange is not None else None
        how = "exchange"
        if body is None:
            how, body, more = "receive", b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        self.bodies.append((how, body))
        body = body or b"empty"  # a HEAD answer has a length, and no body after its head
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        if exchange is not None and exchange.respond(200, headers, body):
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _serve(requests: list[bytes], app: ExchangeApp) -> tuple[RecordingTransport, Any]:
    """Feed each chunk to the protocol petalops serve runs, one loop turn apart."""

    async def main() -> tuple[RecordingTransport, Any]:
        raw, protocol = _connected(app)
        for chunk in requests:
            protocol.data_received(chunk)
            for _ in range(3):
                await asyncio.sleep(0)
        return raw, protocol

    return asyncio.run(main())


def _connected(app: Any) -> tuple[RecordingTransport, Any]:
    """The protocol petalops serve runs, connected; call inside a running loop."""
    import uvicorn
    from uvicorn.server import ServerState

    from petalops.serving.protocol import CoalescingHttpToolsProtocol

    raw = RecordingTransport()
    raw.get_extra_info = lambda name, default=None: None  # type: ignore[attr-defined]
    raw.pause_reading = raw.resume_reading = lambda: None  # type: ignore[attr-defined]
    config = uvicorn.Config(app, lifespan="off", access_log=False, proxy_headers=False)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Wed, 02 Dec 2026 18:00:00 GMT")]  # as uvicorn's
    protocol = CoalescingHttpToolsProtocol(config=config, server_state=state, app_state={})
    protocol.connection_made(raw)  # type: ignore[arg-type]
    return raw, protocol


def _post(path: bytes, body: bytes, *extra: bytes) -> bytes:
    head = b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n" % (path, len(body))
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


def test_a_hot_request_takes_its_body_and_answers_in_one_write() -> None:
    app = ExchangeApp()
    raw, _ = _serve([_post(b"/hot", b"hello")], app)
    assert app.bodies == [("exchange", b"hello")]
    [answer] = raw.writes
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert lines[1] == b"date: Wed, 02 Dec 2026 18:00:00 GMT"  # uvicorn's default headers
    assert b"content-length: 5" in lines
    assert body == b"hello" and not raw.closed


class WaitingApp(ExchangeApp):
    """Waits a turn of the loop before it answers (as a handler that awaits does)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0)
        await super().__call__(scope, receive, send)


def _app(kind: str) -> ExchangeApp:
    """The stand-in app: answered through ASGI only, or with direct answers too."""
    return ExchangeApp() if kind == "asgi" else DirectApp()


@pytest.mark.parametrize("kind", ["asgi", "direct"])
def test_a_body_split_across_reads_is_read_through_receive(kind: str) -> None:
    app = _app(kind)
    request = _post(b"/hot", b"0123456789")
    raw, _ = _serve([request[:-4], request[-4:]], app)
    assert app.bodies == [("receive", b"0123456789")]  # (and no direct answer)
    assert raw.writes[-1].endswith(b"\r\n\r\n0123456789")


def test_a_body_past_the_high_water_mark_is_read_through_receive() -> None:
    # uvicorn stops reading past 64 KiB of unread body until the app takes some.
    from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

    body = b"x" * (HIGH_WATER_LIMIT + 4096)
    request = _post(b"/hot", body)
    cut = len(request) - 2048
    app = ExchangeApp()
    raw, _ = _serve([request[:cut], request[cut:]], app)
    assert app.bodies == [("receive", body)]
    assert raw.writes[-1].endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("kind", ["asgi", "direct"])
def test_a_hot_request_expecting_100_continue_gets_it_before_sending_its_body(kind: str) -> None:
    app = _app(kind)
    head = b"POST /hot HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n"
    raw, _ = _serve([head, b"ok"], app)
    assert raw.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert app.bodies == [("receive", b"ok")]
    assert raw.writes[-1].endswith(b"\r\n\r\nok")


def test_a_hot_request_is_in_flight_until_answered() -> None:
    async def main() -> None:
        app = WaitingApp()
        raw, protocol = _connected(app)
        protocol.data_received(_post(b"/hot", b"later"))
        assert raw.writes == [] and len(protocol.tasks) == 1
        for _ in range(5):
            await asyncio.sleep(0)
        assert app.bodies == [("exchange", b"later")]
        assert raw.writes[-1].endswith(b"\r\n\r\nlater") and not protocol.tasks

    asyncio.run(main())


def test_pipelined_hot_requests_are_answered_in_order() -> None:
    for app in (ExchangeApp(), WaitingApp()):
        raw, _ = _serve([_post(b"/hot", b"one") + _post(b"/hot", b"two")], app)
        assert [how_body[1] for how_body in app.bodies] == [b"one", b"two"]
        assert [w.rsplit(b"\r\n\r\n", 1)[1] for w in raw.writes] == [b"one", b"two"]


def test_a_context_variable_a_hot_request_sets_stays_in_that_request() -> None:
    import contextvars

    actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
    seen: list[str | None] = []

    class Acting(ExchangeApp):
        def __init__(self, wait: bool) -> None:
            super().__init__()
            self.wait = wait

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(actor.get())  # nothing from the request before
            token = actor.set("key-1")
            if self.wait:
                await asyncio.sleep(0)
            actor.reset(token)  # raises if the wait moved it to another context
            await super().__call__(scope, receive, send)
            actor.set("left-behind")

    async def main(wait: bool) -> None:
        app = Acting(wait)
        raw, protocol = _connected(app)
        for body in (b"a", b"b"):
            protocol.data_received(_post(b"/hot", body))
            for _ in range(5):
                await asyncio.sleep(0)
        assert actor.get() is None  # the loop's context never saw the request's
        assert len(raw.writes) == 2 and not raw.closed

    for wait in (False, True):
        seen.clear()
        asyncio.run(main(wait))
        assert seen == [None, None]


def test_connection_close_and_head_are_kept_through_the_exchange() -> None:
    app = ExchangeApp()
    raw, _ = _serve([_post(b"/hot", b"bye", b"connection: close")], app)
    assert b"\r\nconnection: close\r\n" in raw.writes[0] and raw.closed
    app = ExchangeApp()
    head = b"HEAD /hot HTTP/1.1\r\nhost: t\r\n\r\n"
    raw, _ = _serve([head], app)
    assert raw.writes[0].endswith(b"content-length: 5\r\n\r\n")  # no body after the head


def _with_deadline(seconds: float) -> Any:
    """What `Limits.of` reads of a PetalopsApp (``app.server.settings.serve``), with a
    request deadline."""
    serve = SimpleNamespace(
        header_timeout_seconds=10.0,
        body_timeout_seconds=30.0,
        max_connections=1000,
        max_in_flight=256,
        request_deadline_seconds=seconds,
    )
    return SimpleNamespace(settings=SimpleNamespace(serve=serve))


def test_a_hot_route_keeps_its_exchange_under_a_request_deadline() -> None:
    class Bounded(ExchangeApp):
        server = _with_deadline(5.0)

    app = Bounded()
    raw, protocol = _serve([_post(b"/hot", b"in time")], app)
    assert protocol.limits.deadline_seconds == 5.0
    assert app.bodies == [("exchange", b"in time")]
    assert len(raw.writes) == 1 and raw.writes[0].endswith(b"\r\n\r\nin time")


def test_a_hot_request_past_its_deadline_is_still_answered_503() -> None:
    class Slow(ExchangeApp):
        server = _with_deadline(0.05)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await asyncio.sleep(1.0)
            await super().__call__(scope, receive, send)

    async def main() -> RecordingTransport:
        raw, protocol = _connected(Slow())
        protocol.data_received(_post(b"/hot", b"late"))
        await asyncio.sleep(0.3)
        return raw

    raw = asyncio.run(main())
    assert raw.writes and raw.writes[0].startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 1" in raw.writes[0] and b"request_deadline_seconds" in raw.writes[0]


@pytest.mark.parametrize("kind", ["asgi", "direct"])
def test_other_paths_are_answered_as_uvicorn_answers_them(kind: str) -> None:
    app = _app(kind)
    raw, _ = _serve([_post(b"/docs", b"x")], app)
    assert app.bodies == [("receive", b"x")]
    assert raw.writes == [raw.writes[0]] and raw.writes[0].endswith(b"\r\n\r\nx")


def test_respond_declines_while_the_socket_buffer_is_full() -> None:
    from petalops.serving.protocol import Exchange

    cycle = SimpleNamespace(response_started=False, disconnected=False)
    cycle.flow = SimpleNamespace(write_paused=True)
    raw = RecordingTransport()
    exchange = Exchange(cycle, raw)  # type: ignore[arg-type]
    assert exchange.respond(200, [], b"x") is False  # the caller awaits uvicorn's drain
    assert raw.writes == [] and cycle.response_started is False


def test_an_idle_keep_alive_connection_is_closed_by_the_sweep() -> None:
    from petalops.serving.protocol import KeepAliveSweeper

    app = ExchangeApp()
    raw, protocol = _serve([_post(b"/hot", b"a")], app)
    assert protocol.idle_deadline is not None and not raw.closed
    loop = SimpleNamespace(time=lambda: protocol.idle_deadline - 0.1, call_later=lambda *a: None)
    sweeper = KeepAliveSweeper(loop, {protocol})  # type: ignore[arg-type]
    sweeper.sweep()
    assert not raw.closed  # not yet due
    loop.time = lambda: protocol.idle_deadline + 0.1
    sweeper.sweep()
    assert raw.closed


class CycleRecording(ExchangeApp):
    """Keeps a weak reference to each request's uvicorn cycle (through its Exchange)."""

    def __init__(self) -> None:
        super().__init__()
        self.cycles: list[weakref.ref[Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from petalops.serving.http import EXCHANGE

        self.cycles.append(weakref.ref(scope["extensions"][EXCHANGE].cycle))
        await super().__call__(scope, receive, send)


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic collector disabled: what is freed inside is freed by refcounting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_an_answered_hot_request_is_freed_without_the_collector() -> None:
    # The cycle's scope holds the Exchange, and the Exchange the cycle: unless respond()
    # breaks that loop, every request is garbage only the cyclic collector can free (in a
    # real worker a collection of ~3,300 of them every ~0.15 s, a stall of 2 to 7 ms).
    app = CycleRecording()
    with collector_off():
        raw, protocol = _serve(
            [_post(b"/hot", b"a"), _post(b"/hot", b"b"), _post(b"/hot", b"c")], app
        )
        cycles = app.cycles
        assert len(raw.writes) == 3 and len(cycles) == 3
        # The protocol keeps its latest cycle (and is itself freed by the collector, once a
        # connection: httptools' parser points back at it); every earlier one is gone.
        assert cycles[2]() is protocol.cycle
        assert [ref() is None for ref in cycles[:2]] == [True, True]


def test_a_hot_request_answered_through_asgi_is_freed_without_the_collector() -> None:
    # While the socket's buffer is full, respond() declines and the dispatcher answers
    # through ASGI (after uvicorn's drain): the Exchange must let go of the cycle then too.
    app = CycleRecording()

    async def main() -> tuple[RecordingTransport, Any]:
        raw, protocol = _connected(app)
        for answered, body in enumerate((b"a", b"b")):
            protocol.pause_writing()  # as uvloop does when the socket's buffer fills up
            protocol.data_received(_post(b"/hot", body))
            for _ in range(3):
                await asyncio.sleep(0)
            assert len(raw.writes) == answered  # this answer waits for the drain
            protocol.resume_writing()
            for _ in range(3):
                await asyncio.sleep(0)
        return raw, protocol

    with collector_off():
        raw, protocol = asyncio.run(main())
        assert [w.rsplit(b"\r\n\r\n", 1)[1] for w in raw.writes] == [b"a", b"b"]
        cycles = app.cycles
        assert len(cycles) == 2 and cycles[1]() is protocol.cycle
        assert cycles[0]() is None


# -- hot requests answered without ASGI (the app's answer_now) -----------------------------


class DirectApp(ExchangeApp):
    """ExchangeApp with PetalopsApp's ``answer_now``: the answer of a whole request on a
    /hot path, as a coroutine that answers through its exchange; None (declined) for
    /hot/asgi, as the dispatcher declines a request naming a version; and the ways an
    answer can go wrong on /hot/fail (answer_now raises), /hot/broken (the answer raises),
    /hot/silent (it sends nothing) and /hot/wait (it waits, which none may)."""

    def __init__(self) -> None:
        super().__init__()
        self.direct: list[tuple[str, str, bytes]] = []

    def answer_now(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], exchange: Any
    ) -> Any:
        if path.startswith("/hot/asgi"):
            return None
        if path.startswith("/hot/fail"):
            raise ValueError("the model broke")
        return self._answer(method, path, exchange)

    async def _answer(self, method: str, path: str, exchange: Any) -> None:
        if path.startswith("/hot/broken"):
            raise ValueError("the answer broke")
        if path.startswith("/hot/silent"):
            return
        if path.startswith("/hot/wait"):
            await asyncio.sleep(0)
        body = exchange.take_body()
        self.direct.append((method, path, body))
        answer = body or b"empty"
        head = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(answer))]
        assert exchange.respond(200, head, answer)
        assert not exchange.respond(200, head, answer)  # one answer a request


def test_a_hot_request_that_arrived_whole_is_answered_on_the_next_turn_without_a_task() -> None:
    async def main() -> None:
        app = DirectApp()
        raw, protocol = _connected(app)
        protocol.data_received(_post(b"/hot", b"now"))
        # Taken, to be answered once the loop has read its other sockets: no task, no
        # request cycle, no ASGI call.
        assert raw.writes == [] and not protocol.tasks and protocol.cycle is None
        await asyncio.sleep(0)
        assert app.direct == [("POST", "/hot", b"now")] and app.bodies == []
        [answer] = raw.writes
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 200 OK"
        assert lines[1] == b"date: Wed, 02 Dec 2026 18:00:00 GMT"  # uvicorn's default headers
        assert b"content-length: 3" in lines and body == b"now"
        assert protocol.server_state.total_requests == 1
        assert protocol.idle_deadline is not None and not raw.closed

    asyncio.run(main())


def test_a_declined_request_goes_through_asgi_with_its_body_in_the_exchange() -> None:
    app = DirectApp()
    raw, protocol = _serve([_post(b"/hot/asgi", b"later")], app)
    assert app.direct == [] and app.bodies == [("exchange", b"later")]
    assert raw.writes[-1].endswith(b"\r\n\r\nlater")
    assert protocol.server_state.total_requests == 1


def test_a_direct_body_past_the_high_water_mark_is_read_through_asgi() -> None:
    from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

    body = b"x" * (HIGH_WATER_LIMIT + 4096)
    app = DirectApp()
    raw, _ = _serve([_post(b"/hot", body)], app)  # in one read, but past the mark
    assert app.direct == [] and app.bodies == [("exchange", body)]
    assert raw.writes[-1].endswith(b"\r\n\r\n" + body)


def test_pipelined_requests_are_answered_in_order_direct_or_not() -> None:
    app = DirectApp()
    raw, _ = _serve([_post(b"/hot", b"one") + _post(b"/hot", b"two")], app)
    assert [body for _, _, body in app.direct] == [b"one", b"two"]
    assert [w.rsplit(b"\r\n\r\n", 1)[1] for w in raw.writes] == [b"one", b"two"]

    class Waiting(DirectApp):  # its ASGI answers wait a turn of the loop
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await asyncio.sleep(0)
            await super().__call__(scope, receive, send)

    # A request behind one still being answered through ASGI must wait its turn.
    async def main() -> RecordingTransport:
        raw, protocol = _connected(Waiting())
        protocol.data_received(
            _post(b"/hot/asgi", b"first") + _post(b"/hot", b"second") + _post(b"/hot", b"3")
        )
        assert raw.writes == []
        for _ in range(12):
            await asyncio.sleep(0)
        return raw

    raw = asyncio.run(main())
    assert [w.rsplit(b"\r\n\r\n", 1)[1] for w in raw.writes] == [b"first", b"second", b"3"]


def test_connection_close_http_1_0_and_head_are_kept_when_answered_directly() -> None:
    for close in (b"connection: close", None):
        app = DirectApp()
        request = _post(b"/hot", b"bye", close) if close else _post(b"/hot", b"bye")
        if close is None:
            request = request.replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        raw, _ = _serve([request], app)
        assert app.direct and b"\r\nconnection: close\r\n" in raw.writes[0] and raw.closed
    app = DirectApp()
    raw, _ = _serve([b"HEAD /hot HTTP/1.1\r\nhost: t\r\n\r\n"], app)
    assert app.direct == [("HEAD", "/hot", b"")]
    assert raw.writes[0].endswith(b"content-length: 5\r\n\r\n")  # no body after the head


def test_a_direct_answer_that_fails_is_a_500_as_uvicorn_answers_a_failed_app() -> None:
    class Logger:  # stands in for uvicorn's logger (its config resets the real one's handlers)
        def __init__(self) -> None:
            self.messages: list[str] = []

        def error(self, message: str, *args: Any, **kwargs: Any) -> None:
            self.messages.append(message)

    async def main(path: bytes) -> list[str]:
        raw, protocol = _connected(DirectApp())
        protocol.logger = logger = Logger()
        protocol.data_received(_post(path, b"x"))
        await asyncio.sleep(0)
        [answer] = raw.writes
        assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert b"\r\nconnection: close\r\n" in answer
        assert answer.endswith(b"\r\n\r\nInternal Server Error") and raw.closed
        assert not protocol.tasks
        return logger.messages

    failed = ["Exception in ASGI application\n"]
    assert asyncio.run(main(b"/hot/fail")) == failed
    assert asyncio.run(main(b"/hot/broken")) == failed
    assert asyncio.run(main(b"/hot/wait")) == failed  # failed where it waited
    silent = ["ASGI callable returned without starting response."]
    assert asyncio.run(main(b"/hot/silent")) == silent


def test_a_context_variable_set_while_answering_directly_stays_in_that_request() -> None:
    import contextvars

    actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
    seen: list[str | None] = []

    class Acting(DirectApp):
        def answer_now(self, *args: Any) -> Any:
            seen.append(actor.get())  # nothing from the request before
            actor.set("key-1")
            return super().answer_now(*args)

        async def _answer(self, *args: Any) -> None:
            seen.append(actor.get())  # the answer runs in the request's context
            await super()._answer(*args)

    async def main() -> None:
        raw, protocol = _connected(Acting())
        for body in (b"a", b"b"):
            protocol.data_received(_post(b"/hot", body))
            await asyncio.sleep(0)
        assert actor.get() is None and len(raw.writes) == 2

    asyncio.run(main())
    assert seen == [None, "key-1", None, "key-1"]


def test_shutdown_lets_the_direct_answers_taken_go_out_first() -> None:
    async def main() -> None:
        app = DirectApp()
        raw, protocol = _connected(app)
        protocol.data_received(_post(b"/hot", b"one") + _post(b"/hot", b"two"))
        protocol.shutdown()  # as uvicorn's graceful shutdown does, between two loop turns
        assert not raw.closed
        await asyncio.sleep(0)
        assert [w.rsplit(b"\r\n\r\n", 1)[1] for w in raw.writes] == [b"one", b"two"]
        assert raw.closed

    asyncio.run(main())


def test_a_request_pipelined_behind_a_direct_answer_is_not_idle() -> None:
    # A direct answer sets the keep-alive deadline only with no request behind it, or the
    # sweep could close the connection under a slow ASGI answer.
    async def main() -> None:
        raw, protocol = _connected(DirectApp())
        protocol.data_received(_post(b"/hot", b"a") + _post(b"/hot/asgi", b"bc")[:-1])
        await asyncio.sleep(0)
        assert len(raw.writes) == 1 and protocol.idle_deadline is None
        protocol.data_received(b"c")
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(raw.writes) == 2 and protocol.idle_deadline is not None

    asyncio.run(main())


def test_a_request_through_asgi_gets_uvicorns_own_scope() -> None:
    # The scope is built only for a request that goes through ASGI: whether it went there
    # from its head (a cold path, 100-continue) or after it was read whole (declined), it
    # must be the scope uvicorn's own protocol gives the same bytes.
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    class Scoping(DirectApp):
        def __init__(self) -> None:
            super().__init__()
            self.scopes: list[dict[str, Any]] = []

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            self.scopes.append({k: v for k, v in scope.items() if k != "extensions"})
            await super().__call__(scope, receive, send)

    def scopes(protocol_class: Any, request: bytes) -> list[dict[str, Any]]:
        app = Scoping()

        async def main() -> None:
            raw = RecordingTransport()
            raw.get_extra_info = lambda name, default=None: None  # type: ignore[attr-defined]
            raw.pause_reading = raw.resume_reading = lambda: None  # type: ignore[attr-defined]
            config = uvicorn.Config(app, lifespan="off", access_log=False, proxy_headers=False)
            config.load()
            protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
            protocol.connection_made(raw)
            protocol.data_received(request)
            for _ in range(3):
                await asyncio.sleep(0)

        asyncio.run(main())
        return app.scopes

    from petalops.serving.protocol import CoalescingHttpToolsProtocol

    for path in (b"/hot/asgi?x=1", b"/docs/a%20b", b"/hot/asgi"):
        request = _post(path, b"body", b"X-Thing: One", b"accept: */*")
        ours, uvicorns = (
            scopes(CoalescingHttpToolsProtocol, request),
            scopes(HttpToolsProtocol, request),
        )
        assert len(ours) == 1 and ours == uvicorns, path
        assert (b"x-thing", b"One") in ours[0]["headers"]
