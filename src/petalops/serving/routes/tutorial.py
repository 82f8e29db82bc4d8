"""The tutorial API, unchanged: ``POST /predict`` with ``{"features": [...]}``, ``GET /health``."""

from __future__ import annotations

from typing import Any

import orjson

from petalops.serving.http import Call, HttpError, Receive
from petalops.serving.rows import check_row
from petalops.serving.server import Reply, Server

_HEALTH = orjson.dumps({"status": "ok"})


async def predict(server: Server, call: Call, receive: Receive) -> Reply:
    """Predict one row given as a list of numbers in feature order.

    Answers the class index as `prediction` (an int, as in the classic tutorial), its
    name as `flower_type`, the class probabilities and the model version that answered.
    Send `X-Model-Version: 3` to ask a specific registered version.
    """
    example = server.shape.examples["predict"]
    data: Any = await server.json_body(call, receive, example)
    if type(data) is not dict or "features" not in data:
        raise HttpError(
            400, "the body must be a JSON object with a 'features' array", "features", example
        )
    snapshot, served, variant = await server.choose(call)
    row = check_row(data["features"], served.runtime.n_features, "features", example)
    label, proba = served.runtime.predict_one(row)
    body = orjson.dumps(
        {
            "prediction": label,
            "flower_type": served.runtime.classes[label],
            "probabilities": proba,
            "model_version": served.version,
            "variant": variant,
        }
    )
    return server.predicted(body, snapshot, served, variant, [row], [label], [proba])


async def health(server: Server, call: Call, receive: Receive) -> Reply:
    """The tutorial's health check: 200 `{"status": "ok"}` while the process is up."""
    return Reply(_HEALTH)
