"""The floor of Python HTTP here: a raw ASGI app answering a constant, on the same uvicorn."""

from __future__ import annotations

from typing import Any

BODY = b'{"prediction":0}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"16")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real handler must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
