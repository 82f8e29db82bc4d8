"""One write per small response, and nothing held past the end of a response."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import orjson

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


class SocketTransport(RecordingTransport):
    """Enough of a uvloop transport for uvicorn's protocol."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Echo:
    """Answers each request with its body; ``inline`` is what its runs_inline says."""

    def __init__(self, inline: bool) -> None:
        self.inline = inline

    def runs_inline(self, path: str) -> bool:
        return self.inline and path == "/hot"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (
        path.encode(),
        len(body),
        body,
    )


def _connected(app: Any) -> tuple[Any, SocketTransport]:
    import uvicorn
    from uvicorn.server import ServerState

    from petalops.serving.protocol import CoalescingHttpToolsProtocol

    config = uvicorn.Config(app, lifespan="off", log_level="warning", proxy_headers=False)
    config.load()
    protocol = CoalescingHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = SocketTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def _bodies(writes: list[bytes]) -> list[bytes]:
    return [w.split(b"\r\n\r\n", 1)[1] for w in writes]


def test_a_hot_request_read_whole_is_answered_before_the_loop_turns() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        protocol, transport = _connected(Echo(inline=True))
        protocol.data_received(_post("/hot", b"one"))
        inline = list(transport.writes)  # no await since: nothing ran in a task
        protocol.data_received(_post("/cold", b"two"))  # not a hot path: a task, as uvicorn
        before_turn = list(transport.writes)
        await asyncio.sleep(0.01)
        return inline, before_turn, transport.writes

    inline, before_turn, after = asyncio.run(scenario())
    assert _bodies(inline) == [b"one"]
    assert _bodies(before_turn) == [b"one"]
    assert _bodies(after) == [b"one", b"two"]


def test_a_hot_request_whose_body_comes_later_finishes_in_a_task() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], int]:
        protocol, transport = _connected(Echo(inline=True))
        request = _post("/hot", b"a body in two reads")
        protocol.data_received(request[:-8])
        first = list(transport.writes)
        in_flight = len(protocol.tasks)  # the rest of the app, waiting for its body
        protocol.data_received(request[-8:])
        await asyncio.sleep(0.01)
        return first, transport.writes, in_flight

    first, after, in_flight = asyncio.run(scenario())
    assert first == [] and in_flight == 1
    assert _bodies(after) == [b"a body in two reads"]


def test_pipelined_hot_requests_are_answered_in_order() -> None:
    async def scenario() -> list[bytes]:
        protocol, transport = _connected(Echo(inline=True))
        protocol.data_received(_post("/hot", b"first") + _post("/hot", b"second"))
        await asyncio.sleep(0.01)
        return transport.writes

    assert _bodies(asyncio.run(scenario())) == [b"first", b"second"]


def test_a_hot_request_suspended_inline_can_be_cancelled_like_any_task() -> None:
    # uvicorn cancels what is still running past its graceful shutdown: the cancellation
    # must reach the app where it waits, as it would in a task of its own.
    seen: list[str] = []

    class Waits(Echo):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await asyncio.Event().wait()  # never set
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    async def scenario() -> tuple[bool, list[bytes]]:
        protocol, transport = _connected(Waits(inline=True))
        protocol.data_received(_post("/hot", b"x"))
        [task] = protocol.tasks
        task.cancel()  # before the task's first step: the app has run already
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.done(), transport.writes

    done, writes = asyncio.run(scenario())
    assert seen == ["cancelled"]
    # uvicorn's run_asgi answers what the app left unanswered, as for any task of its own.
    assert done and writes[0].startswith(b"HTTP/1.1 500 ")
