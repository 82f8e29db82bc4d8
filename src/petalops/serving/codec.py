"""The contract of a protocol module: a `Codec` and the `Route` records it answers.

A codec owns its routes, how a request of its protocol becomes rows (``read`` then
``decode``) and how an answer becomes bytes (``encode``), and documents all three in
OpenAPI. `petalops.serving.dispatcher.Dispatcher` does the rest for every codec alike:
choose the model version and variant, predict, send, count, log and feed the side channel,
and answer with the champion when a challenger fails. Adding a protocol is one module
under `petalops.serving.routes` whose ``CODEC`` names its codec class (see docs/serving.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from petalops.serving.holder import Served
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs, Responses
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.server import Server

Request = TypeVar("Request")
Handler = Callable[[Call, Receive], Awaitable[Reply]]


class Codec(Generic[Request]):
    """One protocol: its routes, and for its prediction routes ``read``/``decode``/``encode``.

    The dispatcher calls, for each prediction request: ``read`` (the body, checked before a
    model is chosen, so a malformed body is refused even with no model loaded), then
    ``decode`` with the runtime that will answer (its feature names and count), then
    ``encode`` with what was predicted. Each raises `HttpError` (or any
    `petalops.errors.PetalopsError`) for input it refuses; ``decode`` and ``encode`` must not
    change the request, since a challenger's failure is answered again by the champion from
    the same request. A codec without a prediction route (operations, feedback) only lists
    its plain routes, whose handlers answer a `Reply`.
    """

    # Where the codec's routes come in the OpenAPI document (and in /docs), lowest first.
    order: ClassVar[int] = 100

    def __init__(self, server: Server) -> None:
        self.server = server
        self.shape = server.shape
        self.max_body = server.settings.serve.max_body_bytes
        self.max_batch = server.settings.serve.max_batch
        # Shown in the codec's 4xx answers; codecs set their own.
        self.example: Any = None

    def routes(self, docs: Docs) -> list[Route]:
        """The routes this codec answers, each described for OpenAPI with ``docs``."""
        raise NotImplementedError

    async def read(self, call: Call, receive: Receive) -> Request:
        """The request, read and checked as far as it can be without a model.

        The default reads a JSON body (415 for another Content-Type, 413 over
        ``serve.max_body_bytes``, 400 if malformed).
        """
        data: Request = await json_body(call, receive, self.max_body, self.example)
        return data

    def decode(self, request: Request, served: Served) -> list[list[float]]:
        """The request's feature rows, in the order of ``served.features``."""
        raise NotImplementedError

    def encode(self, request: Request, prediction: Prediction, call: Call) -> bytes | Reply:
        """The answer's body (200, JSON), or a whole `Reply` for another status or type."""
        raise NotImplementedError

    def check_model(self, name: str) -> None:
        """404 unless ``name`` (a path's ``{name}``) is the model this server serves."""
        if name != self.shape.name:
            raise HttpError(
                404,
                f"model {name!r} is not served here; this server serves {self.shape.name!r}",
                "name",
                self.shape.name,
            )


@dataclass(frozen=True, kw_only=True)
class Route:
    """One hot route: what answers it, and how OpenAPI documents it.

    A prediction route names its ``codec`` (the dispatcher runs it); any other route names
    the ``handler`` that answers it. A ``{version}`` in the path addresses a registered
    version, as the ``X-Model-Version`` header does on the other prediction routes.
    """

    method: str
    path: str
    summary: str
    tag: str
    codec: Codec[Any] | None = None
    handler: Handler | None = None
    request_schema: dict[str, Any] | None = None
    request_example: Any = None
    # Request media types other than JSON, as OpenAPI ``content`` entries.
    request_content: dict[str, Any] = field(default_factory=dict)
    responses: Responses = field(default_factory=dict)
    text_response: bool = False
    # The API-key scope the route needs once a key of it exists (petalops.serving.guard):
    # prediction routes default to "predict"; "admin" routes always need admin access.
    scope: str | None = None
    # The OpenAPI description: the handler's docstring, or the codec class's (cleaned as
    # FastAPI cleans its own routes' docstrings).
    description: str = ""
    versioned: bool = field(init=False)

    def __post_init__(self) -> None:
        if (self.codec is None) == (self.handler is None):
            raise ValueError(f"route {self.method} {self.path} needs a codec or a handler")
        if not self.description:
            answerer = self.handler if self.handler is not None else type(self.codec)
            object.__setattr__(self, "description", inspect.cleandoc(answerer.__doc__ or ""))
        object.__setattr__(self, "versioned", "{version}" in self.path)
        if self.codec is not None and self.scope is None:
            object.__setattr__(self, "scope", "predict")
