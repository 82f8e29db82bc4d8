"""OpenAPI for the hot routes: the building blocks codecs describe themselves with, and the
``paths`` of the document FastAPI serves beside its own routes.

Each codec documents its requests and answers next to the code that reads and writes them
(`petalops.serving.routes`); the row-level types here carry the bounds that
`petalops.serving.rows` enforces, so the documented schema and the check are one contract.
Once a model is loaded the types follow its stored data schema (`petalops.data.schema`): a
categorical feature is a string among the categories training saw, a boolean one true/false,
and each takes null where the feature may be missing (``allow_missing``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from petalops.data.schema import MAX_LISTED_CATEGORIES, ColumnSchema, Schema
from petalops.serving.rows import MAX_ABS
from petalops.serving.shape import ApiShape

if TYPE_CHECKING:  # a Route is described here; codec.py imports this module
    from petalops.serving.codec import Route

REF = "#/components/schemas/{model}"
# status -> (description, schema or None)
Responses = dict[int, tuple[str, dict[str, Any] | None]]
_PARAM = re.compile(r"\{(\w+)\}")
_ERROR_TEXT = {
    400: "Invalid input: the body names the field and shows a valid example.",
    404: "Unknown model or version.",
    409: "The version exists but cannot be served (integrity check failed).",
    413: "Body larger than serve.max_body_bytes.",
    415: "Unsupported Content-Type.",
    422: "A label that is not one of the model's classes.",
    503: "No model loaded yet, or the registry is unreachable.",
}


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what was wrong, which field, and a valid example."""

    error: str = Field(examples=["features must have 4 numbers, got 3"])
    field: str | None = Field(None, examples=["features"])
    example: Any = Field(None, examples=[{"features": [5.1, 3.5, 1.4, 0.2]}])
    request_id: str | None = None


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    ready: bool
    model_version: str | None = None
    error: str | None = None


class Predictions(BaseModel):
    """MLflow scoring and KServe v1 answers: one class index per row."""

    predictions: list[int]


class Docs:
    """Schemas for one server's OpenAPI document, built for its features and batch limit.

    ``ref`` hoists a pydantic model (and its definitions) into ``components``; the
    attributes ``number``, ``row``, ``batch``, ``record`` and ``records`` are the types a
    request's rows take, with the limits `petalops.serving.rows` checks. With the served
    model's ``schema``, ``values`` holds each feature's own type (``number`` stays the type of
    a numeric feature) and ``example_row`` is a row the model takes.
    """

    def __init__(self, shape: ApiShape, max_batch: int, schema: Schema | None = None) -> None:
        self.shape = shape
        self.max_batch = max_batch
        self.schema = schema
        self.components: dict[str, Any] = {}
        n = len(shape.features)
        number: Any = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS, le=MAX_ABS)]
        self.number = number
        self.mixed = schema is not None and not _numbers_only(schema)
        row: Any
        if schema is not None and self.mixed:
            self.values: list[Any] = [_value_type(column, number) for column in schema.columns]
            features = schema.names
            # A row by position: each place its own feature's type (OpenAPI 3.1 prefixItems,
            # exactly n items).
            row = tuple.__class_getitem__(tuple(self.values))
        else:
            self.values = [number] * n
            features = shape.features
            row = Annotated[list[number], Field(min_length=n, max_length=n)]
        fields: dict[str, Any] = {
            name: (value, Field(description=_describe(schema, j)))
            for j, (name, value) in enumerate(zip(features, self.values, strict=True))
        }
        record: Any = create_model("FeatureRecord", __config__=ConfigDict(extra="forbid"), **fields)
        self.features = list(features)
        self.row = row
        self.batch: Any = Annotated[list[row], Field(min_length=1, max_length=max_batch)]
        self.record = record
        self.records: Any = Annotated[list[record], Field(min_length=1, max_length=max_batch)]
        self.example_row = _example_row(shape, schema)
        self.error = self.ref(ErrorBody)

    @property
    def example_record(self) -> dict[str, Any]:
        """`example_row` as an object of named features."""
        return dict(zip(self.features, self.example_row, strict=True))

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        """A ``$ref`` to the model's schema, its definitions hoisted into ``components``."""
        schema = model.model_json_schema(ref_template=REF)
        self.components.update(schema.pop("$defs", {}))
        self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}

    def one_of(self, *models: type[BaseModel]) -> dict[str, Any]:
        """A schema any one of the models satisfies."""
        return {"oneOf": [self.ref(model) for model in models]}

    def errors(self, *codes: int) -> Responses:
        """The error answers a route can give, each an `ErrorBody`."""
        return {code: (_ERROR_TEXT[code], self.error) for code in codes}


def paths(routes: Sequence[Route], model_name: str) -> dict[str, dict[str, Any]]:
    """The ``paths`` object of the hot routes."""
    param_schemas = {
        "name": {"type": "string", "enum": [model_name]},
        "version": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    }
    document: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "tags": [route.tag],
            "summary": route.summary,
            "description": route.description,
            "operationId": f"{route.method.lower()}_{_slug(route.path)}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": param_schemas[name]}
                for name in _PARAM.findall(route.path)
            ],
            "responses": {},
        }
        if route.method == "POST" and route.request_schema is not None:
            content: dict[str, Any] = {
                "application/json": {
                    "schema": route.request_schema,
                    "example": route.request_example,
                },
                **route.request_content,
            }
            operation["requestBody"] = {"required": True, "content": content}
        if route.method == "POST" and not route.versioned:
            operation["parameters"].append(
                {
                    "name": "X-Model-Version",
                    "in": "header",
                    "required": False,
                    "description": "Answer with this registered version instead of the champion.",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                }
            )
        for status, (text, schema) in sorted(route.responses.items()):
            response: dict[str, Any] = {"description": text}
            if route.text_response and status == 200:
                response["content"] = {"text/plain": {"schema": {"type": "string"}}}
            elif schema is not None:
                response["content"] = {"application/json": {"schema": schema}}
            operation["responses"][str(status)] = response
        if route.method == "POST":
            operation["responses"].setdefault("405", {"description": "Method not allowed."})
        document.setdefault(route.path, {})[route.method.lower()] = operation
    return document


def _numbers_only(schema: Schema) -> bool:
    return schema.numeric_only and not any(c.allow_missing for c in schema.columns)


def _listed(column: ColumnSchema) -> bool:
    """Whether the schema lists every category training saw (a column with more keeps only
    the most frequent `MAX_LISTED_CATEGORIES`, so an enum of them would refuse real ones)."""
    return 0 < len(column.categories) < MAX_LISTED_CATEGORIES


def _value_type(column: ColumnSchema, number: Any) -> Any:
    """The pydantic type of one feature's value: a JSON Schema ``enum`` of the categories,
    a boolean or a bounded number, nullable where the feature may be missing."""
    value: Any
    if column.kind == "categorical":
        value = Literal[tuple(column.categories)] if _listed(column) else str
    elif column.kind == "boolean":
        value = bool
    else:
        value = number
    return value | None if column.allow_missing else value


def _describe(schema: Schema | None, j: int) -> str | None:
    if schema is None:
        return None
    column = schema.columns[j]
    missing = "; null when missing" if column.allow_missing else "; never missing"
    if column.kind == "categorical":
        seen = f"one of the {len(column.categories)} categories seen in training"
        return f"{seen} (another follows model.preprocess.unknown){missing}"
    if column.kind == "boolean":
        return f"true or false{missing}"
    if column.minimum is None or column.maximum is None:
        return f"a number{missing}"
    return f"a number; training saw {column.minimum:g} .. {column.maximum:g}{missing}"


def _example_row(shape: ApiShape, schema: Schema | None) -> list[Any]:
    """The settings' example row if the model takes it as it is (a real row of the training
    file, or Iris's), else a typical row of the schema: each number's training mean (to 3
    significant digits), each feature's most frequent category, true for a boolean."""
    row = shape.example_row
    if schema is None or (len(row) == len(schema.columns) and all(map(_fits, row, schema.columns))):
        return list(row)
    typical: list[Any] = []
    for column in schema.columns:
        if column.kind == "categorical":
            typical.append(next(iter(column.categories), None))
        elif column.kind == "boolean":
            typical.append(True)
        elif column.mean is not None and column.mean == column.mean:
            typical.append(float(f"{column.mean:.3g}"))
        else:
            typical.append(0.0 if column.minimum is None else column.minimum)
    return typical


def _fits(value: Any, column: ColumnSchema) -> bool:
    if value is None:
        return column.allow_missing
    if column.kind == "categorical":
        return isinstance(value, str) and (value in column.categories or not _listed(column))
    if column.kind == "boolean":
        return isinstance(value, bool)
    return type(value) in (int, float) and abs(value) <= MAX_ABS


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
