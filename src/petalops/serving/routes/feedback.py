"""``POST /v1/feedback``: ground-truth labels joined to logged predictions by request id."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import BaseModel, Field

from petalops.serving.http import Call, HttpError, Receive
from petalops.serving.server import Reply, Server

EXAMPLE: dict[str, Any] = {"request_id": "0b8e6c1e-3f", "label": "setosa"}


class FeedbackItem(BaseModel):
    request_id: str = Field(description="The request id a prediction answered with")
    label: str | int = Field(description="The true class: its name or its index")
    row: int | None = Field(None, description="Row of a batch request (default: every row)")


class FeedbackBatch(BaseModel):
    items: list[FeedbackItem]


class FeedbackResult(BaseModel):
    labelled: int = Field(description="How many logged prediction rows received the label")


async def feedback(server: Server, call: Call, receive: Receive) -> Reply:
    """Record the true class of earlier predictions, one `{"request_id", "label"}` or a batch.

    Feeds live accuracy, drift-triggered retraining and the rollout analysis. An unknown
    request id answers 404 and a label outside the model's classes 422; a batch is applied
    all or nothing.
    """
    body = await server.json_body(call, receive, EXAMPLE)
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
    classes = champion.classes if champion is not None else server.shape.classes
    from petalops.monitoring.feedback import record_feedback_body

    # The store is blocking I/O: keep it off the event loop.
    result = await asyncio.to_thread(record_feedback_body, store, body, classes, logger=sink)
    return Reply(orjson.dumps(result))
