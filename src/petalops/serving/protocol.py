"""uvicorn's httptools protocol, sending each small response in one write instead of two.

uvicorn writes the header block on ``http.response.start`` and the body on
``http.response.body``: two ``send`` syscalls (and two TCP segments) per response, about a
third of a worker's time on the prediction routes. Here the header block is held until the
body arrives and both go out in one write. Nothing is held past the end of a response:
100-continue goes out at once, and the end of every response (and ``close``) flushes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        flush = getattr(self.transport, "flush", None)
        if flush is not None:
            flush()  # a body-less response (HEAD, 204, 304) has nothing to join with
        super().on_response_complete()
