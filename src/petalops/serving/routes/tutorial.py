"""The tutorial API, unchanged: ``POST /predict`` with ``{"features": [...]}``, ``GET /health``."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field, create_model

from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import (
    JSON,
    Call,
    HttpError,
    Receive,
    parse_json,
    read_body,
    require_json,
)
from petalops.serving.openapi import Docs, Health
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.rows import check_row
from petalops.serving.server import Server

_HEALTH = orjson.dumps({"status": "ok"})


class Tutorial(Codec[dict[str, Any]]):
    """Predict one row given as a list of numbers in feature order.

    Answers the class index as `prediction` (an int, as in the classic tutorial), its
    name as `flower_type`, the class probabilities and the model version that answered.
    Send `X-Model-Version: 3` to ask a specific registered version.
    """

    order = 10

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.example = {"features": self.shape.example_row}

    def routes(self, docs: Docs) -> list[Route]:
        shape = self.shape
        n, classes = len(docs.features), shape.classes
        request = create_model(
            "PredictRequest",
            features=(
                docs.row,
                Field(description=f"the {n} features in order: {', '.join(docs.features)}"),
            ),
        )
        response = create_model(
            "PredictResponse",
            prediction=(int, Field(description="class index", examples=[0])),
            flower_type=(str, Field(description="class name", examples=classes[:1] or ["setosa"])),
            probabilities=(list[float], Field(description=f"one per class: {', '.join(classes)}")),
            model_version=(str, ...),
            variant=(str, ...),
        )
        return [
            Route(
                method="POST",
                path="/predict",
                codec=self,
                summary="Predict one row (tutorial API)",
                tag="tutorial",
                request_schema=docs.ref(request),
                request_example={"features": docs.example_row},
                responses={
                    200: ("Prediction", docs.ref(response)),
                    **docs.errors(400, 404, 409, 413, 415, 503),
                },
            ),
            Route(
                method="GET",
                path="/health",
                handler=self.health,
                summary="Health (tutorial API)",
                tag="tutorial",
                responses={200: ("Up", docs.ref(Health))},
            ),
        ]

    async def read(self, call: Call, receive: Receive) -> dict[str, Any]:
        # The busiest route: json_body's checks, with the common case tested first.
        example = self.example
        if call.content_type != JSON:
            require_json(call, example)
        data: Any = parse_json(await read_body(receive, call, self.max_body), example)
        if type(data) is not dict or "features" not in data:
            raise HttpError(
                400, "the body must be a JSON object with a 'features' array", "features", example
            )
        return data

    def decode(self, request: dict[str, Any], served: Served) -> list[list[float]]:
        runtime = served.runtime
        return [
            check_row(
                request["features"], runtime.n_features, "features", self.example, runtime.schema
            )
        ]

    def encode(self, request: dict[str, Any], prediction: Prediction, call: Call) -> bytes:
        served = prediction.served
        label = prediction.labels[0]
        return orjson.dumps(
            {
                "prediction": label,
                "flower_type": served.runtime.classes[label],
                "probabilities": prediction.probas[0],
                "model_version": served.version,
                "variant": prediction.variant,
            }
        )

    async def health(self, call: Call, receive: Receive) -> Reply:
        """The tutorial's health check: 200 `{"status": "ok"}` while the process is up."""
        return Reply(body=_HEALTH)


CODEC = Tutorial
