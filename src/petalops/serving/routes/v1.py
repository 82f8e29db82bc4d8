"""The petalops API: ``POST /v1/predict`` with named features, one row or a batch."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ConfigDict, create_model

from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import Call, HttpError, Receive, json_body
from petalops.serving.openapi import Docs
from petalops.serving.prediction import Prediction
from petalops.serving.rows import check_batch_size, row_from_mapping
from petalops.serving.server import Server


class V1(Codec[dict[str, Any]]):
    """Predict rows given by feature name: one object, or `{"instances": [...]}`.

    A single object answers one `prediction`; a batch (up to `serve.max_batch` rows)
    answers `predictions` in order. Both carry class names, probabilities by class,
    the `model_version` and `variant` that answered and the `request_id`. Unknown or
    missing feature names are refused. Send `X-Model-Version: 3` to ask a specific
    registered version, and `X-Petalops-Key` to keep a caller on one rollout variant.
    """

    order = 30

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.record = self.shape.example_record
        self.example = {"instances": [self.record]}

    def routes(self, docs: Docs) -> list[Route]:
        batch = create_model(
            "V1BatchRequest", __config__=ConfigDict(extra="forbid"), instances=(docs.records, ...)
        )
        answer: Any = create_model(
            "V1Prediction",
            prediction=(int, ...),
            class_name=(str, ...),
            probabilities=(dict[str, float], ...),
        )
        single = create_model(
            "V1SingleResponse",
            prediction=(int, ...),
            class_name=(str, ...),
            probabilities=(dict[str, float], ...),
            model_version=(str, ...),
            variant=(str, ...),
            request_id=(str, ...),
        )
        many = create_model(
            "V1BatchResponse",
            predictions=(list[answer], ...),
            model_version=(str, ...),
            variant=(str, ...),
            request_id=(str, ...),
        )
        return [
            Route(
                method="POST",
                path="/v1/predict",
                codec=self,
                summary="Predict named-feature rows",
                tag="petalops",
                request_schema={"oneOf": [docs.ref(docs.record), docs.ref(batch)]},
                request_example=docs.example_record,
                responses={
                    200: ("Prediction(s)", {"oneOf": [docs.ref(single), docs.ref(many)]}),
                    **docs.errors(400, 404, 409, 413, 415, 503),
                },
            )
        ]

    async def read(self, call: Call, receive: Receive) -> dict[str, Any]:
        data: Any = await json_body(call, receive, self.max_body, self.record)
        if type(data) is not dict:
            raise HttpError(
                400, "the body must be a JSON object of named features", "body", self.example
            )
        return data

    def decode(self, request: dict[str, Any], served: Served) -> list[list[float]]:
        features = served.runtime.features
        schema = served.runtime.schema
        if "instances" not in request:
            return [row_from_mapping(request, features, "", self.record, schema)]
        example = self.example
        instances = request["instances"]
        if len(request) != 1:
            extra = next(k for k in request if k != "instances")
            raise HttpError(400, f"unknown field {extra!r} beside 'instances'", extra, example)
        if type(instances) is not list:
            raise HttpError(400, "instances must be an array of objects", "instances", example)
        check_batch_size(len(instances), self.max_batch, "instances", example)
        return [
            row_from_mapping(item, features, f"instances[{i}]", example, schema)
            for i, item in enumerate(instances)
        ]

    def encode(self, request: dict[str, Any], prediction: Prediction, call: Call) -> bytes:
        served = prediction.served
        classes = served.runtime.classes
        answers = [
            {
                "prediction": label,
                "class_name": classes[label],
                "probabilities": dict(zip(classes, proba, strict=True)),
            }
            for label, proba in zip(prediction.labels, prediction.probas, strict=True)
        ]
        meta = {
            "model_version": served.version,
            "variant": prediction.variant,
            "request_id": call.request_id,
        }
        if "instances" in request:
            return orjson.dumps({"predictions": answers, **meta})
        return orjson.dumps({**answers[0], **meta})


CODEC = V1
