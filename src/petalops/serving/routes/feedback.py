"""``POST /v1/feedback``: ground-truth labels joined to logged predictions by request id."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import BaseModel, Field

from petalops.serving.codec import Codec, Route
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs
from petalops.serving.reply import Reply

EXAMPLE: dict[str, Any] = {"request_id": "0b8e6c1e-3f", "label": "setosa"}


class FeedbackItem(BaseModel):
    request_id: str = Field(description="The request id a prediction answered with")
    label: str | int = Field(description="The true class: its name or its index")
    row: int | None = Field(None, description="Row of a batch request (default: every row)")


class FeedbackBatch(BaseModel):
    items: list[FeedbackItem]


class FeedbackResult(BaseModel):
    labelled: int = Field(description="How many logged prediction rows received the label")


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
                responses={
                    200: ("Rows labelled", docs.ref(FeedbackResult)),
                    409: ("The prediction log is off on this server", docs.error),
                    **docs.errors(400, 404, 413, 415, 422),
                },
            )
        ]

    async def feedback(self, call: Call, receive: Receive) -> Reply:
        """Record the true class of earlier predictions, one `{"request_id", "label"}` or a batch.

        Feeds live accuracy, drift-triggered retraining and the rollout analysis. An unknown
        request id answers 404 and a label outside the model's classes 422; a batch is applied
        all or nothing.
        """
        server = self.server
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
        result = await asyncio.to_thread(record_feedback_body, store, body, classes, logger=sink)
        return Reply(body=orjson.dumps(result))


CODEC = Feedback
