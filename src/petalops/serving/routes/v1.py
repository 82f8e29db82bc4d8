"""The petalops API: ``POST /v1/predict`` with named features, one row or a batch."""

from __future__ import annotations

from typing import Any

import orjson

from petalops.serving.http import Call, HttpError, Receive
from petalops.serving.rows import check_batch_size, predict_rows, row_from_mapping
from petalops.serving.server import Reply, Server


async def predict(server: Server, call: Call, receive: Receive) -> Reply:
    """Predict rows given by feature name: one object, or `{"instances": [...]}`.

    A single object answers one `prediction`; a batch (up to `serve.max_batch` rows)
    answers `predictions` in order. Both carry class names, probabilities by class,
    the `model_version` and `variant` that answered and the `request_id`. Unknown or
    missing feature names are refused. Send `X-Model-Version: 3` to ask a specific
    registered version, and `X-Petalops-Key` to keep a caller on one rollout variant.
    """
    record = server.shape.example_record
    example = server.shape.examples["v1"]
    data: Any = await server.json_body(call, receive, record)
    if type(data) is not dict:
        raise HttpError(400, "the body must be a JSON object of named features", "body", example)
    snapshot, served, variant = await server.choose(call)
    features = served.runtime.features
    classes = served.runtime.classes
    batch = "instances" in data
    if batch:
        instances = data["instances"]
        if len(data) != 1:
            extra = next(k for k in data if k != "instances")
            raise HttpError(400, f"unknown field {extra!r} beside 'instances'", extra, example)
        if type(instances) is not list:
            raise HttpError(400, "instances must be an array of objects", "instances", example)
        check_batch_size(len(instances), server.max_batch, "instances", example)
        rows = [
            row_from_mapping(item, features, f"instances[{i}]", example)
            for i, item in enumerate(instances)
        ]
    else:
        rows = [row_from_mapping(data, features, "", record)]
    labels, probas = predict_rows(served.runtime, rows)
    answers = [
        {
            "prediction": label,
            "class_name": classes[label],
            "probabilities": dict(zip(classes, proba, strict=True)),
        }
        for label, proba in zip(labels, probas, strict=True)
    ]
    meta = {"model_version": served.version, "variant": variant, "request_id": call.request_id}
    body = orjson.dumps({"predictions": answers, **meta} if batch else {**answers[0], **meta})
    return server.predicted(body, snapshot, served, variant, rows, labels, probas)
