"""Feature rows at the edge: the decoding every codec shares, in plain Python (no pydantic
on the hot path), and their prediction.

Every failure is a 400 naming the exact field (``instances[3][2]``) and showing a valid
example. Booleans, strings, null, NaN and infinities are refused; the
OpenAPI schemas (`petalops.serving.openapi.Docs`) document the same bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from petalops.runtime.model import ModelRuntime
from petalops.serving.http import HttpError

# Larger magnitudes are refused: they are not measurements, and they overflow the logits.
MAX_ABS = 1e12
_MISSING: Any = object()
# Below this many rows pure Python beats numpy's fixed per-call cost for linear models.
NUMPY_ROWS = 16


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a nested array"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def check_row(value: Any, n_features: int, where: str, example: Any) -> list[float]:
    """One row: a list of exactly ``n_features`` finite numbers."""
    if type(value) is not list:
        raise HttpError(
            400,
            f"{where} must be an array of {n_features} numbers, got {_describe(value)}",
            where,
            example,
        )
    if len(value) != n_features:
        raise HttpError(
            400,
            f"{where} must have {n_features} numbers, got {len(value)}",
            where,
            example,
        )
    out: list[float] = []
    for i, v in enumerate(value):
        kind = type(v)
        if kind is float or kind is int:
            if not -MAX_ABS <= v <= MAX_ABS:  # also false for NaN
                raise HttpError(
                    400,
                    f"{where}[{i}] must be finite and within ±1e12, got {v}",
                    f"{where}[{i}]",
                    example,
                )
            out.append(float(v))
        else:
            raise HttpError(
                400, f"{where}[{i}] must be a number, got {_describe(v)}", f"{where}[{i}]", example
            )
    return out


def check_rows(
    value: Any, n_features: int, max_batch: int, where: str, example: Any
) -> list[list[float]]:
    """A non-empty batch of rows, at most ``max_batch`` long."""
    if type(value) is not list:
        raise HttpError(
            400, f"{where} must be an array of rows, got {_describe(value)}", where, example
        )
    check_batch_size(len(value), max_batch, where, example)
    return [check_row(row, n_features, f"{where}[{i}]", example) for i, row in enumerate(value)]


def check_batch_size(n: int, max_batch: int, where: str, example: Any) -> None:
    """A batch of ``n`` rows: at least one, at most ``max_batch``."""
    if n == 0:
        raise HttpError(400, f"{where} is empty; send at least one row", where, example)
    if n > max_batch:
        raise HttpError(
            400,
            f"{where} has {n} rows, more than the limit of {max_batch} (serve.max_batch); "
            "split the batch",
            where,
            example,
        )


def check_number(value: Any, where: str, example: Any) -> float:
    """One finite number within ±1e12 (an int becomes a float)."""
    kind = type(value)
    if kind is float or kind is int:
        if not -MAX_ABS <= value <= MAX_ABS:  # also false for NaN
            raise HttpError(
                400, f"{where} must be finite and within ±1e12, got {value}", where, example
            )
        return float(value)
    raise HttpError(400, f"{where} must be a number, got {_describe(value)}", where, example)


def row_from_mapping(value: Any, features: Sequence[str], where: str, example: Any) -> list[float]:
    """A row given as ``{"feature": number, ...}`` with every feature and nothing else."""
    if not isinstance(value, Mapping):
        raise HttpError(
            400,
            f"{where} must be an object of named features, got {_describe(value)}",
            where,
            example,
        )
    row: list[float] = []
    for name in features:
        v = value.get(name, _MISSING)
        kind = type(v)
        if (kind is float or kind is int) and -MAX_ABS <= v <= MAX_ABS:
            row.append(float(v))
            continue
        field = f"{where}.{name}" if where else name  # built only on the error path
        if v is _MISSING:
            raise HttpError(400, f"missing feature {name!r}", field, example)
        check_number(v, field, example)
    if len(value) != len(features):
        extra = sorted(k for k in value if k not in features)
        if extra:
            prefix = f"{where}." if where else ""
            raise HttpError(
                400,
                f"unknown feature {extra[0]!r}; the model takes {', '.join(features)}",
                f"{prefix}{extra[0]}",
                example,
            )
    return row


def columns_rows(
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


def any_rows(
    value: Any, features: list[str], max_batch: int, where: str, example: Any
) -> list[list[float]]:
    """Rows as arrays of numbers, as objects of named features, or as named columns."""
    if isinstance(value, dict):
        return column_rows(value, features, max_batch, where, example)
    if type(value) is not list:
        raise HttpError(400, f"{where} must be an array of rows", where, example)
    check_batch_size(len(value), max_batch, where, example)
    if isinstance(value[0], dict):
        return [
            row_from_mapping(item, features, f"{where}[{i}]", example)
            for i, item in enumerate(value)
        ]
    return check_rows(value, len(features), max_batch, where, example)


def column_rows(
    value: dict[str, Any], features: list[str], max_batch: int, where: str, example: Any
) -> list[list[float]]:
    """Rows given as ``{"feature": [values...], ...}``, one equally long column a feature."""
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


def predict_rows(
    runtime: ModelRuntime, rows: list[list[float]]
) -> tuple[list[int], list[list[float]]]:
    """Class indices and probabilities of validated rows, by the cheaper path for the size."""
    n = len(rows)
    if n == 1:  # most requests: the pure-Python single-row path, no loop
        label, proba = runtime.predict_one(rows[0])
        return [label], [proba]
    if n < NUMPY_ROWS:
        labels: list[int] = []
        probas: list[list[float]] = []
        for row in rows:
            label, proba = runtime.predict_one(row)
            labels.append(label)
            probas.append(proba)
        return labels, probas
    matrix = runtime.predict_proba(np.asarray(rows, dtype=np.float64))
    return matrix.argmax(axis=1).tolist(), matrix.tolist()
