"""The raw-ASGI request/response primitives of the hot routes.

The prediction routes skip FastAPI and pydantic on purpose: each request costs one header
scan, one orjson parse and one orjson dump, where a framework's validation layers cost
several times that (docs/serving.md, "How it is fast"). Everything here is deliberately
small and allocation-light.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from itertools import count
from typing import Any, Protocol

import orjson

from petalops.errors import PetalopsError, StatusError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"

EXCHANGE = "petalops.exchange"
"""The ASGI extension (``scope["extensions"]``) under which a server that knows petalops
hands a request its `Exchange` (`petalops.serving.protocol.Exchange`, uvicorn here)."""


class Exchange(Protocol):
    """A server's shortcut for one request: its whole body once it is in (None: read it
    through ``receive``), and the whole answer sent in one call (False: not sent, send it
    as the ASGI messages)."""

    def take_body(self) -> bytes | None: ...

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool: ...


_REQUEST_ID = re.compile(rb"[!-~]{1,128}")

_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = count(1)


def new_request_id() -> str:
    """A process-unique id without the ~2 µs of uuid4: random per-process prefix + counter."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


def _new_id_prefix() -> None:
    """A forked process's own prefix and counter. `petalops serve` forks its workers from
    a parent that imported this module: without this, every worker handed out the same
    ids (and a label sent for one of them went to every worker's prediction of that id)."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(4).hex()
    _ID_COUNTER = count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


class HttpError(StatusError):
    """An expected failure at the HTTP edge, with its own status, a valid example to show
    and any headers the answer needs (``Retry-After``, ``Allow``)."""

    @property
    def status(self) -> int:
        return self.http_status


def error_document(error: PetalopsError, request_id: str | None) -> dict[str, Any]:
    """Every error answer: ``{"error", "field", "example", "request_id"}`` (those it has)."""
    data: dict[str, Any] = {"error": error.message}
    if error.field is not None:
        data["field"] = error.field
    example = getattr(error, "example", None)
    if example is not None:
        data["example"] = example
    if request_id:
        data["request_id"] = request_id
    return data


def error_body(error: PetalopsError, request_id: str | None) -> bytes:
    """`error_document` as JSON bytes."""
    return orjson.dumps(error_document(error, request_id))


@dataclass(slots=True)
class Call:
    """One request on a hot route, with the few headers the server reads."""

    method: str
    path: str
    params: dict[str, str]
    request_id: str
    started: float
    content_type: bytes = b""
    content_length: int = -1
    routing_key: str | None = None
    model_version: str | None = None
    authorization: bytes = b""
    if_none_match: bytes = b""
    api_key: bytes = b""
    inference_header_length: int = -1
    route: str = ""
    # Who the request's credential names, once a key check let it through.
    key_name: str | None = None
    key_scope: str | None = None
    # Set when a challenger failed this request: the retry is answered by the champion.
    champion_only: bool = False
    # The server's shortcut (`EXCHANGE`), where it has one.
    exchange: Exchange | None = None


def parse_call(scope: Scope, params: dict[str, str] | None = None) -> Call:
    """Read the headers the server cares about in one pass over the raw header list."""
    extensions = scope.get("extensions")
    return new_call(
        scope["method"],
        scope["path"],
        {} if params is None else params,
        scope["headers"],
        extensions.get(EXCHANGE) if extensions else None,
    )


def new_call(
    method: str,
    path: str,
    params: dict[str, str],
    headers: list[tuple[bytes, bytes]],
    exchange: Exchange | None,
) -> Call:
    """`parse_call` without an ASGI scope: what a server answering a request directly
    (`petalops.serving.protocol`) has of it."""
    call = Call(method, path, params, "", time.perf_counter(), exchange=exchange)
    for name, value in headers:
        # ASGI servers deliver lower-case header names.
        if name == b"content-type":
            call.content_type = value
        elif name == b"content-length":
            try:
                call.content_length = int(value)
            except ValueError:
                call.content_length = -1
        elif name == b"x-request-id":
            # Echoed in the answer's headers, which the one-write answer
            # (`petalops.serving.protocol.Exchange`) does not check again as uvicorn's
            # send does: only visible ASCII is taken (httptools refuses control
            # characters already; this holds whatever the server), any other id replaced.
            if _REQUEST_ID.fullmatch(value) is not None:
                call.request_id = value.decode("ascii")
        elif name == b"x-petalops-key":
            call.routing_key = value.decode("latin-1")
        elif name == b"x-model-version":
            call.model_version = value.decode("latin-1").strip()
        elif name == b"authorization":
            call.authorization = value
        elif name == b"if-none-match":
            call.if_none_match = value
        elif name == b"x-api-key":
            call.api_key = value
        elif name == b"inference-header-content-length":
            try:
                call.inference_header_length = int(value)
            except ValueError:
                call.inference_header_length = -1
    if not call.request_id:
        call.request_id = new_request_id()
    return call


async def read_body(receive: Receive, call: Call, limit: int) -> bytes:
    """The whole request body, refusing (413) anything over ``limit`` bytes."""
    if call.content_length > limit:
        raise _too_large(limit)
    exchange = call.exchange
    if exchange is not None:
        whole = exchange.take_body()
        if whole is not None:  # the server has it all already
            if len(whole) > limit:
                raise _too_large(limit)
            return whole
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "the client disconnected before sending the whole body")
        body += message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        f"request body is larger than the limit of {limit} bytes (serve.max_body_bytes); "
        "send fewer rows per request",
        field="body",
    )


def media_type(call: Call) -> bytes:
    """The bare media type of the request (``application/json``), lower-cased."""
    return call.content_type.split(b";", 1)[0].strip().lower()


def require_json(call: Call, example: Any) -> None:
    """415 unless the body is declared JSON (a missing Content-Type is taken as JSON)."""
    if call.content_type == JSON:
        return
    kind = media_type(call)
    if kind and kind != JSON and not kind.endswith(b"+json"):
        raise HttpError(
            415,
            f"Content-Type {kind.decode('latin-1')!r} is not supported here; send JSON with "
            "'Content-Type: application/json'",
            field="Content-Type",
            example=example,
        )


def parse_json(body: bytes, example: Any) -> Any:
    """Decode a JSON body; 400 naming the position when it is malformed or empty."""
    if not body:
        raise HttpError(400, "the request body is empty; send a JSON body", "body", example)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(
            400, f"the request body is not valid JSON: {exc}", "body", example
        ) from None


async def json_body(call: Call, receive: Receive, limit: int, example: Any) -> Any:
    """A request's JSON body: 415 unless declared JSON, 413 over ``limit``, 400 if malformed."""
    require_json(call, example)
    return parse_json(await read_body(receive, call, limit), example)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    content_type: bytes = JSON,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    exchange: Exchange | None = None,
) -> None:
    """Send one whole answer: in one call through the server's `Exchange` where it takes
    it, else as the two ASGI messages."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        (b"x-request-id", request_id.encode("latin-1")),
    ]
    if extra_headers:
        headers.extend(extra_headers)
    if exchange is not None and exchange.respond(status, headers, body):
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
