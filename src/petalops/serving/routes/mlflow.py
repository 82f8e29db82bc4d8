"""The MLflow scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /version``.

Payloads are parsed without pandas (pandas costs ~3 ms of CPU a request under MLflow):
``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (JSON) and
``text/csv`` with a header row. The answer is ``{"predictions": [class index, ...]}``,
what the registered scikit-learn model's ``predict`` returns under ``mlflow models serve``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from pydantic import BaseModel, Field, create_model

from petalops import __version__
from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import (
    Call,
    HttpError,
    Receive,
    json_body,
    media_type,
    parse_json,
    read_body,
)
from petalops.serving.openapi import Docs, Health, Predictions
from petalops.serving.prediction import Prediction
from petalops.serving.reply import Reply
from petalops.serving.rows import (
    any_rows,
    check_batch_size,
    check_rows,
    columns_rows,
    row_from_mapping,
)
from petalops.serving.server import Server

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_CSV = "text/csv"
_PING = orjson.dumps({"status": "ok"})

# What `read` hands `decode`: the body's one key and its value, or ("text/csv", the body).
Payload = tuple[str, Any]


class Version(BaseModel):
    version: str
    model: str
    model_version: str | None


class MLflow(Codec[Payload]):
    """Score rows in any MLflow scoring format; answers `{"predictions": [...]}`.

    JSON bodies carry exactly one of `dataframe_split` (`columns` + `data`),
    `dataframe_records` (objects of named features), `instances` or `inputs` (arrays of
    rows, objects, or for `inputs` a mapping of column name to values). `text/csv` bodies
    need a header row naming the features. Send `X-Model-Version: 3` to ask a specific
    registered version.
    """

    order = 50

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        shape = self.shape
        self.example = {"dataframe_split": {"columns": shape.features, "data": [shape.example_row]}}
        self.csv_example = ",".join(shape.features) + "\n" + ",".join(map(str, shape.example_row))

    def routes(self, docs: Docs) -> list[Route]:
        split: Any = create_model(
            "DataframeSplit",
            columns=(list[str] | None, Field(None, description="feature names of the columns")),
            index=(list[Any] | None, None),
            data=(docs.batch, ...),
        )
        row = docs.example_row
        example = {"dataframe_split": {"columns": docs.features, "data": [row]}}
        cells = (
            "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in row
        )
        csv_example = ",".join(docs.features) + "\n" + ",".join(cells) + "\n"
        request = docs.one_of(
            create_model("DataframeSplitRequest", dataframe_split=(split, ...)),
            create_model("DataframeRecordsRequest", dataframe_records=(docs.records, ...)),
            create_model("InstancesRequest", instances=(docs.batch | docs.records, ...)),
            create_model("InputsRequest", inputs=(docs.batch | docs.records, ...)),
        )
        return [
            Route(
                method="POST",
                path="/invocations",
                codec=self,
                summary="Score (MLflow protocol)",
                tag="mlflow",
                request_schema=request,
                request_example=example,
                request_content={_CSV: {"schema": {"type": "string"}, "example": csv_example}},
                responses={
                    200: ("Predictions", docs.ref(Predictions)),
                    **docs.errors(400, 404, 409, 413, 415, 503),
                },
            ),
            Route(
                method="GET",
                path="/ping",
                handler=self.ping,
                summary="Health (MLflow protocol)",
                tag="mlflow",
                responses={200: ("Ready", docs.ref(Health)), 503: ("Not ready", docs.ref(Health))},
            ),
            Route(
                method="GET",
                path="/version",
                handler=self.version,
                summary="Version (MLflow protocol)",
                tag="mlflow",
                responses={200: ("Versions", docs.ref(Version))},
            ),
        ]

    async def read(self, call: Call, receive: Receive) -> Payload:
        example = self.example
        kind = media_type(call)
        if kind == b"text/csv":
            return _CSV, await read_body(receive, call, self.max_body)
        data = (
            await json_body(call, receive, self.max_body, example)
            if kind
            else parse_json(await read_body(receive, call, self.max_body), example)
        )
        if type(data) is not dict:
            raise HttpError(400, "the body must be a JSON object", "body", example)
        present = [k for k in _KEYS if k in data]
        if len(present) != 1:
            raise HttpError(
                400,
                f"the body needs exactly one of {', '.join(_KEYS)}; got "
                f"{', '.join(present) or 'none of them'}",
                "body",
                example,
            )
        key = present[0]
        return key, data[key]

    def decode(self, request: Payload, served: Served) -> list[list[float]]:
        key, value = request
        features = served.runtime.features
        schema = served.runtime.schema
        max_batch, example = self.max_batch, self.example
        if key == _CSV:
            return _csv_rows(value, features, max_batch, self.csv_example)
        if key == "dataframe_split":
            if type(value) is not dict or "data" not in value:
                raise HttpError(
                    400, "dataframe_split must be an object with 'data'", "dataframe_split", example
                )
            if value.get("columns") is None:
                return check_rows(
                    value["data"], len(features), max_batch, "dataframe_split.data", example, schema
                )
            return columns_rows(
                value["columns"],
                value["data"],
                features,
                max_batch,
                "dataframe_split",
                example,
                schema,
            )
        if key == "dataframe_records":
            if type(value) is not list:
                raise HttpError(
                    400,
                    "dataframe_records must be an array of objects",
                    "dataframe_records",
                    example,
                )
            check_batch_size(len(value), max_batch, "dataframe_records", example)
            return [
                row_from_mapping(item, features, f"dataframe_records[{i}]", example, schema)
                for i, item in enumerate(value)
            ]
        return any_rows(value, features, max_batch, key, example, schema)

    def encode(self, request: Payload, prediction: Prediction, call: Call) -> bytes:
        return orjson.dumps({"predictions": prediction.labels})

    async def ping(self, call: Call, receive: Receive) -> Reply:
        """MLflow's health check: 200 once a model is loaded, 503 before."""
        champion = self.server.holder.snapshot.champion
        if champion is None:
            return Reply(body=orjson.dumps({"status": "loading"}), status=503)
        return Reply(body=_PING, version=champion.version)

    async def version(self, call: Call, receive: Receive) -> Reply:
        """The server's version and the model version serving by default."""
        champion = self.server.holder.snapshot.champion
        body = {
            "version": __version__,
            "model": self.shape.name,
            "model_version": champion.version if champion else None,
        }
        return Reply(body=orjson.dumps(body))


def _csv_rows(body: bytes, features: list[str], max_batch: int, example: str) -> list[list[float]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HttpError(400, "the CSV body is not UTF-8", "body", example) from None
    table = [r for r in csv.reader(io.StringIO(text)) if r]
    if len(table) < 2:
        raise HttpError(
            400, "the CSV needs a header row and at least one data row", "body", example
        )
    header = [h.strip() for h in table[0]]
    missing = [f for f in features if f not in header]
    if missing:
        raise HttpError(
            400, f"CSV column {missing[0]!r} is missing from the header", "header", example
        )
    index = [header.index(f) for f in features]
    check_batch_size(len(table) - 1, max_batch, "rows", example)
    rows: list[list[float]] = []
    for line, raw in enumerate(table[1:], start=2):
        row: list[float] = []
        for name, i in zip(features, index, strict=True):
            cell = raw[i].strip() if i < len(raw) else ""
            try:
                number = float(cell)
            except ValueError:
                number = float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                raise HttpError(
                    400,
                    f"CSV line {line}, column {name!r}: {cell!r} is not a finite number",
                    f"{name}",
                    example,
                )
            row.append(number)
        rows.append(row)
    return rows


CODEC = MLflow
