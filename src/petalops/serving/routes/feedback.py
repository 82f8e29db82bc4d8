"""``POST /v1/feedback``: ground-truth labels joined to logged predictions by request id."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import orjson
from pydantic import BaseModel, Field

from petalops.serving.codec import Codec, Route
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs
from petalops.serving.reply import Reply
from petalops.serving.routes.admin import DEFAULT_ADMIN_TOKEN

EXAMPLE: dict[str, Any] = {"request_id": "0b8e6c1e-3f", "label": "setosa"}


class FeedbackItem(BaseModel):
    request_id: str = Field(description="The request id a prediction answered with")
    label: str | int = Field(description="The true class: its name or its index")
    row: int | None = Field(None, description="Row of a batch request (default: every row)")
    overwrite: bool = Field(
        False, description="Replace a label already recorded (needs the admin token)"
    )


class FeedbackBatch(BaseModel):
    items: list[FeedbackItem]


class FeedbackResult(BaseModel):
    labelled: int = Field(description="How many logged prediction rows received the label")
    pending: int = Field(
        description="Labels for predictions not logged yet: joined when their rows arrive"
    )


class Feedback(Codec[None]):
    """True labels for logged predictions; no prediction route."""

    order = 40

    def routes(self, docs: Docs) -> list[Route]:
        item = docs.ref(FeedbackItem)
        return [
            Route(
                method="POST",
                path="/v1/feedback",
                handler=self.feedback,
                summary="Record true labels for earlier predictions",
                tag="petalops",
                request_schema={
                    "oneOf": [
                        item,
                        docs.ref(FeedbackBatch),
                        {"type": "array", "items": item},
                    ]
                },
                request_example=EXAMPLE,
                scope="feedback",
                responses={
                    200: ("Rows labelled", docs.ref(FeedbackResult)),
                    409: (
                        "A different label is already recorded, or the prediction log is off",
                        docs.error,
                    ),
                    401: ("Missing or wrong API key (or serve.feedback_token)", docs.error),
                    403: ("An API key of another scope", docs.error),
                    429: ("The key is over its rate limit", docs.error),
                    **docs.errors(400, 413, 415, 422),
                },
            )
        ]

    async def feedback(self, call: Call, receive: Receive) -> Reply:
        """Record the true class of earlier predictions, one `{"request_id", "label"}` or a batch.

        Feeds live accuracy, drift-triggered retraining and the rollout analysis. A label is
        written once: a different one later answers 409 (`overwrite` needs the admin
        token). A request id whose prediction is not logged yet waits (`pending`) and is
        joined when it arrives. A label outside the model's classes, or one row twice in a
        batch, answers 422; a batch is applied all or nothing. With `serve.feedback_token`
        set, the call needs `Authorization: Bearer <token>`; once a `feedback` API key exists,
        it needs a feedback (or admin) key.
        """
        server = self.server
        if call.key_scope is not None:  # the key check let it through
            admin = call.key_scope == "admin"
        else:
            admin, refused = self._static_tokens(call)
            if refused:
                raise HttpError(
                    401,
                    "feedback needs 'Authorization: Bearer <serve.feedback_token>' on this server",
                    headers=[(b"www-authenticate", b"Bearer")],
                )
        body = await json_body(call, receive, self.max_body, EXAMPLE)
        sink = server.side.sink
        store = getattr(sink, "store", None)
        if sink is None or store is None:
            # 409, not 5xx: the server works as configured; it was started without the log.
            raise HttpError(
                409,
                "the prediction log is off on this server, so there is nothing to label; "
                "start it with serve.log_predictions=true",
                "body",
            )
        champion = server.holder.snapshot.champion
        classes = champion.classes if champion is not None else self.shape.classes
        # Imported here: it brings SQLAlchemy (~240 ms measured), which a worker without the
        # prediction log never needs.
        from petalops.monitoring.feedback import record_feedback_body

        # The store is blocking I/O: keep it off the event loop.
        result = await asyncio.to_thread(
            record_feedback_body, store, body, classes, may_overwrite=admin
        )
        return Reply(body=orjson.dumps(result))

    def _static_tokens(self, call: Call) -> tuple[bool, bool]:
        """(the admin token was sent, serve.feedback_token is set and was not sent)."""
        settings = self.server.settings
        given = call.authorization.partition(b" ")[2].strip()
        admin = settings.admin_token != DEFAULT_ADMIN_TOKEN and _matches(
            given, settings.admin_token
        )
        token = settings.serve.feedback_token
        return admin, bool(token) and not (admin or _matches(given, token))


def _matches(given: bytes, token: str) -> bool:
    return bool(token) and hmac.compare_digest(given, token.encode())


CODEC = Feedback
