"""The floor on granian's own interface (RSGI): a raw app answering a constant.

RSGI (https://github.com/emmett-framework/granian/blob/master/docs/spec/RSGI.md) hands the
app a protocol object instead of ASGI's message dicts: ``await protocol()`` reads the whole
body, ``protocol.response_bytes`` answers in one call. It is the cheapest Python HTTP
server path there is here, so it bounds what a change of server could give petalops.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"prediction":0}'
HEADERS = [("content-type", "application/json")]


async def app(scope: Any, protocol: Any) -> None:
    await protocol()  # read the request body, as a real handler must
    protocol.response_bytes(200, HEADERS, BODY)
