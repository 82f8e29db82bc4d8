"""Feature rows at the edge: the decoding every codec shares, in plain Python (no pydantic
on the hot path), and their prediction.

Every failure is a 400 naming the exact field (``instances[3][2]``) and showing a valid
example. For a numeric model booleans, strings, null, NaN and infinities are refused; the
OpenAPI schemas (`petalops.serving.openapi.Docs`) document the same bounds. Given the model's
schema, a value takes its feature's kind (`petalops.data.schema`): a string or a number for a
categorical feature, true/false for a boolean one, and null where the feature may be missing.
A numeric row keeps the all-numbers fast path; the schema is consulted off it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from petalops.data.schema import ColumnSchema, Schema, boolean_value, category_text
from petalops.errors import InputError
from petalops.runtime.model import ModelRuntime
from petalops.serving import metrics
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


def check_value(value: Any, column: ColumnSchema, where: str, example: Any) -> Any:
    """One value in the canonical form of its feature's kind (NaN for a missing number,
    None for a missing category), or a 400 naming the feature and the fix."""
    # "instances[0].island" names the feature already; "features[0]" gets it added.
    name = where if where.endswith(column.name) else f"{where} ({column.name})"
    if value is None:
        if column.allow_missing:
            return None if column.kind == "categorical" else math.nan
        raise HttpError(
            400,
            f"{name} may not be null: the model was trained with "
            f"data.columns.{column.name}.allow_missing=false; send a value",
            where,
            example,
        )
    if column.kind == "categorical":
        if type(value) is str or type(value) is bool or type(value) in (int, float):
            if type(value) is float and not math.isfinite(value):
                raise HttpError(400, f"{name} must be finite", where, example)
            return category_text(value)
        raise HttpError(
            400,
            f"{name} must be a category (a string), got {_describe(value)}",
            where,
            example,
        )
    if column.kind == "boolean":
        flag = boolean_value(value) if type(value) is not float else None
        if flag is None:
            raise HttpError(
                400,
                f"{name} must be true or false, got {_describe(value)}",
                where,
                example,
            )
        return flag
    kind = type(value)
    if (kind is float or kind is int) and -MAX_ABS <= value <= MAX_ABS:
        return float(value)
    if kind is float or kind is int:
        raise HttpError(
            400,
            f"{name} must be finite and within ±1e12, got {value}",
            where,
            example,
        )
    raise HttpError(
        400,
        f"{name} must be a number, got {_describe(value)}"
        + ("; send null for a missing value" if column.allow_missing else ""),
        where,
        example,
    )


def _typed_row(value: list[Any], schema: Schema, where: str, example: Any) -> list[Any]:
    return [
        check_value(v, c, f"{where}[{i}]", example)
        for i, (v, c) in enumerate(zip(value, schema.columns, strict=True))
    ]


def _strict(schema: Schema | None) -> bool:
    # Numbers only, never missing: the fast path alone decides.
    return schema is None or schema.strict_numeric


def check_row(
    value: Any,
    n_features: int,
    where: str,
    example: Any,
    schema: Schema | None = None,
    index: int = -1,
) -> list[Any]:
    """One row: a list of exactly ``n_features`` finite numbers (or, with the model's schema,
    values of each feature's kind). ``where`` names it in an error, with ``[index]`` after
    it when ``index`` is given: formatted only for an error, not for every row of a batch."""
    if type(value) is not list:
        where = _at(where, index)
        raise HttpError(
            400,
            f"{where} must be an array of {n_features} {_unit(schema)}, got {_describe(value)}",
            where,
            example,
        )
    if len(value) != n_features:
        where = _at(where, index)
        raise HttpError(
            400,
            f"{where} must have {n_features} {_unit(schema)}, got {len(value)}",
            where,
            example,
        )
    if schema is not None and not schema.numeric_only:
        return _typed_row(value, schema, _at(where, index), example)
    out: list[float] = []
    for i, v in enumerate(value):
        kind = type(v)
        if kind is float or kind is int:
            if not -MAX_ABS <= v <= MAX_ABS:  # also false for NaN
                where = _at(where, index)
                raise HttpError(
                    400,
                    f"{where}[{i}] must be finite and within ±1e12, got {v}",
                    f"{where}[{i}]",
                    example,
                )
            out.append(float(v))
        elif not _strict(schema):
            assert schema is not None
            return _typed_row(value, schema, _at(where, index), example)
        else:
            where = _at(where, index)
            raise HttpError(
                400, f"{where}[{i}] must be a number, got {_describe(v)}", f"{where}[{i}]", example
            )
    return out


def _at(where: str, index: int) -> str:
    return where if index < 0 else f"{where}[{index}]"


def _unit(schema: Schema | None) -> str:
    return "numbers" if schema is None or schema.numeric_only else "values"


def check_rows(
    value: Any,
    n_features: int,
    max_batch: int,
    where: str,
    example: Any,
    schema: Schema | None = None,
) -> list[list[Any]]:
    """A non-empty batch of rows, at most ``max_batch`` long."""
    if type(value) is not list:
        raise HttpError(
            400, f"{where} must be an array of rows, got {_describe(value)}", where, example
        )
    check_batch_size(len(value), max_batch, where, example)
    return [check_row(row, n_features, where, example, schema, i) for i, row in enumerate(value)]


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


def row_from_mapping(
    value: Any, features: Sequence[str], where: str, example: Any, schema: Schema | None = None
) -> list[Any]:
    """A row given as ``{"feature": number, ...}`` with every feature and nothing else (with
    the model's schema: values of each feature's kind)."""
    if not isinstance(value, Mapping):
        raise HttpError(
            400,
            f"{where} must be an object of named features, got {_describe(value)}",
            where,
            example,
        )
    row: list[Any] = []
    typed = schema is not None and not schema.numeric_only
    for j, name in enumerate(features):
        v = value.get(name, _MISSING)
        kind = type(v)
        if not typed and (kind is float or kind is int) and -MAX_ABS <= v <= MAX_ABS:
            row.append(float(v))
            continue
        field = f"{where}.{name}" if where else name  # built only on the error path
        if v is _MISSING:
            raise HttpError(400, f"missing feature {name!r}", field, example)
        if schema is not None and (typed or not _strict(schema)):
            row.append(check_value(v, schema.columns[j], field, example))
            continue
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
    columns: Any,
    data: Any,
    features: list[str],
    max_batch: int,
    where: str,
    example: Any,
    schema: Schema | None = None,
) -> list[list[Any]]:
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
    index = [columns.index(f) for f in features]
    if schema is not None and not _strict(schema):
        # Values are checked against their own feature's kind: reorder before checking.
        if type(data) is not list:
            raise HttpError(400, f"{where}.data must be an array of rows", f"{where}.data", example)
        check_batch_size(len(data), max_batch, f"{where}.data", example)
        reordered = []
        for i, row in enumerate(data):
            if type(row) is not list or len(row) != len(columns):
                raise HttpError(
                    400,
                    f"{where}.data[{i}] must be an array of {len(columns)} values",
                    f"{where}.data[{i}]",
                    example,
                )
            reordered.append([row[k] for k in index])
        return check_rows(reordered, len(features), max_batch, f"{where}.data", example, schema)
    rows = check_rows(data, len(columns), max_batch, f"{where}.data", example)
    if index == list(range(len(features))) and len(columns) == len(features):
        return rows
    return [[row[i] for i in index] for row in rows]


def any_rows(
    value: Any,
    features: list[str],
    max_batch: int,
    where: str,
    example: Any,
    schema: Schema | None = None,
) -> list[list[Any]]:
    """Rows as arrays of numbers, as objects of named features, or as named columns."""
    if isinstance(value, dict):
        return column_rows(value, features, max_batch, where, example, schema)
    if type(value) is not list:
        raise HttpError(400, f"{where} must be an array of rows", where, example)
    check_batch_size(len(value), max_batch, where, example)
    if isinstance(value[0], dict):
        return [
            row_from_mapping(item, features, f"{where}[{i}]", example, schema)
            for i, item in enumerate(value)
        ]
    return check_rows(value, len(features), max_batch, where, example, schema)


def column_rows(
    value: dict[str, Any],
    features: list[str],
    max_batch: int,
    where: str,
    example: Any,
    schema: Schema | None = None,
) -> list[list[Any]]:
    """Rows given as ``{"feature": [values...], ...}``, one equally long column a feature."""
    columns: list[list[Any]] = []
    length = -1
    for j, name in enumerate(features):
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
        if schema is not None and not _strict(schema):
            column_schema = schema.columns[j]
            columns.append(
                [
                    check_value(v, column_schema, f"{where}.{name}[{i}]", example)
                    for i, v in enumerate(column)
                ]
            )
            continue
        columns.append(
            [check_number(v, f"{where}.{name}[{i}]", example) for i, v in enumerate(column)]
        )
    return [list(row) for row in zip(*columns, strict=True)]


def typed_rows(value: Any, runtime: ModelRuntime, where: str) -> list[list[Any]]:
    """One row or a list of rows (JSON values in feature order) checked against the model's
    schema; an InputError (one line, naming the value and the fix) when one does not fit.
    What `petalops predict --input '[...]'` uses for a model with categorical features."""
    rows = value if type(value) is list and value and type(value[0]) is list else [value]
    try:
        return check_rows(rows, runtime.n_features, len(rows), where, None, runtime.schema)
    except HttpError as exc:
        raise InputError(exc.message) from None


def predict_rows(
    runtime: ModelRuntime, rows: list[list[Any]]
) -> tuple[list[int], list[list[float]]]:
    """Class indices and probabilities of validated rows, by the cheaper path for the size.

    Categories never seen in training are counted per feature (``/metrics``) and follow the
    model's policy: under ``unknown: error`` a 422 names the feature and the categories."""
    n = len(rows)
    if runtime.mixed:
        if runtime.categories:
            unseen = runtime.unseen_rows(rows)
            if unseen:  # counted under every policy, refused (422) under unknown: error
                for feature, count in unseen.items():
                    metrics.unseen_category(runtime.version, feature, count)
                if runtime.unknown == "error":
                    runtime.check_unseen(np.asarray(rows, dtype=object))
        if n == 1:
            label, proba = runtime.predict_one(rows[0])
            return [label], [proba]
        matrix = runtime.predict_proba(np.asarray(rows, dtype=object))
        return runtime.decide(matrix).tolist(), matrix.tolist()
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
    return runtime.decide(matrix).tolist(), matrix.tolist()
