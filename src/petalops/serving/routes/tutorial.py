"""The tutorial API, unchanged: ``POST /predict`` with ``{"features": [...]}``, ``GET /health``."""

from __future__ import annotations

from typing import Any

import orjson

from petalops.serving.http import (
    JSON,
    Call,
    HttpError,
    Receive,
    parse_json,
    read_body,
    require_json,
)
from petalops.serving.rows import check_row
from petalops.serving.server import Reply, Server

_HEALTH = orjson.dumps({"status": "ok"})


async def predict(server: Server, call: Call, receive: Receive) -> Reply:
    """Predict one row given as a list of numbers in feature order.

    Answers the class index as `prediction` (an int, as in the classic tutorial), its
    name as `flower_type`, the class probabilities and the model version that answered.
    Send `X-Model-Version: 3` to ask a specific registered version.
    """
    # The busiest route: the generic helpers (json_body, choose, predicted) are inlined.
    example = server.shape.examples["predict"]
    if call.content_type != JSON:
        require_json(call, example)
    data: Any = parse_json(await read_body(receive, call, server.max_body), example)
    if type(data) is not dict or "features" not in data:
        raise HttpError(
            400, "the body must be a JSON object with a 'features' array", "features", example
        )
    if call.model_version is None:
        snapshot = server.holder.snapshot
        served, variant = snapshot.pick(call.routing_key or call.request_id, call.champion_only)
    else:
        snapshot, served, variant = await server.choose(call)
    runtime = served.runtime
    row = check_row(data["features"], runtime.n_features, "features", example)
    label, proba = runtime.predict_one(row)
    body = orjson.dumps(
        {
            "prediction": label,
            "flower_type": runtime.classes[label],
            "probabilities": proba,
            "model_version": served.version,
            "variant": variant,
        }
    )
    return Reply(
        body, 200, JSON, served.version, variant, None, snapshot, served, [row], [label], [proba]
    )


async def health(server: Server, call: Call, receive: Receive) -> Reply:
    """The tutorial's health check: 200 `{"status": "ok"}` while the process is up."""
    return Reply(_HEALTH)
