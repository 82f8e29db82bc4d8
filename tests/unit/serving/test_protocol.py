"""One write per small response, and nothing held past the end of a response."""

from __future__ import annotations

import asyncio
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
