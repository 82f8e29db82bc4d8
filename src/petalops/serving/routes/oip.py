"""The Open Inference Protocol v2 (KServe v2 / Triton HTTP/REST), so standard clients work.

Inputs: one tensor of shape ``[N, n_features]`` (or ``[n_features]``), datatype ``FP32`` or
``FP64``, data flat in row-major order or nested; the binary tensor extension
(``Inference-Header-Content-Length``) is accepted too. Outputs: ``label`` (INT64 ``[N]``),
``probabilities`` (``[N, n_classes]``, the input's float type) and ``class_name``
(BYTES ``[N]``); a request may ask for a subset with ``outputs``.

A model with categorical or boolean features takes one tensor per feature instead, named after
it, of shape ``[N]`` or ``[N, 1]``: ``BYTES`` for a categorical feature, ``BOOL`` for a boolean
one, ``FP32``/``FP64`` for a number (null where the feature may be missing). The model
metadata lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model

from petalops import __version__
from petalops.data.schema import Schema
from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import (
    Call,
    HttpError,
    Receive,
    json_body,
    media_type,
    read_body,
    require_json,
)
from petalops.serving.openapi import Docs, Ready
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.rows import MAX_ABS, check_batch_size, check_row, check_rows, check_value
from petalops.serving.server import Server

OUTPUTS = ("label", "probabilities", "class_name")
_DTYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_LIVE = orjson.dumps({"live": True})
_WHERE = "inputs[0]"
_WHERE_DATA = "inputs[0].data"
_FLOAT_TYPES: Any = Literal["FP32", "FP64"]


class Live(BaseModel):
    live: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InferOutputRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Literal["label", "probabilities", "class_name"]
    parameters: dict[str, Any] | None = None


class InferResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Literal["INT64", "FP32", "FP64", "BYTES"]
    parameters: dict[str, Any] | None = None
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferResponseOutput]


@dataclass(slots=True)
class Inference:
    """An inference request as read: its JSON, the binary tensor bytes, the outputs asked."""

    data: dict[str, Any]
    binary: bytes
    outputs: tuple[str, ...]


class OpenInference(Codec[Inference]):
    """Run inference on one tensor of rows; answers label, probabilities and class_name.

    Address a version in the path (`/v2/models/iris/versions/3/infer`) or with
    `X-Model-Version`.
    """

    order = 70

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        row = self.shape.example_row
        self.example = {
            "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
        }

    def routes(self, docs: Docs) -> list[Route]:
        inputs, example = _documented_inputs(docs)
        request = create_model(
            "InferRequest",
            id=(str | None, None),
            parameters=(dict[str, Any] | None, None),
            inputs=(inputs, ...),
            outputs=(list[InferOutputRequest] | None, None),
        )
        ready = docs.ref(Ready)
        routes = [
            Route(
                method="GET",
                path="/v2",
                handler=self.server_metadata,
                summary="Server metadata (OIP v2)",
                tag="oip-v2",
                responses={200: ("Metadata", docs.ref(ServerMetadata))},
            ),
            Route(
                method="GET",
                path="/v2/health/live",
                handler=self.live,
                summary="Server live (OIP v2)",
                tag="oip-v2",
                responses={200: ("Live", docs.ref(Live))},
            ),
            Route(
                method="GET",
                path="/v2/health/ready",
                handler=self.ready,
                summary="Server ready (OIP v2)",
                tag="oip-v2",
                responses={200: ("Ready", ready), 503: ("Not ready", ready)},
            ),
        ]
        for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            model_ready = docs.ref(ModelReady)
            routes += [
                Route(
                    method="GET",
                    path=base,
                    handler=self.model_metadata,
                    summary="Model metadata (OIP v2)",
                    tag="oip-v2",
                    responses={
                        200: ("Metadata", docs.ref(ModelMetadata)),
                        **docs.errors(404, 409, 503),
                    },
                ),
                Route(
                    method="GET",
                    path=f"{base}/ready",
                    handler=self.model_ready,
                    summary="Model ready (OIP v2)",
                    tag="oip-v2",
                    responses={
                        200: ("Ready", model_ready),
                        503: ("Not ready", model_ready),
                        **docs.errors(404, 409),
                    },
                ),
                Route(
                    method="POST",
                    path=f"{base}/infer",
                    codec=self,
                    summary="Inference (OIP v2)",
                    tag="oip-v2",
                    request_schema=docs.ref(request),
                    request_example=example,
                    responses={
                        200: ("Inference response", docs.ref(InferResponse)),
                        **docs.errors(400, 404, 409, 413, 415, 503),
                    },
                ),
            ]
        return routes

    async def read(self, call: Call, receive: Receive) -> Inference:
        self.check_model(call.params["name"])
        example = self.example
        header_length = call.inference_header_length
        if header_length >= 0:
            if media_type(call) not in (b"", b"application/octet-stream", b"application/json"):
                require_json(call, example)
            body = await read_body(receive, call, self.max_body)
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
            data = await json_body(call, receive, self.max_body, example)
            binary = b""
        if type(data) is not dict:
            raise HttpError(400, "the body must be an inference request object", "body", example)
        inputs = data.get("inputs")
        if type(inputs) is not list or not inputs:
            raise HttpError(
                400,
                "inputs must hold one tensor of shape [N, n_features] (or one per feature)",
                "inputs",
                example,
            )
        return Inference(data, binary, _requested(data, example))

    def decode(self, request: Inference, served: Served) -> list[list[Any]]:
        runtime = served.runtime
        inputs = request.data["inputs"]
        if runtime.mixed:
            return _feature_tensor_rows(inputs, runtime.schema, self.max_batch, self.example)
        if len(inputs) != 1:
            raise HttpError(
                400,
                "inputs must hold exactly one tensor of shape [N, n_features]",
                "inputs",
                self.example,
            )
        return _tensor_rows(
            inputs[0],
            request.binary,
            runtime.n_features,
            self.max_batch,
            self.example,
            runtime.schema,
        )

    def encode(self, request: Inference, prediction: Prediction, call: Call) -> bytes:
        served = prediction.served
        runtime = served.runtime
        labels = prediction.labels
        datatype = request.data["inputs"][0]["datatype"]
        if datatype not in _DTYPES:  # per-feature tensors (BYTES, BOOL...): answer in FP64
            datatype = "FP64"
        n, c = len(labels), len(runtime.classes)
        outputs: list[dict[str, Any]] = []
        for name in request.outputs:
            if name == "label":
                outputs.append({"name": "label", "datatype": "INT64", "shape": [n], "data": labels})
            elif name == "probabilities":
                probas = prediction.probas
                flat = probas[0] if n == 1 else [p for proba in probas for p in proba]
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
            "model_name": self.shape.name,
            "model_version": served.version,
            "outputs": outputs,
        }
        request_id = request.data.get("id")
        if isinstance(request_id, str):
            answer["id"] = request_id
        answer["parameters"] = {"variant": prediction.variant, "request_id": call.request_id}
        return orjson.dumps(answer)

    async def server_metadata(self, call: Call, receive: Receive) -> Reply:
        """Server metadata: name, version and supported extensions."""
        body = {"name": "petalops", "version": __version__, "extensions": ["binary_tensor_data"]}
        return Reply(body=orjson.dumps(body))

    async def live(self, call: Call, receive: Receive) -> Reply:
        """Server liveness."""
        return Reply(body=_LIVE)

    async def ready(self, call: Call, receive: Receive) -> Reply:
        """Server readiness: 200 once the model is loaded, verified and warmed; 503 before."""
        is_ready = self.server.holder.ready
        return Reply(body=orjson.dumps({"ready": is_ready}), status=200 if is_ready else 503)

    async def model_metadata(self, call: Call, receive: Receive) -> Reply:
        """Model metadata: versions, input and output tensors."""
        self.check_model(call.params["name"])
        holder = self.server.holder
        if "version" in call.params:
            served, _ = await holder.version(call.params["version"])
        else:
            served, _ = holder.snapshot.pick("")
        n, c = served.runtime.n_features, len(served.runtime.classes)
        versions = sorted(
            {s.version for _, s in holder.snapshot.slots()} | {served.version}, key=int
        )
        body = {
            "name": self.shape.name,
            "versions": versions,
            "platform": "petalops",
            "inputs": _input_metadata(served.runtime.schema, n),
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, c]},
                {"name": "class_name", "datatype": "BYTES", "shape": [-1]},
            ],
        }
        return Reply(body=orjson.dumps(body), version=served.version)

    async def model_ready(self, call: Call, receive: Receive) -> Reply:
        """Model readiness (of a version when addressed by version)."""
        self.check_model(call.params["name"])
        name = self.shape.name
        if "version" in call.params:
            served, _ = await self.server.holder.version(call.params["version"])
            return Reply(body=orjson.dumps({"name": name, "ready": True}), version=served.version)
        is_ready = self.server.holder.ready
        return Reply(
            body=orjson.dumps({"name": name, "ready": is_ready}), status=200 if is_ready else 503
        )


_KIND_DATATYPE = {"categorical": "BYTES", "boolean": "BOOL", "numeric": "FP64"}
# The datatypes `_feature_tensor_rows` takes for each kind of feature.
_KIND_DATATYPES: dict[str, Any] = {
    "categorical": Literal["BYTES"],
    "boolean": Literal["BOOL", "FP32", "FP64", "INT64"],
    "numeric": Literal["FP32", "FP64", "INT64", "BOOL"],
}


def _documented_inputs(docs: Docs) -> tuple[Any, dict[str, Any]]:
    """The ``inputs`` of an inference request as OpenAPI documents it, and an example:
    one tensor ``[N, n_features]`` of numbers, or (a model with categorical or boolean
    features, or missing values) one tensor per feature, each of its own type."""
    row = docs.example_row
    if docs.schema is None or docs.schema.numeric_only:
        number: Any = docs.number
        matrix_row: Any = docs.row
        infer_input: Any = create_model(
            "InferInput",
            __config__=ConfigDict(extra="allow"),
            name=(str, Field(examples=["input-0"])),
            shape=(
                Annotated[list[int], Field(min_length=1, max_length=2)],
                Field(examples=[[1, len(row)]]),
            ),
            datatype=(_FLOAT_TYPES, ...),
            parameters=(dict[str, Any] | None, None),
            data=(list[number] | list[matrix_row], ...),
        )
        tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}
        return Annotated[list[infer_input], Field(min_length=1, max_length=1)], {"inputs": [tensor]}
    tensors: list[Any] = []
    examples: list[dict[str, Any]] = []
    for j, (column, value) in enumerate(zip(docs.schema.columns, docs.values, strict=True)):
        name: Any = Literal[column.name]  # the tensor's name selects its schema
        tensors.append(
            create_model(
                f"InferInput_{re.sub(r'[^A-Za-z0-9_]', '_', column.name)}",
                __config__=ConfigDict(extra="allow"),
                name=(name, ...),
                shape=(
                    Annotated[list[int], Field(min_length=1, max_length=2)],
                    Field(description="[N] or [N, 1]", examples=[[1, 1]]),
                ),
                datatype=(_KIND_DATATYPES[column.kind], ...),
                parameters=(dict[str, Any] | None, None),
                data=(list[value] | list[tuple[value]], ...),  # type: ignore[valid-type]
            )
        )
        examples.append(
            {
                "name": column.name,
                "shape": [1, 1],
                "datatype": _KIND_DATATYPE[column.kind],
                "data": [row[j]],
            }
        )
    n = len(tensors)
    one: Any = Annotated[Union[tuple(tensors)], Field(discriminator="name")]  # noqa: UP007
    return Annotated[list[one], Field(min_length=n, max_length=n)], {"inputs": examples}


def _input_metadata(schema: Schema, n: int) -> list[dict[str, Any]]:
    if schema.numeric_only:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}]
    return [
        {"name": c.name, "datatype": _KIND_DATATYPE[c.kind], "shape": [-1, 1]}
        for c in schema.columns
    ]


def _feature_tensor_rows(
    inputs: list[Any], schema: Schema, max_batch: int, example: Any
) -> list[list[Any]]:
    """Rows from one tensor per feature (named after it), each of shape [N] or [N, 1]."""
    by_name: dict[str, tuple[int, Any]] = {}
    for i, tensor in enumerate(inputs):
        if type(tensor) is not dict or type(tensor.get("name")) is not str:
            raise HttpError(
                400, f"inputs[{i}] must be a tensor with a name", f"inputs[{i}]", example
            )
        by_name[tensor["name"]] = (i, tensor)
    unknown = [name for name in by_name if name not in schema.names]
    if unknown:
        raise HttpError(
            400,
            f"unknown input {unknown[0]!r}; the model takes one tensor per feature: "
            f"{', '.join(schema.names)}",
            "inputs",
            example,
        )
    columns: list[list[Any]] = []
    n = -1
    for column in schema.columns:
        if column.name not in by_name:
            raise HttpError(
                400,
                f"missing input {column.name!r} ({_KIND_DATATYPE[column.kind]}, shape [N, 1]); "
                "the model metadata lists every input",
                "inputs",
                example,
            )
        i, tensor = by_name[column.name]
        where = f"inputs[{i}]"
        allowed = {"BYTES"} if column.kind == "categorical" else {"BOOL", "FP32", "FP64", "INT64"}
        if tensor.get("datatype") not in allowed:
            raise HttpError(
                400,
                f"{where} ({column.name}).datatype must be {' or '.join(sorted(allowed))}, "
                f"got {tensor.get('datatype')!r}",
                f"{where}.datatype",
                example,
            )
        data = tensor.get("data")
        if type(data) is not list:
            raise HttpError(400, f"{where}.data must be an array", f"{where}.data", example)
        flat = [v[0] if type(v) is list and len(v) == 1 else v for v in data]
        if n == -1:
            n = len(flat)
            check_batch_size(n, max_batch, f"{where}.data", example)
        elif len(flat) != n:
            raise HttpError(
                400,
                f"{where} ({column.name}) has {len(flat)} values, the other inputs {n}",
                f"{where}.data",
                example,
            )
        columns.append(
            [check_value(v, column, f"{where}.data[{k}]", example) for k, v in enumerate(flat)]
        )
    return [list(row) for row in zip(*columns, strict=True)]


def _tensor_rows(
    tensor: Any,
    binary: bytes,
    n_features: int,
    max_batch: int,
    example: Any,
    schema: Schema | None = None,
) -> list[list[Any]]:
    where = _WHERE
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
    # Spelled out, not all(<generator>): this runs on every request (~0.4 µs less).
    if (
        type(shape) is not list
        or not 1 <= len(shape) <= 2
        or type(shape[-1]) is not int
        or shape[-1] != n_features
        or (len(shape) == 2 and (type(shape[0]) is not int or shape[0] < 0))
    ):
        raise HttpError(
            400,
            f"{where}.shape must be [N, {n_features}], got {shape!r}",
            f"{where}.shape",
            example,
        )
    n = shape[0] if len(shape) == 2 else 1
    check_batch_size(n, max_batch, f"{where}.shape[0]", example)
    parameters = tensor.get("parameters")
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
        rows: list[list[float]] = matrix.reshape(n, n_features).tolist()
        return rows
    if "data" not in tensor:
        raise HttpError(400, f"{where}.data is missing", f"{where}.data", example)
    data = tensor["data"]
    if type(data) is not list:
        raise HttpError(400, f"{where}.data must be an array of numbers", f"{where}.data", example)
    if data and type(data[0]) is list:
        rows = check_rows(data, n_features, max_batch, f"{where}.data", example, schema)
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
        flat = check_row(data, len(data), _WHERE_DATA, example)
        if n == 1:
            rows = [flat]
        else:
            rows = [flat[i : i + n_features] for i in range(0, len(flat), n_features)]
    if datatype == "FP32":
        rows = np.asarray(rows, dtype=np.float32).astype(np.float64).tolist()
    return rows


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


CODEC = OpenInference
