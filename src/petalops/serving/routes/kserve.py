"""The KServe v1 protocol: ``GET /v1/models``, ``GET /v1/models/{name}`` and
``POST /v1/models/{name}:predict`` with ``{"instances": [[...]]}`` -> ``{"predictions": [...]}``.
"""

from __future__ import annotations

import orjson

from petalops.serving.http import Call, HttpError, Receive
from petalops.serving.routes.mlflow import _any_rows
from petalops.serving.rows import predict_rows
from petalops.serving.server import Reply, Server


def check_name(server: Server, name: str) -> None:
    if name != server.shape.name:
        raise HttpError(
            404,
            f"model {name!r} is not served here; this server serves {server.shape.name!r}",
            "name",
            server.shape.name,
        )


async def models(server: Server, call: Call, receive: Receive) -> Reply:
    """The models this server serves."""
    return Reply(orjson.dumps({"models": [server.shape.name]}))


async def model(server: Server, call: Call, receive: Receive) -> Reply:
    """One model's readiness, as KServe v1 answers it."""
    check_name(server, call.params["name"])
    ready = server.holder.ready
    return Reply(
        orjson.dumps({"name": server.shape.name, "ready": ready}), status=200 if ready else 503
    )


async def predict(server: Server, call: Call, receive: Receive) -> Reply:
    """Predict rows: `{"instances": [[5.1, 3.5, 1.4, 0.2]]}` -> `{"predictions": [0]}`.

    Rows may also be objects of named features. Send `X-Model-Version: 3` to ask a
    specific registered version.
    """
    check_name(server, call.params["name"])
    example = server.shape.examples["kserve"]
    data = await server.json_body(call, receive, example)
    if type(data) is not dict or "instances" not in data:
        raise HttpError(400, "the body must be an object with 'instances'", "instances", example)
    snapshot, served, variant = await server.choose(call)
    rows = _any_rows(
        data["instances"], served.runtime.features, server.max_batch, "instances", example
    )
    labels, probas = predict_rows(served.runtime, rows)
    return server.predicted(
        orjson.dumps({"predictions": labels}), snapshot, served, variant, rows, labels, probas
    )
