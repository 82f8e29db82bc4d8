"""The MLflow scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /version``.

Payloads are parsed without pandas (pandas costs ~3 ms a request, see PEERS.md):
``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (JSON) and
``text/csv`` with a header row. The answer is ``{"predictions": [class index, ...]}``,
what the registered scikit-learn model's ``predict`` returns under ``mlflow models serve``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from petalops import __version__
from petalops.serving.http import Call, HttpError, Receive, media_type, parse_json, read_body
from petalops.serving.rows import (
    check_batch_size,
    check_number,
    check_rows,
    predict_rows,
    row_from_mapping,
)
from petalops.serving.server import Reply, Server

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_PING = orjson.dumps({"status": "ok"})


def _columns_rows(
    columns: Any, data: Any, features: list[str], max_batch: int, where: str, example: Any
) -> list[list[float]]:
    """Rows given with column names (any order; extra columns are ignored, as MLflow does)."""
    if type(columns) is not list or not all(type(c) is str for c in columns):
        raise HttpError(
            400, f"{where}.columns must be an array of names", f"{where}.columns", example
        )
    missing = [f for f in features if f not in columns]
    if missing:
        raise HttpError(
            400,
            f"column {missing[0]!r} is missing from {where}.columns",
            f"{where}.columns",
            example,
        )
    rows = check_rows(data, len(columns), max_batch, f"{where}.data", example)
    index = [columns.index(f) for f in features]
    if index == list(range(len(features))) and len(columns) == len(features):
        return rows
    return [[row[i] for i in index] for row in rows]


def _any_rows(
    value: Any, features: list[str], max_batch: int, where: str, example: Any
) -> list[list[float]]:
    """Rows as arrays of numbers, as objects of named features, or as named columns."""
    if isinstance(value, dict):
        return _column_dict(value, features, max_batch, where, example)
    if type(value) is not list:
        raise HttpError(400, f"{where} must be an array of rows", where, example)
    check_batch_size(len(value), max_batch, where, example)
    if isinstance(value[0], dict):
        return [
            row_from_mapping(item, features, f"{where}[{i}]", example)
            for i, item in enumerate(value)
        ]
    return check_rows(value, len(features), max_batch, where, example)


def _column_dict(
    value: dict[str, Any], features: list[str], max_batch: int, where: str, example: Any
) -> list[list[float]]:
    columns: list[list[float]] = []
    length = -1
    for name in features:
        if name not in value:
            raise HttpError(400, f"missing column {name!r}", f"{where}.{name}", example)
        column = value[name]
        if type(column) is not list:
            raise HttpError(
                400, f"{where}.{name} must be an array of numbers", f"{where}.{name}", example
            )
        if length == -1:
            length = len(column)
            check_batch_size(length, max_batch, f"{where}.{name}", example)
        elif len(column) != length:
            raise HttpError(
                400,
                f"{where}.{name} has {len(column)} values, expected {length}",
                f"{where}.{name}",
                example,
            )
        columns.append(
            [check_number(v, f"{where}.{name}[{i}]", example) for i, v in enumerate(column)]
        )
    return [list(row) for row in zip(*columns, strict=True)]


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


async def invocations(server: Server, call: Call, receive: Receive) -> Reply:
    """Score rows in any MLflow scoring format; answers `{"predictions": [...]}`.

    JSON bodies carry exactly one of `dataframe_split` (`columns` + `data`),
    `dataframe_records` (objects of named features), `instances` or `inputs` (arrays of
    rows, objects, or for `inputs` a mapping of column name to values). `text/csv` bodies
    need a header row naming the features. Send `X-Model-Version: 3` to ask a specific
    registered version.
    """
    features = server.shape.features
    example = server.shape.examples["mlflow"]
    kind = media_type(call)
    if kind == b"text/csv":
        body = await read_body(receive, call, server.max_body)
        snapshot, served, variant = await server.choose(call)
        features = served.runtime.features
        csv_example = server.shape.examples["csv"]
        rows = _csv_rows(body, features, server.max_batch, csv_example)
    else:
        data = (
            await server.json_body(call, receive, example)
            if kind
            else parse_json(await read_body(receive, call, server.max_body), example)
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
        snapshot, served, variant = await server.choose(call)
        features = served.runtime.features
        value = data[key]
        if key == "dataframe_split":
            if type(value) is not dict or "data" not in value:
                raise HttpError(
                    400, "dataframe_split must be an object with 'data'", "dataframe_split", example
                )
            if value.get("columns") is None:
                rows = check_rows(
                    value["data"], len(features), server.max_batch, "dataframe_split.data", example
                )
            else:
                rows = _columns_rows(
                    value["columns"],
                    value["data"],
                    features,
                    server.max_batch,
                    "dataframe_split",
                    example,
                )
        elif key == "dataframe_records":
            if type(value) is not list:
                raise HttpError(
                    400,
                    "dataframe_records must be an array of objects",
                    "dataframe_records",
                    example,
                )
            check_batch_size(len(value), server.max_batch, "dataframe_records", example)
            rows = [
                row_from_mapping(item, features, f"dataframe_records[{i}]", example)
                for i, item in enumerate(value)
            ]
        else:
            rows = _any_rows(value, features, server.max_batch, key, example)
    labels, probas = predict_rows(served.runtime, rows)
    return server.predicted(
        orjson.dumps({"predictions": labels}), snapshot, served, variant, rows, labels, probas
    )


async def ping(server: Server, call: Call, receive: Receive) -> Reply:
    """MLflow's health check: 200 once a model is loaded, 503 before."""
    champion = server.holder.snapshot.champion
    if champion is None:
        return Reply(orjson.dumps({"status": "loading"}), status=503)
    return Reply(_PING, version=champion.version)


async def version(server: Server, call: Call, receive: Receive) -> Reply:
    """The server's version and the model version serving by default."""
    champion = server.holder.snapshot.champion
    return Reply(
        orjson.dumps(
            {
                "version": __version__,
                "model": server.shape.name,
                "model_version": champion.version if champion else None,
            }
        )
    )
