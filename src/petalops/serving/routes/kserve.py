"""The KServe v1 protocol: ``GET /v1/models``, ``GET /v1/models/{name}`` and
``POST /v1/models/{name}:predict`` with ``{"instances": [[...]]}`` -> ``{"predictions": [...]}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, create_model

from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs, Predictions
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.rows import any_rows
from petalops.serving.server import Server


class KServeModel(BaseModel):
    name: str
    ready: bool


class KServeModels(BaseModel):
    models: list[str]


class KServeV1(Codec[dict[str, Any]]):
    """Predict rows: `{"instances": [[5.1, 3.5, 1.4, 0.2]]}` -> `{"predictions": [0]}`.

    Rows may also be objects of named features. Send `X-Model-Version: 3` to ask a
    specific registered version.
    """

    order = 60

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.example = {"instances": [self.shape.example_row]}

    def routes(self, docs: Docs) -> list[Route]:
        request = create_model("KServeV1Request", instances=(docs.batch | docs.records, ...))
        return [
            Route(
                method="GET",
                path="/v1/models",
                handler=self.models,
                summary="List models (KServe v1)",
                tag="kserve-v1",
                responses={200: ("Models", docs.ref(KServeModels))},
            ),
            Route(
                method="GET",
                path="/v1/models/{name}",
                handler=self.model,
                summary="Model status (KServe v1)",
                tag="kserve-v1",
                responses={
                    200: ("Ready", docs.ref(KServeModel)),
                    503: ("Not ready", docs.ref(KServeModel)),
                    **docs.errors(404),
                },
            ),
            Route(
                method="POST",
                path="/v1/models/{name}:predict",
                codec=self,
                summary="Predict (KServe v1)",
                tag="kserve-v1",
                request_schema=docs.ref(request),
                request_example={"instances": [docs.example_row]},
                responses={
                    200: ("Predictions", docs.ref(Predictions)),
                    **docs.errors(400, 404, 409, 413, 415, 503),
                },
            ),
        ]

    async def read(self, call: Call, receive: Receive) -> dict[str, Any]:
        self.check_model(call.params["name"])
        example = self.example
        data: Any = await json_body(call, receive, self.max_body, example)
        if type(data) is not dict or "instances" not in data:
            raise HttpError(
                400, "the body must be an object with 'instances'", "instances", example
            )
        return data

    def decode(self, request: dict[str, Any], served: Served) -> list[list[float]]:
        runtime = served.runtime
        return any_rows(
            request["instances"],
            runtime.features,
            self.max_batch,
            "instances",
            self.example,
            runtime.schema,
        )

    def encode(self, request: dict[str, Any], prediction: Prediction, call: Call) -> bytes:
        return orjson.dumps({"predictions": prediction.labels})

    async def models(self, call: Call, receive: Receive) -> Reply:
        """The models this server serves."""
        return Reply(body=orjson.dumps({"models": [self.shape.name]}))

    async def model(self, call: Call, receive: Receive) -> Reply:
        """One model's readiness, as KServe v1 answers it."""
        self.check_model(call.params["name"])
        ready = self.server.holder.ready
        return Reply(
            body=orjson.dumps({"name": self.shape.name, "ready": ready}),
            status=200 if ready else 503,
        )


CODEC = KServeV1
