"""The Open Inference Protocol v2 (KServe v2 / Triton HTTP/REST), so standard clients work.

Inputs: one tensor of shape ``[N, n_features]`` (or ``[n_features]``), datatype ``FP32`` or
``FP64``, data flat in row-major order or nested; the binary tensor extension
(``Inference-Header-Content-Length``) is accepted too. Outputs: ``label`` (INT64 ``[N]``),
``probabilities`` (``[N, n_classes]``, the input's float type) and ``class_name``
(BYTES ``[N]``); a request may ask for a subset with ``outputs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from petalops import __version__
from petalops.serving.http import Call, HttpError, Receive, media_type, read_body, require_json
from petalops.serving.routes.kserve import check_name
from petalops.serving.rows import (
    MAX_ABS,
    check_batch_size,
    check_row,
    check_rows,
    predict_rows,
)
from petalops.serving.server import Reply, Server

OUTPUTS = ("label", "probabilities", "class_name")
_DTYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_LIVE = orjson.dumps({"live": True})


async def server_metadata(server: Server, call: Call, receive: Receive) -> Reply:
    """Server metadata: name, version and supported extensions."""
    return Reply(
        orjson.dumps(
            {"name": "petalops", "version": __version__, "extensions": ["binary_tensor_data"]}
        )
    )


async def live(server: Server, call: Call, receive: Receive) -> Reply:
    """Server liveness."""
    return Reply(_LIVE)


async def ready(server: Server, call: Call, receive: Receive) -> Reply:
    """Server readiness: 200 once the model is loaded, verified and warmed; 503 before."""
    is_ready = server.holder.ready
    return Reply(orjson.dumps({"ready": is_ready}), status=200 if is_ready else 503)


async def model_metadata(server: Server, call: Call, receive: Receive) -> Reply:
    """Model metadata: versions, input and output tensors."""
    check_name(server, call.params["name"])
    if "version" in call.params:
        served, _ = await server.holder.version(call.params["version"])
    else:
        served, _ = server.holder.snapshot.pick("")
    n, c = served.runtime.n_features, len(served.runtime.classes)
    versions = sorted(
        {s.version for _, s in server.holder.snapshot.slots()} | {served.version}, key=int
    )
    body = {
        "name": server.shape.name,
        "versions": versions,
        "platform": "petalops",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, c]},
            {"name": "class_name", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    return Reply(orjson.dumps(body), version=served.version)


async def model_ready(server: Server, call: Call, receive: Receive) -> Reply:
    """Model readiness (of a version when addressed by version)."""
    check_name(server, call.params["name"])
    if "version" in call.params:
        served, _ = await server.holder.version(call.params["version"])
        return Reply(
            orjson.dumps({"name": server.shape.name, "ready": True}), version=served.version
        )
    is_ready = server.holder.ready
    return Reply(
        orjson.dumps({"name": server.shape.name, "ready": is_ready}),
        status=200 if is_ready else 503,
    )


def _tensor_rows(
    tensor: Any, binary: bytes, n_features: int, max_batch: int, example: Any
) -> tuple[list[list[float]], str]:
    where = "inputs[0]"
    if type(tensor) is not dict:
        raise HttpError(400, f"{where} must be a tensor object", where, example)
    datatype = tensor.get("datatype")
    if datatype not in _DTYPES:
        raise HttpError(
            400,
            f"{where}.datatype must be FP32 or FP64, got {datatype!r}",
            f"{where}.datatype",
            example,
        )
    shape = tensor.get("shape")
    if (
        type(shape) is not list
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
        or shape[-1] != n_features
    ):
        raise HttpError(
            400,
            f"{where}.shape must be [N, {n_features}], got {shape!r}",
            f"{where}.shape",
            example,
        )
    n = shape[0] if len(shape) == 2 else 1
    check_batch_size(n, max_batch, f"{where}.shape[0]", example)
    parameters = tensor.get("parameters") or {}
    size = parameters.get("binary_data_size") if type(parameters) is dict else None
    if size is not None:
        dtype = _DTYPES[datatype]
        if type(size) is not int or size != n * n_features * dtype.itemsize or size > len(binary):
            raise HttpError(
                400,
                f"{where}.parameters.binary_data_size does not match the shape and the bytes sent",
                f"{where}.parameters.binary_data_size",
                example,
            )
        matrix = np.frombuffer(binary[:size], dtype=dtype).astype(np.float64)
        if not (np.abs(matrix) <= MAX_ABS).all():  # also false for NaN
            raise HttpError(
                400, f"{where} holds values that are not finite or beyond ±1e12", where, example
            )
        return matrix.reshape(n, n_features).tolist(), datatype
    if "data" not in tensor:
        raise HttpError(400, f"{where}.data is missing", f"{where}.data", example)
    data = tensor["data"]
    if type(data) is not list:
        raise HttpError(400, f"{where}.data must be an array of numbers", f"{where}.data", example)
    if data and type(data[0]) is list:
        rows = check_rows(data, n_features, max_batch, f"{where}.data", example)
        if len(rows) != n:
            raise HttpError(
                400,
                f"{where}.data has {len(rows)} rows but shape says {n}",
                f"{where}.data",
                example,
            )
    else:
        if len(data) != n * n_features:
            raise HttpError(
                400,
                f"{where}.data has {len(data)} values; shape {shape} needs {n * n_features}",
                f"{where}.data",
                example,
            )
        flat = check_row(data, len(data), f"{where}.data", example)
        rows = [flat[i : i + n_features] for i in range(0, len(flat), n_features)]
    if datatype == "FP32":
        rows = np.asarray(rows, dtype=np.float32).astype(np.float64).tolist()
    return rows, datatype


def _requested(data: dict[str, Any], example: Any) -> tuple[str, ...]:
    outputs = data.get("outputs")
    if outputs is None:
        return OUTPUTS
    if type(outputs) is not list:
        raise HttpError(400, 'outputs must be an array of {"name": ...}', "outputs", example)
    names: list[str] = []
    for i, item in enumerate(outputs):
        name = item.get("name") if type(item) is dict else None
        if name not in OUTPUTS:
            raise HttpError(
                400,
                f"outputs[{i}].name must be one of {', '.join(OUTPUTS)}",
                f"outputs[{i}].name",
                example,
            )
        names.append(name)
    return tuple(names) or OUTPUTS


async def infer(server: Server, call: Call, receive: Receive) -> Reply:
    """Run inference on one tensor of rows; answers label, probabilities and class_name.

    Address a version in the path (`/v2/models/iris/versions/3/infer`) or with
    `X-Model-Version`.
    """
    check_name(server, call.params["name"])
    example = server.shape.examples["oip"]
    header_length = call.inference_header_length
    if header_length >= 0:
        if media_type(call) not in (b"", b"application/octet-stream", b"application/json"):
            require_json(call, example)
        body = await read_body(receive, call, server.max_body)
        if header_length > len(body):
            raise HttpError(
                400,
                "Inference-Header-Content-Length is larger than the body",
                "Inference-Header-Content-Length",
                example,
            )
        header, binary = body[:header_length], body[header_length:]
        try:
            data: Any = orjson.loads(header)
        except orjson.JSONDecodeError as exc:
            raise HttpError(
                400, f"the inference header is not valid JSON: {exc}", "body", example
            ) from None
    else:
        data = await server.json_body(call, receive, example)
        binary = b""
    if type(data) is not dict:
        raise HttpError(400, "the body must be an inference request object", "body", example)
    inputs = data.get("inputs")
    if type(inputs) is not list or len(inputs) != 1:
        raise HttpError(
            400, "inputs must hold exactly one tensor of shape [N, n_features]", "inputs", example
        )
    wanted = _requested(data, example)
    snapshot, served, variant = await server.choose(call, call.params.get("version"))
    runtime = served.runtime
    rows, datatype = _tensor_rows(inputs[0], binary, runtime.n_features, server.max_batch, example)
    labels, probas = predict_rows(runtime, rows)
    n, c = len(rows), len(runtime.classes)
    outputs: list[dict[str, Any]] = []
    for name in wanted:
        if name == "label":
            outputs.append({"name": "label", "datatype": "INT64", "shape": [n], "data": labels})
        elif name == "probabilities":
            flat = [p for proba in probas for p in proba]
            if datatype == "FP32":
                flat = np.asarray(flat, dtype=np.float32).tolist()
            outputs.append(
                {"name": "probabilities", "datatype": datatype, "shape": [n, c], "data": flat}
            )
        else:
            outputs.append(
                {
                    "name": "class_name",
                    "datatype": "BYTES",
                    "shape": [n],
                    "data": [runtime.classes[i] for i in labels],
                }
            )
    answer: dict[str, Any] = {
        "model_name": server.shape.name,
        "model_version": served.version,
        "outputs": outputs,
    }
    request_id = data.get("id")
    if isinstance(request_id, str):
        answer["id"] = request_id
    answer["parameters"] = {"variant": variant, "request_id": call.request_id}
    return server.predicted(orjson.dumps(answer), snapshot, served, variant, rows, labels, probas)
